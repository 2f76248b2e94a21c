//! Fake AssemblyAI Universal-Streaming v3: `GET /v3/ws` upgraded to a
//! WebSocket that takes binary μ-law and answers `Begin`, `SpeechStarted`,
//! `Turn`… and `Termination`, per
//! <https://www.assemblyai.com/docs/api-reference/streaming> and
//! <https://www.assemblyai.com/docs/streaming/universal-streaming/message-sequence>.
//! The base URL is `http://127.0.0.1:…` (no `/v3`), like
//! `wss://streaming.assemblyai.com`.
//!
//! It hears with [`Hearing`]: the words of a scripted turn are revealed as
//! speech goes on (`Turn` with `end_of_turn: false`), a pause of
//! `min_turn_silence` fills `utterance`, and the turn ends after
//! `min_turn_silence` of silence when the model may be confident
//! (`end_of_turn_confidence_threshold` < 1), after `max_turn_silence`
//! otherwise, or at once on `ForceEndpoint`. With `format_turns=true` the
//! formatted copy follows.
//!
//! Like the service, it refuses a message of less than 50 ms or more than
//! 1000 ms of audio (close 3007), a missing key or one with a scheme (401),
//! a query without `sample_rate` (close 4000), and, being a μ-law fake,
//! any `encoding` but `pcm_mulaw` (close 3006). What it does with a
//! `ForceEndpoint` outside a turn is not documented: it ignores it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use serde_json::{Value, json};

use super::answer::json_response;
use super::hearing::{Heard, Hearing, Script};
use super::streaming::Writer;
use super::{Faults, Recorded, Running, lock, serve};

/// How the next connection goes wrong (one fault per connection).
#[derive(Debug, Clone, PartialEq)]
pub enum AssemblyAiFault {
    /// HTTP 401 at the upgrade, as for a wrong key.
    RefuseKey,
    /// The upgrade succeeds, then `Error` 4001 and close 4001.
    RefuseKeyInStream,
    /// HTTP 429 at the upgrade.
    RateLimit,
    /// After this much audio, an `Error` with `code` and a close with it
    /// (3005 server error, 4002 insufficient funds…).
    CloseWith { code: u16, after_audio_ms: u64 },
    /// After this much audio, the TCP connection is dropped without a
    /// close frame.
    Drop { after_audio_ms: u64 },
    /// No message for this long (wall clock): `Error` 4031 and close 4031.
    Idle(Duration),
}

/// What one connection received.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssemblyAiConnection {
    pub query: HashMap<String, String>,
    /// An `Authorization` header was present (its value is not kept).
    pub authorization: bool,
    /// Every text message, parsed (`Value::String` when not JSON).
    pub control: Vec<Value>,
    /// The audio received, all binary messages in order.
    pub audio: Vec<u8>,
    /// The size of each binary message.
    pub binary_sizes: Vec<usize>,
    /// The close code the fake sent, if it closed.
    pub closed_with: Option<u16>,
}

struct Shared {
    /// The only key accepted; `None` = any non-empty key without a scheme.
    key: Option<String>,
    script: Script,
    faults: Faults<AssemblyAiFault>,
    connections: Recorded<AssemblyAiConnection>,
    final_delay: Mutex<Duration>,
    turn_silence: Mutex<Option<u64>>,
}

/// The fake; the server stops when it is dropped.
pub struct FakeAssemblyAi {
    running: Running,
    shared: Arc<Shared>,
}

impl FakeAssemblyAi {
    /// Accepts any non-empty key without a scheme; hears `["hello"]`.
    pub async fn start() -> FakeAssemblyAi {
        FakeAssemblyAi::serve(None).await
    }

    /// Accepts only `key`.
    pub async fn start_with_key(key: &str) -> FakeAssemblyAi {
        FakeAssemblyAi::serve(Some(key.to_string())).await
    }

