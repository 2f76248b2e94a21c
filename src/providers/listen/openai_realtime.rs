//! OpenAI Realtime transcription session (the GA shapes):
//! `GET {base}/realtime?intent=transcription`, a `session.update` of type
//! `transcription` with `audio/pcmu` input, the caller's μ-law as base64 in
//! `input_audio_buffer.append`, and each turn's text in
//! `conversation.item.input_audio_transcription.completed`.
//!
//! Wire format: <https://developers.openai.com/api/docs/guides/realtime-transcription>,
//! <https://developers.openai.com/api/docs/guides/realtime-vad>, and the
//! openai-python types `src/openai/types/realtime/*`.
//!
//! What shapes this dialect:
//! - No `model=` in the URL (that makes a conversation session) and no
//!   `OpenAI-Beta` header (the GA endpoint refuses beta shapes with close
//!   4000).
//! - A session starts as PCM 24 kHz: audio is held until `session.updated`
//!   confirms `audio/pcmu`, and a session that says otherwise is fatal,
//!   since μ-law read as PCM would be transcribed as noise.
//! - Completions may arrive out of order (each item is transcribed on its
//!   own): turns are reported in commit order, keyed by `item_id`.

use std::collections::{HashMap, VecDeque};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tracing::{debug, warn};

use super::{Closed, Dialect, Heard, StreamSettings, StreamingSpeechToText, TurnsBy, json_message};
use crate::providers::ProviderError;
use crate::providers::socket::{request, ws_scheme};
use crate::redact::outside;

const PROVIDER: &str = "openai-realtime";

/// Used when `settings.model` is empty: the cheaper of the two
/// transcription models that stream deltas.
const DEFAULT_MODEL: &str = "gpt-4o-mini-transcribe";
/// Most μ-law bytes per `append` (1 s), when replaying.
const MAX_APPEND: usize = 8000;
/// Audio held until the session is confirmed: the driver's 30 s replay and
/// a few seconds of a slow confirmation. Older audio is dropped beyond it.
const MAX_HELD: usize = 35 * 8000;

/// OpenAI Realtime transcription.
pub struct OpenAiRealtime {
    settings: StreamSettings,
}

impl OpenAiRealtime {
    /// `settings.endpoint.base_url`: `https://api.openai.com/v1` (taken as
    /// `wss://`) or `wss://…/v1`.
    pub fn new(settings: StreamSettings) -> OpenAiRealtime {
        OpenAiRealtime { settings }
    }
}

impl StreamingSpeechToText for OpenAiRealtime {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn dialect(&self) -> Box<dyn Dialect> {
        Box::new(Session::new(self.settings.clone()))
    }
}

/// A committed turn waiting for its transcript.
#[derive(Debug)]
struct Committed {
    /// `None`: a commit the server refused as empty.
    item: Option<String>,
    forced: bool,
    text: Option<String>,
}

/// What waits for the session's confirmation.
struct Held {
    message: Message,
    /// μ-law bytes in it (0: a commit).
    bytes: usize,
}

/// One call's transcription session.
struct Session {
    settings: StreamSettings,
    /// `session.updated` said `audio/pcmu`.
    confirmed: bool,
    held: VecDeque<Held>,
    held_bytes: usize,
    /// μ-law appended (or held) since the last commit.
    since_commit: usize,
    /// Commits sent by `force_end` whose `committed` has not come.
    forced_commits: usize,
    /// A forced commit lost with a dropped connection: sent again after
    /// the replay.
    commit_again: bool,
    /// Turns in commit order.
    turns: VecDeque<Committed>,
    /// Deltas so far, per item.
    deltas: HashMap<String, String>,
    /// The call is over: a close now is the expected end.
    finished: bool,
}

impl Session {
    fn new(settings: StreamSettings) -> Session {
        Session {
            settings,
            confirmed: false,
            held: VecDeque::new(),
            held_bytes: 0,
            since_commit: 0,
            forced_commits: 0,
            commit_again: false,
            turns: VecDeque::new(),
            deltas: HashMap::new(),
            finished: false,
        }
    }

    fn url(&self) -> String {
        let base = ws_scheme(&self.settings.endpoint.url("/realtime"));
        format!("{base}?intent=transcription")
    }

