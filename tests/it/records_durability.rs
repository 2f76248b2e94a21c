//! The call history as a user reads it through `/api/calls`, after what a
//! deployment goes through: the process killed mid-call and restarted, many
//! calls writing at once, and a client paging through a long history.

mod client;
mod paging;
mod process;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::{TestServer, expect_event, fixture, temp_dir};
use client::{api, api_until, sids};
use process::{Process, free_port};
use pronto::sim::{Call, Event};
use serde_json::Value;

/// The replica id both runs of the killed server share, as a deployment
/// that restarts a replica in place would set it.
const REPLICA: &str = "test-replica";

/// How long after its last heartbeat a dead replica's calls must be ended
/// by the survivors: the store's live window (15 s), one heartbeat period
/// (5 s), and slack for a loaded machine.
const DEAD_REPLICA_ENDED_WITHIN: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// 1. kill -9 mid-call, restart.

#[tokio::test]
async fn a_call_cut_by_kill_9_keeps_its_turns_and_ends_abnormal_after_restart() {
    let dir = temp_dir("kill9");
    let port = free_port();
    let mut server = Process::start(&dir, port, REPLICA, "first").await;
    let base = server.url.clone();

    let call = Call::dial(&server.sim()).await.expect("call connects");
    let sid = call.call_sid().to_string();
    let hello = fixture("hello.wav");
    for turn in 1..=2 {
        call.say(&hello);
        call.wait_said().await.expect("said");
        expect_event(&call, &format!("echo {turn} heard"), |e| {
            matches!(e, Event::MarkEchoed { cleared: false, .. })
        })
        .await;
    }
    api_until(&base, "/api/status", "2 turns, listening", |s| {
        s["calls"][0]["call_sid"] == sid.as_str()
            && s["calls"][0]["turns"] == 2
            && s["calls"][0]["state"] == "listening"
    })
    .await;
    // The background writer stores a turn a moment after the session has
    // finished it (a call never waits for the database); the turns are
    // durable once the history shows them, which is the state to crash in.
    let before = api_until(&base, &format!("/api/calls/{sid}"), "2 turns stored", |c| {
        c["turns"].as_array().is_some_and(|t| t.len() == 2)
    })
    .await;
    assert!(before["ended_at"].is_null(), "{before}");
    assert_eq!(before["live"], true, "{before}");

    server.kill_9();
    // The caller's line goes dead with the process.
    expect_event(&call, "the line to drop", |e| matches!(e, Event::Closed(_))).await;
    let _ = call.hang_up().await;

    let server = Process::start(&dir, port, REPLICA, "restarted").await;
    let after = api(&base, &format!("/api/calls/{sid}")).await;
    let turns = after["turns"].as_array().expect("turns");
    let numbers: Vec<&Value> = turns.iter().map(|t| &t["turn"]).collect();
    assert_eq!(numbers, [1, 2], "both finished turns survive: {after}");
    for t in turns {
        assert_eq!(t["interrupted"], false, "{after}");
        assert!(t["latency"]["voice_to_voice_ms"].is_u64(), "{after}");
    }
    assert_eq!(after["end_reason"], "abnormal", "{after}");
    assert!(after["ended_at"].is_string(), "{after}");
    assert!(after["answered_at"].is_string(), "{after}");
    assert_eq!(after["live"], false, "{after}");
    assert_eq!(after["from_number"], "+15551230001", "{after}");

    // The list agrees, and nothing shows as in progress any more.
    let list = api(&base, "/api/calls").await;
    assert_eq!(sids(&list), [sid.as_str()], "{list}");
    assert_eq!(list["calls"][0]["turns"], 2, "{list}");
    assert_eq!(list["calls"][0]["live"], false, "{list}");
    let status = api(&base, "/api/status").await;
    assert_eq!(status["active_calls"], 0, "{status}\n{}", server.log());
}

