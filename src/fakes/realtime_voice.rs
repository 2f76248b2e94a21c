//! Fake OpenAI Realtime speech-to-speech session (the GA interface):
//! `GET /v1/realtime?model=…` upgraded to a WebSocket on which the caller's
//! audio goes in (`input_audio_buffer.append`) and the model's spoken reply
//! comes out (`response.output_audio.delta`), per
//! <https://developers.openai.com/api/docs/guides/realtime-conversations>,
//! <https://developers.openai.com/api/docs/guides/realtime-vad>,
//! <https://developers.openai.com/api/docs/api-reference/realtime-client-events>
//! and <https://developers.openai.com/api/docs/api-reference/realtime-server-events>.
//! The base URL ends in `/v1`, like `https://api.openai.com/v1`.
//!
//! Like the service it refuses a missing `Bearer` key (401
//! `invalid_api_key`), a missing `model=` or `intent=transcription` (400),
//! the `OpenAI-Beta` header (`beta_api_shape_disabled`, close 4000), a
//! `session.update` without `session.type` (`missing_required_parameter`)
//! or with a beta key such as `input_audio_format` (`unknown_parameter`), a
//! second `response.create` while one is active
//! (`conversation_already_has_active_response`), a `response.cancel` with
//! nothing active (`response_cancel_not_active`) and a
//! `conversation.item.truncate` of audio it never sent. A session starts as
//! PCM 24 kHz with `server_vad` until updated.
//!
//! The caller is heard with [`Hearing`] (an energy gate) on the decoded
//! audio, counted in audio time: `audio_start_ms`/`audio_end_ms` are ms of
//! audio appended on the connection. With `server_vad` a silence of
//! `silence_duration_ms` ends the utterance; with `semantic_vad` the fake's
//! stand-in for the model ends it after [`SEMANTIC_SILENCE_MS`]; with
//! `turn_detection: null` the client commits. The caller's words come from
//! a queue ([`FakeRealtimeVoice::push_transcript`], default "hello") and are
//! sent as `conversation.item.input_audio_transcription.*` after
//! [`Latency::transcript`], only when the session asked for transcription
//! (`audio.input.transcription` set), as the service does.
//!
//! A reply ([`Reply`], from a queue, else made up: see
//! [`FakeRealtimeVoice::push_reply`]) is the audio of [`reply_audio`] in
//! the session's output format, sent in chunks of [`Latency::chunk_ms`]
//! every [`Latency::delta_interval`] (faster than real time), its words
//! interleaved as transcript deltas; `response.done` carries [`usage`].
//! A turn that ends while a reply is still going (`interrupt_response`
//! false) is committed without starting another reply.
//!
//! Not modelled: `idle_timeout_ms`, text-only output (`output_modalities`
//! is stored, replies are always audio), out-of-band responses (a
//! `response.create` with `conversation: "none"` is an ordinary reply).

mod g711a;
mod session;
mod session_config;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::openai_realtime_wire::{Knock, UpgradeMessages, bad_request, serve_realtime};
use super::{Faults, Recorded, Running, lock};
use crate::audio::mulaw;

pub use super::openai_realtime_wire::SEMANTIC_SILENCE_MS;

/// Audio of a reply per word when the script gives no length (ms).
pub const MS_PER_WORD: u32 = 300;
/// What a reply says when nothing else applies.
pub const DEFAULT_REPLY: &str = "Okay.";
/// What the caller is heard to say when no transcript is queued.
pub const DEFAULT_TRANSCRIPT: &str = "hello";

/// One scripted reply of the model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reply {
    /// What the spoken item says (its transcript); empty with a function
    /// call and no `audio_ms`: no spoken item, only the call.
    pub transcript: String,
    /// The spoken audio's length; `None`: [`MS_PER_WORD`] per word.
    pub audio_ms: Option<u32>,
    /// A function call after the spoken item: `(name, arguments JSON)`.
    pub function_call: Option<(String, String)>,
}

impl Reply {
    /// A spoken reply, its length from its words.
    pub fn say(transcript: &str) -> Reply {
        Reply {
            transcript: transcript.to_string(),
            ..Reply::default()
        }
    }