    fn session_update(&self) -> Value {
        let model = if self.settings.model.is_empty() {
            DEFAULT_MODEL
        } else {
            self.settings.model.as_str()
        };
        let mut transcription = json!({"model": model});
        if !self.settings.language.is_empty() {
            transcription["language"] = json!(self.settings.language);
        }
        if !self.settings.vocabulary.is_empty() {
            transcription["prompt"] = json!(self.settings.vocabulary);
        }
        let turn_detection = match self.settings.turns {
            // Explicit values: OpenAI's own examples disagree on the
            // silence (200 vs 500 ms).
            TurnsBy::Provider {
                semantic: false, ..
            } => json!({
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 500,
            }),
            // "high": when unsure the model waits at most 2 s (4 s for
            // auto/medium, 8 s for low). On the phone 4 s of dead air reads
            // as a dropped line, and a caller cut off mid-thought simply
            // goes on talking, which Pronto hears as barge-in.
            TurnsBy::Provider { semantic: true, .. } => {
                json!({"type": "semantic_vad", "eagerness": "high"})
            }
            TurnsBy::Pronto => Value::Null,
        };
        json!({
            "type": "session.update",
            "session": {
                "type": "transcription",
                "audio": {"input": {
                    "format": {"type": "audio/pcmu"},
                    "transcription": transcription,
                    "turn_detection": turn_detection,
                }},
            },
        })
    }

    /// Sends now, or holds until the session is confirmed.
    fn send(&mut self, message: Message, bytes: usize, out: &mut Vec<Message>) {
        if self.confirmed {
            out.push(message);
            return;
        }
        self.held.push_back(Held { message, bytes });
        self.held_bytes += bytes;
        let mut dropped = 0;
        while self.held_bytes > MAX_HELD {
            let Some(index) = self.held.iter().position(|h| h.bytes > 0) else {
                break;
            };
            if let Some(old) = self.held.remove(index) {
                self.held_bytes -= old.bytes;
                dropped += old.bytes;
            }
        }
        if dropped > 0 {
            warn!(
                provider = PROVIDER,
                dropped_ms = dropped / 8,
                "session not confirmed yet; oldest audio dropped"
            );
        }
    }

    fn commit(&mut self, out: &mut Vec<Message>) {
        self.since_commit = 0;
        let commit = Message::Text(r#"{"type":"input_audio_buffer.commit"}"#.into());
        self.send(commit, 0, out);
    }

    /// Reports the turns whose transcripts are in, in commit order.
    fn report(&mut self, heard: &mut Vec<Heard>) {
        while self.turns.front().is_some_and(|t| t.text.is_some()) {
            let Some(turn) = self.turns.pop_front() else {
                break;
            };
            heard.push(Heard::TurnEnded {
                text: turn.text.unwrap_or_default(),
                forced: turn.forced,
            });
        }
    }

    /// An item's transcript (empty if its transcription failed).
    fn completed(&mut self, item: &str, text: String, heard: &mut Vec<Heard>) {
        self.deltas.remove(item);
        match self
            .turns
            .iter_mut()
            .find(|t| t.item.as_deref() == Some(item))
        {
            Some(turn) => turn.text = Some(text),
            None => {
                // Its `committed` was never seen (sent before a reconnect,
                // or lost): it is reported after those already waiting.
                debug!(provider = PROVIDER, item = %outside(item), "completion of an unknown item");
                self.turns.push_back(Committed {
                    item: Some(item.to_string()),
                    forced: false,
                    text: Some(text),
                });
            }
        }
        self.report(heard);
    }

    fn session_updated(&mut self, message: &Value, out: &mut Vec<Message>) -> Result<(), Closed> {
        let format = message["session"]["audio"]["input"]["format"]["type"]
            .as_str()
            .unwrap_or_default();
        if format != "audio/pcmu" {
            return Err(Closed::Fatal(ProviderError::protocol(
                PROVIDER,
                format!("the session's input format is {format:?}, not audio/pcmu"),
            )));
        }
        if !self.confirmed {
            self.confirmed = true;
            self.held_bytes = 0;
            out.extend(self.held.drain(..).map(|h| h.message));
        }
        Ok(())
    }

    fn error(&mut self, message: &Value, heard: &mut Vec<Heard>) -> Result<(), Closed> {
        let error = &message["error"];
        let code = error["code"].as_str().unwrap_or_default();
        let detail = error["message"].as_str().unwrap_or_default();
        if code == "input_audio_buffer_commit_empty" && self.forced_commits > 0 {
            // Nothing to transcribe: the forced turn is empty.
            self.forced_commits -= 1;
            self.turns.push_back(Committed {
                item: None,
                forced: true,
                text: Some(String::new()),
            });
            self.report(heard);
            return Ok(());
        }
        if !self.confirmed || code == "beta_api_shape_disabled" {
            // The session update failed: the session would stay PCM.
            return Err(Closed::Fatal(ProviderError::protocol(
                PROVIDER,
                format!("{code}: {detail}"),
            )));
        }
        warn!(
            provider = PROVIDER,
            code = %outside(code),
            error = %outside(detail),
            "provider error"
        );
        Ok(())
    }
}

impl Dialect for Session {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn request(&self) -> Result<Request, ProviderError> {
        let key = format!("Bearer {}", self.settings.endpoint.api_key.expose());
        request(PROVIDER, &self.url(), &key)
    }

