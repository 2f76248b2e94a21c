//! Deepgram `/v1/listen` (Nova-3 and the other non-Flux models): interim and
//! final `Results`, with silence-based endpointing
//! (<https://developers.deepgram.com/docs/understand-endpointing-interim-results>).
//!
//! `is_final` results are spans of audio that will not change; the turn is
//! their concatenation. When the provider ends turns, a result with
//! `speech_final` (a pause of `endpointing` ms) or an `UtteranceEnd` (no
//! word for `utterance_end_ms`) ends it. When Pronto ends turns, neither
//! does: endpointing stays on because it makes the finals come early, and
//! `force_end` answers at once with the finals when nothing is interim, or
//! sends `Finalize` and ends the turn on the result it flushes
//! (`from_finalize`). Deepgram only answers a `Finalize` "when there is a
//! noticeable amount of audio buffered"
//! (<https://developers.deepgram.com/docs/finalize>), hence the answer
//! without it when all is final already.
//!
//! A socket that hears nothing for 10 s is closed (`NET-0001`): after 5 s
//! without audio the dialect sends `KeepAlive`
//! (<https://developers.deepgram.com/docs/audio-keep-alive>).

use std::time::Duration;

use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response};
use tracing::debug;

use super::{Batch, PROVIDER, classify, control, keyterms, upgrade, url};
use crate::providers::ProviderError;
use crate::providers::listen::json_message;
use crate::providers::listen::{Closed, Dialect, Heard, StreamSettings, TurnsBy};
use crate::redact::{Secret, outside};

/// One Twilio frame (20 ms): `/v1/listen` takes any size, and batching
/// would only delay its endpointing.
const BATCH_BYTES: usize = 160;
/// Silence that makes a `speech_final` (ms).
const ENDPOINTING_MS: &str = "300";
/// No word for this long: `UtteranceEnd` (ms; 1000 is its minimum).
const UTTERANCE_END_MS: &str = "1000";
/// Without audio for this long, `KeepAlive`: Deepgram closes a socket
/// after 10 s without audio or one, and asks for one every 3–5 s
/// (<https://developers.deepgram.com/docs/audio-keep-alive>).
const KEEP_ALIVE_AFTER: Duration = Duration::from_secs(5);

pub(super) struct Nova {
    url: String,
    key: Secret,
    batch: Batch,
    /// Pronto ends turns: `speech_final` and `UtteranceEnd` do not.
    provider_turns: bool,
    /// The turn's `is_final` spans so far.
    finals: Vec<String>,
    /// The latest interim guess after them ("" when all is final).
    interim: String,
    /// `Finalize` is sent: its flushed result ends the turn.
    finalizing: bool,
    /// `CloseStream` is sent: the close that follows is the one asked for.
    finishing: bool,
}

impl Nova {
    pub(super) fn new(settings: &StreamSettings, model: &str) -> Nova {
        let mut query = vec![("model", model.to_string())];
        let language = settings.language.trim();
        if !language.is_empty() {
            query.push(("language", language.to_string()));
        }
        query.extend([
            ("encoding", "mulaw".to_string()),
            ("sample_rate", "8000".to_string()),
            ("channels", "1".to_string()),
            ("interim_results", "true".to_string()),
            ("endpointing", ENDPOINTING_MS.to_string()),
            ("utterance_end_ms", UTTERANCE_END_MS.to_string()),
            ("vad_events", "true".to_string()),
            ("smart_format", "true".to_string()),
        ]);
        for term in keyterms(&settings.vocabulary) {
            query.push(("keyterm", term.to_string()));
        }
        Nova {
            url: url(settings, "/v1/listen", &query),
            key: settings.endpoint.api_key.clone(),
            batch: Batch::new(BATCH_BYTES),
            provider_turns: matches!(settings.turns, TurnsBy::Provider { .. }),
            finals: Vec::new(),
            interim: String::new(),
            finalizing: false,
            finishing: false,
        }
    }

    /// The whole turn so far: the finals, then the interim guess.
    fn so_far(&self) -> String {
        let mut parts: Vec<&str> = self.finals.iter().map(String::as_str).collect();
        if !self.interim.is_empty() {
            parts.push(&self.interim);
        }
        parts.join(" ")
    }

