//! The dashboard's view of the calls in progress: their changes as
//! server-sent events, listening in over a WebSocket, and stepping in
//! (hang up, transfer, say something).
//!
//! SSE for the events and a WebSocket only for audio, as browsers need:
//! an `EventSource` reconnects by itself and passes through proxies that
//! buffer nothing of `text/event-stream`
//! (<https://github.com/cloudflare/cloudflared/issues/1095>).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use axum::extract::{Extension, Path, State, WebSocketUpgrade};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;
use tracing::warn;

use super::auth::Operator;
use super::error::ApiError;
use crate::call::desk::{DeskHandle, Heard, Order, OrderRefused, Ordered, Tapped};
use crate::call::registry::{Registry, Seen};
use crate::http::AppState;
use crate::metrics::{WatchKind, Watching};

/// Changes closer together than this go out as one event per call.
const COALESCE: Duration = Duration::from_millis(100);

/// A comment this often keeps proxies from closing a quiet stream
/// (Cloudflare gives up after 100 s without a byte).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The longest text an operator may have the agent say.
const MAX_SAY_CHARS: usize = 1000;

/// `GET /api/events`: the calls in progress, then their changes.
///
/// Events: `calls` (every call, first), `call` (one call appeared or
/// changed), `ended` (`{"call_sid"}`: it left).
#[utoipa::path(get, path = "/api/events", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, content_type = "text/event-stream", description = "`calls`, then `call` and `ended` events")))]
pub async fn events(State(state): State<Arc<AppState>>) -> Response {
    let registry = state.switchboard.registry().clone();
    let changes = registry.changes();
    let stream = futures_util::stream::unfold(
        Watch {
            registry,
            changes,
            seen: Seen::default(),
            queue: VecDeque::new(),
            started: false,
            _watching: Watching::new(WatchKind::Sse),
        },
        |mut watch| async move {
            let event = watch.next().await;
            Some((Ok::<_, Infallible>(event), watch))
        },
    );
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    // Proxies (nginx, cloudflared) must pass each event on at once.
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// One event stream's view: what it last showed of each call.
struct Watch {
    registry: Registry,
    changes: watch::Receiver<u64>,
    /// The version of each call shown: only what changed is sent again.
    seen: Seen,
    queue: VecDeque<Event>,
    started: bool,
    /// Counts this stream among the dashboard's sessions while it lives.
    _watching: Watching,
}

impl Watch {
    async fn next(&mut self) -> Event {
        if !self.started {
            self.started = true;
            self.changes.borrow_and_update();
            let (calls, _) = self.registry.changed_since(&mut self.seen);
            return json_event("calls", &calls);
        }
        loop {
            if let Some(event) = self.queue.pop_front() {
                return event;
            }
            if self.changes.changed().await.is_err() {
                // The registry is gone: the server is stopping.
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(COALESCE).await;
            self.changes.borrow_and_update();
            let (changed, gone) = self.registry.changed_since(&mut self.seen);
            self.queue
                .extend(changed.iter().map(|call| json_event("call", call)));
            self.queue.extend(
                gone.into_iter()
                    .map(|sid| json_event("ended", &json!({ "call_sid": sid }))),
            );
        }
    }
}

fn json_event(name: &str, data: &impl Serialize) -> Event {
    Event::default()
        .event(name)
        .json_data(data)
        .unwrap_or_else(|_| Event::default().comment("unserializable"))
}

/// The desk of a call live on this server, or 404.
fn desk(state: &AppState, sid: &str) -> Result<DeskHandle, ApiError> {
    state.switchboard.registry().desk(sid).ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            "no such call in progress on this server".into(),
        )
    })
}

