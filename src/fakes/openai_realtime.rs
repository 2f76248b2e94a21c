//! Fake OpenAI Realtime transcription session (the GA shapes):
//! `GET /v1/realtime?intent=transcription` upgraded to a WebSocket that
//! takes `session.update` and `input_audio_buffer.append` (base64 μ-law)
//! and answers with the voice-detection and transcription events, per
//! <https://developers.openai.com/api/docs/guides/realtime-transcription>
//! and <https://developers.openai.com/api/docs/guides/realtime-vad>. The
//! base URL ends in `/v1`, like `https://api.openai.com/v1`.
//!
//! Like the service it refuses a missing `Bearer` key (401), a `model=` in
//! the URL or a missing `intent=transcription` (400), the `OpenAI-Beta`
//! header (`beta_api_shape_disabled`, close 4000), a `session.update`
//! without `session.type` (`missing_required_parameter`) or with a beta key
//! such as `input_audio_format` (`unknown_parameter`), and a commit of less
//! than 100 ms (`input_audio_buffer_commit_empty`). A session starts as PCM
//! 24 kHz until updated.
//!
//! It hears with [`Hearing`] on the decoded μ-law: with `server_vad` a
//! silence of `silence_duration_ms` stops speech and commits the turn; with
//! `semantic_vad` the fake's stand-in for the model ends it after
//! [`SEMANTIC_SILENCE_MS`]; with `turn_detection: null` nothing happens
//! until the client commits. Each committed turn's text comes as one
//! `delta` per word, then `completed`, after the final delay.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use serde_json::{Value, json};

use super::hearing::{Heard, Hearing, Script};
use super::openai_realtime_wire::{
    End, ErrorTypes, Knock, MIN_COMMIT_MS, Outbox, UpgradeMessages, bad_request, object,
    serve_realtime, update_fields,
};
use super::streaming::Writer;
use super::{Faults, Recorded, Running, lock};

pub use super::openai_realtime_wire::SEMANTIC_SILENCE_MS;

/// `server_vad`'s silence when the session gives none (ms).
const SERVER_VAD_MS: u64 = 500;
/// What the upgrade says when it refuses.
const UPGRADE_MESSAGES: UpgradeMessages = UpgradeMessages {
    invalid_key: "Incorrect API key provided.",
    rate_limited: "Rate limit reached for requests.",
};

/// Keys of the beta session shape, refused by the GA endpoint.
const BETA_KEYS: [&str; 6] = [
    "input_audio_format",
    "input_audio_transcription",
    "turn_detection",
    "modalities",
    "input_audio_noise_reduction",
    "voice",
];

/// How the next connection goes wrong (one fault per connection).
#[derive(Debug, Clone, PartialEq)]
pub enum OpenAiRealtimeFault {
    /// HTTP 401 `invalid_api_key` at the upgrade.
    RefuseKey,
    /// HTTP 429 at the upgrade.
    RateLimit,
    /// After this much audio, an `error` event with `code` (e.g.
    /// `server_error`) and a close with `close_code` (e.g. 1011).
    CloseWith {
        close_code: u16,
        code: String,
        after_audio_ms: u64,
    },
    /// After this much audio, the TCP connection is dropped without a
    /// close frame.
    Drop { after_audio_ms: u64 },
    /// `session.update` is answered, but the session keeps PCM 24 kHz.
    KeepPcm,
}

/// What one connection received.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenAiRealtimeConnection {
    pub query: HashMap<String, String>,
    /// An `Authorization` header was present (its value is not kept).
    pub authorization: bool,
    pub beta_header: bool,
    /// Every client event but the appends (whose audio is below), parsed
    /// (`Value::String` when not JSON).
    pub events: Vec<Value>,
    /// The audio appended, decoded, in order.
    pub audio: Vec<u8>,
    /// The μ-law bytes of each append.
    pub append_sizes: Vec<usize>,
    /// The close code the client sent, if it closed.
    pub client_close: Option<u16>,
    /// The close code the fake sent, if it closed.
    pub closed_with: Option<u16>,
}