    /// A reply that only calls `name` with `arguments` (a JSON string).
    pub fn call(name: &str, arguments: &str) -> Reply {
        Reply {
            function_call: Some((name.to_string(), arguments.to_string())),
            ..Reply::default()
        }
    }

    /// The same, with a spoken preamble before the call.
    pub fn say_then_call(transcript: &str, name: &str, arguments: &str) -> Reply {
        Reply {
            transcript: transcript.to_string(),
            ..Reply::call(name, arguments)
        }
    }

    /// The same reply with `ms` of audio.
    pub fn with_audio_ms(self, ms: u32) -> Reply {
        Reply {
            audio_ms: Some(ms),
            ..self
        }
    }

    /// The spoken audio's length (ms).
    pub fn spoken_ms(&self) -> u32 {
        self.audio_ms
            .unwrap_or_else(|| words(&self.transcript) as u32 * MS_PER_WORD)
    }

    /// Whether the reply has a spoken (audio message) item.
    pub fn speaks(&self) -> bool {
        !self.transcript.trim().is_empty() || self.audio_ms.is_some_and(|ms| ms > 0)
    }
}

/// The fake's timing, read when each step happens (so a test may change
/// it mid-connection).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// From `response.created` to the first `response.output_audio.delta`
    /// (or to the function call of a reply without speech).
    pub first_audio: Duration,
    /// Between two audio deltas.
    pub delta_interval: Duration,
    /// Audio per delta (ms; 100 ms = 800 bytes of μ-law).
    pub chunk_ms: u32,
    /// From a commit to the caller's transcript (may outlast the reply).
    pub transcript: Duration,
    /// Before `session.updated` (events after it wait behind it, as on one
    /// socket).
    pub session_updated: Duration,
}

impl Default for Latency {
    fn default() -> Latency {
        Latency {
            first_audio: Duration::ZERO,
            delta_interval: Duration::from_millis(5),
            chunk_ms: 100,
            transcript: Duration::ZERO,
            session_updated: Duration::ZERO,
        }
    }
}

/// How the next connection goes wrong (one fault per connection).
#[derive(Debug, Clone, PartialEq)]
pub enum RealtimeVoiceFault {
    /// HTTP 401 `invalid_api_key` at the upgrade.
    RefuseKey,
    /// HTTP 429 `rate_limit_exceeded` at the upgrade.
    RateLimit,
    /// `session.update` is answered with `session.updated`, but both audio
    /// formats stay `audio/pcm` 24 kHz (and replies are sent as PCM).
    KeepPcm,
    /// Once this much audio is appended, one `error` event with `code`
    /// and `message`; the session goes on.
    ErrorEvent {
        code: String,
        message: String,
        after_audio_ms: u64,
    },
    /// Once this much audio is appended, an `error` event with `code`
    /// (e.g. `server_error`) and a close with `close_code` (e.g. 1011).
    CloseWith {
        close_code: u16,
        code: String,
        after_audio_ms: u64,
    },
    /// Once this much audio is appended, the TCP connection is dropped
    /// without a close frame.
    Drop { after_audio_ms: u64 },
    /// After `after_ms` of wall time from the upgrade: an `error`
    /// `session_expired` and a close 1001 "Your session hit the maximum
    /// duration of 60 minutes." (the service's 60-minute cap, shortened).
    SessionCap { after_ms: u64 },
}

/// A `conversation.item.truncate` the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct Truncate {
    pub item_id: String,
    pub content_index: u64,
    pub audio_end_ms: u64,
    /// Answered with `conversation.item.truncated` (else an `error`).
    pub accepted: bool,
}

/// One response the fake started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplyRecord {
    pub response_id: String,
    /// The spoken item, if the reply had one.
    pub item_id: Option<String>,
    /// What the spoken item says.
    pub transcript: String,
    /// The reply's audio in the session's output format.
    pub audio_bytes: usize,
    /// How much of it went out in deltas.
    pub audio_bytes_sent: usize,
    /// `in_progress`, `completed` or `cancelled`.
    pub status: String,
    pub cancelled: bool,
    /// `turn_detected` or `client_cancelled`.
    pub cancel_reason: Option<String>,
    /// `(name, call_id, arguments)` of the function call, once sent.
    pub function_call: Option<(String, String, String)>,
    /// `response.instructions` of the `response.create`, if any.
    pub instructions: Option<String>,
}

