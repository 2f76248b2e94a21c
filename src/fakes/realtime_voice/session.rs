//! One connection of the fake: reads the client's events and, on its own
//! clock, streams the replies and the delayed transcripts, so that a reply
//! in progress can be cancelled between two deltas and a transcript can
//! arrive after the reply it preceded.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::session_config::{
    apply_update, bytes_per_ms, default_session, detection_flag, end_silence,
};
use super::{RealtimeVoiceFault, ReplyRecord, Shared, Truncate, g711a, words};
use crate::audio::mulaw;
use crate::fakes::hearing::{Heard, Hearing, Script};
use crate::fakes::openai_realtime_wire::{End, ErrorTypes, MIN_COMMIT_MS, Outbox};
use crate::fakes::streaming::Writer;

mod reply;

use reply::Active;

const BETA_MESSAGE: &str =
    "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API.";
const CAP_MESSAGE: &str = "Your session hit the maximum duration of 60 minutes.";
/// Later than any test waits.
const FAR: Duration = Duration::from_secs(24 * 3600);

/// `at + by`, or far away when a test's delay would overflow the clock.
fn after(at: Instant, by: Duration) -> Instant {
    at.checked_add(by)
        .or_else(|| at.checked_add(FAR))
        .unwrap_or(at)
}

pub(super) async fn run(
    socket: WebSocket,
    shared: Arc<Shared>,
    index: usize,
    model: String,
    beta: bool,
    fault: Option<RealtimeVoiceFault>,
) {
    let started = Instant::now();
    let (sink, mut stream) = socket.split();
    let mut out = Outbox::new(Writer::new(sink), ErrorTypes::ServerErrorByCode);
    let closed = |code: u16| {
        shared
            .connections
            .update(index, |c| c.closed_with = Some(code));
    };
    if beta {
        let reason = "invalid_request_error.beta_api_shape_disabled";
        return out
            .end(End::beta_refused(BETA_MESSAGE, reason), closed)
            .await;
    }
    let session = default_session(&model, index);
    out.send(json!({"type": "session.created", "session": session}));
    let silence = end_silence(&session);
    let cap_at = match fault {
        Some(RealtimeVoiceFault::SessionCap { after_ms }) => {
            Some(after(started, Duration::from_millis(after_ms)))
        }
        _ => None,
    };
    let mut conn = Conn {
        shared: shared.clone(),
        index,
        out,
        keep_pcm: fault == Some(RealtimeVoiceFault::KeepPcm),
        session,
        hearing: Hearing::new(Script::default(), &silence.into_iter().collect::<Vec<_>>()),
        hearing_silence: silence,
        hearing_base_ms: 0,
        pcm_carry: Vec::new(),
        pcm_phase: 0,
        audio_us: 0,
        buffered_us: 0,
        ids: 0,
        last_item: None,
        speech_item: None,
        items: HashMap::new(),
        user_text: None,
        text_words: 0,
        reply: None,
        replies: 0,
        audio_out_sent: false,
        pending: VecDeque::new(),
        fault,
        fault_fired: false,
        cap_at,
    };
    let end = conn.serve(&mut stream).await;
    let Conn { out, .. } = conn;
    out.end(end, closed).await;
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ItemKind {
    /// A caller's audio, or a message the client added.
    Client,
    /// The model's spoken message: the only kind that can be truncated.
    AssistantAudio,
    FunctionCall,
}

struct Item {
    kind: ItemKind,
    json: Value,
    previous: Option<String>,
    /// Audio sent for the item (its length for a truncate).
    audio_bytes: usize,
    bytes_per_ms: usize,
    truncated: bool,
}

struct Conn {
    shared: Arc<Shared>,
    index: usize,
    out: Outbox,
    keep_pcm: bool,
    session: Value,
    hearing: Hearing,
    hearing_silence: Option<u64>,
    /// Audio time (ms) at which `hearing` started.
    hearing_base_ms: u64,
    /// PCM16 input not yet heard (an odd byte), and the 24 → 8 kHz phase.
    pcm_carry: Vec<u8>,
    pcm_phase: u8,
    /// Audio appended on the connection (µs of audio).
    audio_us: u64,
    /// Audio in the input buffer since the last commit (µs).
    buffered_us: u64,
    ids: u64,
    last_item: Option<String>,
    /// The item the speech in progress will be committed as.
    speech_item: Option<String>,
    items: HashMap<String, Item>,
    /// The caller's last words (heard or typed) not yet answered.
    user_text: Option<String>,
    /// Words of the text items the client added.
    text_words: usize,
    reply: Option<Active>,
    replies: usize,
    audio_out_sent: bool,
    /// Caller transcript events waiting for their time.
    pending: VecDeque<(Instant, Value)>,
    fault: Option<RealtimeVoiceFault>,
    fault_fired: bool,
    cap_at: Option<Instant>,
}

impl Conn {
    async fn serve(&mut self, stream: &mut SplitStream<WebSocket>) -> End {
        loop {
            let wake = self.next_wake();
            let far = after(Instant::now(), FAR);
            tokio::select! {
                message = stream.next() => {
                    let Some(Ok(message)) = message else {
                        return End::ClientGone;
                    };
                    if let Some(end) = self.received(message) {
                        return end;
                    }
                }
                () = tokio::time::sleep_until(wake.unwrap_or(far)), if wake.is_some() => {
                    if let Some(end) = self.tick() {
                        return end;
                    }
                }
            }
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        [
            self.reply.as_ref().map(|r| r.next_at),
            self.pending.front().map(|p| p.0),
            self.cap_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn tick(&mut self) -> Option<End> {
        let now = Instant::now();
        if self.cap_at.is_some_and(|at| at <= now) {
            return Some(End::Close {
                close_code: 1001,
                code: "session_expired".into(),
                message: CAP_MESSAGE.into(),
                reason: CAP_MESSAGE.into(),
            });
        }
        self.send_due(now);
        self.step_reply(now);
        None
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.ids += 1;
        format!("{prefix}_{}_{}", self.index, self.ids)
    }

    fn record(&self, change: impl FnOnce(&mut super::RealtimeVoiceConnection)) {
        self.shared.connections.update(self.index, change);
    }

    fn record_reply(&self, number: usize, change: impl FnOnce(&mut ReplyRecord)) {
        self.record(|c| {
            if let Some(reply) = c.replies.get_mut(number) {
                change(reply);
            }
        });
    }

    fn received(&mut self, message: Message) -> Option<End> {
        match message {
            Message::Text(text) => self.event(text.as_str()),
            Message::Binary(_) => {
                let message = "Binary frames are not events: send JSON text.";
                self.out
                    .error("invalid_request_error", message, None, &Value::Null);
                None
            }
            Message::Close(frame) => {
                let code = frame.map(|f| f.code);
                self.record(|c| c.client_close = code);
                // Reading on sends the close's answer, then ends.
                None
            }
            Message::Ping(_) | Message::Pong(_) => None,
        }
    }

    fn event(&mut self, text: &str) -> Option<End> {
        let event = match serde_json::from_str::<Value>(text) {
            Ok(event) if event.is_object() => event,
            _ => {
                let raw = Value::String(text.to_string());
                self.record(|c| c.events.push(raw));
                let message =
                    "We could not parse the JSON body of your request: expected an event object.";
                self.out.error("invalid_json", message, None, &Value::Null);
                return None;
            }
        };
        let kind = event["type"].as_str().unwrap_or_default().to_string();
        if kind != "input_audio_buffer.append" {
            let recorded = event.clone();
            self.record(|c| {
                if kind == "session.update" {
                    c.session_updates.push(recorded.clone());
                }
                c.events.push(recorded);
            });
        }
        match kind.as_str() {
            "session.update" => self.session_update(&event),
            "input_audio_buffer.append" => return self.append(&event),
            "input_audio_buffer.commit" => self.manual_commit(&event),
            "input_audio_buffer.clear" => self.clear(),
            "response.create" => self.response_create(&event),
            "response.cancel" => self.response_cancel(&event),
            "conversation.item.create" => self.item_create(&event),
            "conversation.item.truncate" => self.truncate(&event),
            "conversation.item.delete" => self.item_delete(&event),
            "conversation.item.retrieve" => self.item_retrieve(&event),
            other => {
                let message = format!(
                    "Invalid value: '{other}'. This is not a client event of a Realtime WebSocket session."
                );
                self.out
                    .error("invalid_value", &message, Some("type"), &event);
            }
        }
        None
    }

    fn session_update(&mut self, event: &Value) {
        match apply_update(
            &mut self.session,
            &event["session"],
            self.keep_pcm,
            self.audio_out_sent,
        ) {
            Err(refusal) => self.out.refuse(&refusal, event),
            Ok(()) => {
                let silence = end_silence(&self.session);
                if silence != self.hearing_silence {
                    let marks: Vec<u64> = silence.into_iter().collect();
                    self.hearing = Hearing::new(Script::default(), &marks);
                    self.hearing_silence = silence;
                    self.hearing_base_ms = self.audio_us / 1000;
                    self.speech_item = None;
                }
                let delay = self.shared.latency().session_updated;
                self.out.later(
                    json!({"type": "session.updated", "session": self.session}),
                    delay,
                );
            }
        }
    }

    fn input_format(&self) -> &Value {
        &self.session["audio"]["input"]["format"]
    }

    fn append(&mut self, event: &Value) -> Option<End> {
        let audio = self.out.appended_audio(event)?;
        self.record(|c| {
            c.audio_bytes += audio.len();
            c.appends += 1;
        });
        let duration_us = audio.len() as u64 * 1000 / bytes_per_ms(self.input_format()) as u64;
        self.audio_us += duration_us;
        self.buffered_us += duration_us;
        let heard = self.as_mulaw(&audio);
        for frame in heard.chunks(160) {
            let mut events = Vec::new();
            self.hearing.hear(frame, &mut events);
            for heard in events {
                self.heard(heard);
            }
        }
        self.fault_after_audio()
    }

    /// The appended audio as μ-law 8 kHz, for the energy gate.
    fn as_mulaw(&mut self, audio: &[u8]) -> Vec<u8> {
        match self.session["audio"]["input"]["format"]["type"].as_str() {
            Some("audio/pcmu") => audio.to_vec(),
            Some("audio/pcma") => audio
                .iter()
                .map(|&a| mulaw::encode_sample(g711a::decode_sample(a)))
                .collect(),
            _ => {
                // PCM16 24 kHz: every third sample.
                self.pcm_carry.extend_from_slice(audio);
                let whole = self.pcm_carry.len() / 2 * 2;
                let mut heard = Vec::with_capacity(whole / 6 + 1);
                for sample in self.pcm_carry[..whole].chunks_exact(2) {
                    if self.pcm_phase == 0 {
                        heard.push(mulaw::encode_sample(i16::from_le_bytes([
                            sample[0], sample[1],
                        ])));
                    }
                    self.pcm_phase = (self.pcm_phase + 1) % 3;
                }
                self.pcm_carry.drain(..whole);
                heard
            }
        }
    }

    fn fault_after_audio(&mut self) -> Option<End> {
        let audio_ms = self.audio_us / 1000;
        match &self.fault {
            Some(RealtimeVoiceFault::ErrorEvent {
                code,
                message,
                after_audio_ms,
            }) if !self.fault_fired && audio_ms >= *after_audio_ms => {
                self.fault_fired = true;
                let (code, message) = (code.clone(), message.clone());
                self.out.error(&code, &message, None, &Value::Null);
                None
            }
            Some(RealtimeVoiceFault::CloseWith {
                close_code,
                code,
                after_audio_ms,
            }) if audio_ms >= *after_audio_ms => Some(End::Close {
                close_code: *close_code,
                code: code.clone(),
                message: "Fault injected by the fake.".into(),
                reason: code.clone(),
            }),
            Some(RealtimeVoiceFault::Drop { after_audio_ms }) if audio_ms >= *after_audio_ms => {
                Some(End::Drop)
            }
            _ => None,
        }
    }

    /// What the energy gate heard, as the session's turn detection says it.
    fn heard(&mut self, heard: Heard) {
        if end_silence(&self.session).is_none() {
            // No detection: the client commits.
            return;
        }
        match heard {
            Heard::Started { .. } => {
                let item = self.next_id("item");
                self.speech_item = Some(item.clone());
                self.out.send(json!({
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": self.hearing_base_ms + self.hearing.at_ms().saturating_sub(20),
                    "item_id": item,
                }));
                if self.reply.is_some() && detection_flag(&self.session, "interrupt_response") {
                    self.cancel("turn_detected");
                }
            }
            Heard::Paused { .. } => {
                let item = match self.speech_item.clone() {
                    Some(item) => item,
                    None => self.next_id("item"),
                };
                self.speech_item = Some(item.clone());
                self.out.send(json!({
                    "type": "input_audio_buffer.speech_stopped",
                    "audio_end_ms": self.hearing_base_ms + self.hearing.at_ms(),
                    "item_id": item,
                }));
                self.commit();
                if self.reply.is_none() && detection_flag(&self.session, "create_response") {
                    self.start_reply(&Value::Null);
                }
            }
            Heard::Words { .. } | Heard::Resumed { .. } => {}
        }
    }

    fn manual_commit(&mut self, event: &Value) {
        if self.buffered_us < MIN_COMMIT_MS * 1000 {
            self.out
                .commit_too_small(self.buffered_us as f64 / 1000.0, event);
        } else {
            self.commit();
        }
    }

    fn clear(&mut self) {
        self.buffered_us = 0;
        self.speech_item = None;
        if self.hearing.in_turn() {
            self.hearing.end_turn();
        }
        self.out.send(json!({"type": "input_audio_buffer.cleared"}));
    }

    /// Commits the input buffer as a user item; its transcript follows
    /// after [`super::Latency::transcript`] if the session transcribes.
    fn commit(&mut self) {
        let item = match self.speech_item.take() {
            Some(item) => item,
            None => self.next_id("item"),
        };
        let seconds = self.buffered_us as f64 / 1_000_000.0;
        self.buffered_us = 0;
        self.out.send(json!({
            "type": "input_audio_buffer.committed",
            "item_id": item,
            "previous_item_id": self.last_item,
        }));
        let user = json!({
            "id": item, "object": "realtime.item", "type": "message", "status": "completed",
            "role": "user", "content": [{"type": "input_audio", "transcript": null}],
        });
        self.item_added(user.clone(), ItemKind::Client);
        self.item_done(user);
        if self.hearing.in_turn() {
            self.hearing.end_turn();
        }
        let text = self.shared.next_transcript();
        self.user_text = Some(text.clone());
        if self.session["audio"]["input"]["transcription"].is_null() {
            return;
        }
        let at = after(Instant::now(), self.shared.latency().transcript);
        let count = words(&text);
        for (i, word) in text.split_whitespace().enumerate() {
            let delta = if i + 1 < count {
                format!("{word} ")
            } else {
                word.to_string()
            };
            self.pending.push_back((
                at,
                json!({"type": "conversation.item.input_audio_transcription.delta",
                       "item_id": item, "content_index": 0, "delta": delta}),
            ));
        }
        self.pending.push_back((
            at,
            json!({"type": "conversation.item.input_audio_transcription.completed",
                   "item_id": item, "content_index": 0, "transcript": text,
                   "usage": {"type": "duration", "seconds": seconds}}),
        ));
        self.send_due(Instant::now());
    }

    /// Sends the transcript events whose time has come (in order: one
    /// waiting keeps the later ones waiting).
    fn send_due(&mut self, now: Instant) {
        while self.pending.front().is_some_and(|p| p.0 <= now) {
            if let Some((_, event)) = self.pending.pop_front() {
                self.out.send(event);
            }
        }
    }

    /// `conversation.item.added`: `item` joins the conversation.
    fn item_added(&mut self, item: Value, kind: ItemKind) {
        let id = item["id"].as_str().unwrap_or_default().to_string();
        let previous = self.last_item.replace(id.clone());
        self.out.send(json!({
            "type": "conversation.item.added",
            "previous_item_id": previous,
            "item": item,
        }));
        let bytes_per_ms = bytes_per_ms(&self.session["audio"]["output"]["format"]);
        self.items.insert(
            id,
            Item {
                kind,
                json: item,
                previous,
                audio_bytes: 0,
                bytes_per_ms,
                truncated: false,
            },
        );
    }

    /// `conversation.item.done`: `item` is complete.
    fn item_done(&mut self, item: Value) {
        let id = item["id"].as_str().unwrap_or_default();
        let previous = match self.items.get_mut(id) {
            Some(known) => {
                known.json = item.clone();
                known.previous.clone()
            }
            None => None,
        };
        self.out.send(json!({
            "type": "conversation.item.done",
            "previous_item_id": previous,
            "item": item,
        }));
    }

    fn item_create(&mut self, event: &Value) {
        let item = &event["item"];
        let Some(fields) = item.as_object() else {
            let message = "Missing required parameter: 'item'.";
            self.out
                .error("missing_required_parameter", message, Some("item"), event);
            return;
        };
        let recorded = item.clone();
        self.record(|c| c.items_created.push(recorded));
        let text = match item_text(item) {
            Ok(text) => text,
            Err((code, message, param)) => {
                self.out.error(code, &message, Some(&param), event);
                return;
            }
        };
        let id = match fields.get("id").and_then(Value::as_str) {
            Some(id) if self.items.contains_key(id) => {
                let message = format!("Item with id '{id}' already exists.");
                self.out
                    .error("invalid_value", &message, Some("item.id"), event);
                return;
            }
            Some(id) => id.to_string(),
            None => self.next_id("item"),
        };
        self.text_words += words(&text);
        if item["type"] == "message" && item["role"] == "user" && !text.is_empty() {
            self.user_text = Some(text);
        }
        let mut item = item.clone();
        item["id"] = json!(id);
        item["object"] = json!("realtime.item");
        item["status"] = json!("completed");
        let kind = if item["type"] == "function_call" {
            ItemKind::FunctionCall
        } else {
            ItemKind::Client
        };
        self.item_added(item.clone(), kind);
        self.item_done(item);
    }

    fn truncate(&mut self, event: &Value) {
        let (Some(item_id), Some(audio_end_ms)) = (
            event["item_id"].as_str().map(str::to_string),
            event["audio_end_ms"].as_u64(),
        ) else {
            let param = if event["item_id"].is_string() {
                "audio_end_ms"
            } else {
                "item_id"
            };
            let message = format!("Missing required parameter: '{param}'.");
            self.out
                .error("missing_required_parameter", &message, Some(param), event);
            return;
        };
        let content_index = event["content_index"].as_u64().unwrap_or(0);
        let accepted = match self.items.get_mut(&item_id) {
            Some(item) if item.kind == ItemKind::AssistantAudio => {
                let sent_ms = (item.audio_bytes / item.bytes_per_ms.max(1)) as u64;
                if content_index != 0 {
                    let message = format!(
                        "Invalid value for 'content_index': item '{item_id}' has one content part."
                    );
                    Err(("invalid_value", message, "content_index"))
                } else if audio_end_ms > sent_ms {
                    let message = format!(
                        "Audio content of {sent_ms}ms is already shorter than {audio_end_ms}ms"
                    );
                    Err(("invalid_value", message, "audio_end_ms"))
                } else {
                    item.audio_bytes = audio_end_ms as usize * item.bytes_per_ms;
                    item.truncated = true;
                    Ok(())
                }
            }
            _ => Err((
                "unsupported_content_type",
                "Only model output audio messages can be truncated".to_string(),
                "item_id",
            )),
        };
        let truncate = Truncate {
            item_id: item_id.clone(),
            content_index,
            audio_end_ms,
            accepted: accepted.is_ok(),
        };
        self.record(|c| c.truncates.push(truncate));
        match &accepted {
            Ok(()) => self.out.send(json!({
                "type": "conversation.item.truncated",
                "item_id": item_id, "content_index": content_index, "audio_end_ms": audio_end_ms,
            })),
            Err((code, message, param)) => self.out.error(code, message, Some(param), event),
        }
    }

    fn item_delete(&mut self, event: &Value) {
        let item_id = event["item_id"].as_str().unwrap_or_default().to_string();
        if self.items.remove(&item_id).is_some() {
            self.out
                .send(json!({"type": "conversation.item.deleted", "item_id": item_id}));
        } else {
            let message = format!("Item with item_id not found: {item_id}");
            self.out
                .error("item_not_found", &message, Some("item_id"), event);
        }
    }

    fn item_retrieve(&mut self, event: &Value) {
        let item_id = event["item_id"].as_str().unwrap_or_default();
        match self.items.get(item_id) {
            Some(item) => {
                let item = item.json.clone();
                self.out
                    .send(json!({"type": "conversation.item.retrieved", "item": item}));
            }
            None => {
                let message = format!("Item with item_id not found: {item_id}");
                self.out
                    .error("item_not_found", &message, Some("item_id"), event);
            }
        }
    }
}

/// The text a client item adds to the conversation (for the usage and
/// the echo), or why the service would refuse it: `(code, message, param)`.
fn item_text(item: &Value) -> Result<String, (&'static str, String, String)> {
    let kind = item["type"].as_str().unwrap_or_default();
    match kind {
        "message" => {
            let role = item["role"].as_str().unwrap_or_default();
            let allowed: &[&str] = match role {
                "user" => &["input_text", "input_audio", "input_image"],
                "system" => &["input_text"],
                "assistant" => &["output_text"],
                other => {
                    return Err((
                        "invalid_value",
                        format!(
                            "Invalid value: '{other}'. Supported values are: 'user', 'assistant', and 'system'."
                        ),
                        "item.role".into(),
                    ));
                }
            };
            let Some(content) = item["content"].as_array() else {
                return Err((
                    "missing_required_parameter",
                    "Missing required parameter: 'item.content'.".into(),
                    "item.content".into(),
                ));
            };
            let mut text = Vec::new();
            for (i, part) in content.iter().enumerate() {
                let part_kind = part["type"].as_str().unwrap_or_default();
                if !allowed.contains(&part_kind) {
                    return Err((
                        "invalid_value",
                        format!(
                            "Invalid value: '{part_kind}'. A {role} message takes {allowed:?}."
                        ),
                        format!("item.content[{i}].type"),
                    ));
                }
                if let Some(part_text) = part["text"].as_str() {
                    text.push(part_text);
                }
            }
            Ok(text.join(" "))
        }
        "function_call_output" => {
            for field in ["call_id", "output"] {
                if !item[field].is_string() {
                    return Err((
                        "missing_required_parameter",
                        format!("Missing required parameter: 'item.{field}'."),
                        format!("item.{field}"),
                    ));
                }
            }
            Ok(item["output"].as_str().unwrap_or_default().to_string())
        }
        "function_call" => Ok(String::new()),
        other => Err((
            "invalid_value",
            format!(
                "Invalid value: '{other}'. Supported values are: 'message', 'function_call', and 'function_call_output'."
            ),
            "item.type".into(),
        )),
    }
}
