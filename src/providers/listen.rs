//! Streaming speech-to-text: the caller's audio goes to the provider as it
//! arrives, over one WebSocket per call, and the provider answers with the
//! words so far and, at the end of each turn, the final transcript, so the
//! text is ready within tens of milliseconds of the end of the turn instead
//! of after an upload.
//!
//! Every provider speaks its own protocol ([`Dialect`]: Deepgram Flux and
//! `/v1/listen`, AssemblyAI Universal-Streaming v3, OpenAI Realtime
//! transcription) over the same connection handling ([`driver`]): connect,
//! send the dialect's opening, forward audio, read what the provider hears,
//! reconnect once on a drop (replaying the audio sent since the last final
//! transcript, so the caller's turn is not lost), and close cleanly at the
//! end.
//!
//! A [`Listener`] is one call's stream. It never blocks the call: audio is
//! handed over with `try_send` and what the provider hears comes back
//! through [`Listener::poll_heard`]. Dropping it ends the stream (the
//! dialect's closing message is sent, then the socket closes).

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response};

use super::{Endpoint, ProviderError};

pub mod assemblyai;
pub mod deepgram;
#[cfg(test)]
mod dialect_tests;
pub mod driver;
pub mod openai_realtime;

/// Audio frames waiting for the connection, at most (20 ms each: 10 s). A
/// provider that stalls longer loses audio rather than the call its memory.
const QUEUED_FRAMES: usize = 500;

/// How a call's stream is set up (`[stt]` in config/pronto.toml, with the
/// turn detector of `[turn]`).
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// `ws(s)://` base: `wss://api.deepgram.com`,
    /// `wss://streaming.assemblyai.com`, `wss://api.openai.com/v1`.
    pub endpoint: Endpoint,
    /// Empty: the provider's default for the language.
    pub model: String,
    /// ISO-639-1 (`en`, `it`).
    pub language: String,
    /// Words to recognize better (names, products); empty = none.
    pub vocabulary: String,
    /// Who decides that a turn is over.
    pub turns: TurnsBy,
}

/// A provider's text message as JSON; `None` when it is not, which is
/// logged and skipped: one odd message is no reason to lose the call.
fn json_message(provider: &'static str, text: &str) -> Option<serde_json::Value> {
    match serde_json::from_str(text) {
        Ok(message) => Some(message),
        Err(e) => {
            tracing::warn!(provider, error = %e, message = %crate::redact::outside(text), "not JSON; skipped");
            None
        }
    }
}

/// The vocabulary's terms for a provider's key-term list: split at
/// `separators`, trimmed, empty ones left out.
fn vocabulary_terms<'a>(
    vocabulary: &'a str,
    separators: &'a [char],
) -> impl Iterator<Item = &'a str> + 'a {
    vocabulary
        .split(separators)
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Who decides that the caller's turn is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnsBy {
    /// The provider's own end of turn; `eager`: also its early signal
    /// ([`Heard::EagerEnd`]), where it has one, for a speculative answer.
    /// `semantic`: a model-based detector where the provider offers a choice
    /// (OpenAI `semantic_vad` rather than `server_vad`).
    Provider { eager: bool, semantic: bool },
    /// Pronto decides (its silence or turn model) and asks for the final
    /// transcript with [`Listener::force_end`]; the provider's own end of
    /// turn is turned off or set to its longest wait where it can be.
    Pronto,
}

/// What a streaming provider heard, in the order it said it.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    /// The provider heard the caller start a turn.
    SpeechStarted,
    /// The caller's words so far in this turn (the whole turn, not a delta).
    Partial(String),
    /// The provider thinks the turn may be over: this transcript is final
    /// unless [`Heard::Resumed`] follows (Deepgram Flux `EagerEndOfTurn`).
    EagerEnd(String),
    /// The caller went on after an [`Heard::EagerEnd`].
    Resumed,
    /// The provider's voice detection says the caller stopped; the final
    /// transcript follows (OpenAI `speech_stopped`).
    SpeechStopped,
    /// The turn is over, by the provider's own decision or because Pronto
    /// asked ([`Listener::force_end`]), with its final transcript.
    TurnEnded { text: String, forced: bool },
    /// The stream is gone for good (after its one reconnect); nothing more
    /// will be heard on it.
    Failed(ProviderError),
}

pub use crate::providers::socket::Closed;