    async fn serve(key: Option<String>) -> FakeAssemblyAi {
        let shared = Arc::new(Shared {
            key,
            script: Script::default(),
            faults: Faults::default(),
            connections: Recorded::default(),
            final_delay: Mutex::new(Duration::ZERO),
            turn_silence: Mutex::new(None),
        });
        let router = Router::new()
            .route("/v3/ws", get(upgrade))
            .with_state(shared.clone());
        let running = serve(router, "").await;
        FakeAssemblyAi { running, shared }
    }

    /// `http://127.0.0.1:…`, without `/v3`.
    pub fn base_url(&self) -> &str {
        &self.running.base_url
    }

    pub fn push_fault(&self, fault: AssemblyAiFault) {
        self.shared.faults.push(fault);
    }

    /// The texts heard, one per turn (the last repeats).
    pub fn set_script(&self, texts: &[&str]) {
        self.shared.script.set(texts);
    }

    /// Wall-clock delay before each end-of-turn `Turn` (later messages wait
    /// behind it, as on one socket).
    pub fn set_final_delay(&self, delay: Duration) {
        *lock(&self.shared.final_delay) = delay;
    }

    /// The silence (audio time) that ends a turn, instead of the one the
    /// query implies.
    pub fn set_turn_silence(&self, ms: Option<u64>) {
        *lock(&self.shared.turn_silence) = ms;
    }

    /// Every connection attempt that reached the upgrade, in order.
    pub fn connections(&self) -> Vec<AssemblyAiConnection> {
        self.shared.connections.all()
    }
}

/// An AssemblyAI-shaped HTTP refusal.
fn refusal(status: u16, message: &str) -> Response {
    json_response(status, json!({"error": message}).to_string())
}

async fn upgrade(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let key = headers.get("authorization").and_then(|v| v.to_str().ok());
    let index = shared.connections.add(AssemblyAiConnection {
        query: query.clone(),
        authorization: key.is_some(),
        ..AssemblyAiConnection::default()
    });
    // The key is compared, never kept.
    let accepted = match (&shared.key, key) {
        (_, None) => false,
        (Some(expected), Some(key)) => key == expected,
        (None, Some(key)) => {
            let key = key.trim();
            !key.is_empty() && !key.starts_with("Bearer ") && !key.starts_with("Token ")
        }
    };
    if !accepted {
        return refusal(401, "Invalid API key");
    }
    let fault = shared.faults.next();
    match fault {
        Some(AssemblyAiFault::RefuseKey) => return refusal(401, "Invalid API key"),
        Some(AssemblyAiFault::RateLimit) => return refusal(429, "Too many requests"),
        _ => {}
    }
    upgrade
        .on_upgrade(move |socket| session(socket, shared, index, query, fault))
        .into_response()
}

/// AssemblyAI's messages, through the session's [`Writer`].
struct Outbox(Writer);

impl Outbox {
    fn send(&self, message: Value) {
        self.later(message, Duration::ZERO);
    }

    fn later(&self, message: Value, delay: Duration) {
        self.0.later(&message, delay);
    }

    /// `Error` with the code, then a close with it; waits for both to go.
    async fn close(self, code: u16, message: &str) {
        self.send(json!({"type": "Error", "error_code": code, "error": message}));
        self.0.close(code, message).await;
    }

    /// Gone at once: nothing more is written, no close frame.
    fn abort(self) {
        self.0.abort();
    }
}

/// One turn message.
fn turn(order: usize, transcript: &str, utterance: &str, end: bool, formatted: bool) -> Value {
    let words: Vec<Value> = transcript
        .split_whitespace()
        .enumerate()
        .map(|(i, word)| {
            let start = i as u64 * 250;
            json!({"start": start, "end": start + 200, "text": word,
                   "confidence": 0.9, "word_is_final": true})
        })
        .collect();
    json!({
        "type": "Turn",
        "turn_order": order,
        "turn_is_formatted": formatted,
        "end_of_turn": end,
        "transcript": transcript,
        "end_of_turn_confidence": if end { 0.9 } else { 0.1 },
        "utterance": utterance,
        "words": words,
    })
}

