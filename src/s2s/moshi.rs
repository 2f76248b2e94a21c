//! Kyutai's Moshi as the engine (<https://github.com/kyutai-labs/moshi>):
//! one `/api/chat` WebSocket per call to the user's own `moshi-server` or
//! `moshi.server`, the caller's voice going to it as Ogg/Opus at 24 kHz and
//! Moshi's voice coming back the same way, with its words as text.
//!
//! Moshi is full duplex: it has no turns, talks when it wants and stops by
//! itself when talked over. On the engine seam that becomes:
//! - When Moshi starts saying something (its text arrives, or its audio is
//!   loud) while no turn of ours is open, the caller's turn is reported over
//!   ([`TurnInput::Spoken`]); the call starts a turn, and from then on
//!   Moshi's audio is that turn's audio (the moment before it included, so
//!   the first syllable is not lost).
//! - Each sentence Moshi finishes is a segment with its words (the call
//!   marks it, and knows what the caller heard); after [`QUIET_MS`] without
//!   words or loud audio the turn is finished. Audio while no turn is open
//!   is Moshi's silence, and dropped.
//! - Nothing interrupts: Moshi handles being talked over, so this engine
//!   never reports `Interrupting` (only `SpeechStarted` when the caller
//!   starts talking, so that the call does not take them for silent), and
//!   asks for a short playback lead
//!   (`[moshi] playback_lead_ms`) so that what it abandons stops soon.
//! - The session's end (the servers stop after about five minutes), an
//!   error message, a dropped or refused connection: [`Event::Gone`], once;
//!   the call ends politely.
//!
//! Time is counted in the caller's audio, which Twilio sends without pause.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tracing::{debug, info, warn};

use crate::audio::SAMPLE_RATE;
use crate::config::ConfigError;
use crate::config::engine::MoshiSection;
use crate::engine::{
    Abilities, Command, Conversation, Engine, EngineStatus, Event, InputTiming, Output, Speak,
    TurnInput,
};
use crate::model::CallBrief;
use crate::providers::socket::{Closed, Ending, Pipe, Piped};
use crate::redact::outside;

pub mod protocol;
mod voice;

use protocol::Frame;
use voice::{CallerVoice, MoshiVoice};

/// The provider's name in logs and errors.
const PROVIDER: &str = "moshi";
/// The upgrade's time limit.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server may take to say it is ready (the Python server
/// holds the handshake while it serves another call).
const HANDSHAKE_WAIT_MS: u64 = 15_000;
/// Moshi quiet this long (no words, no loud audio): its turn is over.
pub const QUIET_MS: u64 = 1_200;
/// Moshi's words run ahead of its voice: a sentence's segment ends this
/// much later, so that its mark follows its last word's audio.
const TEXT_LEAD_MS: u64 = 160;
/// Asked to start a turn and not started (the call was still finishing the
/// last one): asked again this often.
const ASK_AGAIN_MS: u64 = 240;
/// Moshi's audio kept while no turn is open, to start the next with (μ-law
/// bytes: 160 ms), and at most while the call is asked (3 s).
const PRE_ROLL: usize = 160 * SAMPLE_RATE as usize / 1000;
const MAX_WAITING: usize = 3 * SAMPLE_RATE as usize;

/// The Moshi engine: a server at `url`.
pub struct Moshi {
    url: String,
    settings: MoshiSection,
}

impl Moshi {
    /// Checks the URL and that the codec works, so that opening a call
    /// cannot fail for them.
    pub fn build(url: String, settings: MoshiSection) -> Result<Moshi, ConfigError> {
        chat_request(&url)
            .map_err(|e| ConfigError(format!("MOSHI_URL={url}: not a WebSocket URL: {e}")))?;
        CallerVoice::new()
            .and_then(|_| MoshiVoice::new())
            .map_err(|e| ConfigError(format!("engine.kind = \"moshi\": the audio codec: {e}")))?;
        Ok(Moshi { url, settings })
    }
}

/// The upgrade request for `url`'s conversation endpoint.
fn chat_request(url: &str) -> Result<Request, tokio_tungstenite::tungstenite::Error> {
    format!("{url}/api/chat").into_client_request()
}

