//! A real Pronto server on a loopback port, for the integration tests, and the
//! simulator configured to call it as Twilio would.
//!
//! The server believes it is reachable at `https://pronto.test` (its
//! `PUBLIC_BASE_URL`) while the tests connect to `127.0.0.1:<port>`, so every
//! signature check is against the public URL, never the loopback one.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pronto::config::Config;
use pronto::http::AppState;
use pronto::server::{self, Server};
use pronto::sim::{Call, Closer, Event, SimConfig, TimedEvent};
use serde_json::Value;

pub const PUBLIC: &str = "https://pronto.test";
pub const AUTH_TOKEN: &str = "test-auth-token";
pub const API_TOKEN: &str = "test-api-token";
pub const STREAM_SECRET: &str = "test-stream-secret";

/// Generous bounds for waits: they only matter when something is broken.
pub const WAIT: Duration = Duration::from_secs(15);

/// In a value given to [`TestServer::with`], replaced by the server's own
/// loopback URL, e.g. `("PUBLIC_BASE_URL", OWN_URL)` for a server reached
/// directly, as `pronto check --online` reaches one through its tunnel.
pub const OWN_URL: &str = "{own_url}";

pub struct TestServer {
    pub url: String,
    pub state: Arc<AppState>,
    server: Server,
    http: reqwest::Client,
}

impl TestServer {
    /// A server with the test secrets and the default configuration.
    pub async fn start() -> TestServer {
        TestServer::with(&[], None).await
    }

    /// A server with extra (or, with an empty value, removed) environment
    /// variables and an optional `pronto.toml`.
    pub async fn with(env: &[(&str, &str)], toml: Option<&str>) -> TestServer {
        TestServer::build(env, toml, false).await
    }

    /// A server whose responder comes from its configuration, as in
    /// production: the agent when the AI keys are set.
    pub async fn agent(env: &[(&str, &str)], toml: Option<&str>) -> TestServer {
        TestServer::build(env, toml, true).await
    }

