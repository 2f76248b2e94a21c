//! Fake ElevenLabs streaming TTS: `POST /v1/text-to-speech/{voice}/stream`
//! answering raw μ-law 8 kHz (`output_format=ulaw_8000`) in small chunks,
//! per <https://elevenlabs.io/docs/api-reference/text-to-speech/stream>.
//! The base URL has no `/v1`, like
//! `https://api.elevenlabs.io`.
//!
//! `GET /v1/user` (the request a key check makes) answers the account, which
//! echoes the key back as the real one does (`xi_api_key`), or a queued
//! `Status` fault (e.g. `missing_permissions` for a key restricted to
//! text-to-speech). Both endpoints refuse a missing `xi-api-key` (401
//! `invalid_api_key`); [`FakeElevenLabs::start_with_key`] also a wrong one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::audio::mulaw;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::answer::{AudioScript, before_answer, json_response, tone};
use super::{Fault, Faults, Recorded, Running, serve};

/// What the streaming endpoint received.
#[derive(Debug, Clone, PartialEq)]
pub struct ElevenLabsRequest {
    pub voice: String,
    pub text: String,
    pub model_id: Option<String>,
    /// The `output_format` query parameter.
    pub output_format: Option<String>,
    /// `voice_settings` as sent (`Value::Null` when absent).
    pub voice_settings: Value,
    /// The `accept` header.
    pub accept: Option<String>,
}

struct Shared {
    /// The only key accepted; `None` = any non-empty key.
    key: Option<String>,
    requests: Recorded<ElevenLabsRequest>,
    faults: Faults,
    audio: AudioScript,
}

/// The fake; the server stops when it is dropped.
pub struct FakeElevenLabs {
    running: Running,
    shared: Arc<Shared>,
}

impl FakeElevenLabs {
    /// Accepts any non-empty key.
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
            requests: Recorded::default(),
            faults: Faults::default(),
            // 20 ms of 8 kHz μ-law per chunk.
            audio: AudioScript::new(160, 8),
        });
        let router = Router::new()
            .route("/v1/text-to-speech/{voice}/stream", post(stream))
            .route("/v1/user", get(user))
            .with_state(shared.clone());
        let running = serve(router, "").await;
        Self { running, shared }
    }

    /// Without `/v1`, like `https://api.elevenlabs.io`.
    pub fn base_url(&self) -> &str {
        &self.running.base_url
    }

    pub fn push_fault(&self, fault: Fault) {
        self.shared.faults.push(fault);
    }

    /// The first body chunk comes `first_byte` after the headers, each later
    /// one `per_chunk` after the previous one.
    pub fn set_latency(&self, first_byte: Duration, per_chunk: Duration) {
        self.shared.audio.set_latency(first_byte, per_chunk);
    }

    /// Answers last `ms × text characters` (default 60).
    pub fn set_ms_per_char(&self, ms: u64) {
        self.shared.audio.set_ms_per_char(ms);
    }

    pub fn requests(&self) -> Vec<ElevenLabsRequest> {
        self.shared.requests.all()
    }

    /// Body bytes handed to the connection so far, all answers.
    pub fn bytes_sent(&self) -> usize {
        self.shared.audio.bytes_sent()
    }

    /// The whole μ-law body the fake answers `text` with.
    pub fn audio_for(&self, text: &str) -> Vec<u8> {
        mulaw::encode(&tone(8000, self.shared.audio.duration_ms(text)))
    }
}

/// An ElevenLabs error body: `{"detail":{"status","message"}}`.
pub fn elevenlabs_error(status: &str, message: &str) -> String {
    json!({"detail": {"status": status, "message": message}}).to_string()
}

/// A fault's body in ElevenLabs' shape: JSON is sent as given, anything else
/// is the message.
fn status_body(status: u16, body: &str) -> String {
    if body.trim_start().starts_with('{') {
        return body.to_string();
    }
    let kind = match status {
        401 => "invalid_api_key",
        429 => "too_many_concurrent_requests",
        s if s >= 500 => "internal_server_error",
        _ => "invalid_request",
    };
    elevenlabs_error(kind, if body.is_empty() { "fake error" } else { body })
}

/// A 401 `invalid_api_key` unless `xi-api-key` is one the fake accepts.
fn refuse_key(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let key = headers.get("xi-api-key").and_then(|v| v.to_str().ok());
    let accepted = match &shared.key {
        None => key.is_some_and(|k| !k.trim().is_empty()),
        Some(expected) => key == Some(expected.as_str()),
    };
    (!accepted).then(|| json_response(401, elevenlabs_error("invalid_api_key", "Invalid API key")))
}

/// `GET /v1/user`: the account, a few of its real fields.
async fn user(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = refuse_key(&shared, &headers) {
        return refusal;
    }
    if let Some(Fault::Status { status, body, .. }) = shared.faults.next() {
        return json_response(status, status_body(status, &body));
    }
    let key = headers
        .get("xi-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let user = json!({
        "subscription": {"tier": "free", "character_count": 120, "character_limit": 10000},
        "is_new_user": false,
        "xi_api_key": key,
    });
    json_response(200, user.to_string())
}

async fn stream(
    State(shared): State<Arc<Shared>>,
    Path(voice): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refusal) = refuse_key(&shared, &headers) {
        return refusal;
    }
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return json_response(400, elevenlabs_error("invalid_request", "body is not JSON"));
    };
    let request = ElevenLabsRequest {
        voice,
        text: json["text"].as_str().unwrap_or_default().to_string(),
        model_id: json["model_id"].as_str().map(str::to_string),
        output_format: query.get("output_format").cloned(),
        voice_settings: json["voice_settings"].clone(),
        accept: headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    shared.requests.push(request.clone());
    if request.output_format.as_deref() != Some("ulaw_8000") {
        let message = "this fake only speaks output_format=ulaw_8000";
        return json_response(400, elevenlabs_error("invalid_output_format", message));
    }
    if request.text.is_empty() {
        return json_response(400, elevenlabs_error("invalid_request", "text is required"));
    }
    let fault = match before_answer(shared.faults.next(), status_body).await {
        Ok(fault) => fault,
        Err(answer) => return answer,
    };
    let ms = shared.audio.duration_ms(&request.text);
    shared
        .audio
        .answer(mulaw::encode(&tone(8000, ms)), fault, "audio/basic")
}