struct Shared {
    script: Script,
    faults: Faults<OpenAiRealtimeFault>,
    connections: Recorded<OpenAiRealtimeConnection>,
    final_delay: Mutex<Duration>,
}

/// The fake; the server stops when it is dropped.
pub struct FakeOpenAiRealtime {
    running: Running,
    shared: Arc<Shared>,
}

impl FakeOpenAiRealtime {
    /// Accepts any non-empty bearer key; hears `["hello"]`.
    pub async fn start() -> FakeOpenAiRealtime {
        let shared = Arc::new(Shared {
            script: Script::default(),
            faults: Faults::default(),
            connections: Recorded::default(),
            final_delay: Mutex::new(Duration::ZERO),
        });
        let running = serve_realtime(upgrade, shared.clone()).await;
        FakeOpenAiRealtime { running, shared }
    }

    /// `http://127.0.0.1:…/v1`.
    pub fn base_url(&self) -> &str {
        &self.running.base_url
    }

    pub fn push_fault(&self, fault: OpenAiRealtimeFault) {
        self.shared.faults.push(fault);
    }

    /// The texts heard, one per turn (the last repeats).
    pub fn set_script(&self, texts: &[&str]) {
        self.shared.script.set(texts);
    }

    /// Wall-clock delay between a commit and its transcript's first delta
    /// (later events wait behind it, as on one socket).
    pub fn set_final_delay(&self, delay: Duration) {
        *lock(&self.shared.final_delay) = delay;
    }

    /// Every connection attempt that reached the upgrade, in order.
    pub fn connections(&self) -> Vec<OpenAiRealtimeConnection> {
        self.shared.connections.all()
    }
}

async fn upgrade(State(shared): State<Arc<Shared>>, knock: Knock) -> Response {
    use OpenAiRealtimeFault::{RateLimit, RefuseKey};
    let index = shared.connections.add(OpenAiRealtimeConnection {
        query: knock.query.clone(),
        authorization: knock.text_key,
        beta_header: knock.beta,
        ..OpenAiRealtimeConnection::default()
    });
    let fault = shared.faults.next();
    if let Some(refusal) = knock.refusal(&fault, RefuseKey, RateLimit, &UPGRADE_MESSAGES) {
        return refusal;
    }
    let query = &knock.query;
    if query.get("intent").map(String::as_str) != Some("transcription")
        || query.contains_key("model")
    {
        let message = "This fake serves only ?intent=transcription, without model.";
        return bad_request("invalid_value", message);
    }
    let beta = knock.beta;
    knock
        .upgrade
        .on_upgrade(move |socket| session(socket, shared, index, beta, fault))
        .into_response()
}

/// A new session before its update: PCM 24 kHz, server VAD.
fn default_session() -> Value {
    json!({
        "type": "transcription",
        "id": "sess_fake",
        "object": "realtime.transcription_session",
        "audio": {"input": {
            "format": {"type": "audio/pcm", "rate": 24000},
            "transcription": null,
            "noise_reduction": null,
            "turn_detection": {"type": "server_vad", "threshold": 0.5,
                               "prefix_padding_ms": 300, "silence_duration_ms": 500},
        }},
        "include": null,
    })
}

/// The silence that ends a turn under the session's detection; `None`:
/// the client commits.
fn end_silence(session: &Value) -> Option<u64> {
    super::openai_realtime_wire::end_silence(session, SERVER_VAD_MS)
}

