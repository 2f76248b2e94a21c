//! The folder of call recordings: one `CA….wav` per call, named by its call SID.
//!
//! The SID comes from outside (Twilio's `start` event, an HTTP path), so it is checked
//! before it becomes part of a path: `CA` and 32 hex digits, nothing that could be a
//! separator or `..`.
//!
//! Files still being written are tracked in memory: [`Recordings::begin`] returns a
//! [`Writing`] guard for the call, and until it is dropped that recording is neither
//! served ([`Recordings::open`]), deleted ([`Recordings::delete`]) nor counted as deletable
//! by [`Recordings::enforce_cap`]. A guard rather than a `.part` file renamed at the end:
//! the guard is released on every path out of the call, panics included, and a crash
//! leaves an ordinary (if short) recording that the cap will clear in time, instead of a
//! `.part` file nothing owns.
//!
//! Intended use by the call: `let w = recordings.begin(sid)?`, record into `w.path()`, finish
//! the recorder, drop `w`, then `enforce_cap` in `spawn_blocking`. Every method but
//! `path_for` touches the disk (`begin` creates the folder, `open` looks for the file), so
//! async code calls them through `spawn_blocking`; `enforce_cap` lists the whole folder.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

/// Why a recording could not be found, made or removed.
#[derive(Debug, thiserror::Error)]
pub enum RecordingsError {
    /// Not `CA` followed by 32 hex digits.
    #[error("not a call SID")]
    BadSid,
    /// The recording is still being written.
    #[error("recording in progress")]
    InProgress,
    /// Less free disk space than the configured minimum: not recorded.
    #[error("only {free_mb} MB free on the recordings' disk (minimum {min_mb} MB): not recorded")]
    LowSpace { free_mb: u64, min_mb: u64 },
    /// The folder or a file in it could not be read, made or removed.
    #[error("recordings folder: {0}")]
    Io(#[from] io::Error),
}

/// The recordings folder and its size cap.
#[derive(Clone)]
pub struct Recordings {
    dir: PathBuf,
    max_total_bytes: u64,
    /// Free space on the disk below which nothing is recorded.
    min_free_bytes: u64,
    /// SIDs with a live [`Writing`] guard, each with whether its file is to be
    /// erased as soon as it is finished.
    writing: Arc<Mutex<Writers>>,
}

type Writers = HashMap<String, bool>;

/// A recording being written. Dropping it marks the recording complete.
pub struct Writing {
    sid: String,
    path: PathBuf,
    writing: Arc<Mutex<Writers>>,
}

impl Writing {
    /// Where to write the recording.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Writing {
    /// The recording is complete; one erased while it was written goes now
    /// (under the lock, so no one can open it in between). One `unlink`:
    /// quick enough for whatever thread finishes the call.
    fn drop(&mut self) {
        let mut writing = lock(&self.writing);
        if writing.remove(&self.sid) == Some(true)
            && let Err(e) = fs::remove_file(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, "an erased recording could not be deleted");
        }
    }
}

/// What [`Recordings::erase`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordingErased {
    /// The recording was deleted.
    Deleted,
    /// The call is still being recorded: its file is deleted the moment the
    /// recording ends, and is never served meanwhile.
    AtCallEnd,
    /// There was no recording of the call.
    None,
}

/// What [`Recordings::enforce_cap`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CapReport {
    /// The SIDs of the recordings deleted, oldest first.
    pub deleted: Vec<String>,
    /// Bytes of recordings left, those in progress included.
    pub total_bytes: u64,
}

impl Recordings {
    /// The folder is created on first use, not here, so configuring it costs nothing.
    pub fn new(dir: PathBuf, max_total_bytes: u64) -> Recordings {
        Recordings {
            dir,
            max_total_bytes,
            min_free_bytes: 0,
            writing: Arc::default(),
        }
    }

    /// Records nothing while the disk has less than `bytes` free: a call
    /// starting then is not recorded, and a recording in progress stops.
    pub fn with_min_free(mut self, bytes: u64) -> Recordings {
        self.min_free_bytes = bytes;
        self
    }

    /// The free space below which nothing is recorded.
    pub fn min_free_bytes(&self) -> u64 {
        self.min_free_bytes
    }

    /// Whether the disk has room for recording (free space above the minimum).
    pub fn room(&self) -> Result<(), RecordingsError> {
        let free = fs4::available_space(&self.dir)?;
        if free < self.min_free_bytes {
            const MB: u64 = 1024 * 1024;
            return Err(RecordingsError::LowSpace {
                free_mb: free / MB,
                min_mb: self.min_free_bytes / MB,
            });
        }
        Ok(())
    }

