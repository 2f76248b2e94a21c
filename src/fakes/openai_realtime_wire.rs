//! What the two fakes of OpenAI's Realtime WebSocket have in common, the
//! transcription session ([`super::openai_realtime`]) and the
//! speech-to-speech session ([`super::realtime_voice`]): one endpoint, one
//! wire. The endpoint and its upgrade request ([`Knock`]: the query, the
//! `Bearer` key, the beta header, the faults that refuse the upgrade, the
//! error body), the numbered server events and the `error` event
//! ([`Outbox`]), the first checks of a GA `session.update`, the commit
//! that is too small, the turn detection's end silence, and how a session
//! ends ([`End`]). What each fake says in its errors stays with it.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Query};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::answer::json_response;
use super::streaming::Writer;
use super::{Running, serve};

/// The silence after which the fakes' `semantic_vad` ends a turn (the real
/// one decides from the words, waiting at most 2/4/8 s by eagerness).
pub const SEMANTIC_SILENCE_MS: u64 = 600;
/// The least audio a commit takes (ms).
pub(super) const MIN_COMMIT_MS: u64 = 100;

/// Serves a fake's `upgrade` handler at `/v1/realtime`, with `state`; the
/// base URL ends in `/v1`, like `https://api.openai.com/v1`.
pub(super) async fn serve_realtime<H, T, S>(upgrade: H, state: S) -> Running
where
    H: Handler<T, S>,
    T: 'static,
    S: Clone + Send + Sync + 'static,
{
    let router = Router::new()
        .route("/v1/realtime", get(upgrade))
        .with_state(state);
    serve(router, "/v1").await
}

/// An OpenAI error body.
fn error_body(kind: &str, code: &str, message: &str) -> String {
    json!({"error": {"message": message, "type": kind, "code": code, "param": null}}).to_string()
}

/// HTTP 400 `invalid_request_error` with `code`, at the upgrade.
pub(super) fn bad_request(code: &str, message: &str) -> Response {
    json_response(400, error_body("invalid_request_error", code, message))
}

/// What a fake says when its upgrade refuses a key or is rate limited.
pub(super) struct UpgradeMessages {
    pub invalid_key: &'static str,
    pub rate_limited: &'static str,
}

/// What an upgrade request to `/v1/realtime` brings: its query, what the
/// service reads in its headers (the key is looked at, never kept), and the
/// upgrade itself. Extracted as the handler's query, headers and upgrade
/// were, in that order.
pub(super) struct Knock {
    pub query: HashMap<String, String>,
    /// An `Authorization` header was sent (what the speech-to-speech fake
    /// records).
    pub authorization: bool,
    /// An `Authorization` header whose value is text was sent (what the
    /// transcription fake records).
    pub text_key: bool,
    /// A non-empty `Bearer` key was sent.
    bearer: bool,
    /// An `OpenAI-Beta` header was sent.
    pub beta: bool,
    pub upgrade: WebSocketUpgrade,
}

impl<S: Send + Sync> FromRequestParts<S> for Knock {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Knock, Response> {
        let Query(query) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let headers = &parts.headers;
        let key = headers.get("authorization").and_then(|v| v.to_str().ok());
        let authorization = headers.contains_key("authorization");
        let text_key = key.is_some();
        let bearer = key
            .and_then(|k| k.strip_prefix("Bearer "))
            .is_some_and(|k| !k.trim().is_empty());
        let beta = headers.contains_key("openai-beta");
        let upgrade = WebSocketUpgrade::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Knock {
            query,
            authorization,
            text_key,
            bearer,
            beta,
            upgrade,
        })
    }
}

