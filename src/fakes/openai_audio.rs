//! Fake OpenAI audio API: `POST /v1/audio/transcriptions` (multipart in,
//! `{"text":…}` out) and `POST /v1/audio/speech` (JSON in, chunked 24 kHz
//! s16le PCM out), per
//! <https://platform.openai.com/docs/api-reference/audio/createTranscription>
//! and <https://platform.openai.com/docs/api-reference/audio/createSpeech>; and `GET
//! /v1/models`, the request a key check makes. Each refuses a request without
//! a `Bearer` key (401 `invalid_api_key`).
//!
//! Speech answers stream as [`AudioScript`] says: a fixed delay per chunk
//! ([`FakeOpenAiAudio::set_latency`]) or at a multiple of real time
//! ([`FakeOpenAiAudio::set_pace`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream;
use serde_json::{Value, json};

use super::answer::{AudioScript, before_answer, cut, json_response, tone};
use super::{Fault, Faults, Recorded, Running, lock, serve};

/// The transcript when none is pushed, unless set.
pub const DEFAULT_TRANSCRIPT: &str = "hello";

/// 24 kHz s16le mono, the speech answers' format.
const PCM_BYTES_PER_MS: usize = 48;

/// What the transcription endpoint received.
#[derive(Debug, Clone, PartialEq)]
pub struct SttRequest {
    pub model: String,
    pub language: Option<String>,
    pub prompt: Option<String>,
    pub response_format: Option<String>,
    /// Of the `file` part.
    pub filename: Option<String>,
    pub content_type: Option<String>,
    /// From the WAV header (read with hound).
    pub sample_rate: u32,
    pub channels: u16,
    pub bits: u16,
    /// Sample frames in the WAV.
    pub samples: u32,
}

/// What the speech endpoint received.
#[derive(Debug, Clone, PartialEq)]
pub struct TtsRequest {
    pub model: String,
    pub voice: String,
    pub input: String,
    pub instructions: Option<String>,
    pub response_format: Option<String>,
    pub speed: Option<f64>,
    /// The `Accept` header.
    pub accept: Option<String>,
}

struct Shared {
    models_requests: Recorded<HeaderMap>,
    stt_requests: Recorded<SttRequest>,
    tts_requests: Recorded<TtsRequest>,
    stt_faults: Faults,
    tts_faults: Faults,
    transcripts: Mutex<VecDeque<String>>,
    default_transcript: Mutex<String>,
    stt_latency: Mutex<Duration>,
    stt_plain_text: Mutex<bool>,
    audio: AudioScript,
}

/// The fake; the server stops when it is dropped (with [`FakeOpenAi`]'s
/// chat, when both are).
///
/// [`FakeOpenAi`]: super::openai::FakeOpenAi
pub struct FakeOpenAiAudio {
    running: Arc<Running>,
    shared: Arc<Shared>,
}

impl FakeOpenAiAudio {
    pub async fn start() -> Self {
        let (router, on) = Self::routes(true);
        on(Arc::new(serve(router, "/v1").await))
    }

    /// The transcription and speech routes, and `GET /v1/models` when
    /// `with_models` (a server that also answers chat lists its own), and
    /// the fake that answers them once given the server they are on.
    pub(super) fn routes(with_models: bool) -> (Router, impl FnOnce(Arc<Running>) -> Self) {
        let shared = Arc::new(Shared {
            models_requests: Recorded::default(),
            stt_requests: Recorded::default(),
            tts_requests: Recorded::default(),
            stt_faults: Faults::default(),
            tts_faults: Faults::default(),
            transcripts: Mutex::default(),
            default_transcript: Mutex::new(DEFAULT_TRANSCRIPT.into()),
            stt_latency: Mutex::default(),
            stt_plain_text: Mutex::default(),
            audio: AudioScript::new(960, PCM_BYTES_PER_MS),
        });
        let mut router = Router::new()
            .route("/v1/audio/transcriptions", post(transcriptions))
            .route("/v1/audio/speech", post(speech));
        if with_models {
            router = router.route("/v1/models", get(models));
        }
        let router = router.with_state(shared.clone());
        (router, move |running| FakeOpenAiAudio { running, shared })
    }

    /// Ends in `/v1`, like `https://api.openai.com/v1`.
    pub fn base_url(&self) -> &str {
        &self.running.base_url
    }

