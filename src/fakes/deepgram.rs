//! Fake Deepgram streaming speech-to-text: one loopback server with both
//! WebSocket endpoints, Flux `/v2/listen` ([`flux`],
//! <https://developers.deepgram.com/docs/flux/state>) and Nova
//! `/v1/listen` ([`nova`],
//! <https://developers.deepgram.com/reference/speech-to-text-api/listen-streaming>).
//! The base URL is like `https://api.deepgram.com`: no path.
//!
//! The handshake checks what Deepgram checks (`Authorization: Token …`, the
//! model, `encoding=mulaw&sample_rate=8000`) and answers a refusal as an
//! HTTP status with Deepgram's error body; the 101 carries `dg-request-id`.
//! The audio side is the shared [`Hearing`](super::hearing::Hearing): an
//! energy gate finds speech and silence in audio time, and the words are
//! the [`Script`]'s.
//!
//! Latency: [`FakeDeepgram::set_final_delay`] holds every end-of-turn or
//! final message that long (wall clock); the silences after which a turn
//! ends are audio time ([`FakeDeepgram::set_flux_silences`], and
//! `endpointing` / `utterance_end_ms` from the query for `/v1/listen`).
//! Faults ([`DeepgramFault`]) queue up, one per connection attempt.
//!
//! Recorded per connection ([`DeepgramConnection`]): the query, whether the
//! key was accepted (never the key), every control message, the audio bytes
//! and the size of each binary message, and whether the client closed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::answer::json_response;
use super::hearing::Script;
use super::{Faults, Recorded, Running, lock, serve};

mod flux;
mod nova;
#[cfg(test)]
mod tests;

/// How the next connection to the fake goes wrong.
#[derive(Debug, Clone, PartialEq)]
pub enum DeepgramFault {
    /// The handshake is refused with 401 `INVALID_AUTH`, whatever the key.
    RefuseKey,
    /// The handshake is refused with 429 `TOO_MANY_REQUESTS`.
    RateLimit,
    /// After `after_ms` of audio, an in-stream fatal error: Flux sends an
    /// `Error` message, then both close with `code` (and a reason naming
    /// the error: `DATA-0000` for 1008, `NET-0000` for 1011).
    StreamError { after_ms: u64, code: u16 },
    /// After `after_ms` of audio the TCP connection is dropped, with no
    /// close frame.
    Drop { after_ms: u64 },
    /// What a client must ignore: a message of an unknown `type` first,
    /// unknown fields in every message, and (Flux) a `TurnInfo` with an
    /// unknown `event` among the turn's updates.
    Unknowns,
    /// The 101 comes without `dg-request-id`.
    NoRequestId,
}

/// One connection attempt, as the fake saw it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeepgramConnection {
    /// `/v2/listen` or `/v1/listen`.
    pub path: String,
    /// The query pairs in order (`keyterm` repeats).
    pub query: Vec<(String, String)>,
    /// The `Authorization` scheme (`Token`), never the key.
    pub auth_scheme: Option<String>,
    /// The HTTP status of a refused handshake; `None`: upgraded.
    pub refused: Option<u16>,
    /// The `dg-request-id` given.
    pub request_id: String,
    /// Every text message received, parsed (a string when not JSON).
    pub controls: Vec<Value>,
    /// Every audio byte received.
    pub audio: Vec<u8>,
    /// The size of each binary message.
    pub binary_sizes: Vec<usize>,
    /// The client sent a close frame.
    pub client_closed: bool,
}

