//! The Twilio simulator: plays Twilio's part of a phone call against a running
//! Pronto server, so that anyone can try a call without a phone (`pronto call`)
//! and so that integration tests can assert exactly what a caller would hear.
//!
//! It does what Twilio does (<https://www.twilio.com/docs/usage/webhooks/webhooks-security>,
//! <https://www.twilio.com/docs/voice/twiml/stream>,
//! <https://www.twilio.com/docs/voice/media-streams/websocket-messages>) and nothing more:
//!
//! 1. [`post_voice`] sends the signed `POST /voice` webhook (or `/voice/<agent>`,
//!    [`SimConfig::voice_path`]) with Twilio's real inbound parameter set and
//!    parses the TwiML answer ([`Twiml`]).
//! 2. [`Call`] opens the `<Connect><Stream>` WebSocket (signed handshake), sends
//!    `connected` and `start`, then keeps the caller's line running: one 20 ms
//!    `media` frame per tick, speech when queued with [`Call::say`], μ-law
//!    silence otherwise, plus `dtmf`.
//! 3. What the server sends is checked strictly ([`protocol`]): anything Twilio
//!    would drop with warning 31950/31951 is recorded as a protocol error and
//!    ignored. Valid audio goes through Twilio's playback queue ([`player`]),
//!    played at real speed, so `mark` echoes and `clear` behave as on a real
//!    call and barge-in timing is honest.
//! 4. Everything lands in a timeline of [`Event`]s and, at the end, a [`Report`]
//!    with the per-turn voice-to-voice latency and the heard audio.
//! 5. After hanging up, [`post_status`] sends the `completed` status callback
//!    Twilio sends to a number's "call status changes" URL.
//!
//! [`run`] strings these together for a scripted call (the CLI in [`cli`]).
//!
//! Time: every event is stamped in milliseconds since the stream started (the
//! moment the WebSocket upgrade succeeded; `connected` and `start` follow at
//! once). Events before it, such as the webhook answer, have negative times.
//!
//! A test, roughly:
//!
//! ```no_run
//! # async fn example(pcm_8k: Vec<i16>) -> Result<(), pronto::sim::SimError> {
//! use std::time::Duration;
//! use pronto::sim::{Call, Event, SimConfig};
//!
//! let mut cfg = SimConfig::new("http://127.0.0.1:8080");
//! cfg.public_base_url = Some("https://voice.example.com".into());
//! cfg.auth_token = Some("the auth token".into());
//!
//! let call = Call::dial(&cfg).await?;
//! // The greeting plays, then the caller speaks.
//! call.wait_for(|e| *e == Event::AudioHeardEnd, Duration::from_secs(10)).await?;
//! call.say(&pcm_8k);
//! call.wait_said().await?;
//! call.wait_for(|e| matches!(e, Event::MarkEchoed { .. }), Duration::from_secs(10)).await?;
//! let report = call.hang_up().await?;
//! assert!(report.protocol_errors().is_empty(), "{report}");
//! assert!(report.turns[0].voice_to_voice_ms.is_some());
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod call;
pub mod cli;
mod codec;
mod event;
mod level;
mod line;
#[cfg(test)]
mod loopback_tests;
pub mod player;
pub mod protocol;
mod report;
mod script;
mod session;
mod shared;
mod status_callback;
mod twiml;
mod webhook;

pub use call::{Call, SignatureHeader, StreamOptions};
pub use event::{CloseInfo, Closer, Event, TimedEvent};
pub use protocol::ProtocolError;
pub use report::{Report, Turn};
pub use script::{Script, load_wav_8k, load_wav_8k_from_bytes, run};
pub use status_callback::{CallStatus, post_status, status_params};
pub use twiml::{Twiml, TwimlError, parse_twiml};
pub use webhook::{VoiceAnswer, map_stream_url, post_voice, voice_params};

use std::time::Duration;

