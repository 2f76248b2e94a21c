//! AssemblyAI Universal-Streaming v3 (`/v3/ws`): the caller's μ-law goes
//! out as binary messages, the words come back as `Turn` messages that end
//! with `end_of_turn: true`.
//!
//! Wire format: <https://www.assemblyai.com/docs/api-reference/streaming>,
//! the message sequence
//! <https://www.assemblyai.com/docs/streaming/universal-streaming/message-sequence>,
//! and the Python SDK's `assemblyai/streaming/v3/models.py` (parameters,
//! message types, `StreamingErrorCodes`).
//!
//! What shapes this dialect:
//! - Every binary message must carry 50–1000 ms of audio, or the session is
//!   closed with 3007, so Twilio's 20 ms frames are batched to 100 ms, a
//!   replay is cut into pieces of at most 500 ms, and a short tail is padded
//!   with μ-law silence.
//! - Words are immutable and `transcript` is the whole turn so far;
//!   `utterance` is filled at a pause the model thinks may end the turn (the
//!   docs' cue for starting the LLM early), which is this dialect's
//!   [`Heard::EagerEnd`]. It carries the turn's `transcript`, not
//!   `utterance`: a turn may hold several utterances and the docs say the
//!   turn's text is always `transcript`.

use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tracing::{debug, warn};

use super::vocabulary_terms;
use super::{Closed, Dialect, Heard, StreamSettings, StreamingSpeechToText, TurnsBy, json_message};
use crate::providers::ProviderError;
use crate::providers::socket::{request, ws_scheme};
use crate::redact::outside;

const PROVIDER: &str = "assemblyai";

/// μ-law bytes per binary message in a call: 100 ms (5 Twilio frames), the
/// docs' suggested size range and a small added delay.
const BATCH: usize = 800;
/// The least a message may carry: 50 ms.
const MIN_MESSAGE: usize = 400;
/// The most this dialect puts in one message (500 ms), when replaying;
/// the service's limit is 1000 ms.
const MAX_MESSAGE: usize = 4000;
/// μ-law silence, for padding a short tail.
const SILENCE: u8 = 0xFF;

/// With the provider ending turns: the values of AssemblyAI's voice-agent
/// guide (the Pipecat integration's defaults).
const CONFIDENCE: &str = "0.4";
const MIN_TURN_SILENCE: &str = "400";
const MAX_TURN_SILENCE: &str = "1280";
/// With Pronto ending turns: the model never confident enough, and a long
/// silence as the backstop should `ForceEndpoint` never come.
const PRONTO_CONFIDENCE: &str = "1.0";
const PRONTO_MAX_TURN_SILENCE: &str = "10000";

/// AssemblyAI streaming speech-to-text.
pub struct AssemblyAi {
    settings: StreamSettings,
}

impl AssemblyAi {
    /// `settings.endpoint.base_url`: `wss://streaming.assemblyai.com` (or
    /// the EU host); `http(s)://` is taken as `ws(s)://`.
    pub fn new(settings: StreamSettings) -> AssemblyAi {
        AssemblyAi { settings }
    }
}

impl StreamingSpeechToText for AssemblyAi {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn dialect(&self) -> Box<dyn Dialect> {
        Box::new(Stream::new(self.settings.clone()))
    }
}

/// One call's AssemblyAI session.
struct Stream {
    settings: StreamSettings,
    /// Audio waiting for a full batch.
    pending: Vec<u8>,
    /// A turn has been heard (words or `SpeechStarted`) and not ended.
    turn_open: bool,
    /// `ForceEndpoint` sent and its end of turn not yet received.
    forcing: bool,
    /// A `ForceEndpoint` lost with a dropped connection: sent again after
    /// the replay.
    force_again: bool,
    /// The `turn_order` of the last ended turn on this connection.
    last_ended: Option<u64>,
    /// The transcript last reported as a partial.
    last_partial: String,
    /// The transcript reported as [`Heard::EagerEnd`] in this turn.
    eager: Option<String>,
    /// `Terminate` sent: a close now is the expected end.
    finished: bool,
}

impl Stream {
    fn new(settings: StreamSettings) -> Stream {
        Stream {
            settings,
            pending: Vec::with_capacity(BATCH),
            turn_open: false,
            forcing: false,
            force_again: false,
            last_ended: None,
            last_partial: String::new(),
            eager: None,
            finished: false,
        }
    }

    fn eager_mode(&self) -> bool {
        matches!(self.settings.turns, TurnsBy::Provider { eager: true, .. })
    }