impl Engine for Moshi {
    fn mode(&self) -> &'static str {
        "moshi"
    }

    fn speaks(&self) -> bool {
        false
    }

    fn status(&self) -> EngineStatus {
        EngineStatus {
            turn_detector: "moshi",
            speech_to_text: "none",
            speculative_answers: 0,
            speculative_wasted: 0,
        }
    }

    fn open(&self, _brief: Arc<CallBrief>) -> Box<dyn Conversation> {
        let lead = Duration::from_millis(u64::from(self.settings.playback_lead_ms));
        let opened = chat_request(&self.url)
            .map_err(|e| e.to_string())
            .and_then(|request| {
                let voices = (CallerVoice::new(), MoshiVoice::new());
                match voices {
                    (Ok(caller), Ok(moshi)) => Ok((request, caller, moshi)),
                    (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
                }
            });
        match opened {
            Ok((request, caller, moshi)) => Box::new(MoshiCall::new(
                Pipe::open(PROVIDER, request, CONNECT_TIMEOUT),
                caller,
                moshi,
                lead,
            )),
            // Checked by `build`: not expected.
            Err(e) => Box::new(Unopened(Some(format!("moshi: cannot start: {e}")))),
        }
    }
}

/// A call whose conversation could not even start: it says so, once.
struct Unopened(Option<String>);

impl Conversation for Unopened {
    fn abilities(&self) -> Abilities {
        Abilities::default()
    }

    fn hear(&mut self, _mulaw: &[u8], _events: &mut Vec<Event>) {}

    fn command(&mut self, command: Command) {
        if let Command::Start { .. } = command {
            debug!("moshi: no session; the turn is not produced");
        }
    }

    fn poll_event(&mut self, _cx: &mut Context<'_>, _room: bool) -> Poll<Event> {
        self.0
            .take()
            .map_or(Poll::Pending, |why| Poll::Ready(Event::Gone(why)))
    }
}

/// Where Moshi's talking stands with the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Talk {
    /// No turn of ours: Moshi's audio is its silence. `muted` after a
    /// cancelled turn, until Moshi has been quiet.
    Idle { muted: bool },
    /// Moshi started talking; the call was told and is to start a turn.
    Asked { at_ms: u64 },
    /// Moshi's audio is turn `turn`'s.
    Turn(u32),
}

/// One call's conversation with Moshi.
struct MoshiCall {
    pipe: Pipe,
    caller: CallerVoice,
    moshi: MoshiVoice,
    lead: Duration,
    /// The server said it is ready (the caller's audio is dropped before).
    ready: bool,
    /// `Gone` was reported: nothing more happens.
    gone: bool,
    talk: Talk,
    /// The caller's audio heard so far (8 kHz samples): the clock.
    heard: u64,
    /// When Moshi last said a word or made a loud sound (ms).
    active_ms: u64,
    /// When the caller last made a loud sound (ms).
    caller_active_ms: Option<u64>,
    /// Moshi's audio while no turn is open (the pre-roll, then what comes
    /// while the call is asked), μ-law.
    waiting: VecDeque<u8>,
    /// Moshi's words not yet in a segment.
    words: String,
    /// A sentence ended: its words (the first `len` bytes of `words`) end a
    /// segment at `at_ms`.
    sentence: Option<(usize, u64)>,
    /// The open turn has audio since its last segment end, and segments.
    unsegmented: bool,
    segments: u32,
    /// Caller events, never held back.
    events: VecDeque<Event>,
    /// Turn output, in order, held while the call has no room.
    held: VecDeque<(u32, Output)>,
    /// μ-law decoded from one message.
    scratch: Vec<u8>,
    /// Bad pages or packets skipped, and frames the caller's audio could not
    /// be encoded for (each said once, then counted).
    skipped: u64,
    unencoded: u64,
}

impl MoshiCall {
    fn new(pipe: Pipe, caller: CallerVoice, moshi: MoshiVoice, lead: Duration) -> MoshiCall {
        MoshiCall {
            pipe,
            caller,
            moshi,
            lead,
            ready: false,
            gone: false,
            talk: Talk::Idle { muted: false },
            heard: 0,
            active_ms: 0,
            caller_active_ms: None,
            waiting: VecDeque::with_capacity(MAX_WAITING),
            words: String::new(),
            sentence: None,
            unsegmented: false,
            segments: 0,
            events: VecDeque::new(),
            held: VecDeque::new(),
            scratch: Vec::with_capacity(1024),
            skipped: 0,
            unencoded: 0,
        }
    }

    fn now_ms(&self) -> u64 {
        self.heard * 1000 / u64::from(SAMPLE_RATE)
    }

    /// The conversation cannot go on: said once.
    fn gone(&mut self, why: String) {
        if !self.gone {
            self.gone = true;
            self.events.push_back(Event::Gone(why));
        }
    }

    /// One thing the pipe reported.
    fn on_piped(&mut self, piped: Piped) {
        match piped {
            Piped::Open => debug!("moshi: connected; waiting for the handshake"),
            Piped::Text(text) => {
                debug!(
                    chars = text.len(),
                    "moshi: a text frame (the protocol is binary); skipped"
                );
            }
            Piped::Binary(message) => self.on_message(&message),
            Piped::Ended(ending) => self.gone(ended(&ending)),
        }
    }

