//! Deepgram streaming speech-to-text, in its two dialects: Flux
//! (`/v2/listen`, a turn-taking model that ends turns itself, English only)
//! and Nova (`/v1/listen`, transcription with silence-based endpointing, any
//! language).
//!
//! Which one a call gets: a `flux-…` model is Flux; no model is Flux for
//! English (`en`, `en-US`, or no language) and `nova-3` otherwise; any other
//! model is `/v1/listen` with that model.
//!
//! Both send the caller's μ-law as it is (`encoding=mulaw&sample_rate=8000`,
//! no resampling) with `Authorization: Token <key>`
//! (<https://developers.deepgram.com/docs/flux/quickstart>,
//! <https://developers.deepgram.com/reference/speech-to-text-api/listen-streaming>).

use bytes::Bytes;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::vocabulary_terms;
use super::{Closed, Dialect, StreamSettings, StreamingSpeechToText, TurnsBy};
use crate::providers::ProviderError;
use crate::providers::socket::ws_scheme;

mod flux;
mod nova;
#[cfg(test)]
mod tests;

const PROVIDER: &str = "deepgram";

/// The default models: Flux for English, Nova-3 for the rest.
const FLUX_MODEL: &str = "flux-general-en";
const NOVA_MODEL: &str = "nova-3";

/// Deepgram as the call's streaming speech-to-text.
pub struct Deepgram {
    settings: StreamSettings,
}

impl Deepgram {
    pub fn new(settings: StreamSettings) -> Deepgram {
        Deepgram { settings }
    }
}

impl StreamingSpeechToText for Deepgram {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn dialect(&self) -> Box<dyn Dialect> {
        let settings = &self.settings;
        let model = settings.model.trim();
        if model.starts_with("flux") || (model.is_empty() && english(&settings.language)) {
            let model = if model.is_empty() { FLUX_MODEL } else { model };
            Box::new(flux::Flux::new(settings, model))
        } else {
            let model = if model.is_empty() { NOVA_MODEL } else { model };
            Box::new(nova::Nova::new(settings, model))
        }
    }
}

/// `en`, `en-US`, `en_GB` or no language at all (Pronto's default is
/// English): what `flux-general-en` hears.
fn english(language: &str) -> bool {
    let language = language.trim().to_ascii_lowercase();
    language.is_empty()
        || language == "en"
        || language.starts_with("en-")
        || language.starts_with("en_")
}

/// The vocabulary as Deepgram's repeatable `keyterm`: one term per
/// comma-separated entry ("Pronto, Acme Dental" → two terms).
fn keyterms(vocabulary: &str) -> impl Iterator<Item = &str> {
    vocabulary_terms(vocabulary, &[','])
}

/// The WebSocket URL of `path` with `query`: the configured base with an
/// `http(s)://` scheme taken as `ws(s)://`.
fn url(settings: &StreamSettings, path: &str, query: &[(&str, String)]) -> String {
    let base = ws_scheme(settings.endpoint.base_url.trim().trim_end_matches('/'));
    let mut encoded = form_urlencoded::Serializer::new(String::new());
    for (name, value) in query {
        encoded.append_pair(name, value);
    }
    format!("{base}{path}?{}", encoded.finish())
}

/// The upgrade request with Deepgram's `Token` scheme (`Bearer` is for its
/// short-lived JWTs).
fn upgrade(url: &str, key: &str) -> Result<Request, ProviderError> {
    let mut request = url
        .into_client_request()
        .map_err(|e| ProviderError::Connect {
            provider: PROVIDER,
            detail: format!("bad stream URL: {e}"),
        })?;
    let token = HeaderValue::from_str(&format!("Token {}", key.trim())).map_err(|_| {
        ProviderError::Connect {
            provider: PROVIDER,
            detail: "the API key is not a valid header value".into(),
        }
    })?;
    request.headers_mut().insert("authorization", token);
    Ok(request)
}

/// Audio in binary messages of `size` bytes: the driver hands over 20 ms
/// Twilio frames, or up to 30 s at once when it replays a turn after a
/// reconnect.
struct Batch {
    size: usize,
    pending: Vec<u8>,
}

impl Batch {
    fn new(size: usize) -> Batch {
        Batch {
            size,
            pending: Vec::with_capacity(size),
        }
    }

    fn push(&mut self, mulaw: &[u8], out: &mut Vec<Message>) {
        self.pending.extend_from_slice(mulaw);
        let whole = self.pending.len() / self.size * self.size;
        if whole == 0 {
            return;
        }
        for chunk in self.pending[..whole].chunks(self.size) {
            out.push(Message::Binary(Bytes::copy_from_slice(chunk)));
        }
        self.pending.drain(..whole);
    }

    /// What is left, shorter than a batch: before a control message that
    /// must come after all the audio (end the turn, close).
    fn flush(&mut self, out: &mut Vec<Message>) {
        if !self.pending.is_empty() {
            out.push(Message::Binary(Bytes::from(std::mem::take(
                &mut self.pending,
            ))));
        }
    }

    /// A new connection starts with no audio of the old one batched (the
    /// driver replays it all).
    fn clear(&mut self) {
        self.pending.clear();
    }
}

/// A control message: Deepgram's are JSON objects tagged by `type`.
fn control(kind: &str) -> Message {
    Message::text(serde_json::json!({ "type": kind }).to_string())
}

/// How a Deepgram socket ended. Deepgram reports in-stream errors as the
/// close code with the error's name in the reason: `NET-0000`/`NET-0001`
/// (1011: its side, or 10 s without audio) are worth the reconnect,
/// `DATA-0000` (1008: audio it cannot decode) and the 4xxx refusals are
/// not. After `CloseStream` Flux closes without a status code and
/// `/v1/listen` with 1000: both the end that was asked for.
fn classify(code: Option<u16>, reason: &str, finishing: bool) -> Closed {
    let detail = match code {
        Some(code) => format!("closed with {code}: {reason}"),
        None => "closed without a close frame".to_string(),
    };
    let error = || ProviderError::protocol(PROVIDER, detail.clone());
    match code {
        None | Some(1000) | Some(1005) if finishing => Closed::Clean,
        None | Some(1005) | Some(1006) => Closed::Retry(ProviderError::Connect {
            provider: PROVIDER,
            detail,
        }),
        _ if reason.contains("NET-") => Closed::Retry(error()),
        // A normal close mid-call (a restart, a maximum duration), going
        // away, a server error, a restart or "try again later".
        Some(1000 | 1001 | 1011 | 1012 | 1013 | 1014) => Closed::Retry(error()),
        // Undecodable audio (1008 `DATA-0000`), a protocol or size error,
        // and Deepgram's own 4xxx refusals (the key, the account).
        Some(_) => Closed::Fatal(error()),
    }
}

/// Who ends turns, as the two dialects ask for it.
fn eager(turns: TurnsBy) -> bool {
    matches!(turns, TurnsBy::Provider { eager: true, .. })
}