/// `GET /api/calls/{sid}/listen`: the call's audio over a WebSocket.
///
/// Binary messages: a byte for the side (0 the caller, 1 the agent), then
/// 8 kHz μ-law. Text messages: `{"event":"clear"}` (the agent's queued
/// audio was dropped), `{"event":"ended"}` (then the socket closes).
/// Neither party notices; the call's record says who listened.
#[utoipa::path(get, path = "/api/calls/{sid}/listen", security(("bearer" = []), ("cookie" = [])),
    params(("sid" = String, Path, description = "Call SID")),
    responses((status = 101, description = "WebSocket: the call's audio"), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn listen(
    State(state): State<Arc<AppState>>,
    Extension(operator): Extension<Operator>,
    Path(sid): Path<String>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let desk = desk(&state, &sid)?;
    let ws = ws.map_err(|e| ApiError::bad(e.body_text()))?;
    // Recorded (and logged) by the call; refused only if the call has just
    // ended, and then the socket says so at once.
    let _ = desk.order(Ordered {
        order: Order::Listening,
        by: operator.to_string(),
    });
    let listener = desk.listen();
    // The relay must not hold the call's senders: the listener hears the
    // end when the call's own go.
    drop(desk);
    Ok(ws
        .on_failed_upgrade(|e| warn!(error = %e, "listen upgrade failed"))
        .on_upgrade(move |socket| relay(socket, listener)))
}

/// Sends the listener what the call hears and says until either ends.
async fn relay(mut socket: WebSocket, mut listener: crate::call::desk::Listener) {
    let _watching = Watching::new(WatchKind::Listen);
    loop {
        let message = tokio::select! {
            heard = listener.next() => match heard {
                Heard::Frame(Tapped::Caller(audio)) => binary(0, &audio),
                Heard::Frame(Tapped::Agent(audio)) => binary(1, &audio),
                Heard::Frame(Tapped::Clear) => text(r#"{"event":"clear"}"#),
                Heard::Lost(_) => continue,
                Heard::Ended => {
                    let _ = socket.send(text(r#"{"event":"ended"}"#)).await;
                    let _ = socket.send(Message::Close(Some(CloseFrame { code: 1000, reason: Utf8Bytes::from_static("the call ended") }))).await;
                    return;
                }
            },
            incoming = socket.recv() => match incoming {
                // The page sends nothing; it closing ends the relay.
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => continue,
            },
        };
        if socket.send(message).await.is_err() {
            return;
        }
    }
}

/// The side's byte, then its audio: one copy.
fn binary(side: u8, audio: &[u8]) -> Message {
    Message::Binary([&[side][..], audio].concat().into())
}

fn text(s: &'static str) -> Message {
    Message::Text(Utf8Bytes::from_static(s))
}

/// Body of `POST /api/calls/{sid}/say`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SayRequest {
    /// What the agent says, in its voice, at the next pause.
    pub text: String,
}

/// The answer to an order: taken (it happens in the call, which records
/// how it went).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderTaken {
    pub ok: bool,
}

fn give(
    state: &AppState,
    sid: &str,
    operator: &Operator,
    order: Order,
) -> Result<Response, ApiError> {
    let desk = desk(state, sid)?;
    desk.order(Ordered {
        order,
        by: operator.to_string(),
    })
    .map_err(|e| match e {
        OrderRefused::Ended => ApiError(StatusCode::NOT_FOUND, e.to_string()),
        OrderRefused::Busy => ApiError(StatusCode::TOO_MANY_REQUESTS, e.to_string()),
    })?;
    Ok((StatusCode::ACCEPTED, Json(OrderTaken { ok: true })).into_response())
}

/// `POST /api/calls/{sid}/hangup`: ends the call now.
#[utoipa::path(post, path = "/api/calls/{sid}/hangup", security(("bearer" = []), ("cookie" = [])),
    params(("sid" = String, Path, description = "Call SID")),
    responses((status = 202, body = OrderTaken), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn hang_up(
    State(state): State<Arc<AppState>>,
    Extension(operator): Extension<Operator>,
    Path(sid): Path<String>,
) -> Result<Response, ApiError> {
    give(&state, &sid, &operator, Order::HangUp)
}

/// `POST /api/calls/{sid}/transfer`: transfers the caller to its agent's
/// `[agent] transfer_number`.
#[utoipa::path(post, path = "/api/calls/{sid}/transfer", security(("bearer" = []), ("cookie" = [])),
    params(("sid" = String, Path, description = "Call SID")),
    responses((status = 202, body = OrderTaken), (status = 404, body = crate::http::error::ErrorBody),
        (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn transfer(
    State(state): State<Arc<AppState>>,
    Extension(operator): Extension<Operator>,
    Path(sid): Path<String>,
) -> Result<Response, ApiError> {
    let no_number = || {
        ApiError(
            StatusCode::CONFLICT,
            "no transfer number for the call's agent: set [agent] transfer_number in its file or in config/pronto.toml".into(),
        )
    };
    let to = match desk(&state, &sid) {
        // The number of the agent the call holds, whatever a reload did since.
        Ok(desk) => desk.transfer_to().ok_or_else(no_number)?.to_string(),
        // No agent has a number: that is the answer, whichever the call.
        Err(_)
            if !state
                .switchboard
                .roster()
                .lineup()
                .agents
                .values()
                .any(|a| a.transfer_number().is_some()) =>
        {
            return Err(no_number());
        }
        Err(not_here) => return Err(not_here),
    };
    give(&state, &sid, &operator, Order::Transfer(to))
}

/// `POST /api/calls/{sid}/say`: the agent says this at the next pause.
#[utoipa::path(post, path = "/api/calls/{sid}/say", security(("bearer" = []), ("cookie" = [])),
    params(("sid" = String, Path, description = "Call SID")), request_body = SayRequest,
    responses((status = 202, body = OrderTaken), (status = 400, body = crate::http::error::ErrorBody),
        (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn say(
    State(state): State<Arc<AppState>>,
    Extension(operator): Extension<Operator>,
    Path(sid): Path<String>,
    body: Result<Json<SayRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body
        .map_err(|e| ApiError::bad(format!("expected {{\"text\": \"...\"}}: {}", e.body_text())))?;
    let text = body.text.trim();
    if text.is_empty() {
        return Err(ApiError::bad("text is empty"));
    }
    if text.chars().count() > MAX_SAY_CHARS {
        return Err(ApiError::bad(format!(
            "text is longer than {MAX_SAY_CHARS} characters"
        )));
    }
    give(&state, &sid, &operator, Order::Say(text.to_string()))
}