    fn on_message(&mut self, message: &[u8]) {
        let frame = match protocol::parse(message) {
            Ok(frame) => frame,
            Err(e) => {
                debug!(error = %e, "moshi: skipped");
                return;
            }
        };
        match frame {
            Frame::Handshake(versions) => {
                if !self.ready {
                    info!(?versions, "moshi: ready");
                    self.ready = true;
                }
            }
            Frame::Metadata(metadata) => {
                let about = metadata
                    .as_ref()
                    .map(|m| outside(&m.to_string().chars().take(300).collect::<String>()));
                debug!(metadata = ?about, "moshi: the server's settings");
            }
            Frame::Audio(ogg) => self.on_audio(ogg),
            Frame::Text(text) => self.on_text(&text),
            Frame::Error(text) => {
                let text: String = text.chars().take(300).collect();
                self.gone(format!("moshi: the server's error: {}", outside(&text)));
            }
            Frame::Other(kind) => debug!(kind, "moshi: a message of no use here; skipped"),
        }
    }

    fn on_audio(&mut self, ogg: &[u8]) {
        self.scratch.clear();
        let heard = self.moshi.push(ogg, &mut self.scratch);
        if heard.pushed.skipped > 0 {
            if self.skipped == 0 {
                warn!("moshi: its audio has pages that do not parse; skipping them");
            }
            self.skipped += heard.pushed.skipped as u64;
        }
        if heard.loud {
            self.active();
        }
        if self.scratch.is_empty() {
            return;
        }
        match self.talk {
            Talk::Turn(turn) => {
                let audio = Bytes::copy_from_slice(&self.scratch);
                self.held.push_back((turn, Output::Audio(audio)));
                self.unsegmented = true;
            }
            Talk::Asked { .. } => self.wait(MAX_WAITING),
            Talk::Idle { .. } => self.wait(PRE_ROLL),
        }
    }

    /// Keeps the scratch audio while no turn is open, `limit` bytes at most.
    fn wait(&mut self, limit: usize) {
        self.waiting.extend(self.scratch.iter().copied());
        let excess = self.waiting.len().saturating_sub(limit);
        self.waiting.drain(..excess);
    }

    fn on_text(&mut self, text: &str) {
        self.active();
        if matches!(self.talk, Talk::Idle { .. }) {
            return; // muted
        }
        self.words.push_str(text);
        let trimmed = text.trim_end();
        if trimmed.ends_with(['.', '!', '?']) {
            self.sentence = Some((self.words.len(), self.now_ms() + TEXT_LEAD_MS));
        }
    }

    /// Moshi said or sounded something: a turn is asked for if none is open.
    fn active(&mut self) {
        self.active_ms = self.now_ms();
        if self.talk == (Talk::Idle { muted: false }) {
            self.ask();
        }
    }

    fn ask(&mut self) {
        self.talk = Talk::Asked {
            at_ms: self.now_ms(),
        };
        self.events.push_back(Event::TurnEnded {
            input: TurnInput::Spoken,
            timing: InputTiming::default(),
        });
    }

    /// The words of a finished stretch end the turn's segment.
    fn segment_end(&mut self, turn: u32, upto: usize) {
        let upto = if self.words.is_char_boundary(upto) {
            upto
        } else {
            self.words.len()
        };
        let text = self.words[..upto].trim().to_string();
        self.words.drain(..upto);
        self.sentence = None;
        self.unsegmented = false;
        self.segments += 1;
        self.held.push_back((turn, Output::SegmentEnd { text }));
    }

    /// What the passing of the caller's time decides.
    fn tick(&mut self) {
        let now = self.now_ms();
        if !self.ready && !self.gone && now >= HANDSHAKE_WAIT_MS {
            self.gone(format!(
                "moshi: the server did not say it was ready within {} s (moshi.server serves one call at a time)",
                HANDSHAKE_WAIT_MS / 1000
            ));
            return;
        }
        let quiet = now.saturating_sub(self.active_ms) >= QUIET_MS;
        match self.talk {
            Talk::Turn(turn) => {
                if let Some((upto, at)) = self.sentence
                    && now >= at
                {
                    self.segment_end(turn, upto);
                }
                if quiet {
                    // Words left, or a turn of sound alone (a turn without
                    // a segment would be dropped as saying nothing); the
                    // quiet tail after the last sentence needs no segment.
                    let sound_alone = self.unsegmented && self.segments == 0;
                    if sound_alone || !self.words.trim().is_empty() {
                        self.segment_end(turn, self.words.len());
                    }
                    self.held.push_back((turn, Output::Finished));
                    self.words.clear();
                    self.sentence = None;
                    self.unsegmented = false;
                    self.talk = Talk::Idle { muted: false };
                }
            }
            Talk::Asked { .. } if quiet => {
                // Moshi stopped before the call could listen: forgotten.
                self.words.clear();
                self.sentence = None;
                self.waiting.clear();
                self.talk = Talk::Idle { muted: false };
            }
            Talk::Asked { at_ms } if now.saturating_sub(at_ms) >= ASK_AGAIN_MS => self.ask(),
            Talk::Idle { muted: true } if quiet => self.talk = Talk::Idle { muted: false },
            Talk::Asked { .. } | Talk::Idle { .. } => {}
        }
    }
}

