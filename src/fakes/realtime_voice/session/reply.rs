//! The replies of a connection: `response.create` and the automatic reply
//! after a caller's turn start a response; [`Conn::step_reply`] streams it
//! on the connection's clock (audio chunks with their words, then the
//! function call, then `response.done`), and a barge-in or
//! `response.cancel` closes it as it stands.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::super::session_config::bytes_per_ms;
use super::super::{DEFAULT_REPLY, Reply, ReplyRecord, g711a, reply_audio, usage, words};
use super::{Conn, ItemKind, after};
use crate::audio::mulaw;

/// Characters of a function call's arguments per delta.
const ARGUMENTS_PER_DELTA: usize = 16;

/// The spoken item of a reply.
struct Spoken {
    item_id: String,
    output_index: usize,
    words: Vec<String>,
    /// The reply's audio in the output format.
    audio: Vec<u8>,
    sent: usize,
    words_sent: usize,
    finished: bool,
}

/// The response in progress.
pub(super) struct Active {
    id: String,
    /// Its index on the connection ([`reply_audio`]'s `reply_index`).
    number: usize,
    /// The items done, for `response.done`.
    output: Vec<Value>,
    spoken: Option<Spoken>,
    call: Option<(String, String)>,
    call_words: usize,
    pub(super) next_at: Instant,
    caller_audio_ms: u64,
    input_words: usize,
    format: Value,
    voice: Value,
}

impl Conn {
    pub(super) fn response_create(&mut self, event: &Value) {
        if let Some(active) = &self.reply {
            let message = format!(
                "Conversation already has an active response in progress: {}. Wait until the response is finished before creating a new one.",
                active.id
            );
            self.out.error(
                "conversation_already_has_active_response",
                &message,
                None,
                event,
            );
            return;
        }
        let params = &event["response"];
        if !params.is_null() && !params.is_object() {
            let message = "Invalid type for 'response': expected an object.";
            self.out
                .error("invalid_type", message, Some("response"), event);
            return;
        }
        self.start_reply(params);
    }

    pub(super) fn response_cancel(&mut self, event: &Value) {
        let active = self.reply.as_ref().is_some_and(|active| {
            event["response_id"]
                .as_str()
                .is_none_or(|id| id == active.id)
        });
        if active {
            self.cancel("client_cancelled");
        } else {
            let message = "Cancellation failed: no active response found";
            self.out
                .error("response_cancel_not_active", message, None, event);
        }
    }

    /// What the next reply says: a line quoted in the response's
    /// instructions (a client asking for its fixed line, as the model would
    /// follow it), else the script, else an echo of the caller, else
    /// [`DEFAULT_REPLY`].
    fn choose_reply(&mut self, instructions: Option<&str>) -> Reply {
        if let Some(line) = instructions.and_then(quoted) {
            return Reply::say(line);
        }
        let heard = self.user_text.take();
        if let Some(reply) = self.shared.next_reply() {
            return reply;
        }
        match heard {
            Some(text) => Reply::say(&format!("You said: {text}")),
            None => Reply::say(DEFAULT_REPLY),
        }
    }

    fn response_json(&self, active: &Active, status: &str, details: Value, usage: Value) -> Value {
        json!({
            "object": "realtime.response",
            "id": active.id,
            "status": status,
            "status_details": details,
            "output": active.output,
            "conversation_id": format!("conv_{}", self.index),
            "output_modalities": ["audio"],
            "max_output_tokens": "inf",
            "audio": {"output": {"format": active.format, "voice": active.voice}},
            "usage": usage,
            "metadata": null,
        })
    }