    /// The most all recordings together may take.
    pub fn max_total_bytes(&self) -> u64 {
        self.max_total_bytes
    }

    /// The file of `call_sid`'s recording (whether or not it exists).
    pub fn path_for(&self, call_sid: &str) -> Result<PathBuf, RecordingsError> {
        if is_call_sid(call_sid) {
            Ok(self.dir.join(format!("{call_sid}.wav")))
        } else {
            Err(RecordingsError::BadSid)
        }
    }

    /// Marks `call_sid`'s recording as being written and returns where to write it.
    /// Creates the folder if needed; refuses a SID that is already being recorded.
    pub fn begin(&self, call_sid: &str) -> Result<Writing, RecordingsError> {
        let path = self.path_for(call_sid)?;
        fs::create_dir_all(&self.dir)?;
        self.room()?;
        match lock(&self.writing).entry(call_sid.to_owned()) {
            std::collections::hash_map::Entry::Occupied(_) => {
                return Err(RecordingsError::InProgress);
            }
            std::collections::hash_map::Entry::Vacant(v) => v.insert(false),
        };
        Ok(Writing {
            sid: call_sid.to_owned(),
            path,
            writing: Arc::clone(&self.writing),
        })
    }

    /// The finished recording of `call_sid`, to serve; `None` if the SID is malformed, there
    /// is no such recording, or it is still being written (its header is not complete).
    pub fn open(&self, call_sid: &str) -> Option<PathBuf> {
        let path = self.path_for(call_sid).ok()?;
        if lock(&self.writing).contains_key(call_sid) || !path.is_file() {
            return None;
        }
        Some(path)
    }

    /// Erases `call_sid`'s recording: now, or (still being written) the
    /// moment it is finished.
    pub fn erase(&self, call_sid: &str) -> Result<RecordingErased, RecordingsError> {
        let path = self.path_for(call_sid)?;
        let mut writing = lock(&self.writing);
        if let Some(doomed) = writing.get_mut(call_sid) {
            *doomed = true;
            return Ok(RecordingErased::AtCallEnd);
        }
        match fs::remove_file(path) {
            Ok(()) => Ok(RecordingErased::Deleted),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(RecordingErased::None),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes finished recordings, oldest modification time first, until the folder's
    /// recordings total at most `max_total_bytes`. Recordings in progress count towards the
    /// total but are never deleted, so the total can stay above the cap while they last.
    /// Files that are not recordings (other names) are neither counted nor touched.
    pub fn enforce_cap(&self) -> Result<CapReport, RecordingsError> {
        fs::create_dir_all(&self.dir)?;
        let mut files = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(sid) = name.to_str().and_then(|n| n.strip_suffix(".wav")) else {
                continue;
            };
            if !is_call_sid(sid) {
                continue;
            }
            let meta = match entry.metadata() {
                Ok(meta) if meta.is_file() => meta,
                // Gone since the listing (deleted by hand or by another cap run): not ours.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Ok(_) => continue,
                Err(e) => return Err(e.into()),
            };
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            files.push((modified, sid.to_owned(), meta.len()));
        }
        files.sort();
        let mut report = CapReport {
            deleted: Vec::new(),
            total_bytes: files.iter().map(|f| f.2).sum(),
        };
        for (_, sid, len) in files {
            if report.total_bytes <= self.max_total_bytes {
                break;
            }
            // Deleted under the lock, so a `begin` for this SID cannot slip in between.
            let writing = lock(&self.writing);
            if writing.contains_key(&sid) {
                continue;
            }
            match fs::remove_file(self.dir.join(format!("{sid}.wav"))) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            drop(writing);
            report.total_bytes -= len;
            report.deleted.push(sid);
        }
        Ok(report)
    }
}

/// Whether the file at `path` is a WAV with some audio in it, as a player
/// would need; why not, if it is not (an empty file left by a full disk, a
/// header a crash left half-written). Reads the header only.
pub fn playable(path: &Path) -> Result<(), String> {
    match hound::WavReader::open(path) {
        Ok(wav) if wav.duration() > 0 => Ok(()),
        Ok(_) => Err("the recording holds no audio".into()),
        Err(e) => Err(format!("the recording is not a readable WAV ({e})")),
    }
}

/// A Twilio call SID: `CA` and 32 hex digits.
fn is_call_sid(s: &str) -> bool {
    s.len() == 34 && s.starts_with("CA") && s.bytes().skip(2).all(|b| b.is_ascii_hexdigit())
}

/// The set stays valid even if a holder panicked (inserts and removes are single steps).
fn lock(set: &Mutex<Writers>) -> MutexGuard<'_, Writers> {
    set.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