/// Why the connection's end ends the conversation, for the log (escaped).
fn ended(ending: &Ending) -> String {
    match ending {
        Ending::NotOpened(Closed::Fatal(e) | Closed::Retry(e)) => {
            format!("moshi: cannot connect: {}", outside(&e.to_string()))
        }
        Ending::NotOpened(Closed::Clean) => "moshi: cannot connect".to_string(),
        Ending::ClosedBy(code, reason) => format!(
            "moshi: the server closed the session (code {}{}{})",
            code.map_or_else(|| "none".to_string(), |c| c.to_string()),
            if reason.is_empty() { "" } else { ": " },
            outside(&reason.chars().take(200).collect::<String>())
        ),
        Ending::Dropped(detail) => {
            format!("moshi: the connection dropped: {}", outside(detail))
        }
    }
}

impl Conversation for MoshiCall {
    fn abilities(&self) -> Abilities {
        Abilities {
            greets: false,
            speaks: false,
            playback_lead: Some(self.lead),
        }
    }

    fn hear(&mut self, mulaw: &[u8], events: &mut Vec<Event>) {
        if self.gone {
            return;
        }
        self.heard += mulaw.len() as u64;
        self.tick();
        if !self.ready || self.gone {
            return;
        }
        let mut message = protocol::audio_message(256);
        match self.caller.push(mulaw, &mut message) {
            Ok(sent) => {
                // The caller's speech is not the call's to act on (Moshi
                // hears it), but it is not silence either: no "are you
                // still there?" while they talk.
                let now = self.now_ms();
                if sent.loud {
                    let pause = self
                        .caller_active_ms
                        .is_none_or(|at| now.saturating_sub(at) >= QUIET_MS);
                    if pause {
                        events.push(Event::SpeechStarted);
                    }
                    self.caller_active_ms = Some(now);
                }
            }
            Err(e) => {
                if self.unencoded == 0 {
                    warn!(error = %e, "moshi: the caller's audio could not be encoded");
                }
                self.unencoded += 1;
            }
        }
        if message.len() > 1 {
            self.pipe.send(Message::Binary(message.into()));
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Start {
                turn,
                speak: Speak::Answer(TurnInput::Spoken),
            } => {
                if !self.waiting.is_empty() {
                    let audio: Vec<u8> = self.waiting.drain(..).collect();
                    self.held
                        .push_back((turn, Output::Audio(Bytes::from(audio))));
                    self.unsegmented = true;
                }
                self.talk = Talk::Turn(turn);
                self.segments = 0;
            }
            Command::Start { turn, .. } => {
                // Moshi takes no prompt: a greeting, an announcement or
                // keypad digits have nothing to say.
                self.held.push_back((turn, Output::Finished));
            }
            Command::Cancel { turn, .. } => {
                self.held.retain(|(t, _)| *t != turn);
                if self.talk == Talk::Turn(turn) {
                    self.talk = Talk::Idle { muted: true };
                    self.words.clear();
                    self.sentence = None;
                    self.unsegmented = false;
                    self.waiting.clear();
                }
            }
            Command::Heard(_) => {}
        }
    }

    fn poll_event(&mut self, cx: &mut Context<'_>, room: bool) -> Poll<Event> {
        while !self.gone {
            match self.pipe.poll_recv(cx) {
                Poll::Ready(Some(piped)) => self.on_piped(piped),
                Poll::Ready(None) => self.gone("moshi: the connection is gone".to_string()),
                Poll::Pending => break,
            }
        }
        if let Some(event) = self.events.pop_front() {
            return Poll::Ready(event);
        }
        if room && let Some((turn, output)) = self.held.pop_front() {
            return Poll::Ready(Event::Turn { turn, output });
        }
        Poll::Pending
    }
}

impl Drop for MoshiCall {
    fn drop(&mut self) {
        if self.skipped > 0 || self.unencoded > 0 {
            warn!(
                skipped = self.skipped,
                unencoded = self.unencoded,
                "moshi: audio lost in this call"
            );
        }
    }
}

#[cfg(test)]
mod tests;