    fn opening(&mut self, out: &mut Vec<Message>) {
        // A new session: nothing of the old one will be answered, and the
        // driver replays the audio since the last final.
        self.confirmed = false;
        self.held.clear();
        self.held_bytes = 0;
        self.since_commit = 0;
        self.commit_again = self.forced_commits > 0;
        self.forced_commits = 0;
        self.turns.clear();
        self.deltas.clear();
        out.push(Message::Text(self.session_update().to_string().into()));
    }

    fn audio(&mut self, mulaw: &[u8], out: &mut Vec<Message>) {
        for chunk in mulaw.chunks(MAX_APPEND) {
            let append = json!({
                "type": "input_audio_buffer.append",
                "audio": STANDARD.encode(chunk),
            });
            self.since_commit += chunk.len();
            self.send(Message::Text(append.to_string().into()), chunk.len(), out);
        }
        if self.commit_again {
            self.commit_again = false;
            self.forced_commits += 1;
            self.commit(out);
        }
    }

    fn force_end(&mut self, out: &mut Vec<Message>, heard: &mut Vec<Heard>) {
        if self.since_commit == 0 && self.settings.turns == TurnsBy::Pronto {
            // Nothing since the last turn: the server would refuse the
            // commit as empty; answer the empty turn after those pending.
            self.turns.push_back(Committed {
                item: None,
                forced: true,
                text: Some(String::new()),
            });
            self.report(heard);
            return;
        }
        self.forced_commits += 1;
        self.commit(out);
    }

    fn finish(&mut self, out: &mut Vec<Message>) {
        // No closing event exists, and a turn still uncommitted has nobody
        // left to answer: a normal close frame ends the session.
        self.finished = true;
        out.push(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "call over".into(),
        })));
    }

    fn text(
        &mut self,
        text: &str,
        out: &mut Vec<Message>,
        heard: &mut Vec<Heard>,
    ) -> Result<(), Closed> {
        let Some(message) = json_message(PROVIDER, text) else {
            return Ok(());
        };
        let item = message["item_id"].as_str().unwrap_or_default();
        match message["type"].as_str().unwrap_or_default() {
            "session.created" => debug!(provider = PROVIDER, "session created"),
            "session.updated" => self.session_updated(&message, out)?,
            "input_audio_buffer.speech_started" => heard.push(Heard::SpeechStarted),
            "input_audio_buffer.speech_stopped" => heard.push(Heard::SpeechStopped),
            "input_audio_buffer.committed" => {
                let forced = self.forced_commits > 0;
                if forced {
                    self.forced_commits -= 1;
                } else {
                    // The server's voice detection committed the turn.
                    self.since_commit = 0;
                }
                self.turns.push_back(Committed {
                    item: Some(item.to_string()),
                    forced,
                    text: None,
                });
            }
            "conversation.item.input_audio_transcription.delta" => {
                let so_far = self.deltas.entry(item.to_string()).or_default();
                so_far.push_str(message["delta"].as_str().unwrap_or_default());
                let so_far = so_far.trim().to_string();
                if !so_far.is_empty() {
                    heard.push(Heard::Partial(so_far));
                }
            }
            "conversation.item.input_audio_transcription.completed" => {
                let text = message["transcript"].as_str().unwrap_or_default();
                self.completed(item, text.trim().to_string(), heard);
            }
            "conversation.item.input_audio_transcription.failed" => {
                warn!(
                    provider = PROVIDER,
                    error = %outside(&message["error"].to_string()),
                    "transcription of a turn failed"
                );
                self.completed(item, String::new(), heard);
            }
            "error" => self.error(&message, heard)?,
            other => debug!(provider = PROVIDER, kind = %outside(other), "event ignored"),
        }
        Ok(())
    }

    fn closed(&mut self, code: Option<u16>, reason: &str) -> Closed {
        let error = || ProviderError::protocol(PROVIDER, format!("closed with {code:?}: {reason}"));
        match code {
            None | Some(1000) if self.finished => Closed::Clean,
            // The GA endpoint refusing a beta shape (4000), a policy
            // violation (1008), other application codes: the same request
            // would be refused again.
            Some(1008) | Some(4000..=4999) => Closed::Fatal(error()),
            // A drop, a server going away (the session's time cap is 1001),
            // a server error.
            _ => Closed::Retry(error()),
        }
    }
}

#[cfg(test)]
mod tests;