    fn end_turn(&mut self, forced: bool, heard: &mut Vec<Heard>) {
        let text = self.so_far();
        self.finals.clear();
        self.interim.clear();
        self.finalizing = false;
        heard.push(Heard::TurnEnded { text, forced });
    }

    fn results(&mut self, message: &Value, heard: &mut Vec<Heard>) {
        let transcript = message["channel"]["alternatives"][0]["transcript"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .to_string();
        let is_final = message["is_final"].as_bool().unwrap_or(false);
        if !is_final {
            if !transcript.is_empty() {
                self.interim = transcript;
                heard.push(Heard::Partial(self.so_far()));
            }
            return;
        }
        self.interim.clear();
        if !transcript.is_empty() {
            self.finals.push(transcript);
        }
        let speech_final = message["speech_final"].as_bool().unwrap_or(false);
        let from_finalize = message["from_finalize"].as_bool().unwrap_or(false);
        if self.finalizing && (from_finalize || speech_final) {
            // The flush asked for; or an endpoint that made everything
            // final first, after which the flush has nothing to answer.
            self.end_turn(true, heard);
        } else if self.provider_turns && speech_final && !self.finals.is_empty() {
            self.end_turn(false, heard);
        } else if !self.finals.is_empty() {
            heard.push(Heard::Partial(self.so_far()));
        }
    }
}

impl Dialect for Nova {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn request(&self) -> Result<Request, ProviderError> {
        upgrade(&self.url, self.key.expose())
    }

    fn connected(&mut self, response: &Response) -> Result<(), ProviderError> {
        if let Some(id) = response
            .headers()
            .get("dg-request-id")
            .and_then(|v| v.to_str().ok())
        {
            debug!(provider = PROVIDER, request_id = %outside(id), "Deepgram stream open");
        }
        Ok(())
    }

    fn opening(&mut self, _out: &mut Vec<Message>) {
        // The driver replays the turn's audio from its start: the new
        // connection transcribes it all again.
        self.batch.clear();
        self.finals.clear();
        self.interim.clear();
        self.finalizing = false;
        self.finishing = false;
    }

    fn audio(&mut self, mulaw: &[u8], out: &mut Vec<Message>) {
        self.batch.push(mulaw, out);
    }

    fn force_end(&mut self, out: &mut Vec<Message>, heard: &mut Vec<Heard>) {
        if self.interim.is_empty() && !self.finals.is_empty() {
            // Everything heard is final already: a `Finalize` might get no
            // answer, and none is needed.
            self.end_turn(true, heard);
            return;
        }
        // Words still interim, or none heard yet (they may be on their way:
        // Pronto heard the pause first): `Finalize` flushes them. If nothing
        // was said it may go unanswered, and Pronto stops waiting on its own.
        self.batch.flush(out);
        out.push(control("Finalize"));
        self.finalizing = true;
    }

    fn finish(&mut self, out: &mut Vec<Message>) {
        self.batch.flush(out);
        out.push(control("CloseStream"));
        self.finishing = true;
    }

    fn keep_alive_after(&self) -> Option<Duration> {
        Some(KEEP_ALIVE_AFTER)
    }

    fn idle(&mut self, out: &mut Vec<Message>) {
        out.push(control("KeepAlive"));
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
            "Results" => self.results(&message, heard),
            "SpeechStarted" => heard.push(Heard::SpeechStarted),
            "UtteranceEnd" => {
                if self.provider_turns && !self.so_far().is_empty() {
                    self.end_turn(false, heard);
                }
            }
            "Metadata" => {
                let id = message["request_id"].as_str().unwrap_or_default();
                debug!(provider = PROVIDER, request_id = %outside(id), "Deepgram stream metadata");
            }
            // Deepgram reports most errors as the close code; an error
            // message, where one comes, ends the stream the same way.
            "Error" => {
                let description = message["description"]
                    .as_str()
                    .or(message["message"].as_str())
                    .unwrap_or_default();
                let variant = message["variant"].as_str().unwrap_or_default();
                return Err(Closed::Fatal(ProviderError::protocol(
                    PROVIDER,
                    format!("Deepgram error {variant}: {description}"),
                )));
            }
            other => {
                debug!(provider = PROVIDER, kind = %outside(other), "unknown Deepgram message ignored")
            }
        }
        Ok(())
    }

    fn closed(&mut self, code: Option<u16>, reason: &str) -> Closed {
        classify(code, &outside(reason), self.finishing)
    }
}