    /// `response.created`, and the spoken item's start; the rest goes out
    /// in [`Conn::step_reply`].
    pub(super) fn start_reply(&mut self, params: &Value) {
        let instructions = params["instructions"].as_str().map(str::to_string);
        let reply = self.choose_reply(instructions.as_deref());
        let number = self.replies;
        self.replies += 1;
        let id = self.next_id("resp");
        let format = self.session["audio"]["output"]["format"].clone();
        let bytes_per_ms = bytes_per_ms(&format);
        let mut active = Active {
            id: id.clone(),
            number,
            output: Vec::new(),
            spoken: None,
            call: reply.function_call.clone(),
            call_words: 0,
            next_at: after(Instant::now(), self.shared.latency().first_audio),
            caller_audio_ms: self.audio_us / 1000,
            input_words: words(self.session["instructions"].as_str().unwrap_or_default())
                + words(instructions.as_deref().unwrap_or_default())
                + self.text_words,
            format: format.clone(),
            voice: self.session["audio"]["output"]["voice"].clone(),
        };
        let audio = if reply.speaks() {
            let mulaw = reply_audio(number, reply.spoken_ms() as usize * 8);
            output_audio(mulaw, &format)
        } else {
            Vec::new()
        };
        self.record(|c| {
            c.replies.push(ReplyRecord {
                response_id: id.clone(),
                transcript: reply
                    .transcript
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
                audio_bytes: audio.len(),
                status: "in_progress".into(),
                instructions,
                ..ReplyRecord::default()
            });
        });
        let created = self.response_json(&active, "in_progress", Value::Null, Value::Null);
        self.out
            .send(json!({"type": "response.created", "response": created}));
        self.out.send(json!({
            "type": "rate_limits.updated",
            "rate_limits": [
                {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
                {"name": "tokens", "limit": 400_000, "remaining": 399_000, "reset_seconds": 0.15},
            ],
        }));
        if reply.speaks() {
            let item_id = self.next_id("item");
            let item = json!({
                "id": item_id, "object": "realtime.item", "type": "message",
                "status": "in_progress", "role": "assistant", "content": [],
            });
            self.out.send(json!({
                "type": "response.output_item.added",
                "response_id": id, "output_index": 0, "item": item,
            }));
            self.item_added(item, ItemKind::AssistantAudio);
            if let Some(known) = self.items.get_mut(&item_id) {
                known.bytes_per_ms = bytes_per_ms;
            }
            self.out.send(json!({
                "type": "response.content_part.added",
                "response_id": id, "item_id": item_id, "output_index": 0, "content_index": 0,
                "part": {"type": "audio", "transcript": ""},
            }));
            let spoken_id = item_id.clone();
            self.record_reply(number, |r| r.item_id = Some(spoken_id));
            active.spoken = Some(Spoken {
                item_id,
                output_index: 0,
                words: reply
                    .transcript
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
                audio,
                sent: 0,
                words_sent: 0,
                finished: false,
            });
        }
        self.reply = Some(active);
    }

    /// Sends what of the reply is due: an audio chunk and its words per
    /// step, then the function call, then `response.done`.
    pub(super) fn step_reply(&mut self, now: Instant) {
        while let Some(mut active) = self.reply.take() {
            if active.next_at > now {
                self.reply = Some(active);
                return;
            }
            let latency = self.shared.latency();
            let speaking = active.spoken.as_ref().is_some_and(|s| !s.finished);
            if speaking {
                self.send_chunk(&mut active, latency.chunk_ms);
                active.next_at = after(active.next_at, latency.delta_interval);
                self.reply = Some(active);
                continue;
            }
            if let Some((name, arguments)) = active.call.take() {
                self.send_call(&mut active, &name, &arguments);
            }
            self.finish(active, "completed", Value::Null);
            return;
        }
    }

    fn send_chunk(&mut self, active: &mut Active, chunk_ms: u32) {
        let Some(spoken) = active.spoken.as_mut() else {
            return;
        };
        let chunk = (chunk_ms.max(1) as usize * bytes_per_ms(&active.format)).max(1);
        let end = (spoken.sent + chunk).min(spoken.audio.len());
        let bytes = &spoken.audio[spoken.sent..end];
        if !bytes.is_empty() {
            self.out.send(json!({
                "type": "response.output_audio.delta",
                "response_id": active.id, "item_id": spoken.item_id,
                "output_index": spoken.output_index, "content_index": 0,
                "delta": STANDARD.encode(bytes),
            }));
            self.audio_out_sent = true;
            if let Some(item) = self.items.get_mut(&spoken.item_id)
                && !item.truncated
            {
                item.audio_bytes += bytes.len();
            }
        }
        spoken.sent = end;
        let sent = spoken.sent;
        self.record_reply(active.number, |r| r.audio_bytes_sent = sent);
        // The words keep pace with the audio.
        let total = spoken.words.len();
        let due = if spoken.audio.is_empty() {
            total
        } else {
            (spoken.sent * total).div_ceil(spoken.audio.len())
        };
        while spoken.words_sent < due {
            let i = spoken.words_sent;
            let delta = if i + 1 < total {
                format!("{} ", spoken.words[i])
            } else {
                spoken.words[i].clone()
            };
            self.out.send(json!({
                "type": "response.output_audio_transcript.delta",
                "response_id": active.id, "item_id": spoken.item_id,
                "output_index": spoken.output_index, "content_index": 0,
                "delta": delta,
            }));
            spoken.words_sent += 1;
        }
        if spoken.sent >= spoken.audio.len() {
            self.finish_spoken(active, "completed");
        }
    }

    /// The spoken item's closing events (`status` `incomplete` when cut).
    fn finish_spoken(&mut self, active: &mut Active, status: &str) {
        let Some(spoken) = active.spoken.as_mut().filter(|s| !s.finished) else {
            return;
        };
        spoken.finished = true;
        let transcript = spoken.words[..spoken.words_sent].join(" ");
        let ids = json!({
            "response_id": active.id, "item_id": spoken.item_id,
            "output_index": spoken.output_index, "content_index": 0,
        });
        let with = |kind: &str, extra: Value| {
            let mut event = ids.clone();
            event["type"] = json!(kind);
            if let (Some(event), Some(extra)) = (event.as_object_mut(), extra.as_object()) {
                event.extend(extra.clone());
            }
            event
        };
        self.out.send(with("response.output_audio.done", json!({})));
        self.out.send(with(
            "response.output_audio_transcript.done",
            json!({"transcript": transcript}),
        ));
        self.out.send(with(
            "response.content_part.done",
            json!({"part": {"type": "audio", "transcript": transcript}}),
        ));
        let item = json!({
            "id": spoken.item_id, "object": "realtime.item", "type": "message",
            "status": status, "role": "assistant",
            "content": [{"type": "output_audio", "transcript": transcript}],
        });
        self.out.send(json!({
            "type": "response.output_item.done",
            "response_id": active.id, "output_index": spoken.output_index, "item": item,
        }));
        self.item_done(item.clone());
        active.output.push(item);
    }

    fn send_call(&mut self, active: &mut Active, name: &str, arguments: &str) {
        let item_id = self.next_id("item");
        let call_id = self.next_id("call");
        let output_index = active.output.len();
        let item = json!({
            "id": item_id, "object": "realtime.item", "type": "function_call",
            "status": "in_progress", "name": name, "call_id": call_id, "arguments": "",
        });
        self.out.send(json!({
            "type": "response.output_item.added",
            "response_id": active.id, "output_index": output_index, "item": item,
        }));
        self.item_added(item, ItemKind::FunctionCall);
        let chars: Vec<char> = arguments.chars().collect();
        for piece in chars.chunks(ARGUMENTS_PER_DELTA) {
            self.out.send(json!({
                "type": "response.function_call_arguments.delta",
                "response_id": active.id, "item_id": item_id, "output_index": output_index,
                "call_id": call_id, "delta": piece.iter().collect::<String>(),
            }));
        }
        self.out.send(json!({
            "type": "response.function_call_arguments.done",
            "response_id": active.id, "item_id": item_id, "output_index": output_index,
            "call_id": call_id, "name": name, "arguments": arguments,
        }));
        let done = json!({
            "id": item_id, "object": "realtime.item", "type": "function_call",
            "status": "completed", "name": name, "call_id": call_id, "arguments": arguments,
        });
        self.out.send(json!({
            "type": "response.output_item.done",
            "response_id": active.id, "output_index": output_index, "item": done,
        }));
        self.item_done(done.clone());
        active.output.push(done);
        active.call_words = words(arguments);
        let call = (name.to_string(), call_id, arguments.to_string());
        self.record_reply(active.number, |r| r.function_call = Some(call));
    }

    /// Cancels the reply in progress, if any (`turn_detected` or
    /// `client_cancelled`): its spoken item is closed as it stands.
    pub(super) fn cancel(&mut self, reason: &str) {
        let Some(mut active) = self.reply.take() else {
            return;
        };
        self.finish_spoken(&mut active, "incomplete");
        let details = json!({"type": "cancelled", "reason": reason});
        self.finish(active, "cancelled", details);
    }

    /// `response.done` with `status` and the usage of what was sent.
    fn finish(&mut self, active: Active, status: &str, details: Value) {
        let (audio_ms, spoken_words) = active.spoken.as_ref().map_or((0, 0), |s| {
            ((s.sent / bytes_per_ms(&active.format)) as u64, s.words_sent)
        });
        let usage = usage(
            active.caller_audio_ms,
            audio_ms,
            active.input_words,
            spoken_words + active.call_words,
        );
        // Recorded first: a test that has the event finds the record.
        let reason = details["reason"].as_str().map(str::to_string);
        self.record_reply(active.number, |r| {
            r.status = status.to_string();
            r.cancelled = status == "cancelled";
            r.cancel_reason = reason;
        });
        let response = self.response_json(&active, status, details, usage);
        self.out
            .send(json!({"type": "response.done", "response": response}));
    }
}

/// The first text in double quotes ("…" or “…”), if any.
fn quoted(text: &str) -> Option<&str> {
    let start = text.find(['"', '“'])?;
    let opening = text[start..].chars().next()?;
    let rest = &text[start + opening.len_utf8()..];
    let end = rest.find(['"', '”'])?;
    Some(rest[..end].trim()).filter(|line| !line.is_empty())
}

/// The reply's μ-law audio in the session's output format: as is for
/// `audio/pcmu`, transcoded for `audio/pcma`, and decoded with each sample
/// repeated three times (8 → 24 kHz) for `audio/pcm`.
fn output_audio(mulaw_audio: Vec<u8>, format: &Value) -> Vec<u8> {
    match format["type"].as_str() {
        Some("audio/pcmu") => mulaw_audio,
        Some("audio/pcma") => mulaw_audio
            .iter()
            .map(|&b| g711a::encode_sample(mulaw::decode_sample(b)))
            .collect(),
        _ => {
            let mut pcm = Vec::with_capacity(mulaw_audio.len() * 6);
            for &b in &mulaw_audio {
                let sample = mulaw::decode_sample(b).to_le_bytes();
                for _ in 0..3 {
                    pcm.extend_from_slice(&sample);
                }
            }
            pcm
        }
    }
}
