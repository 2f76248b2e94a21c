//! Deepgram Flux (`/v2/listen`): a model that hears the end of the turn
//! itself, and says so with `TurnInfo` events
//! (<https://developers.deepgram.com/docs/flux/state>).
//!
//! - The provider ends turns: `eot_threshold=0.7` (its default), and with
//!   `eager` also `eager_eot_threshold=0.5` for `EagerEndOfTurn` /
//!   `TurnResumed` (<https://developers.deepgram.com/docs/flux/voice-agent-eager-eot>).
//! - Pronto ends turns: `eot_threshold=1.0` turns the model's end of turn off
//!   and `ForceEndTurn` asks for it; `eot_timeout_ms` stays as the backstop
//!   (<https://developers.deepgram.com/docs/flux/own-turn-detection>).
//!
//! `ForceEndTurn` with no turn open is ignored without a reply
//! (<https://developers.deepgram.com/docs/flux/force-end-turn>), so the
//! dialect keeps track of the open turn and answers an empty one itself.
//! `CloseStream` ends with the last `Update`, no `EndOfTurn`, and a close
//! without a status code (<https://developers.deepgram.com/docs/flux/close-stream>).

use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response};
use tracing::{debug, warn};

use super::{Batch, PROVIDER, classify, control, eager, english, keyterms, upgrade, url};
use crate::providers::ProviderError;
use crate::providers::listen::json_message;
use crate::providers::listen::{Closed, Dialect, Heard, StreamSettings, TurnsBy};
use crate::redact::{Secret, outside};

/// 4 Twilio frames (80 ms): the chunk Flux is said to do best with.
const BATCH_BYTES: usize = 640;
/// Silence after which Flux ends a turn whatever its confidence (its
/// default): the backstop when Pronto ends turns and misses one.
const EOT_TIMEOUT_MS: &str = "5000";

pub(super) struct Flux {
    url: String,
    key: Secret,
    batch: Batch,
    /// A `StartOfTurn` (or any turn event) came and its `EndOfTurn` has
    /// not: `ForceEndTurn` will be answered.
    turn_open: bool,
    /// Pronto asked to end the turn before Flux opened it.
    force_pending: bool,
    /// `ForceEndTurn` is sent and its `EndOfTurn` has not come.
    force_sent: bool,
    /// `CloseStream` is sent: the close that follows is the one asked for.
    finishing: bool,
    /// The upgrade's `dg-request-id`, for the logs.
    request_id: String,
}

impl Flux {
    pub(super) fn new(settings: &StreamSettings, model: &str) -> Flux {
        let mut query = vec![
            ("model", model.to_string()),
            ("encoding", "mulaw".to_string()),
            ("sample_rate", "8000".to_string()),
        ];
        match settings.turns {
            TurnsBy::Provider { .. } => {
                query.push(("eot_threshold", "0.7".to_string()));
                if eager(settings.turns) {
                    query.push(("eager_eot_threshold", "0.5".to_string()));
                }
            }
            TurnsBy::Pronto => query.push(("eot_threshold", "1.0".to_string())),
        }
        query.push(("eot_timeout_ms", EOT_TIMEOUT_MS.to_string()));
        for term in keyterms(&settings.vocabulary) {
            query.push(("keyterm", term.to_string()));
        }
        // The multilingual model takes the language as a hint; the English
        // one takes none.
        if model.ends_with("multi") && !english(&settings.language) {
            query.push(("language_hint", settings.language.trim().to_string()));
        }
        Flux {
            url: url(settings, "/v2/listen", &query),
            key: settings.endpoint.api_key.clone(),
            batch: Batch::new(BATCH_BYTES),
            turn_open: false,
            force_pending: false,
            force_sent: false,
            finishing: false,
            request_id: String::new(),
        }
    }