impl Knock {
    /// The upgrade's first refusal, if any, as the service makes it:
    /// without a non-empty `Bearer` key, or when the connection's `fault`
    /// is `refuse_key`, 401 `invalid_api_key`; when it is `rate_limit`, 429
    /// `rate_limit_exceeded`.
    pub(super) fn refusal<F: PartialEq>(
        &self,
        fault: &Option<F>,
        refuse_key: F,
        rate_limit: F,
        messages: &UpgradeMessages,
    ) -> Option<Response> {
        if !self.bearer || fault.as_ref() == Some(&refuse_key) {
            let body = error_body(
                "invalid_request_error",
                "invalid_api_key",
                messages.invalid_key,
            );
            return Some(json_response(401, body));
        }
        if fault.as_ref() == Some(&rate_limit) {
            let body = error_body("requests", "rate_limit_exceeded", messages.rate_limited);
            return Some(json_response(429, body));
        }
        None
    }
}

/// Why a client event is refused: the `error` event's fields.
#[derive(Debug, PartialEq)]
pub(super) struct Refusal {
    pub code: &'static str,
    pub message: String,
    pub param: Option<String>,
}

pub(super) fn refusal(code: &'static str, message: String, param: &str) -> Refusal {
    Refusal {
        code,
        message,
        param: Some(param.to_string()),
    }
}

/// `unknown_parameter` for `param`.
pub(super) fn unknown(param: &str) -> Refusal {
    refusal(
        "unknown_parameter",
        format!("Unknown parameter: '{param}'."),
        param,
    )
}

/// `value` as an object, else `invalid_type` for `param`.
pub(super) fn object<'a>(value: &'a Value, param: &str) -> Result<&'a Map<String, Value>, Refusal> {
    value.as_object().ok_or_else(|| {
        refusal(
            "invalid_type",
            format!("Invalid type for '{param}': expected an object."),
            param,
        )
    })
}

/// The first checks of a GA `session.update` (`update` is its `session`):
/// an object, without a key of the beta shape (`beta_keys`), whose `type`
/// is `session_type`; another type is refused with `Invalid value: '…'.`
/// and `other_type`.
pub(super) fn update_fields<'a>(
    update: &'a Value,
    beta_keys: &[&str],
    session_type: &str,
    other_type: &str,
) -> Result<&'a Map<String, Value>, Refusal> {
    let Some(update) = update.as_object() else {
        return Err(refusal(
            "missing_required_parameter",
            "Missing required parameter: 'session'.".into(),
            "session",
        ));
    };
    if let Some(key) = beta_keys.iter().find(|k| update.contains_key(**k)) {
        return Err(unknown(&format!("session.{key}")));
    }
    match update.get("type").and_then(Value::as_str) {
        None => Err(refusal(
            "missing_required_parameter",
            "Missing required parameter: 'session.type'.".into(),
            "session.type",
        )),
        Some(kind) if kind == session_type => Ok(update),
        Some(other) => Err(refusal(
            "invalid_value",
            format!("Invalid value: '{other}'. {other_type}"),
            "session.type",
        )),
    }
}

/// The silence that ends a turn under the session's detection
/// (`server_vad` without `silence_duration_ms`: `server_vad_ms`); `None`:
/// the client commits.
pub(super) fn end_silence(session: &Value, server_vad_ms: u64) -> Option<u64> {
    let detection = &session["audio"]["input"]["turn_detection"];
    match detection["type"].as_str() {
        Some("server_vad") => Some(
            detection["silence_duration_ms"]
                .as_u64()
                .unwrap_or(server_vad_ms),
        ),
        Some("semantic_vad") => Some(SEMANTIC_SILENCE_MS),
        _ => None,
    }
}

/// The `type` of an `error` event, from its code.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum ErrorTypes {
    /// Always `invalid_request_error`.
    InvalidRequest,
    /// `server_error` for the code `server_error`, else
    /// `invalid_request_error`.
    ServerErrorByCode,
}

/// OpenAI's server events, numbered, through the session's [`Writer`].
pub(super) struct Outbox {
    writer: Writer,
    events: u64,
    error_types: ErrorTypes,
}

impl Outbox {
    pub(super) fn new(writer: Writer, error_types: ErrorTypes) -> Outbox {
        Outbox {
            writer,
            events: 0,
            error_types,
        }
    }