    /// The transcript of the next transcription (then the default again).
    pub fn push_transcript(&self, text: &str) {
        lock(&self.shared.transcripts).push_back(text.to_string());
    }

    /// The transcript when none is pushed ([`DEFAULT_TRANSCRIPT`] unless set).
    pub fn set_default_transcript(&self, text: &str) {
        *lock(&self.shared.default_transcript) = text.to_string();
    }

    /// Answer transcriptions as `text/plain` (as some compatible servers do).
    pub fn set_stt_text_plain(&self, plain: bool) {
        *lock(&self.shared.stt_plain_text) = plain;
    }

    pub fn set_stt_latency(&self, latency: Duration) {
        *lock(&self.shared.stt_latency) = latency;
    }

    pub fn push_stt_fault(&self, fault: Fault) {
        self.shared.stt_faults.push(fault);
    }

    pub fn push_tts_fault(&self, fault: Fault) {
        self.shared.tts_faults.push(fault);
    }

    /// Speech answers: the first body chunk comes `first_byte` after the
    /// headers, each later one `per_chunk` after the previous one.
    pub fn set_latency(&self, first_byte: Duration, per_chunk: Duration) {
        self.shared.audio.set_latency(first_byte, per_chunk);
    }

    /// Speech answers: the first body chunk comes `first_byte` after the
    /// headers, the later ones as fast as a server synthesizing `speed` ×
    /// faster than real time sends them (replaces `set_latency`'s `per_chunk`).
    pub fn set_pace(&self, first_byte: Duration, speed: f64) {
        self.shared.audio.set_pace(first_byte, speed);
    }

    /// Speech answers last `ms × input characters` (default 60).
    pub fn set_ms_per_char(&self, ms: u64) {
        self.shared.audio.set_ms_per_char(ms);
    }

    /// Size of the body chunks (default 960 bytes = 20 ms).
    pub fn set_chunk_bytes(&self, bytes: usize) {
        self.shared.audio.set_chunk_bytes(bytes);
    }

    /// Size of the body chunks in audio: `ms` of it each.
    pub fn set_chunk_ms(&self, ms: u64) {
        self.shared.audio.set_chunk_ms(ms);
    }

    /// The headers of each `GET /v1/models` received.
    pub fn models_requests(&self) -> Vec<HeaderMap> {
        self.shared.models_requests.all()
    }

    pub fn stt_requests(&self) -> Vec<SttRequest> {
        self.shared.stt_requests.all()
    }

    pub fn tts_requests(&self) -> Vec<TtsRequest> {
        self.shared.tts_requests.all()
    }

    /// Speech body bytes handed to the connection so far, all answers.
    pub fn tts_bytes_sent(&self) -> usize {
        self.shared.audio.bytes_sent()
    }

    /// The whole PCM body the speech endpoint answers `input` with.
    pub fn pcm_for(&self, input: &str) -> Vec<u8> {
        let ms = self.shared.audio.duration_ms(input);
        tone(24_000, ms)
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect()
    }
}

/// An OpenAI error body: `{"error":{"message","type","param","code"}}`.
pub fn openai_error(message: &str, kind: &str, code: Option<&str>) -> String {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}}).to_string()
}

/// A fault's body in OpenAI's shape: JSON is sent as given, anything else
/// is the message of the usual error for that status.
fn openai_status_body(status: u16, body: &str) -> String {
    if body.trim_start().starts_with('{') {
        return body.to_string();
    }
    let (kind, code) = match status {
        401 => ("invalid_request_error", Some("invalid_api_key")),
        429 => ("requests", Some("rate_limit_exceeded")),
        503 => ("service_unavailable_error", Some("server_is_overloaded")),
        s if s >= 500 => ("server_error", None),
        _ => ("invalid_request_error", None),
    };
    let message = if body.is_empty() { "fake error" } else { body };
    openai_error(message, kind, code)
}

fn bad_request(message: &str) -> Response {
    json_response(400, openai_error(message, "invalid_request_error", None))
}

/// The 401 answer when the request has no `Bearer` key.
fn unauthorized(headers: &HeaderMap) -> Option<Response> {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if key.trim().is_empty() {
        let body = openai_error(
            "Incorrect API key provided",
            "invalid_request_error",
            Some("invalid_api_key"),
        );
        return Some(json_response(401, body));
    }
    None
}