async fn session(
    socket: WebSocket,
    shared: Arc<Shared>,
    index: usize,
    beta: bool,
    fault: Option<OpenAiRealtimeFault>,
) {
    let (sink, mut stream) = socket.split();
    let mut out = Outbox::new(Writer::new(sink), ErrorTypes::InvalidRequest);
    let closed = |code: u16| {
        shared
            .connections
            .update(index, |c| c.closed_with = Some(code));
    };
    if beta {
        let message = "The Realtime API beta shape is disabled; remove the OpenAI-Beta header.";
        let end = End::beta_refused(message, "beta_api_shape_disabled");
        return out.end(end, closed).await;
    }
    let session = default_session();
    out.send(json!({"type": "session.created", "session": session}));
    let hearing = Hearing::new(
        shared.script.clone(),
        &end_silence(&session).into_iter().collect::<Vec<_>>(),
    );
    let mut listening = Listening {
        shared: &shared,
        index,
        out,
        session,
        hearing,
        keep_pcm: fault == Some(OpenAiRealtimeFault::KeepPcm),
        audio_bytes: 0,
        buffered: 0,
        items: 0,
        previous: None,
        speech_item: None,
    };
    let end = listening.listen(&mut stream, &fault).await;
    let Listening { out, .. } = listening;
    out.end(end, closed).await;
}

struct Listening<'a> {
    shared: &'a Shared,
    index: usize,
    out: Outbox,
    session: Value,
    hearing: Hearing,
    keep_pcm: bool,
    audio_bytes: usize,
    /// μ-law in the input buffer (since the last commit).
    buffered: usize,
    items: u64,
    previous: Option<String>,
    /// The item the speech in progress will be committed as.
    speech_item: Option<String>,
}

