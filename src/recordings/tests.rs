use std::time::{Duration, SystemTime};

use super::*;

/// A folder path for one test that does not exist yet (removed in case a run left it;
/// each test removes it again at its end).
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pronto-recs-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn sid(n: u8) -> String {
    format!("CA{:032x}", n)
}

/// A finished recording of `len` bytes, last modified `age_s` seconds ago.
fn recording(recs: &Recordings, sid: &str, len: usize, age_s: u64) {
    let path = recs.path_for(sid).expect("valid SID");
    fs::write(&path, vec![0u8; len]).expect("write");
    let file = fs::File::options().write(true).open(&path).expect("open");
    file.set_modified(SystemTime::now() - Duration::from_secs(age_s))
        .expect("set mtime");
}

#[test]
fn bad_sids_are_refused() {
    let dir = temp_dir("bad");
    let recs = Recordings::new(dir.clone(), 1000);
    let hex = "0123456789abcdef0123456789ABCDEF";
    for bad in [
        String::new(),
        "CA".into(),
        "CA123".into(),
        format!("XX{hex}"),
        format!("ca{hex}"),
        format!("CA{hex}0"),
        format!("CA{}", &hex[1..]),
        format!("CA{}g", &hex[1..]),
        format!("CA{}/", &hex[1..]),
        format!("CA../{}", &hex[3..]),
        "../../../../etc/passwd".into(),
    ] {
        assert!(
            matches!(recs.path_for(&bad), Err(RecordingsError::BadSid)),
            "{bad}"
        );
        assert!(matches!(recs.begin(&bad), Err(RecordingsError::BadSid)));
        assert!(matches!(recs.erase(&bad), Err(RecordingsError::BadSid)));
        assert_eq!(recs.open(&bad), None);
    }
    let good = format!("CA{hex}");
    assert_eq!(
        recs.path_for(&good).expect("valid"),
        dir.join(format!("{good}.wav"))
    );
    assert!(!dir.exists(), "nothing was created for a refused SID");
}

#[test]
fn a_recording_is_served_and_deleted_only_once_finished() {
    let dir = temp_dir("serve");
    let recs = Recordings::new(dir.clone(), 1 << 20);
    let writing = recs.begin(&sid(1)).expect("begin creates the folder");
    assert!(dir.is_dir());
    fs::write(writing.path(), b"RIFF").expect("write");
    assert!(matches!(
        recs.begin(&sid(1)),
        Err(RecordingsError::InProgress)
    ));
    assert_eq!(recs.open(&sid(1)), None, "not served while written");

    drop(writing);
    assert_eq!(
        recs.open(&sid(1)),
        Some(dir.join(format!("{}.wav", sid(1))))
    );
    assert_eq!(
        recs.erase(&sid(1)).expect("erase"),
        RecordingErased::Deleted
    );
    assert_eq!(recs.open(&sid(1)), None);
    assert_eq!(
        recs.erase(&sid(1)).expect("already gone"),
        RecordingErased::None
    );
    assert_eq!(recs.open(&sid(2)), None, "never recorded");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_recording_erased_while_written_goes_the_moment_it_is_finished() {
    let dir = temp_dir("erase-live");
    let recs = Recordings::new(dir.clone(), 1 << 20);
    let writing = recs.begin(&sid(1)).expect("begin");
    fs::write(writing.path(), b"RIFF").expect("write");
    let path = writing.path().to_path_buf();
    assert_eq!(
        recs.erase(&sid(1)).expect("erase"),
        RecordingErased::AtCallEnd
    );
    assert!(path.exists(), "still being written");
    assert_eq!(recs.open(&sid(1)), None, "never served");
    drop(writing);
    assert!(!path.exists(), "deleted when finished");
    assert_eq!(recs.open(&sid(1)), None);
    // The SID is free again, and a new recording of it is kept.
    let again = recs.begin(&sid(1)).expect("begin");
    fs::write(again.path(), b"RIFF").expect("write");
    drop(again);
    assert!(path.exists());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn cap_deletes_oldest_first_and_never_an_open_recording() {
    let dir = temp_dir("cap");
    let recs = Recordings::new(dir.clone(), 2500);
    // The oldest is still being written (its file's time is old, as after a long call).
    let open = recs.begin(&sid(1)).expect("begin");
    recording(&recs, &sid(1), 1000, 400);
    recording(&recs, &sid(3), 1000, 200);
    recording(&recs, &sid(2), 1000, 300);
    recording(&recs, &sid(4), 1000, 100);
    recording(&recs, &sid(5), 1000, 0);
    fs::write(dir.join("notes.txt"), vec![0u8; 10_000]).expect("other file");

    let report = recs.enforce_cap().expect("cap");
    assert_eq!(
        report.deleted,
        [sid(2), sid(3), sid(4)],
        "oldest first, open one skipped"
    );
    assert_eq!(report.total_bytes, 2000);
    assert!(
        recs.path_for(&sid(1)).expect("sid").is_file(),
        "open recording kept"
    );
    assert!(recs.open(&sid(5)).is_some(), "newest kept");
    assert!(
        dir.join("notes.txt").is_file(),
        "not a recording: not touched"
    );

    // Under the cap: nothing more to do.
    drop(open);
    let again = recs.enforce_cap().expect("cap");
    assert_eq!(
        again,
        CapReport {
            deleted: vec![],
            total_bytes: 2000
        }
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn cap_on_a_missing_folder_creates_it() {
    let dir = temp_dir("fresh");
    let recs = Recordings::new(dir.clone(), 0);
    assert_eq!(recs.enforce_cap().expect("cap"), CapReport::default());
    assert!(dir.is_dir());
    let _ = fs::remove_dir_all(&dir);
}