    pub(super) fn send(&mut self, event: Value) {
        self.later(event, Duration::ZERO);
    }

    /// Sends a server event (its `event_id` added), not before `delay`
    /// (what is sent after it waits behind it).
    pub(super) fn later(&mut self, mut event: Value, delay: Duration) {
        self.events += 1;
        event["event_id"] = json!(format!("event_{}", self.events));
        self.writer.later(&event, delay);
    }

    /// An `error` event; `client_event`'s `event_id` is echoed.
    pub(super) fn error(
        &mut self,
        code: &str,
        message: &str,
        param: Option<&str>,
        client_event: &Value,
    ) {
        let kind = match self.error_types {
            ErrorTypes::ServerErrorByCode if code == "server_error" => "server_error",
            _ => "invalid_request_error",
        };
        self.send(json!({
            "type": "error",
            "error": {
                "type": kind,
                "code": code,
                "message": message,
                "param": param,
                "event_id": client_event.get("event_id").cloned().unwrap_or(Value::Null),
            },
        }));
    }

    /// The `error` event of `refusal`, for `client_event`.
    pub(super) fn refuse(&mut self, refusal: &Refusal, client_event: &Value) {
        self.error(
            refusal.code,
            &refusal.message,
            refusal.param.as_deref(),
            client_event,
        );
    }

    /// The audio of an `input_audio_buffer.append`, base64-decoded; else
    /// an `invalid_value` error.
    pub(super) fn appended_audio(&mut self, event: &Value) -> Option<Vec<u8>> {
        let audio = event["audio"]
            .as_str()
            .and_then(|a| STANDARD.decode(a).ok());
        if audio.is_none() {
            let message = "Invalid 'audio': expected base64-encoded audio.";
            self.error("invalid_value", message, Some("audio"), event);
        }
        audio
    }

    /// `input_audio_buffer_commit_empty`: a commit of `buffered_ms` (less
    /// than [`MIN_COMMIT_MS`]).
    pub(super) fn commit_too_small(&mut self, buffered_ms: f64, client_event: &Value) {
        let message = format!(
            "Error committing input audio buffer: buffer too small. Expected at least {MIN_COMMIT_MS}ms of audio, but buffer only has {buffered_ms:.2}ms of audio."
        );
        self.error(
            "input_audio_buffer_commit_empty",
            &message,
            None,
            client_event,
        );
    }

    /// What is queued, then a close frame; waits for it to go.
    async fn close(self, close_code: u16, reason: &str) {
        // A close reason has at most 123 bytes.
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        self.writer.close(close_code, &reason[..end]).await;
    }

    /// Ends the session so; `closed` records the close code the fake sends
    /// (before it goes).
    pub(super) async fn end(mut self, end: End, closed: impl FnOnce(u16)) {
        match end {
            End::Close {
                close_code,
                code,
                message,
                reason,
            } => {
                closed(close_code);
                self.error(&code, &message, None, &Value::Null);
                self.close(close_code, &reason).await;
            }
            End::Drop => self.writer.abort(),
            End::ClientGone => {
                // Sends what is queued (a client that closed gets nothing).
                let _ = tokio::time::timeout(Duration::from_secs(5), self.writer.flushed()).await;
            }
        }
    }
}

/// How a session ends.
pub(super) enum End {
    /// An `error` event with `code` and `message`, then a close frame.
    Close {
        close_code: u16,
        code: String,
        message: String,
        reason: String,
    },
    /// The TCP connection is dropped without a close frame.
    Drop,
    /// The client is gone (or closed): what is queued still goes.
    ClientGone,
}

impl End {
    /// An `OpenAI-Beta` header: `beta_api_shape_disabled` and a close 4000
    /// with `reason`.
    pub(super) fn beta_refused(message: &str, reason: &str) -> End {
        End::Close {
            close_code: 4000,
            code: "beta_api_shape_disabled".into(),
            message: message.into(),
            reason: reason.into(),
        }
    }
}