/// Who the simulated call is from and to, and where the server is.
///
/// `server` is where the simulator actually connects (usually loopback);
/// `public_base_url` is the URL the server believes Twilio uses
/// (`PUBLIC_BASE_URL`). Twilio signs the public URL, not the loopback one, so
/// the two must be kept apart for signatures to be honest.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Base URL the simulator connects to, e.g. `http://127.0.0.1:8080`.
    pub server: String,
    /// The server's `PUBLIC_BASE_URL`; `None` means the same as `server`.
    pub public_base_url: Option<String>,
    /// Twilio auth token used to sign the webhook and the WebSocket upgrade;
    /// `None` sends no `X-Twilio-Signature` at all (a server that checks
    /// signatures must then refuse the call).
    pub auth_token: Option<String>,
    /// `AccountSid` in the webhook and in `start`/`stop`; `None` → a random `AC…`.
    pub account_sid: Option<String>,
    /// The caller's number (`From`, `Caller`).
    pub from: String,
    /// The number called (`To`, `Called`): the server's Twilio number.
    pub to: String,
    /// The webhook's path: `/voice`, or `/voice/<agent>` for a number whose
    /// "A call comes in" URL names an agent. Signed with the public base
    /// URL in front, as Twilio signs the URL in its console.
    pub voice_path: String,
    /// `CallSid` of this call; `None` → a random `CA…` (a new one per call).
    pub call_sid: Option<String>,
    /// `Direction`: `inbound`, or `outbound-api` for a call placed through
    /// the REST API and now answered.
    pub direction: String,
    /// Extra webhook parameters appended after Twilio's standard set (Twilio
    /// adds parameters over time; a server must sign whatever arrives).
    pub extra_params: Vec<(String, String)>,
    /// Send queued caller speech as fast as the socket takes it instead of in
    /// real time (silence still flows at real-time pace). For quick tests; it
    /// is not something Twilio does.
    pub fast: bool,
}

impl SimConfig {
    /// A configuration for `server` with the defaults the CLI uses.
    pub fn new(server: impl Into<String>) -> Self {
        SimConfig {
            server: server.into(),
            public_base_url: None,
            auth_token: None,
            account_sid: None,
            from: "+15551230001".to_string(),
            to: "+15551230002".to_string(),
            voice_path: "/voice".to_string(),
            call_sid: None,
            direction: "inbound".to_string(),
            extra_params: Vec::new(),
            fast: false,
        }
    }

    /// `public_base_url`, or `server` when unset, without a trailing slash.
    pub fn public_base(&self) -> &str {
        self.public_base_url
            .as_deref()
            .unwrap_or(&self.server)
            .trim_end_matches('/')
    }

    /// `server` without a trailing slash.
    pub fn server_base(&self) -> &str {
        self.server.trim_end_matches('/')
    }
}

/// Everything that can stop the simulator. The server's misbehaviour during a
/// call is *not* an error: it is recorded in the [`Report`] (protocol errors,
/// close codes), because that is what tests assert on.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The webhook request itself failed (connection refused, timeout after
    /// Twilio's 15 s, …).
    #[error("POST /voice failed: {0}")]
    Webhook(#[source] reqwest::Error),
    /// The webhook answered, but not with a `<Connect><Stream>` to follow
    /// (busy, reject, non-2xx, unparsable TwiML). The answer is kept for
    /// inspection.
    #[error("the webhook answered HTTP {} without a stream to connect ({})", .0.status, .0.summary())]
    NoStream(Box<VoiceAnswer>),
    /// The WebSocket upgrade was answered with a status other than 101 (what
    /// Twilio reports as error 31920).
    #[error("WebSocket upgrade refused with HTTP {status}")]
    Handshake {
        /// The HTTP status answered (403 for a refused signature).
        status: u16,
        /// The answer's body, if any.
        body: String,
    },
    /// The WebSocket could not be opened or broke in a way that is not the
    /// server's answer (bad URL, connection refused).
    #[error("WebSocket: {0}")]
    WebSocket(#[source] Box<tokio_tungstenite::tungstenite::Error>),
    /// Nothing answered within the time Twilio would wait.
    #[error("timed out after {0:?} {1}")]
    Timeout(Duration, &'static str),
    /// The call ended (socket closed) before what was being waited for happened.
    #[error("the call ended before the awaited event")]
    Ended,
    /// A configuration value the simulator cannot use.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Reading the caller's WAV or writing the heard one.
    #[error("audio file: {0}")]
    Audio(String),
}

/// A Twilio SID: two-letter prefix and 32 lower-case hex digits.
pub(crate) fn random_sid(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(rand::random::<[u8; 16]>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_have_twilio_shape() {
        let sid = random_sid("CA");
        assert_eq!(sid.len(), 34);
        assert!(sid.starts_with("CA"));
        assert!(sid[2..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(random_sid("CA"), sid);
    }

    #[test]
    fn public_base_defaults_to_server() {
        let mut cfg = SimConfig::new("http://127.0.0.1:8080/");
        assert_eq!(cfg.public_base(), "http://127.0.0.1:8080");
        cfg.public_base_url = Some("https://voice.example.com".into());
        assert_eq!(cfg.public_base(), "https://voice.example.com");
        assert_eq!(cfg.server_base(), "http://127.0.0.1:8080");
    }
}
