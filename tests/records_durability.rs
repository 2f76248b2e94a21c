//! The call history as a user reads it through `/api/calls`, after what a
//! deployment goes through: the process killed mid-call and restarted, many
//! calls writing at once, and a client paging through a long history.

mod harness;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::{API_TOKEN, AUTH_TOKEN, PUBLIC, TestServer, WAIT, expect_event, fixture, temp_dir};
use pronto::sim::{Call, Event, SimConfig, voice_params};
use pronto::twilio::signature::compute;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_pronto");

/// The replica id both runs of the killed server share, as a deployment
/// that restarts a replica in place would set it.
const REPLICA: &str = "test-replica";

/// How long after its last heartbeat a dead replica's calls must be ended
/// by the survivors: the store's live window (15 s), one heartbeat period
/// (5 s), and slack for a loaded machine.
const DEAD_REPLICA_ENDED_WITHIN: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// The `pronto` binary as a child process.

/// A `pronto` server process in its own working directory, with its output in
/// `pronto.log` there (shown when an assertion about it fails).
struct Process {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Process {
    /// Starts `pronto` as replica `replica` in `dir` on `port` with the SQLite
    /// history in `dir`, and waits until it answers `/health`.
    async fn start(dir: &Path, port: u16, replica: &str, run: &str) -> Process {
        let log = dir.join(format!("pronto-{run}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let database = format!("sqlite://{}/pronto.db", dir.display());
        let child = Command::new(BIN)
            .current_dir(dir)
            .env_clear()
            .envs([
                ("PORT", port.to_string().as_str()),
                ("BIND", "127.0.0.1"),
                ("PUBLIC_BASE_URL", PUBLIC),
                ("TWILIO_AUTH_TOKEN", AUTH_TOKEN),
                ("API_TOKEN", API_TOKEN),
                ("DATABASE_URL", database.as_str()),
                ("PRONTO_REPLICA_ID", replica),
                ("RUST_LOG", "info"),
            ])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("pronto starts");
        let mut process = Process {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        process.wait_healthy().await;
        process
    }

    async fn wait_healthy(&mut self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("pronto exited with {status} at start-up\n{}", self.log());
            }
            let health = http.get(format!("{}/health", self.url)).send().await;
            if let Ok(resp) = health
                && resp.status() == 200
                && resp
                    .text()
                    .await
                    .is_ok_and(|t| t.contains("\"mode\":\"echo\""))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pronto never answered /health\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no drain, no flush, no goodbye, as when the OOM killer or a
    /// power cut takes the process.
    fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL");
        let status = self.child.wait().expect("wait");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{status}\n{}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The simulator, calling this process as Twilio would.
    fn sim(&self) -> SimConfig {
        let mut cfg = SimConfig::new(self.url.clone());
        cfg.public_base_url = Some(PUBLIC.to_string());
        cfg.auth_token = Some(AUTH_TOKEN.to_string());
        cfg.fast = true;
        cfg
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address").port()
}

// ---------------------------------------------------------------------------
// The API, as a client sees it.

/// `GET {base}{path}` with an optional bearer token: the status and the JSON
/// body (a non-JSON body comes back as a JSON string, so asserts show it).
async fn get(base: &str, path: &str, bearer: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(format!("{base}{path}"));
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("GET");
    let status = resp.status().as_u16();
    let body = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

/// `GET {base}{path}` with the API token, which must answer 200.
async fn api(base: &str, path: &str) -> Value {
    let (status, body) = get(base, path, Some(API_TOKEN)).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// Polls `GET {base}{path}` (with the token) until `pred` holds: the history is
/// written by a background writer, a moment after the call does something.
async fn api_until(base: &str, path: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let body = api(base, path).await;
        if pred(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The SIDs of a page of `GET /api/calls`, in the order listed.
fn sids(page: &Value) -> Vec<String> {
    page["calls"]
        .as_array()
        .unwrap_or_else(|| panic!("no calls array: {page}"))
        .iter()
        .map(|c| c["call_sid"].as_str().expect("call_sid").to_string())
        .collect()
}

/// An error answer: the status, and a JSON body with a non-empty `error`.
fn assert_error(status: u16, body: &Value, expected: u16, what: &str) {
    assert_eq!(status, expected, "{what}: {body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: no JSON error: {body}"
    );
}

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
// 3. Paging and the API's answers to bad requests.

const HISTORY: usize = 25;
/// The caller the `from` filter looks for: every fifth call is theirs.
const REGULAR: &str = "+15551230001";

/// The i-th call's SID. Later calls get smaller SIDs, so a list in SID order
/// instead of time order would show.
fn history_sid(i: usize) -> String {
    format!("CA{:032x}", 0xffff_u128 - i as u128)
}

fn history_from(i: usize) -> String {
    if i.is_multiple_of(5) {
        REGULAR.to_string()
    } else {
        format!("+1555300{i:04}")
    }
}

/// Makes the history one call at a time with signed `/voice` webhooks only
/// (each writes its call row), oldest first.
async fn make_history(server: &TestServer) {
    for i in 0..HISTORY {
        let mut cfg = SimConfig::new("http://unused");
        cfg.from = history_from(i);
        let params = voice_params(&cfg, &history_sid(i), "AC0123456789abcdef0123456789abcdef");
        let signature = compute(AUTH_TOKEN, &format!("{PUBLIC}/voice"), &params);
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&params)
            .finish();
        let resp = server
            .http()
            .post(format!("{}/voice", server.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", signature)
            .body(body)
            .send()
            .await
            .expect("POST /voice");
        assert_eq!(resp.status(), 200);
        let twiml = resp.text().await.expect("TwiML");
        assert!(twiml.contains("<Stream"), "call {i} not answered: {twiml}");
    }
}

#[tokio::test]
async fn the_history_pages_newest_first_and_refuses_bad_requests() {
    let server = TestServer::with(&[("PRONTO_SERVER_MAX_CONCURRENT_CALLS", "100")], None).await;
    let base = server.url.as_str();
    make_history(&server).await;
    let newest_first: Vec<String> = (0..HISTORY).rev().map(history_sid).collect();
    let all = api_until(base, "/api/calls?limit=200", "all calls stored", |l| {
        l["calls"].as_array().is_some_and(|c| c.len() == HISTORY)
    })
    .await;
    assert_eq!(sids(&all), newest_first, "{all}");

    // Following `next` visits every call once, newest first, and stops.
    for limit in [10, 5] {
        let mut seen = Vec::new();
        let mut pages = 0;
        let mut path = format!("/api/calls?limit={limit}");
        loop {
            let page = api(base, &path).await;
            pages += 1;
            let page_sids = sids(&page);
            assert!(!page_sids.is_empty() && page_sids.len() <= limit, "{page}");
            seen.extend(page_sids);
            match page["next"].as_str() {
                Some(next) => path = format!("/api/calls?limit={limit}&before={next}"),
                None => break,
            }
            assert!(pages <= HISTORY, "paging does not end");
        }
        assert_eq!(seen, newest_first, "limit={limit}");
        assert_eq!(pages, HISTORY.div_ceil(limit), "limit={limit}");
    }

    // Bad paging parameters: 400 with a JSON error.
    for query in [
        "before=garbage",
        "limit=0",
        "limit=500",
        "limit=ten",
        "limit=-1",
        "since=yesterday",
        "from=5551230001x",
    ] {
        let (status, body) = get(base, &format!("/api/calls?{query}"), Some(API_TOKEN)).await;
        assert_error(status, &body, 400, query);
    }

    // Filters.
    let regulars: Vec<String> = (0..HISTORY)
        .rev()
        .filter(|&i| history_from(i) == REGULAR)
        .map(history_sid)
        .collect();
    let page = api(base, "/api/calls?from=%2B15551230001").await;
    assert_eq!(sids(&page), regulars, "{page}");
    assert!(
        page["calls"]
            .as_array()
            .expect("calls")
            .iter()
            .all(|c| c["from"] == "+*******0001"),
        "numbers are masked in lists: {page}"
    );
    // An unencoded `+` arrives as a space; it means the same number.
    let page = api(base, "/api/calls?from=+15551230001").await;
    assert_eq!(sids(&page), regulars, "{page}");
    let page = api(base, "/api/calls?from=%2B15559999999").await;
    assert_eq!(sids(&page), Vec::<String>::new(), "{page}");

    let future = (chrono::Utc::now() + chrono::Duration::days(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let page = api(base, &format!("/api/calls?since={future}")).await;
    assert_eq!(sids(&page), Vec::<String>::new(), "{page}");
    assert!(page["next"].is_null(), "{page}");

    // `since` includes its instant and `until` excludes it: split at one
    // call's start, the two windows hold every call exactly once.
    let split = all["calls"][9]["started_at"].as_str().expect("started_at");
    let newer = api(base, &format!("/api/calls?limit=200&since={split}")).await;
    let older = api(base, &format!("/api/calls?limit=200&until={split}")).await;
    assert_eq!(sids(&newer), newest_first[..10], "{newer}");
    assert_eq!(sids(&older), newest_first[10..], "{older}");

    // One call.
    let sid = history_sid(0);
    let call = api(base, &format!("/api/calls/{sid}")).await;
    assert_eq!(call["call_sid"], sid.as_str(), "{call}");
    assert_eq!(call["from_number"], REGULAR, "{call}");
    assert_eq!(call["turns"], Value::Array(vec![]), "{call}");
    let unknown = format!("CA{}", "0".repeat(32));
    let (status, body) = get(base, &format!("/api/calls/{unknown}"), Some(API_TOKEN)).await;
    assert_error(status, &body, 404, "unknown SID");
    for bad in [
        "CA123",
        "XX0123456789abcdef0123456789abcdef",
        "CA0123456789abcdef0123456789abcdeg",
    ] {
        let (status, body) = get(base, &format!("/api/calls/{bad}"), Some(API_TOKEN)).await;
        assert_error(status, &body, 400, bad);
    }

    // Without the bearer token (or with a wrong one), nothing is shown.
    for path in [
        "/api/calls".to_string(),
        "/api/calls?limit=10".to_string(),
        "/api/calls?before=garbage".to_string(),
        format!("/api/calls/{sid}"),
        format!("/api/calls/{unknown}"),
        "/api/calls/CA123".to_string(),
    ] {
        for bearer in [None, Some("not-the-token")] {
            let (status, body) = get(base, &path, bearer).await;
            assert_error(status, &body, 401, &format!("{path} with {bearer:?}"));
            assert_eq!(
                body.as_object().map(|o| o.len()),
                Some(1),
                "{path}: only the error: {body}"
            );
        }
    }
}
