//! What the two language-model fakes (`anthropic`, `openai_chat`) share: the
//! scripted [`Reply`], and [`LlmFake`], the state and the serving of a request
//! (key and shape checks, recording, faults, latency) around the events each
//! fake writes in its own wire format ([`Wire`]).
//!
//! Replies queue up, one per streamed answer; with none queued the answer is
//! [`DEFAULT_REPLY`] (or what [`LlmFake::set_default_reply`] says). A
//! `Status` or `Hang` fault answers no stream, so it leaves the queued reply
//! for the next request (the retry).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use serde_json::Value;

use super::{Fault, Faults, Recorded, lock};

/// The answer when none is queued.
pub const DEFAULT_REPLY: &str = "Sure. I can help with that.";
/// Between the two halves of an event when writes are fragmented.
const FRAGMENT_GAP: Duration = Duration::from_millis(5);
/// Before a cut, so that the events before it are flushed first.
const CUT_PAUSE: Duration = Duration::from_millis(30);

/// What the model answers: text, or text then one tool call.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Text(String),
    Tool {
        /// Streamed before the call; may be empty.
        text: String,
        name: String,
        arguments: Value,
    },
}

impl Reply {
    pub fn text(text: &str) -> Self {
        Reply::Text(text.into())
    }

    /// The text streamed, and the tool call after it if any.
    pub fn parts(&self) -> (&str, Option<(&str, &Value)>) {
        match self {
            Reply::Text(text) => (text, None),
            Reply::Tool {
                text,
                name,
                arguments,
            } => (text, Some((name, arguments))),
        }
    }
}

/// Word-ish deltas as models stream them: each word with the spaces before
/// it. They join back into `text` exactly.
pub fn words(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c == ' ' && !text[start..i].trim().is_empty() {
            pieces.push(text[start..i].to_string());
            start = i;
        }
    }
    if start < text.len() {
        pieces.push(text[start..].to_string());
    }
    pieces
}

/// A JSON text in fragments of `size` characters, as tool arguments stream.
pub fn fragments(json: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = json.chars().collect();
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

/// Accepts the key a request carries: `None` = any non-empty key, `Some("")`
/// = anything (a local server), `Some(k)` = exactly `k`.
pub fn key_accepted(expected: &Option<String>, got: Option<&str>) -> bool {
    match expected.as_deref() {
        None => got.is_some_and(|k| !k.is_empty()),
        Some("") => true,
        Some(key) => got == Some(key),
    }
}

/// A service's wire format, as its fake writes it.
pub trait Wire: Send + Sync + 'static {
    /// What the real service would refuse on any request (bad key, missing
    /// version): the status and message of its error.
    fn refuse_headers(&self, headers: &HeaderMap) -> Option<(u16, String)>;
    /// What the real service would refuse of a streamed answer's request
    /// (the headers, then a missing field): the status and message.
    fn refuse(&self, headers: &HeaderMap, body: &Value) -> Option<(u16, String)>;
    /// The body of `GET /v1/models`: the service's list of models.
    fn models(&self) -> Value;
    /// The service's JSON error body.
    fn error_body(&self, status: u16, message: &str) -> String;
    /// The events of a whole answer to `request`, each a complete SSE event.
    fn events(&self, reply: &Reply, request: &Value) -> Vec<String>;
    /// An event whose JSON is broken.
    fn malformed_event(&self) -> String;
    /// The service's in-stream error.
    fn error_event(&self) -> String;
}

/// The state of a language-model fake; each fake derefs to it, so these
/// methods are the fake's.
#[derive(Clone, Default)]
pub struct LlmFake {
    faults: Faults,
    requests: Recorded<Value>,
    headers: Recorded<HeaderMap>,
    replies: Arc<Mutex<VecDeque<Reply>>>,
    /// The answer when none is queued; `None` = [`DEFAULT_REPLY`].
    default_reply: Arc<Mutex<Option<Reply>>>,
    latency: Arc<Mutex<(Duration, Duration)>>,
    fragmented: Arc<AtomicBool>,
    open_streams: Arc<AtomicUsize>,
    models_requests: Recorded<HeaderMap>,
}

impl LlmFake {
    /// The next request misbehaves (see [`Fault`]).
    pub fn push_fault(&self, fault: Fault) {
        self.faults.push(fault);
    }

    /// The next streamed answer.
    pub fn push_reply(&self, reply: Reply) {
        lock(&self.replies).push_back(reply);
    }

    /// The answer when none is queued ([`DEFAULT_REPLY`] unless set).
    pub fn set_default_reply(&self, reply: Reply) {
        *lock(&self.default_reply) = Some(reply);
    }

    /// Pause before the first event, and between the next ones.
    pub fn set_latency(&self, first_token: Duration, per_token: Duration) {
        *lock(&self.latency) = (first_token, per_token);
    }

    /// Writes each event in two pieces a few ms apart, split at the middle
    /// byte (inside a UTF-8 character when one is there).
    pub fn set_fragmented(&self, on: bool) {
        self.fragmented.store(on, Ordering::SeqCst);
    }

    /// The JSON bodies received (a body that is not JSON as a string).
    pub fn requests(&self) -> Vec<Value> {
        self.requests.all()
    }

    /// The headers of each request received.
    pub fn headers(&self) -> Vec<HeaderMap> {
        self.headers.all()
    }

    /// Answers being streamed now: 0 once every client has gone.
    pub fn open_streams(&self) -> usize {
        self.open_streams.load(Ordering::SeqCst)
    }

    /// The headers of each `GET /v1/models` received.
    pub fn models_requests(&self) -> Vec<HeaderMap> {
        self.models_requests.all()
    }