/// The same crash, but the process comes back under another replica id, as
/// it does by default (`PRONTO_REPLICA_ID` unset: host name and port) in a
/// container that is recreated with a new host name, or when a surviving
/// replica of a shared history outlives a dead one. The new process starts
/// within the live window, while the dead replica's heartbeat is still fresh,
/// so `end_abandoned` at its start-up spares the call, and nothing ends it
/// later: it stays open (no `ended_at`, no `end_reason`) for good.
#[tokio::test]
async fn a_call_of_a_replica_that_does_not_come_back_is_ended_abnormal() {
    let dir = temp_dir("kill9-other-replica");
    let port = free_port();
    let mut server = Process::start(&dir, port, "replica-a", "a").await;
    let base = server.url.clone();
    let call = Call::dial(&server.sim()).await.expect("call connects");
    let sid = call.call_sid().to_string();
    call.say(&fixture("hello.wav"));
    call.wait_said().await.expect("said");
    expect_event(&call, "the echo heard", |e| {
        matches!(e, Event::MarkEchoed { cleared: false, .. })
    })
    .await;
    let path = format!("/api/calls/{sid}");
    api_until(&base, &path, "the turn stored", |c| {
        c["turns"].as_array().is_some_and(|t| t.len() == 1)
    })
    .await;
    server.kill_9();
    let _ = call.hang_up().await;

    let killed_at = Instant::now();
    let server = Process::start(&dir, port, "replica-b", "b").await;
    let deadline = killed_at + DEAD_REPLICA_ENDED_WITHIN;
    let ended = loop {
        let c = api(&base, &path).await;
        if c["ended_at"].is_string() {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "{:.0} s after replica-a died its call is still open: {c}\n{}",
            killed_at.elapsed().as_secs_f64(),
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(ended["end_reason"], "abnormal", "{ended}");
    assert_eq!(ended["live"], false, "{ended}");
    assert_eq!(ended["turns"].as_array().map(Vec::len), Some(1), "{ended}");
}

/// The setting the restart above depends on is honoured (the call of
/// `replica-a` is not ended by the start of `replica-b` on the same port), yet
/// the server says it ignores it, in its log and in `/health`'s warnings: the
/// unknown-variable check knows only the `PRONTO_<SECTION>_<KEY>` tunables and
/// `PRONTO_CONFIG`, not `PRONTO_REPLICA_ID`, which `config/deployment.rs` reads.
#[tokio::test]
async fn the_replica_id_setting_is_not_reported_as_ignored() {
    let server = TestServer::with(&[("PRONTO_REPLICA_ID", REPLICA)], None).await;
    let (status, health) = server.get_json("/health", None).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["warnings"], serde_json::json!([]), "{health}");
}

// ---------------------------------------------------------------------------
// 2. Many concurrent calls.

const CONCURRENT: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_calls_are_all_recorded_with_their_turn_and_end() {
    let server = TestServer::with(&[("PRONTO_SERVER_MAX_CONCURRENT_CALLS", "60")], None).await;
    let hello: Arc<[i16]> = fixture("hello.wav").into();
    let started = Instant::now();
    let calls: Vec<_> = (0..CONCURRENT)
        .map(|i| {
            let mut cfg = server.fast_sim();
            // Fifty different callers: one number would hit
            // calls_per_hour_per_number.
            cfg.from = format!("+1555200{i:04}");
            let hello = hello.clone();
            tokio::spawn(async move {
                let call = Call::dial(&cfg).await.expect("call connects");
                call.say(&hello);
                call.wait_said().await.expect("said");
                expect_event(&call, "the echo heard", |e| {
                    matches!(e, Event::MarkEchoed { cleared: false, .. })
                })
                .await;
                let sid = call.call_sid().to_string();
                let report = call.hang_up().await.expect("report");
                assert!(report.protocol_errors().is_empty(), "{report}");
                sid
            })
        })
        .collect();
    let mut placed = Vec::new();
    for call in calls {
        placed.push(call.await.expect("call task"));
    }
    let calls_done = started.elapsed();
    let expected: HashSet<String> = placed.iter().cloned().collect();
    assert_eq!(expected.len(), CONCURRENT);

    let list = api_until(
        &server.url,
        "/api/calls?limit=200",
        "all calls ended",
        |l| {
            l["calls"].as_array().is_some_and(|c| {
                c.len() == CONCURRENT && c.iter().all(|c| c["ended_at"].is_string())
            })
        },
    )
    .await;
    let listed: HashSet<String> = sids(&list).into_iter().collect();
    assert_eq!(listed, expected, "{list}");
    assert!(list["next"].is_null(), "{list}");
    for sid in &placed {
        let call = api(&server.url, &format!("/api/calls/{sid}")).await;
        let turns = call["turns"].as_array().expect("turns");
        assert_eq!(turns.len(), 1, "{call}");
        assert_eq!(turns[0]["turn"], 1, "{call}");
        assert_eq!(turns[0]["interrupted"], false, "{call}");
        assert!(call["answered_at"].is_string(), "{call}");
        assert!(call["ended_at"].is_string(), "{call}");
        assert_eq!(call["end_reason"], "caller_hung_up", "{call}");
        assert_eq!(call["live"], false, "{call}");
    }
    eprintln!(
        "{CONCURRENT} concurrent calls: {:.1} s to place and finish, {:.1} s until all were listed and checked",
        calls_done.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

/// `calls_per_hour_per_number` (10 by default) counts the caller's calls in
/// the history, but `/voice` hands the new call's row to the background
/// writer and answers before it is written: calls from one number that
/// arrive together all see the count from before any of them, and all are
/// answered (all 20 here; 30 of 30 in a trial).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_from_one_number_is_held_to_calls_per_hour() {
    let server = TestServer::with(&[("PRONTO_SERVER_MAX_CONCURRENT_CALLS", "60")], None).await;
    let cfg = server.sim();
    let answers =
        futures_util::future::join_all((0..20).map(|_| pronto::sim::post_voice(&cfg))).await;
    let answered = answers
        .iter()
        .filter(|a| a.as_ref().expect("webhook answers").stream_url().is_some())
        .count();
    assert!(
        answered <= 10,
        "{answered} of 20 calls from one number answered"
    );
}

// ---------------------------------------------------------------------------
// 4. The store unavailable for a while.

/// While the database cannot be written (here another process holds
/// SQLite's write lock, as a full disk or a restarting PostgreSQL would
/// refuse writes), the call goes on, its records wait in memory (`/health`
/// says how many), and once the database is back they are all written.
#[tokio::test]
async fn records_the_store_could_not_take_are_written_when_it_is_back() {
    use sqlx::Connection;

    let server = TestServer::start().await;
    let call = Call::dial(&server.fast_sim()).await.expect("call connects");
    let sid = call.call_sid().to_string();
    api_until(
        &server.url,
        &format!("/api/calls/{sid}"),
        "the call's row",
        |c| c["answered_at"].is_string(),
    )
    .await;

    let url = server.state.config.deployment.database_url.clone();
    let mut lock = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("a second connection");
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut lock)
        .await
        .expect("lock");
    let report = call.hang_up().await.expect("report");
    assert!(report.protocol_errors().is_empty(), "{report}");
    // The writer's wait for the lock (5 s) runs out: the records are kept.
    server
        .health_until("nothing kept", Duration::from_secs(30), |h| {
            h["unwritten_records"].as_u64() > Some(0)
        })
        .await;
    sqlx::query("ROLLBACK")
        .execute(&mut lock)
        .await
        .expect("unlock");
    drop(lock);

    let ended = api_until(
        &server.url,
        &format!("/api/calls/{sid}"),
        "the call's end, written late",
        |c| c["end_reason"].is_string(),
    )
    .await;
    assert_eq!(ended["end_reason"], "caller_hung_up", "{ended}");
    server
        .health_until("still waiting", Duration::from_secs(30), |h| {
            h["unwritten_records"] == 0
        })
        .await;
}

// ---------------------------------------------------------------------------
// 5. What a killed process leaves on disk, and what its log says.

/// `kill -9` in the middle of a recorded call: the recording on disk is a
/// playable WAV of what was recorded up to about a second before.
#[tokio::test]
async fn a_recording_cut_by_kill_9_is_a_playable_wav() {
    let dir = temp_dir("kill9-recording");
    let recordings = dir.join("recordings");
    let recordings_text = recordings.to_string_lossy().into_owned();
    let mut server = Process::start_with(
        &dir,
        free_port(),
        REPLICA,
        "recorded",
        &[
            ("PRONTO_STORE_RECORDINGS", "true"),
            ("PRONTO_STORE_RECORDINGS_DIR", recordings_text.as_str()),
        ],
    )
    .await;
    let call = Call::dial(&server.sim()).await.expect("call connects");
    let sid = call.call_sid().to_string();
    let hello = fixture("hello.wav");
    for turn in 1..=2 {
        call.say(&hello);
        expect_event(&call, &format!("echo {turn} heard"), |e| {
            matches!(e, Event::MarkEchoed { cleared: false, .. })
        })
        .await;
    }
    server.kill_9();
    let _ = call.hang_up().await;
    let path = recordings.join(format!("{sid}.wav"));
    let wav = hound::WavReader::open(&path).unwrap_or_else(|e| {
        panic!(
            "{} is not a playable WAV: {e}\n{}",
            path.display(),
            server.log()
        )
    });
    let spec = wav.spec();
    assert_eq!((spec.channels, spec.sample_rate), (2, 8000));
    assert!(
        wav.duration() >= 8000,
        "{} frames: less than a second of a call of several",
        wav.duration()
    );
}

/// Text from Twilio that reaches the log cannot forge a log line: a DTMF
/// digit with a newline and a NUL in it is logged escaped.
#[tokio::test]
async fn outside_text_cannot_forge_a_log_line() {
    let dir = temp_dir("forged-log");
    let server = Process::start(&dir, free_port(), REPLICA, "log").await;
    let call = Call::dial(&server.sim()).await.expect("call connects");
    let forged = r#"{"event":"dtmf","streamSid":"STREAM","sequenceNumber":"9","dtmf":{"track":"inbound_track","digit":"1\nERROR forged line\u0000"}}"#
        .replace("STREAM", call.stream_sid());
    call.send_raw_text(forged).await.expect("sent");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server.log().contains("forged line") {
        assert!(Instant::now() < deadline, "not logged:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = call.hang_up().await;
    let log = server.log();
    assert!(
        !log.lines()
            .any(|l| l.trim_start().starts_with("ERROR forged")),
        "a forged line:\n{log}"
    );
    assert!(!log.contains('\0'), "a NUL reached the log");
    assert!(log.contains(r"1\nERROR forged line\u{0}"), "{log}");
}