/// `hello there` → `Hello there.`
fn formatted(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

/// A session's settings, from its query.
struct Turns {
    utterance_ms: u64,
    end_ms: u64,
    format: bool,
}

impl Turns {
    fn from_query(query: &HashMap<String, String>, turn_silence: Option<u64>) -> Turns {
        let number = |name: &str, default: f64| {
            query
                .get(name)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(default)
        };
        let confident = number("end_of_turn_confidence_threshold", 0.4) < 1.0;
        let min = number("min_turn_silence", 400.0) as u64;
        let max = number("max_turn_silence", 1280.0) as u64;
        Turns {
            utterance_ms: min,
            end_ms: turn_silence.unwrap_or(if confident { min } else { max }),
            format: query.get("format_turns").is_some_and(|v| v == "true"),
        }
    }
}

async fn session(
    socket: WebSocket,
    shared: Arc<Shared>,
    index: usize,
    query: HashMap<String, String>,
    fault: Option<AssemblyAiFault>,
) {
    let (sink, mut stream) = socket.split();
    let out = Outbox(Writer::new(sink));
    let closed = |code: u16| {
        shared
            .connections
            .update(index, |c| c.closed_with = Some(code))
    };
    if let Some(AssemblyAiFault::RefuseKeyInStream) = fault {
        closed(4001);
        return out.close(4001, "Not Authorized").await;
    }
    let rate = query.get("sample_rate").and_then(|r| r.parse::<u32>().ok());
    if rate.is_none_or(|r| r == 0) {
        closed(4000);
        return out
            .close(4000, "Sample rate must be a positive integer")
            .await;
    }
    if query.get("encoding").map(String::as_str) != Some("pcm_mulaw") {
        closed(3006);
        return out.close(3006, "This fake only hears pcm_mulaw").await;
    }
    if !query.contains_key("speech_model") {
        closed(3006);
        return out.close(3006, "speech_model is required").await;
    }
    let turn_silence = *lock(&shared.turn_silence);
    let turns = Turns::from_query(&query, turn_silence);
    let mut marks = vec![turns.utterance_ms, turns.end_ms];
    marks.dedup();
    let mut hearing = Hearing::new(shared.script.clone(), &marks);
    out.send(json!({"type": "Begin", "id": format!("fake-session-{index}"), "expires_at": 4102444800u64}));
    let mut listening = Listening {
        shared: &shared,
        index,
        out,
        hearing: &mut hearing,
        turns,
        audio_bytes: 0,
    };
    let end = listening.listen(&mut stream, fault).await;
    let Listening { out, .. } = listening;
    match end {
        End::Close(code, message) => {
            closed(code);
            out.close(code, &message).await;
        }
        End::Drop => out.abort(),
        End::Terminated => out.0.flushed().await,
        End::ClientGone => out.abort(),
    }
}

/// How a session ends.
enum End {
    /// The fake closes with this code.
    Close(u16, String),
    /// The fake drops the connection.
    Drop,
    /// `Terminate` was answered; the close is queued.
    Terminated,
    /// The client closed or went away.
    ClientGone,
}

struct Listening<'a> {
    shared: &'a Shared,
    index: usize,
    out: Outbox,
    hearing: &'a mut Hearing,
    turns: Turns,
    audio_bytes: usize,
}