    /// The `/v3/ws` URL with its query.
    fn url(&self) -> String {
        let base = ws_scheme(&self.settings.endpoint.url("/v3/ws"));
        let model = if !self.settings.model.is_empty() {
            self.settings.model.as_str()
        } else if self.settings.language.is_empty() || self.settings.language == "en" {
            "universal-streaming-english"
        } else {
            "universal-streaming-multilingual"
        };
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("sample_rate", "8000")
            .append_pair("encoding", "pcm_mulaw")
            .append_pair("speech_model", model)
            // The unformatted end of turn is final; a formatted copy would
            // only come later.
            .append_pair("format_turns", "false");
        match self.settings.turns {
            TurnsBy::Provider { .. } => {
                query
                    .append_pair("end_of_turn_confidence_threshold", CONFIDENCE)
                    .append_pair("min_turn_silence", MIN_TURN_SILENCE)
                    .append_pair("max_turn_silence", MAX_TURN_SILENCE);
            }
            TurnsBy::Pronto => {
                query
                    .append_pair("end_of_turn_confidence_threshold", PRONTO_CONFIDENCE)
                    .append_pair("max_turn_silence", PRONTO_MAX_TURN_SILENCE);
            }
        }
        let terms = keyterms(&self.settings.vocabulary);
        if !terms.is_empty() {
            // A JSON array of strings, as in AssemblyAI's keyterms guide
            // (https://www.assemblyai.com/docs/streaming/keyterms-prompting).
            query.append_pair(
                "keyterms_prompt",
                &serde_json::Value::from(terms).to_string(),
            );
        }
        format!("{base}?{}", query.finish())
    }

    /// Sends what is batched, padded to the least the service accepts.
    fn flush(&mut self, out: &mut Vec<Message>) {
        if self.pending.is_empty() {
            return;
        }
        if self.pending.len() < MIN_MESSAGE {
            self.pending.resize(MIN_MESSAGE, SILENCE);
        }
        let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(BATCH));
        out.push(Message::Binary(chunk.into()));
    }

    fn turn(&mut self, turn: &serde_json::Value, heard: &mut Vec<Heard>) {
        let order = turn["turn_order"].as_u64().unwrap_or(0);
        let end = turn["end_of_turn"].as_bool().unwrap_or(false);
        let transcript = turn["transcript"].as_str().unwrap_or_default();
        if self.last_ended.is_some_and(|last| order <= last) {
            // The formatted copy of a turn already ended, or a late one.
            debug!(provider = PROVIDER, order, "turn already ended; ignored");
            return;
        }
        if !end {
            let words = turn["words"].as_array().is_some_and(|w| !w.is_empty());
            if words || !transcript.is_empty() {
                self.turn_open = true;
            }
            if self.eager.as_deref().is_some_and(|e| e != transcript) {
                // New words after the pause: the eager text is not final.
                self.eager = None;
                heard.push(Heard::Resumed);
            }
            if !transcript.is_empty() && transcript != self.last_partial {
                self.last_partial = transcript.to_string();
                heard.push(Heard::Partial(transcript.to_string()));
            }
            let utterance = turn["utterance"].as_str().unwrap_or_default();
            if self.eager_mode()
                && !utterance.is_empty()
                && !transcript.is_empty()
                && self.eager.is_none()
            {
                self.eager = Some(transcript.to_string());
                heard.push(Heard::EagerEnd(transcript.to_string()));
            }
            return;
        }
        if transcript.is_empty() && !self.turn_open && !self.forcing {
            // Nothing was said and nobody asked: not a turn for Pronto.
            debug!(provider = PROVIDER, order, "empty end of turn; ignored");
            self.last_ended = Some(order);
            return;
        }
        if self.eager.as_deref().is_some_and(|e| e != transcript) {
            heard.push(Heard::Resumed);
        }
        heard.push(Heard::TurnEnded {
            text: transcript.to_string(),
            forced: self.forcing,
        });
        self.last_ended = Some(order);
        self.forcing = false;
        self.turn_open = false;
        self.eager = None;
        self.last_partial.clear();
    }
}

impl Dialect for Stream {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn request(&self) -> Result<Request, ProviderError> {
        // The bare key, no scheme.
        request(
            PROVIDER,
            &self.url(),
            self.settings.endpoint.api_key.expose(),
        )
    }

    fn opening(&mut self, _out: &mut Vec<Message>) {
        // A new session: its turn numbers start again, and the driver
        // replays the audio since the last final, batched part included.
        self.pending.clear();
        self.last_ended = None;
        self.last_partial.clear();
        self.eager = None;
        self.turn_open = false;
        self.force_again = self.forcing;
    }