/// `GET /v1/models`: the audio models, in OpenAI's list shape.
async fn models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    shared.models_requests.push(headers.clone());
    if let Some(refusal) = unauthorized(&headers) {
        return refusal;
    }
    let model = |id: &str| json!({"id": id, "object": "model", "created": 1686935002, "owned_by": "system"});
    let list = json!({"object": "list", "data": [model("gpt-4o-mini-transcribe"), model("gpt-4o-mini-tts")]});
    json_response(200, list.to_string())
}

async fn transcriptions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    if let Some(denied) = unauthorized(&headers) {
        return denied;
    }
    let Ok(multipart) = multipart else {
        return bad_request("expected multipart/form-data");
    };
    let request = match read_stt_request(multipart).await {
        Ok(request) => request,
        Err(message) => return bad_request(&message),
    };
    shared.stt_requests.push(request.clone());
    let fault = match before_answer(shared.stt_faults.next(), openai_status_body).await {
        Ok(fault) => fault,
        Err(answer) => return answer,
    };
    let latency = *lock(&shared.stt_latency);
    tokio::time::sleep(latency).await;
    match fault {
        Some(Fault::Malformed) => return json_response(200, "{\"tex".into()),
        Some(Fault::CutMidway | Fault::StreamError) => {
            // The connection drops before the status line goes out: hyper
            // closes it when the body fails on its first poll.
            return Body::from_stream(stream::iter([Err::<Bytes, _>(cut())])).into_response();
        }
        _ => {}
    }
    let queued = lock(&shared.transcripts).pop_front();
    let text = queued.unwrap_or_else(|| lock(&shared.default_transcript).clone());
    if *lock(&shared.stt_plain_text) || request.response_format.as_deref() == Some("text") {
        return (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{text}\n"),
        )
            .into_response();
    }
    let seconds = request.samples.div_ceil(request.sample_rate.max(1));
    let usage = json!({"type": "duration", "seconds": seconds});
    json_response(200, json!({"text": text, "usage": usage}).to_string())
}

/// Every field of the form; the `file` part must be a WAV hound can read.
async fn read_stt_request(mut form: Multipart) -> Result<SttRequest, String> {
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut file = None;
    while let Some(field) = form.next_field().await.map_err(|e| e.to_string())? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            let filename = field.file_name().map(str::to_string);
            let content_type = field.content_type().map(str::to_string);
            let bytes = field.bytes().await.map_err(|e| e.to_string())?;
            file = Some((filename, content_type, bytes));
        } else {
            fields.push((name, field.text().await.map_err(|e| e.to_string())?));
        }
    }
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let (filename, content_type, wav) = file.ok_or("missing file")?;
    let reader = hound::WavReader::new(&wav[..]).map_err(|e| format!("not a WAV: {e}"))?;
    let spec = reader.spec();
    Ok(SttRequest {
        model: field("model").ok_or("missing model")?,
        language: field("language"),
        prompt: field("prompt"),
        response_format: field("response_format"),
        filename,
        content_type,
        sample_rate: spec.sample_rate,
        channels: spec.channels,
        bits: spec.bits_per_sample,
        samples: reader.duration(),
    })
}

async fn speech(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(denied) = unauthorized(&headers) {
        return denied;
    }
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("body is not JSON");
    };
    let text = |key: &str| json.get(key).and_then(Value::as_str).map(str::to_string);
    let (Some(model), Some(voice), Some(input)) = (text("model"), text("voice"), text("input"))
    else {
        return bad_request("model, voice and input are required");
    };
    let request = TtsRequest {
        model,
        voice,
        input,
        instructions: text("instructions"),
        response_format: text("response_format"),
        speed: json.get("speed").and_then(Value::as_f64),
        accept: headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    shared.tts_requests.push(request.clone());
    if request.input.chars().count() > 4096 {
        return bad_request("input: string too long, expected at most 4096 characters");
    }
    if request.response_format.as_deref() != Some("pcm") {
        return bad_request("this fake only speaks response_format pcm");
    }
    let fault = match before_answer(shared.tts_faults.next(), openai_status_body).await {
        Ok(fault) => fault,
        Err(answer) => return answer,
    };
    let ms = shared.audio.duration_ms(&request.input);
    let pcm: Vec<u8> = tone(24_000, ms)
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    shared.audio.answer(pcm, fault, "application/octet-stream")
}