/// What one connection received and did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RealtimeVoiceConnection {
    pub query: HashMap<String, String>,
    /// The `model=` of the URL.
    pub model: Option<String>,
    /// An `Authorization` header was present (its value is not kept).
    pub authorization: bool,
    pub beta_header: bool,
    /// Every client event in order but the appends (counted below),
    /// parsed (`Value::String` when not JSON).
    pub events: Vec<Value>,
    /// Every `session.update` event.
    pub session_updates: Vec<Value>,
    /// The `item` of every `conversation.item.create`.
    pub items_created: Vec<Value>,
    /// Bytes appended (base64-decoded), and how many appends.
    pub audio_bytes: usize,
    pub appends: usize,
    pub truncates: Vec<Truncate>,
    /// The responses, in order; index = the reply index of [`reply_audio`].
    pub replies: Vec<ReplyRecord>,
    /// The close code the client sent, if it closed.
    pub client_close: Option<u16>,
    /// The close code the fake sent, if it closed.
    pub closed_with: Option<u16>,
}

impl RealtimeVoiceConnection {
    /// The client events of type `kind`, in order.
    pub fn events_of(&self, kind: &str) -> Vec<Value> {
        self.events
            .iter()
            .filter(|e| e["type"] == kind)
            .cloned()
            .collect()
    }
}

struct Shared {
    transcripts: Mutex<VecDeque<String>>,
    replies: Mutex<VecDeque<Reply>>,
    latency: Mutex<Latency>,
    faults: Faults<RealtimeVoiceFault>,
    connections: Recorded<RealtimeVoiceConnection>,
}

impl Shared {
    fn latency(&self) -> Latency {
        *lock(&self.latency)
    }

    fn next_transcript(&self) -> String {
        lock(&self.transcripts)
            .pop_front()
            .unwrap_or_else(|| DEFAULT_TRANSCRIPT.to_string())
    }

    fn next_reply(&self) -> Option<Reply> {
        lock(&self.replies).pop_front()
    }
}

/// The fake; the server stops when it is dropped.
pub struct FakeRealtimeVoice {
    running: Running,
    shared: Arc<Shared>,
}

impl FakeRealtimeVoice {
    /// Accepts any non-empty bearer key; default [`Latency`].
    pub async fn start() -> FakeRealtimeVoice {
        let shared = Arc::new(Shared {
            transcripts: Mutex::new(VecDeque::new()),
            replies: Mutex::new(VecDeque::new()),
            latency: Mutex::new(Latency::default()),
            faults: Faults::default(),
            connections: Recorded::default(),
        });
        let running = serve_realtime(upgrade, shared.clone()).await;
        FakeRealtimeVoice { running, shared }
    }

    /// `http://127.0.0.1:…/v1`.
    pub fn base_url(&self) -> &str {
        &self.running.base_url
    }

    /// `ws://127.0.0.1:…/v1`.
    pub fn ws_url(&self) -> String {
        self.running.base_url.replacen("http", "ws", 1)
    }

    /// The next connection misbehaves so.
    pub fn push_fault(&self, fault: RealtimeVoiceFault) {
        self.shared.faults.push(fault);
    }

    /// What the next caller utterance is heard to say (one per commit,
    /// across connections; then [`DEFAULT_TRANSCRIPT`]).
    pub fn push_transcript(&self, text: &str) {
        lock(&self.shared.transcripts).push_back(text.to_string());
    }

    /// What the next response says (one per response, across
    /// connections). With none queued, a `response.create` whose
    /// `response.instructions` quote text in double quotes says that text;
    /// else the reply is "You said: <the caller's last words>" after a
    /// caller turn or text item, or [`DEFAULT_REPLY`].
    pub fn push_reply(&self, reply: Reply) {
        lock(&self.shared.replies).push_back(reply);
    }

    pub fn set_latency(&self, latency: Latency) {
        *lock(&self.shared.latency) = latency;
    }