    fn audio(&mut self, mulaw: &[u8], out: &mut Vec<Message>) {
        self.pending.extend_from_slice(mulaw);
        while self.pending.len() >= BATCH {
            let take = self.pending.len().min(MAX_MESSAGE);
            let chunk: Vec<u8> = self.pending.drain(..take).collect();
            out.push(Message::Binary(chunk.into()));
        }
        if self.force_again {
            self.force_again = false;
            self.turn_open = true;
            self.flush(out);
            out.push(Message::Text(r#"{"type":"ForceEndpoint"}"#.into()));
        }
    }

    fn force_end(&mut self, out: &mut Vec<Message>, _heard: &mut Vec<Heard>) {
        // The turn's last words may still be in the batch. Even with no
        // words heard yet, they may be on their way (Pronto heard the pause
        // first): ask, and the turn's end brings them. If nothing was said,
        // Pronto stops waiting on its own.
        self.flush(out);
        if !self.forcing {
            self.forcing = true;
            out.push(Message::Text(r#"{"type":"ForceEndpoint"}"#.into()));
        }
    }

    fn finish(&mut self, out: &mut Vec<Message>) {
        self.flush(out);
        self.finished = true;
        out.push(Message::Text(r#"{"type":"Terminate"}"#.into()));
    }

    fn text(
        &mut self,
        text: &str,
        _out: &mut Vec<Message>,
        heard: &mut Vec<Heard>,
    ) -> Result<(), Closed> {
        let Some(message) = json_message(PROVIDER, text) else {
            return Ok(());
        };
        match message["type"].as_str().unwrap_or_default() {
            "Begin" => debug!(
                provider = PROVIDER,
                session = %outside(message["id"].as_str().unwrap_or_default()),
                "session began"
            ),
            "SpeechStarted" => {
                self.turn_open = true;
                heard.push(Heard::SpeechStarted);
            }
            "Turn" => self.turn(&message, heard),
            "Termination" => debug!(provider = PROVIDER, "session terminated"),
            "Error" => {
                let code = message["error_code"]
                    .as_u64()
                    .and_then(|c| u16::try_from(c).ok());
                let detail = message["error"].as_str().unwrap_or_default();
                return Err(match code {
                    Some(code) => classify(code, detail, self.finished),
                    None => Closed::Fatal(ProviderError::protocol(PROVIDER, detail)),
                });
            }
            "Warning" => warn!(
                provider = PROVIDER,
                code = %message["warning_code"],
                warning = %outside(message["warning"].as_str().unwrap_or_default()),
                "provider warning"
            ),
            other => debug!(provider = PROVIDER, kind = %outside(other), "message ignored"),
        }
        Ok(())
    }

    fn closed(&mut self, code: Option<u16>, reason: &str) -> Closed {
        match code {
            None if self.finished => Closed::Clean,
            None => Closed::Retry(ProviderError::Connect {
                provider: PROVIDER,
                detail: "connection closed without a close frame".into(),
            }),
            Some(code) => classify(code, reason, self.finished),
        }
    }
}

/// A close code (also an `Error`'s `error_code`), per the SDK's
/// `StreamingErrorCodes`.
fn classify(code: u16, reason: &str, finished: bool) -> Closed {
    let error = error(code, reason);
    match code {
        1000 if finished => Closed::Clean,
        // A normal close we did not ask for, a server going away or
        // restarting, a temporary condition (1013), a server error (3005),
        // the session's maximum duration (3008), an idle session (4031):
        // a new session works.
        1000 | 1001 | 1006 | 1011 | 1012 | 1013 | 1014 | 3005 | 3008 | 4031 => Closed::Retry(error),
        // The key (4001), the account (4002, 4003, 4102), concurrency (3009),
        // what we sent (3006, 3007, 4000, 4029, 4032–4034, 4100, 4101), a
        // session taken over (4030, 4103): the same again would fail again.
        _ => Closed::Fatal(error),
    }
}

/// The error for a code: the account's refusals as the HTTP statuses they
/// mean, so that they read as such in logs and checks.
fn error(code: u16, reason: &str) -> ProviderError {
    let status = match code {
        4001 => Some(401),
        4002 => Some(402),
        4003 => Some(403),
        3009 | 4029 | 4102 => Some(429),
        _ => None,
    };
    match status {
        Some(status) => ProviderError::Status {
            provider: PROVIDER,
            status,
            message: outside(&format!("{code} {reason}")),
        },
        None => ProviderError::protocol(PROVIDER, format!("closed with {code}: {reason}")),
    }
}

/// The vocabulary's terms: comma- or line-separated.
fn keyterms(vocabulary: &str) -> Vec<String> {
    vocabulary_terms(vocabulary, &[',', '\n'])
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests;