    fn turn_info(&mut self, message: &Value, heard: &mut Vec<Heard>) {
        let transcript = message["transcript"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let event = message["event"].as_str().unwrap_or_default();
        match event {
            "StartOfTurn" => {
                self.turn_open = true;
                heard.push(Heard::SpeechStarted);
                if !transcript.is_empty() {
                    heard.push(Heard::Partial(transcript));
                }
            }
            "EagerEndOfTurn" => {
                self.turn_open = true;
                heard.push(Heard::EagerEnd(transcript));
            }
            "TurnResumed" => {
                self.turn_open = true;
                heard.push(Heard::Resumed);
            }
            "EndOfTurn" => {
                self.turn_open = false;
                self.force_pending = false;
                self.force_sent = false;
                let forced = message["trigger"].as_str() == Some("manual");
                heard.push(Heard::TurnEnded {
                    text: transcript,
                    forced,
                });
            }
            // `Update`, and events added after this was written: Flux
            // says to read an unknown event as an update.
            other => {
                if other != "Update" {
                    debug!(provider = PROVIDER, event = %outside(other), "unknown Flux event read as Update");
                }
                self.turn_open = true;
                heard.push(Heard::Partial(transcript));
            }
        }
    }
}

impl Dialect for Flux {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn request(&self) -> Result<Request, ProviderError> {
        upgrade(&self.url, self.key.expose())
    }

    fn connected(&mut self, response: &Response) -> Result<(), ProviderError> {
        match response
            .headers()
            .get("dg-request-id")
            .and_then(|v| v.to_str().ok())
        {
            Some(id) => {
                self.request_id = outside(id);
                debug!(provider = PROVIDER, request_id = %self.request_id, "Flux stream open");
            }
            // Deepgram's SDK refuses such a connection; the stream itself
            // works, only the support trail is missing.
            None => warn!(
                provider = PROVIDER,
                "Flux answered the upgrade without dg-request-id"
            ),
        }
        Ok(())
    }

    fn opening(&mut self, _out: &mut Vec<Message>) {
        // A new connection: the driver replays the turn's audio from its
        // start, and the new connection hears the turn start again.
        self.batch.clear();
        // A `ForceEndTurn` the old connection took with it is asked again
        // once the new one opens the turn.
        self.force_pending |= std::mem::take(&mut self.force_sent);
        self.turn_open = false;
        self.finishing = false;
    }

    fn audio(&mut self, mulaw: &[u8], out: &mut Vec<Message>) {
        self.batch.push(mulaw, out);
    }

    fn force_end(&mut self, out: &mut Vec<Message>, _heard: &mut Vec<Heard>) {
        // The turn's last words go out first.
        self.batch.flush(out);
        if !self.turn_open {
            // Flux answers nothing outside a turn, and the caller's words
            // may still be on their way to it (Pronto heard the pause
            // first): ask as soon as Flux opens the turn. If it never does,
            // nothing was said, and Pronto stops waiting on its own.
            self.force_pending = true;
            return;
        }
        // The turn ends on the audio Flux has: all of it.
        out.push(control("ForceEndTurn"));
        self.force_sent = true;
    }

    fn finish(&mut self, out: &mut Vec<Message>) {
        self.batch.flush(out);
        out.push(control("CloseStream"));
        self.finishing = true;
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
        match message["type"].as_str().unwrap_or_default() {
            "TurnInfo" => {
                self.turn_info(&message, heard);
                if self.turn_open && std::mem::take(&mut self.force_pending) {
                    out.push(control("ForceEndTurn"));
                    self.force_sent = true;
                }
            }
            "Connected" => {
                debug!(provider = PROVIDER, request_id = %self.request_id, "Flux connected")
            }
            "Error" => {
                let code = message["code"].as_str().unwrap_or_default();
                let description = message["description"].as_str().unwrap_or_default();
                return Err(Closed::Fatal(ProviderError::protocol(
                    PROVIDER,
                    format!("Flux error {code}: {description}"),
                )));
            }
            "ConfigureSuccess" => debug!(provider = PROVIDER, "Flux configured"),
            // The session keeps its previous settings.
            "ConfigureFailure" => warn!(
                provider = PROVIDER,
                request_id = %self.request_id,
                "Flux refused a Configure; previous settings kept"
            ),
            other => {
                debug!(provider = PROVIDER, kind = %outside(other), "unknown Flux message ignored")
            }
        }
        Ok(())
    }

    fn closed(&mut self, code: Option<u16>, reason: &str) -> Closed {
        classify(code, &outside(reason), self.finishing)
    }
}