    pub fn latency(&self) -> Latency {
        self.shared.latency()
    }

    /// Every connection attempt that reached the upgrade, in order.
    pub fn connections(&self) -> Vec<RealtimeVoiceConnection> {
        self.shared.connections.all()
    }
}

/// Words in `text` (what the fake counts as text tokens).
pub fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// The `usage` of a `response.done`, deterministic:
/// - input audio tokens = 10 per second of caller audio appended on the
///   connection when the response started (`caller_audio_ms * 10 / 1000`,
///   rounded down; the whole conversation is billed again each reply);
/// - input text tokens = `input_words` (the fake passes the words of the
///   session's instructions, of the response's instructions and of every
///   text the client added: `input_text` items and function outputs);
/// - output audio tokens = 20 per second of reply audio sent
///   (`reply_audio_ms * 20 / 1000`, rounded down);
/// - output text tokens = `output_words` (the words of the transcript
///   sent, plus those of a function call's arguments);
/// - no cached tokens.
pub fn usage(
    caller_audio_ms: u64,
    reply_audio_ms: u64,
    input_words: usize,
    output_words: usize,
) -> Value {
    let input_audio = caller_audio_ms * 10 / 1000;
    let output_audio = reply_audio_ms * 20 / 1000;
    let input = input_audio + input_words as u64;
    let output = output_audio + output_words as u64;
    json!({
        "total_tokens": input + output,
        "input_tokens": input,
        "output_tokens": output,
        "input_token_details": {
            "text_tokens": input_words,
            "audio_tokens": input_audio,
            "image_tokens": 0,
            "cached_tokens": 0,
            "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": output_words, "audio_tokens": output_audio},
    })
}

/// The μ-law audio of the connection's reply number `reply_index` (0 = its
/// first response), `len_bytes` long: a triangle wave of amplitude 8000
/// whose period is `40 - 2 × (reply_index mod 8)` samples (200 Hz for the
/// first reply, higher after), loud enough for any energy gate. Integer
/// arithmetic only, so a test reproduces it exactly. With `audio/pcmu`
/// output the deltas of a reply concatenate to exactly this.
pub fn reply_audio(reply_index: usize, len_bytes: usize) -> Vec<u8> {
    let period = 40 - 2 * (reply_index % 8) as i32;
    let half = period / 2;
    let pcm: Vec<i16> = (0..len_bytes as i32)
        .map(|i| {
            let phase = i % period;
            // Up from -8000 to 8000 over half a period, then back down.
            let rising = if phase < half { phase } else { period - phase };
            (-8000 + 16000 * rising / half) as i16
        })
        .collect();
    mulaw::encode(&pcm)
}

/// What the upgrade says when it refuses.
const UPGRADE_MESSAGES: UpgradeMessages = UpgradeMessages {
    invalid_key: "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
    rate_limited: "Rate limit reached for requests. Please try again later.",
};

async fn upgrade(State(shared): State<Arc<Shared>>, knock: Knock) -> Response {
    use RealtimeVoiceFault::{RateLimit, RefuseKey};
    let query = &knock.query;
    let index = shared.connections.add(RealtimeVoiceConnection {
        query: query.clone(),
        model: query.get("model").cloned(),
        authorization: knock.authorization,
        beta_header: knock.beta,
        ..RealtimeVoiceConnection::default()
    });
    let fault = shared.faults.next();
    if let Some(refusal) = knock.refusal(&fault, RefuseKey, RateLimit, &UPGRADE_MESSAGES) {
        return refusal;
    }
    if query.get("intent").map(String::as_str) == Some("transcription") {
        let message = "This fake serves speech-to-speech sessions; transcription sessions are fakes::openai_realtime.";
        return bad_request("invalid_value", message);
    }
    let Some(model) = query.get("model").filter(|m| !m.is_empty()).cloned() else {
        let message = "Missing required parameter: 'model'.";
        return bad_request("missing_required_parameter", message);
    };
    let beta = knock.beta;
    knock
        .upgrade
        .on_upgrade(move |socket| session::run(socket, shared, index, model, beta, fault))
        .into_response()
}