impl Listening<'_> {
    async fn listen(
        &mut self,
        stream: &mut SplitStream<WebSocket>,
        fault: &Option<OpenAiRealtimeFault>,
    ) -> End {
        while let Some(Ok(message)) = stream.next().await {
            let text = match message {
                Message::Text(text) => text,
                Message::Binary(_) => {
                    self.out.error(
                        "invalid_value",
                        "Binary frames are not events.",
                        None,
                        &Value::Null,
                    );
                    continue;
                }
                Message::Close(frame) => {
                    let code = frame.map(|f| f.code);
                    self.shared
                        .connections
                        .update(self.index, |c| c.client_close = code);
                    // Reading on sends the close's answer, then ends.
                    continue;
                }
                Message::Ping(_) | Message::Pong(_) => continue,
            };
            let Ok(event) = serde_json::from_str::<Value>(text.as_str()) else {
                self.shared.connections.update(self.index, |c| {
                    c.events.push(Value::String(text.to_string()))
                });
                self.out.error(
                    "invalid_json",
                    "The event is not valid JSON.",
                    None,
                    &Value::Null,
                );
                continue;
            };
            let kind = event["type"].as_str().unwrap_or_default().to_string();
            if kind != "input_audio_buffer.append" {
                let recorded = event.clone();
                self.shared
                    .connections
                    .update(self.index, |c| c.events.push(recorded));
            }
            match kind.as_str() {
                "session.update" => self.update(&event),
                "input_audio_buffer.append" => {
                    self.append(&event);
                    let heard_ms = self.audio_bytes as u64 / 8;
                    match fault {
                        Some(OpenAiRealtimeFault::Drop { after_audio_ms })
                            if heard_ms >= *after_audio_ms =>
                        {
                            return End::Drop;
                        }
                        Some(OpenAiRealtimeFault::CloseWith {
                            close_code,
                            code,
                            after_audio_ms,
                        }) if heard_ms >= *after_audio_ms => {
                            return End::Close {
                                close_code: *close_code,
                                code: code.clone(),
                                message: "Fault injected by the fake".into(),
                                reason: code.clone(),
                            };
                        }
                        _ => {}
                    }
                }
                "input_audio_buffer.commit" => {
                    // μ-law: 8 bytes a ms.
                    if (self.buffered as u64) < MIN_COMMIT_MS * 8 {
                        self.out
                            .commit_too_small(self.buffered as f64 / 8.0, &event);
                    } else {
                        self.commit();
                    }
                }
                "input_audio_buffer.clear" => {
                    self.buffered = 0;
                    self.out.send(json!({"type": "input_audio_buffer.cleared"}));
                }
                other => {
                    let message = format!("Invalid value: '{other}'.");
                    self.out
                        .error("invalid_value", &message, Some("type"), &event);
                }
            }
        }
        End::ClientGone
    }

    fn update(&mut self, event: &Value) {
        let update = match update_fields(
            &event["session"],
            &BETA_KEYS,
            "transcription",
            "This socket is a transcription session.",
        ) {
            Ok(update) => update,
            Err(refusal) => return self.out.refuse(&refusal, event),
        };
        let input = &update.get("audio").cloned().unwrap_or(Value::Null)["input"];
        if let Some(Err(refusal)) = input
            .get("format")
            .map(|f| object(f, "session.audio.input.format"))
        {
            return self.out.refuse(&refusal, event);
        }
        for field in [
            "format",
            "transcription",
            "turn_detection",
            "noise_reduction",
        ] {
            if field == "format" && self.keep_pcm {
                continue;
            }
            if let Some(value) = input.get(field) {
                self.session["audio"]["input"][field] = value.clone();
            }
        }
        if let Some(include) = update.get("include") {
            self.session["include"] = include.clone();
        }
        let marks: Vec<u64> = end_silence(&self.session).into_iter().collect();
        self.hearing = Hearing::new(self.shared.script.clone(), &marks);
        self.out
            .send(json!({"type": "session.updated", "session": self.session}));
    }

    fn append(&mut self, event: &Value) {
        let Some(audio) = self.out.appended_audio(event) else {
            return;
        };
        self.shared.connections.update(self.index, |c| {
            c.append_sizes.push(audio.len());
            c.audio.extend_from_slice(&audio);
        });
        self.audio_bytes += audio.len();
        self.buffered += audio.len();
        let mut heard = Vec::new();
        self.hearing.hear(&audio, &mut heard);
        if end_silence(&self.session).is_none() {
            // No detection: the client commits.
            return;
        }
        for event in heard {
            match event {
                Heard::Started { .. } => {
                    let item = self.next_item();
                    self.speech_item = Some(item.clone());
                    self.out.send(json!({
                        "type": "input_audio_buffer.speech_started",
                        "audio_start_ms": self.hearing.at_ms().saturating_sub(20),
                        "item_id": item,
                    }));
                }
                Heard::Paused { .. } => {
                    let item = self.speech_item.clone().unwrap_or_default();
                    self.out.send(json!({
                        "type": "input_audio_buffer.speech_stopped",
                        "audio_end_ms": self.hearing.at_ms(),
                        "item_id": item,
                    }));
                    self.commit();
                }
                Heard::Words { .. } | Heard::Resumed { .. } => {}
            }
        }
    }

    fn next_item(&mut self) -> String {
        self.items += 1;
        format!("item_{}_{}", self.index, self.items)
    }

    /// Commits the buffer as an item; its transcript follows after the
    /// final delay, a delta per word.
    fn commit(&mut self) {
        let item = match self.speech_item.take() {
            Some(item) => item,
            None => self.next_item(),
        };
        self.buffered = 0;
        self.out.send(json!({
            "type": "input_audio_buffer.committed",
            "item_id": item,
            "previous_item_id": self.previous,
        }));
        self.previous = Some(item.clone());
        let text = if self.hearing.in_turn() {
            self.hearing.end_turn()
        } else {
            String::new()
        };
        let delay = *lock(&self.shared.final_delay);
        for (i, word) in text.split_whitespace().enumerate() {
            let delta = if i == 0 {
                word.to_string()
            } else {
                format!(" {word}")
            };
            self.out.later(
                json!({"type": "conversation.item.input_audio_transcription.delta",
                       "item_id": item, "content_index": 0, "delta": delta}),
                delay,
            );
        }
        self.out.later(
            json!({"type": "conversation.item.input_audio_transcription.completed",
                   "item_id": item, "content_index": 0, "transcript": text,
                   "usage": {"type": "duration", "seconds": self.audio_bytes.div_ceil(8000)}}),
            delay,
        );
    }
}