    /// Serves `path` with `wire`'s format, and `GET /v1/models` (the request
    /// a key check makes: free, and refused like any other with a bad key).
    pub fn router(&self, path: &str, wire: impl Wire) -> Router {
        let shared = Arc::new((self.clone(), wire));
        let models_shared = shared.clone();
        let handler = move |headers: HeaderMap, body: Bytes| {
            let shared = shared.clone();
            async move { shared.0.answer(&shared.1, headers, body).await }
        };
        let models = move |headers: HeaderMap| {
            let shared = models_shared.clone();
            async move { shared.0.models(&shared.1, headers).await }
        };
        Router::new()
            .route(path, post(handler))
            .route("/v1/models", get(models))
    }

    /// `GET /v1/models`: the key checks, then a queued fault (`Status`,
    /// `Hang`, `Delay`), then the list.
    async fn models(&self, wire: &impl Wire, headers: HeaderMap) -> Response {
        self.models_requests.push(headers.clone());
        if let Some((status, message)) = wire.refuse_headers(&headers) {
            return error_response(status, wire.error_body(status, &message), None);
        }
        if let Err(answer) = before_answer(wire, self.faults.next()).await {
            return answer;
        }
        axum::Json(wire.models()).into_response()
    }

    async fn answer(&self, wire: &impl Wire, headers: HeaderMap, body: Bytes) -> Response {
        let request: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        self.requests.push(request.clone());
        self.headers.push(headers.clone());
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let refusal = match (json && request.is_object(), request.get("stream")) {
            (false, _) => Some((400, "the body must be a JSON object".to_string())),
            (true, Some(Value::Bool(true))) => wire.refuse(&headers, &request),
            (true, _) => Some((400, "this fake only streams: send stream: true".into())),
        };
        if let Some((status, message)) = refusal {
            return error_response(status, wire.error_body(status, &message), None);
        }
        let fault = match before_answer(wire, self.faults.next()).await {
            Ok(fault) => fault,
            Err(answer) => return answer,
        };
        let mut events = wire.events(&self.next_reply(), &request);
        let half = events.len() / 2;
        let cut = match fault {
            Some(Fault::CutMidway) => {
                events.truncate(half);
                true
            }
            Some(Fault::StreamError) => {
                events.truncate(half);
                events.push(wire.error_event());
                false
            }
            Some(Fault::Malformed) => {
                events.insert(2.min(events.len()), wire.malformed_event());
                false
            }
            _ => false,
        };
        self.stream(events, cut)
    }

    fn next_reply(&self) -> Reply {
        let queued = lock(&self.replies).pop_front();
        queued.unwrap_or_else(|| {
            lock(&self.default_reply)
                .clone()
                .unwrap_or_else(|| Reply::text(DEFAULT_REPLY))
        })
    }

    /// An SSE response writing `events` one at a time with the latency set;
    /// `cut` drops the connection after them, without the stream's end.
    fn stream(&self, events: Vec<String>, cut: bool) -> Response {
        let (first_token, per_token) = *lock(&self.latency);
        let fragmented = self.fragmented.load(Ordering::SeqCst);
        let mut writes: Vec<(Duration, Bytes)> = Vec::new();
        for (i, event) in events.into_iter().enumerate() {
            let pause = if i == 0 { first_token } else { per_token };
            let bytes = Bytes::from(event);
            if fragmented && bytes.len() > 1 {
                let middle = bytes.len() / 2;
                writes.push((pause, bytes.slice(..middle)));
                writes.push((FRAGMENT_GAP, bytes.slice(middle..)));
            } else {
                writes.push((pause, bytes));
            }
        }
        let guard = OpenStream::new(self.open_streams.clone());
        let body = futures_util::stream::iter(writes)
            .then(|(pause, bytes)| async move {
                tokio::time::sleep(pause).await;
                Ok::<_, std::io::Error>(bytes)
            })
            .chain(
                futures_util::stream::iter(cut.then_some(())).then(|()| async {
                    tokio::time::sleep(CUT_PAUSE).await;
                    Err(std::io::Error::other("the fake cuts the stream"))
                }),
            )
            .map(move |write| {
                let _streaming = &guard;
                write
            });
        let headers = [
            (header::CONTENT_TYPE, "text/event-stream; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ];
        (headers, Body::from_stream(body)).into_response()
    }
}

/// The answer to a `Fault::Status`: its body, or the wire's error body when
/// the fault gave none.
/// What a queued fault does before any answer: `Err` is the answer (a
/// status; a hang never returns), `Ok` the fault left for the answer itself
/// (none after a delay).
async fn before_answer(wire: &impl Wire, fault: Option<Fault>) -> Result<Option<Fault>, Response> {
    match fault {
        Some(Fault::Status {
            status,
            body,
            retry_after,
        }) => Err(fault_response(wire, status, body, retry_after)),
        Some(Fault::Hang) => std::future::pending().await,
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            Ok(None)
        }
        other => Ok(other),
    }
}

fn fault_response(
    wire: &impl Wire,
    status: u16,
    body: String,
    retry_after: Option<String>,
) -> Response {
    let body = match body.is_empty() {
        true => wire.error_body(status, "the fake was told to fail"),
        false => body,
    };
    error_response(status, body, retry_after)
}

/// A JSON error answer; a status that is not one (a fault made up by a
/// test) is a 500, a `retry-after` that is not a header value is left out.
fn error_response(status: u16, body: String, retry_after: Option<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(value) = retry_after.and_then(|wait| wait.parse().ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Counts an answer as open until its body is dropped (sent, or the client
/// gone).
struct OpenStream(Arc<AtomicUsize>);

impl OpenStream {
    fn new(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        OpenStream(count)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