    async fn build(env: &[(&str, &str)], toml: Option<&str>, from_config: bool) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("loopback port");
        let url = format!("http://{}", listener.local_addr().expect("bound address"));
        let mut vars: HashMap<String, String> = [
            ("PUBLIC_BASE_URL", PUBLIC),
            ("TWILIO_AUTH_TOKEN", AUTH_TOKEN),
            ("API_TOKEN", API_TOKEN),
            ("STREAM_TOKEN_SECRET", STREAM_SECRET),
            // The tests time turns by a fixed silence; the turn model (when
            // models/ holds it) is chosen by the tests about it.
            ("PRONTO_TURN_DETECTOR", "silence"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        // A fresh database, unless the test brings its own.
        if !env.iter().any(|(k, _)| *k == "DATABASE_URL") {
            let database = format!("sqlite://{}/pronto.db", temp_dir("db").display());
            vars.insert("DATABASE_URL".into(), database);
        }
        for (k, v) in env {
            if v.is_empty() {
                vars.remove(*k);
            } else {
                vars.insert(k.to_string(), v.replace(OWN_URL, &url));
            }
        }
        let config = Config::from_sources(toml.map(|t| ("test.toml", t)), &vars)
            .expect("test configuration");
        let engine = (!from_config).then(|| server::echo(&config).expect("echo mode"));
        let server = server::start(config, listener, engine)
            .await
            .expect("a server for the test configuration");
        TestServer {
            url,
            state: Arc::clone(server.state()),
            server,
            http: reqwest::Client::new(),
        }
    }

    /// The call's end reason, once its record has one (failing after `within`).
    pub async fn end_reason(&self, sid: &str, within: Duration) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (_, call) = self
                .api(reqwest::Method::GET, &format!("/api/calls/{sid}"), None)
                .await;
            if let Some(reason) = call["end_reason"].as_str() {
                return reason.to_string();
            }
            assert!(tokio::time::Instant::now() < deadline, "no end: {call}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `/health` until `done` holds of it (failing with `what` after
    /// `within`), and returns it.
    pub async fn health_until(
        &self,
        what: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (_, health) = self.get_json("/health", None).await;
            if done(&health) {
                return health;
            }
            assert!(tokio::time::Instant::now() < deadline, "{what}: {health}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The simulator, calling this server as Twilio would (signed, real time).
    pub fn sim(&self) -> SimConfig {
        let mut cfg = SimConfig::new(self.url.clone());
        cfg.public_base_url = Some(PUBLIC.to_string());
        cfg.auth_token = Some(AUTH_TOKEN.to_string());
        cfg
    }

    /// The simulator with the caller's speech sent faster than real time
    /// (silence still flows at real-time pace), for quicker tests.
    pub fn fast_sim(&self) -> SimConfig {
        let mut cfg = self.sim();
        cfg.fast = true;
        cfg
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub async fn get_json(&self, path: &str, bearer: Option<&str>) -> (u16, Value) {
        get_json(&self.http, &format!("{}{path}", self.url), bearer).await
    }

    /// POSTs a form to `path` with an optional `X-Twilio-Signature`.
    pub async fn post_form(
        &self,
        path: &str,
        params: &[(String, String)],
        signature: Option<&str>,
    ) -> (reqwest::StatusCode, String) {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let mut req = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(sig) = signature {
            req = req.header("X-Twilio-Signature", sig);
        }
        let resp = req.send().await.expect("POST");
        (resp.status(), resp.text().await.expect("body"))
    }

    /// POSTs a form to `path`, signed as Twilio signs it (over the public URL).
    pub async fn post_signed(
        &self,
        path: &str,
        params: &[(String, String)],
    ) -> (reqwest::StatusCode, String) {
        let signature =
            pronto::twilio::signature::compute(AUTH_TOKEN, &format!("{PUBLIC}{path}"), params);
        self.post_form(path, params, Some(&signature)).await
    }

    /// A JSON request to the API with the right token: `(status, body)`.
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(API_TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("API request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `GET /api/status` with the right token.
    pub async fn api_status(&self) -> Value {
        let (status, body) = self.get_json("/api/status", Some(API_TOKEN)).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Polls `/api/status` until `pred` holds.
    pub async fn wait_status(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let status = self.api_status().await;
            if pred(&status) {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: {status}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the first call has finished `turns` turns and is listening again.
    pub async fn wait_turns(&self, turns: u64) -> Value {
        self.wait_status(&format!("{turns} turns played"), |s| {
            s["calls"][0]["turns"] == turns && s["calls"][0]["state"] == "listening"
        })
        .await
    }

    /// Signals shutdown (as SIGTERM would) without waiting for it.
    pub fn begin_shutdown(&mut self) {
        self.server.shutdown();
    }

    /// Signals shutdown and waits for the server to exit.
    pub async fn stop(mut self) -> std::io::Result<()> {
        self.begin_shutdown();
        tokio::time::timeout(WAIT, self.server.stopped())
            .await
            .expect("server stops")
    }
}

/// The operator's actions on a call's record (`GET /api/calls/{sid}`), in
/// order: `listen`, `say`, `hang_up`, `transfer`.
pub fn operator_actions(record: &Value) -> Vec<&str> {
    record["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "operator")
        .filter_map(|e| e["detail"]["action"].as_str())
        .collect()
}

/// A fresh, empty directory for one test's files (database, recordings).
pub fn temp_dir(what: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "pronto-test-{}-{}-{what}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A speech fixture as 8 kHz PCM.
pub fn fixture(name: &str) -> Vec<i16> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    pronto::sim::load_wav_8k(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// What the caller hears of `pcm` after a trip through μ-law.
pub fn through_mulaw(pcm: &[i16]) -> Vec<i16> {
    pronto::audio::mulaw::decode(&pronto::audio::mulaw::encode(pcm))
}

/// The loud part of a fixture: from the first to the last sample above a
/// small threshold. Leading and trailing silence is excluded, because the
/// echo keeps only a bounded pre-roll and tail of it.
pub fn speech_part(pcm: &[i16]) -> &[i16] {
    let loud = |s: &i16| s.unsigned_abs() > 300;
    let first = pcm.iter().position(loud).unwrap_or(0);
    let last = pcm.iter().rposition(loud).map_or(0, |i| i + 1);
    &pcm[first..last.max(first)]
}

/// Where `needle` occurs in `haystack`, exactly.
pub fn find(haystack: &[i16], needle: &[i16]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    (0..=haystack.len() - needle.len()).find(|&i| haystack[i..i + needle.len()] == *needle)
}

/// Polls `probe` until it yields something (failing with `what` after
/// [`WAIT`]): for what a fake or the server will have done in a moment.
pub async fn eventually<T>(what: &str, probe: impl Fn() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for the next event matching `pred` on `call`.
pub async fn expect_event(call: &Call, what: &str, pred: impl Fn(&Event) -> bool) -> TimedEvent {
    match call.wait_for(pred, WAIT).await {
        Ok(e) => e,
        Err(e) => panic!("{what}: {e}\n{:#?}", call.events()),
    }
}

/// Waits for the server to close `call`'s socket and checks the close code.
pub async fn expect_server_close(call: &Call, code: u16) -> TimedEvent {
    let closed = expect_event(call, "the server to close", |e| {
        matches!(e, Event::Closed(_))
    })
    .await;
    match &closed.event {
        Event::Closed(info) => assert_eq!(
            (info.by, info.code),
            (Closer::Server, Some(code)),
            "{info:?}"
        ),
        other => unreachable!("{other:?}"),
    }
    closed
}

/// `GET url` with an optional bearer token: the status and the JSON body (a
/// non-JSON body comes back as a JSON string, so asserts show it).
pub async fn get_json(http: &reqwest::Client, url: &str, bearer: Option<&str>) -> (u16, Value) {
    let mut req = http.get(url);
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