/// One streaming provider's protocol, for one call. The driver owns the
/// socket; the dialect only turns audio and controls into messages and
/// messages into [`Heard`] events, so it is pure and tested without a
/// network.
pub trait Dialect: Send + 'static {
    /// For logs and errors: `deepgram`, `assemblyai`, `openai-realtime`.
    fn provider(&self) -> &'static str;

    /// The WebSocket upgrade request: the URL with its query, the key.
    fn request(&self) -> Result<Request, ProviderError>;

    /// Reads the upgrade's answer (a request id to log). An error refuses
    /// the connection.
    fn connected(&mut self, _response: &Response) -> Result<(), ProviderError> {
        Ok(())
    }

    /// What to send right after connecting (a session configuration), or
    /// after a reconnect.
    fn opening(&mut self, _out: &mut Vec<Message>) {}

    /// One media payload of the caller (8 kHz μ-law, usually 20 ms): the
    /// messages carrying it, if it is time to send any (a dialect may batch
    /// frames to its provider's minimum).
    fn audio(&mut self, mulaw: &[u8], out: &mut Vec<Message>);

    /// Pronto decided the turn is over: ask for the final transcript now.
    /// Where the provider would not answer (no turn open: nothing was
    /// said), the dialect reports the empty turn itself in `heard`, so that
    /// Pronto never waits for an answer that cannot come.
    fn force_end(&mut self, out: &mut Vec<Message>, heard: &mut Vec<Heard>);

    /// The call is over: flush what is batched and say goodbye.
    fn finish(&mut self, out: &mut Vec<Message>);

    /// After this long without audio the driver asks [`Dialect::idle`] for
    /// a keep-alive (Deepgram `/v1/listen` closes a socket that hears
    /// nothing for 10 s); `None`: the provider needs none.
    fn keep_alive_after(&self) -> Option<std::time::Duration> {
        None
    }

    /// No audio for [`Dialect::keep_alive_after`]: the provider's
    /// keep-alive message.
    fn idle(&mut self, _out: &mut Vec<Message>) {}

    /// One text message from the provider. Replies (rare) go to `out`, what
    /// it heard to `heard`. An error is fatal to the connection.
    fn text(
        &mut self,
        text: &str,
        out: &mut Vec<Message>,
        heard: &mut Vec<Heard>,
    ) -> Result<(), Closed>;

    /// The provider closed the socket with this code (none: no close frame).
    fn closed(&mut self, code: Option<u16>, reason: &str) -> Closed;
}

/// A streaming speech-to-text provider: it makes one [`Dialect`] per call.
pub trait StreamingSpeechToText: Send + Sync + 'static {
    fn provider(&self) -> &'static str;
    fn dialect(&self) -> Box<dyn Dialect>;
}

/// The provider's side of [`Listener::detached`].
#[cfg(test)]
pub(crate) struct TestProvider {
    control: mpsc::Receiver<Control>,
    pub heard: mpsc::UnboundedSender<Heard>,
}

#[cfg(test)]
impl TestProvider {
    /// (audio bytes, force_end requests) received so far.
    pub fn received(&mut self) -> (usize, usize) {
        let (mut bytes, mut forced) = (0, 0);
        while let Ok(control) = self.control.try_recv() {
            match control {
                Control::Audio(audio) => bytes += audio.len(),
                Control::ForceEnd => forced += 1,
            }
        }
        (bytes, forced)
    }
}

/// What the call asks of the stream.
#[derive(Debug)]
enum Control {
    Audio(Bytes),
    ForceEnd,
}

/// One call's stream to a provider. Dropping it ends the stream.
pub struct Listener {
    provider: &'static str,
    control: mpsc::Sender<Control>,
    heard: mpsc::UnboundedReceiver<Heard>,
    /// Frames dropped because the connection was not keeping up (said in
    /// the log when the call's stream ends).
    dropped_frames: u64,
}

impl Drop for Listener {
    fn drop(&mut self) {
        if self.dropped_frames > 0 {
            tracing::warn!(
                provider = self.provider,
                dropped_ms = self.dropped_frames * 20,
                "the speech-to-text stream fell behind during the call: caller audio was dropped"
            );
        }
    }
}

impl Listener {
    /// Opens `stt`'s stream for one call (the connection is made in the
    /// background; audio sent before it is up waits for it).
    pub fn open(stt: &Arc<dyn StreamingSpeechToText>, settings: driver::Settings) -> Listener {
        let (control, control_rx) = mpsc::channel(QUEUED_FRAMES);
        let (heard_tx, heard) = mpsc::unbounded_channel();
        tokio::spawn(driver::run(stt.dialect(), control_rx, heard_tx, settings));
        Listener {
            provider: stt.provider(),
            control,
            heard,
            dropped_frames: 0,
        }
    }

    /// A listener with no connection behind it: the test plays the
    /// provider through the returned ends.
    #[cfg(test)]
    pub(crate) fn detached() -> (Listener, TestProvider) {
        let (control, control_rx) = mpsc::channel(QUEUED_FRAMES);
        let (heard_tx, heard) = mpsc::unbounded_channel();
        let listener = Listener {
            provider: "test",
            control,
            heard,
            dropped_frames: 0,
        };
        (
            listener,
            TestProvider {
                control: control_rx,
                heard: heard_tx,
            },
        )
    }

    /// Hands one media payload to the stream; never waits. False when the
    /// stream is gone.
    pub fn send_audio(&mut self, mulaw: &[u8]) -> bool {
        match self
            .control
            .try_send(Control::Audio(Bytes::copy_from_slice(mulaw)))
        {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped_frames += 1;
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Asks the provider to end the turn now and send its final transcript.
    pub fn force_end(&mut self) {
        // Full: the stream is stalled and the turn's end will come from
        // the provider's own timeout, or the wait for it runs out.
        let _ = self.control.try_send(Control::ForceEnd);
    }

    /// The next thing the provider heard; `Ready(None)` once the stream is
    /// over (after its `Failed`).
    pub fn poll_heard(&mut self, cx: &mut Context<'_>) -> Poll<Option<Heard>> {
        self.heard.poll_recv(cx)
    }
}