impl Listening<'_> {
    async fn listen(
        &mut self,
        stream: &mut SplitStream<WebSocket>,
        fault: Option<AssemblyAiFault>,
    ) -> End {
        loop {
            let next = match &fault {
                Some(AssemblyAiFault::Idle(idle)) => {
                    match tokio::time::timeout(*idle, stream.next()).await {
                        Ok(next) => next,
                        Err(_) => return End::Close(4031, "Session idle for too long".into()),
                    }
                }
                _ => stream.next().await,
            };
            let message = match next {
                Some(Ok(message)) => message,
                Some(Err(_)) | None => return End::ClientGone,
            };
            match message {
                Message::Binary(audio) => {
                    if let Some(end) = self.audio(&audio) {
                        return end;
                    }
                    let heard_ms = self.audio_bytes as u64 / 8;
                    match &fault {
                        Some(AssemblyAiFault::Drop { after_audio_ms })
                            if heard_ms >= *after_audio_ms =>
                        {
                            return End::Drop;
                        }
                        Some(AssemblyAiFault::CloseWith {
                            code,
                            after_audio_ms,
                        }) if heard_ms >= *after_audio_ms => {
                            return End::Close(*code, "Fault injected by the fake".into());
                        }
                        _ => {}
                    }
                }
                Message::Text(text) => {
                    let parsed: Option<Value> = serde_json::from_str(text.as_str()).ok();
                    let recorded = parsed
                        .clone()
                        .unwrap_or_else(|| Value::String(text.to_string()));
                    self.shared
                        .connections
                        .update(self.index, |c| c.control.push(recorded));
                    let Some(control) = parsed else {
                        return End::Close(4100, "Invalid JSON".into());
                    };
                    match control["type"].as_str().unwrap_or_default() {
                        "ForceEndpoint" => {
                            if self.hearing.in_turn() {
                                self.end_turn(true);
                            }
                        }
                        "Terminate" => {
                            if self.hearing.in_turn() {
                                self.end_turn(true);
                            }
                            self.out.send(json!({
                                "type": "Termination",
                                "audio_duration_seconds": self.audio_bytes / 8000,
                                "session_duration_seconds": self.audio_bytes / 8000,
                            }));
                            self.out.0.closing(1000, "");
                            self.shared
                                .connections
                                .update(self.index, |c| c.closed_with = Some(1000));
                            return End::Terminated;
                        }
                        "KeepAlive" | "UpdateConfiguration" => {}
                        _ => return End::Close(4101, "Invalid message schema".into()),
                    }
                }
                Message::Close(_) => return End::ClientGone,
                Message::Ping(_) | Message::Pong(_) => {}
            }
        }
    }

    /// One binary message; `Some` when it ends the session.
    fn audio(&mut self, audio: &[u8]) -> Option<End> {
        self.shared.connections.update(self.index, |c| {
            c.binary_sizes.push(audio.len());
            c.audio.extend_from_slice(audio);
        });
        if !(400..=8000).contains(&audio.len()) {
            return Some(End::Close(
                3007,
                "Audio chunk duration violation: 50 to 1000 ms".into(),
            ));
        }
        self.audio_bytes += audio.len();
        let mut heard = Vec::new();
        self.hearing.hear(audio, &mut heard);
        for event in heard {
            match event {
                Heard::Started { .. } => self.out.send(json!({
                    "type": "SpeechStarted",
                    "timestamp": self.hearing.at_ms(),
                })),
                Heard::Words { turn, transcript } => {
                    self.out
                        .send(self::turn(turn, &transcript, "", false, false))
                }
                Heard::Paused {
                    turn,
                    transcript,
                    silence_ms,
                } => {
                    if silence_ms == self.turns.end_ms {
                        self.end_turn(false);
                    } else if silence_ms == self.turns.utterance_ms {
                        self.out
                            .send(self::turn(turn, &transcript, &transcript, false, false));
                    }
                }
                Heard::Resumed { .. } => {}
            }
        }
        None
    }

    /// The turn's end (after the final delay), and its formatted copy if asked.
    fn end_turn(&mut self, forced: bool) {
        let order = self.hearing.turn();
        let text = self.hearing.end_turn();
        let delay = *lock(&self.shared.final_delay);
        // At the pause that ends a confident turn the utterance ends too.
        let utterance = if !forced && self.turns.end_ms == self.turns.utterance_ms {
            text.as_str()
        } else {
            ""
        };
        self.out
            .later(turn(order, &text, utterance, true, false), delay);
        if self.turns.format {
            self.out
                .later(turn(order, &formatted(&text), "", true, true), delay);
        }
    }
}