impl DeepgramConnection {
    /// The values of query parameter `name`.
    pub fn param(&self, name: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The `type` of each control message received.
    pub fn control_types(&self) -> Vec<String> {
        self.controls
            .iter()
            .map(|c| c["type"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

#[derive(Debug, Clone, Copy)]
struct Timing {
    final_delay: Duration,
    /// Flux: silence (audio ms) before `EagerEndOfTurn` and `EndOfTurn`.
    eager_ms: u64,
    eot_ms: u64,
    /// `/v1/listen`: wall-clock time without audio or `KeepAlive` before
    /// the close 1011 `NET-0001`.
    idle_timeout: Duration,
}

struct Shared {
    /// The only key accepted; `None` = any non-empty key.
    key: Option<String>,
    faults: Faults<DeepgramFault>,
    connections: Recorded<DeepgramConnection>,
    script: Script,
    timing: Mutex<Timing>,
}

/// The fake; the server stops when it is dropped.
pub struct FakeDeepgram {
    running: Running,
    shared: Arc<Shared>,
}

impl FakeDeepgram {
    /// Accepts any non-empty key; hears "hello" in every turn.
    pub async fn start() -> Self {
        Self::serve(None).await
    }

    /// Accepts only `key`.
    pub async fn start_with_key(key: &str) -> Self {
        Self::serve(Some(key.to_string())).await
    }

    async fn serve(key: Option<String>) -> Self {
        let shared = Arc::new(Shared {
            key,
            faults: Faults::default(),
            connections: Recorded::default(),
            script: Script::default(),
            timing: Mutex::new(Timing {
                final_delay: Duration::ZERO,
                // Flux's claimed ~260 ms end of turn, the eager one a bit
                // before it.
                eager_ms: 200,
                eot_ms: 260,
                idle_timeout: Duration::from_secs(10),
            }),
        });
        let router = Router::new()
            .route("/v2/listen", get(flux_upgrade))
            .route("/v1/listen", get(nova_upgrade))
            .with_state(shared.clone());
        let running = serve(router, "").await;
        Self { running, shared }
    }

    /// `http://127.0.0.1:port`, like `https://api.deepgram.com`.
    pub fn base_url(&self) -> &str {
        &self.running.base_url
    }

    /// The same as `ws://127.0.0.1:port`.
    pub fn ws_url(&self) -> String {
        self.running.base_url.replacen("http://", "ws://", 1)
    }

    pub fn push_fault(&self, fault: DeepgramFault) {
        self.shared.faults.push(fault);
    }

    /// The texts heard, turn after turn (the last one repeats).
    pub fn set_script(&self, texts: &[&str]) {
        self.shared.script.set(texts);
    }

    /// How long every end of turn (`EndOfTurn`, a `speech_final` or
    /// flushed final result) is held before it is sent.
    pub fn set_final_delay(&self, delay: Duration) {
        lock(&self.shared.timing).final_delay = delay;
    }

    /// Flux: the silences (audio ms) after which `EagerEndOfTurn` (when
    /// eager mode is on) and `EndOfTurn` come; defaults 200 and 260.
    pub fn set_flux_silences(&self, eager_ms: u64, eot_ms: u64) {
        let mut timing = lock(&self.shared.timing);
        timing.eager_ms = eager_ms;
        timing.eot_ms = eot_ms;
    }

    /// `/v1/listen`: how long without audio or `KeepAlive` before the
    /// socket is closed with 1011 `NET-0001` (default 10 s, as Deepgram).
    pub fn set_idle_timeout(&self, timeout: Duration) {
        lock(&self.shared.timing).idle_timeout = timeout;
    }

    /// Every connection attempt so far, refused ones included.
    pub fn connections(&self) -> Vec<DeepgramConnection> {
        self.shared.connections.all()
    }
}

/// A Deepgram error body for a refused handshake.
fn error_body(code: &str, message: &str, request_id: &str) -> String {
    json!({"err_code": code, "err_msg": message, "request_id": request_id}).to_string()
}

/// A UUID-shaped request id.
fn request_id() -> String {
    let hex = hex::encode(rand::random::<[u8; 16]>());
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// One open connection's handle on the fake.
struct Conn {
    shared: Arc<Shared>,
    index: usize,
    fault: Option<DeepgramFault>,
    request_id: String,
    timing: Timing,
}

impl Conn {
    fn record(&self, change: impl FnOnce(&mut DeepgramConnection)) {
        self.shared.connections.update(self.index, change);
    }

    fn script(&self) -> Script {
        self.shared.script.clone()
    }

    /// The audio of one binary message, recorded.
    fn heard_audio(&self, audio: &[u8]) {
        self.record(|c| {
            c.audio.extend_from_slice(audio);
            c.binary_sizes.push(audio.len());
        });
    }

    /// A text message, recorded; `None` when it is not JSON.
    fn heard_text(&self, text: &str) -> Option<Value> {
        let parsed = serde_json::from_str::<Value>(text).ok();
        let recorded = parsed.clone().unwrap_or_else(|| Value::String(text.into()));
        self.record(|c| c.controls.push(recorded));
        parsed
    }

    /// The fault due once `at_ms` of audio has been heard.
    fn due_fault(&self, at_ms: u64) -> Option<DeepgramFault> {
        match self.fault {
            Some(DeepgramFault::StreamError { after_ms, .. })
            | Some(DeepgramFault::Drop { after_ms })
                if at_ms >= after_ms =>
            {
                self.fault.clone()
            }
            _ => None,
        }
    }

    fn unknowns(&self) -> bool {
        self.fault == Some(DeepgramFault::Unknowns)
    }
}

/// Sends one JSON message; false when the client is gone.
async fn send(ws: &mut WebSocket, mut message: Value, unknowns: bool) -> bool {
    if unknowns && let Some(object) = message.as_object_mut() {
        object.insert("fake_future_field".into(), json!({"nested": [1, 2]}));
    }
    ws.send(Message::Text(message.to_string().into()))
        .await
        .is_ok()
}

/// Closes with `code` and a reason naming Deepgram's error for it.
async fn close_with(ws: &mut WebSocket, conn: &Conn, code: u16) {
    let reason = match code {
        1008 => "DATA-0000: the payload cannot be decoded as audio",
        1011 => "NET-0000: the service has not transmitted a Text frame",
        _ => "fake error",
    };
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    close(ws, conn, Some(frame)).await;
}

/// The server's side of the closing handshake: the close frame, then the
/// client's answer, for a while (read and dropped until it comes), as a
/// server that closed its TCP connection at once would make the client's
/// next write fail before it reads why.
async fn close(ws: &mut WebSocket, conn: &Conn, frame: Option<CloseFrame>) {
    if ws.send(Message::Close(frame)).await.is_err() {
        return;
    }
    let answer = async {
        while let Some(Ok(message)) = ws.recv().await {
            if let Message::Close(_) = message {
                conn.record(|c| c.client_closed = true);
                return;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), answer).await;
}

#[derive(Clone, Copy, PartialEq)]
enum Version {
    Flux,
    Nova,
}

async fn flux_upgrade(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    handshake(shared, Version::Flux, query, headers, upgrade)
}

async fn nova_upgrade(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    handshake(shared, Version::Nova, query, headers, upgrade)
}

/// Checks the upgrade as Deepgram does, records it, and hands the socket
/// to its version's loop.
fn handshake(
    shared: Arc<Shared>,
    version: Version,
    query: Option<String>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let query: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (scheme, key) = authorization.split_once(' ').unwrap_or((authorization, ""));
    let key_accepted = scheme == "Token"
        && match &shared.key {
            None => !key.trim().is_empty(),
            Some(expected) => key == expected,
        };
    let request_id = request_id();
    let fault = shared.faults.next();
    let refusal = if fault == Some(DeepgramFault::RefuseKey) || !key_accepted {
        Some((
            401,
            error_body("INVALID_AUTH", "Invalid credentials.", &request_id),
        ))
    } else if fault == Some(DeepgramFault::RateLimit) {
        let message = "Too many requests. Please try again later";
        Some((429, error_body("TOO_MANY_REQUESTS", message, &request_id)))
    } else {
        bad_query(version, &query).map(|m| (400, error_body("Bad Request", &m, &request_id)))
    };
    let index = shared.connections.add(DeepgramConnection {
        path: match version {
            Version::Flux => "/v2/listen",
            Version::Nova => "/v1/listen",
        }
        .into(),
        query: query.clone(),
        auth_scheme: (!scheme.is_empty()).then(|| scheme.to_string()),
        refused: refusal.as_ref().map(|(status, _)| *status),
        request_id: request_id.clone(),
        ..DeepgramConnection::default()
    });
    if let Some((status, body)) = refusal {
        let mut response = json_response(status, body);
        if let Ok(id) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("dg-request-id", id);
        }
        return response;
    }
    let timing = *lock(&shared.timing);
    let no_request_id = fault == Some(DeepgramFault::NoRequestId);
    let conn = Conn {
        shared,
        index,
        fault,
        request_id: request_id.clone(),
        timing,
    };
    let mut response = upgrade.on_upgrade(move |ws| async move {
        match version {
            Version::Flux => flux::run(ws, conn, &query).await,
            Version::Nova => nova::run(ws, conn, &query).await,
        }
    });
    if !no_request_id && let Ok(id) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("dg-request-id", id);
    }
    response
}

/// What Deepgram answers 400 for: a missing or wrong audio format, no
/// model or the other endpoint's model, thresholds out of range.
fn bad_query(version: Version, query: &[(String, String)]) -> Option<String> {
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if get("encoding") != Some("mulaw") || get("sample_rate") != Some("8000") {
        return Some("this fake hears only encoding=mulaw&sample_rate=8000".into());
    }
    let model = get("model").unwrap_or_default();
    match version {
        Version::Flux if !model.starts_with("flux") => {
            Some(format!("/v2/listen needs a Flux model, not {model:?}"))
        }
        Version::Nova if model.is_empty() || model.starts_with("flux") => {
            Some(format!("/v1/listen cannot serve model {model:?}"))
        }
        Version::Flux => flux::Thresholds::from_query(query).err(),
        Version::Nova => None,
    }
}
