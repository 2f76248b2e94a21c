//! The engine seam: between a call and whatever produces the agent's side of
//! it.
//!
//! The call (see `call::core`) owns everything about the phone line: pacing
//! audio to Twilio, marks, what the caller heard, barge-in, keypad digits,
//! limits, the record. An engine owns everything about the conversation: it
//! hears the caller, decides when their turn is over, and produces the
//! agent's answer as audio with the text it speaks. Echo mode
//! ([`echo::Echo`]) and the agent (`agent::Agent`: speech-to-text, an LLM,
//! sentence-by-sentence text-to-speech) are engines; so is anything that
//! detects turns itself (a provider's end-of-turn event, a speech-to-speech
//! model's own voice detection): turn detection is the engine's, never the
//! call's.
//!
//! One [`Engine`] serves a deployment and opens one [`Conversation`] per call.
//! The events both ways, in the order they happen:
//!
//! Into the conversation (from the call):
//! - [`Conversation::hear`]: every media frame of the caller, as Twilio sent
//!   it (8 kHz μ-law, usually 20 ms), from the moment the call is ready.
//!   Called inline fifty times a second per call, so it must not block and
//!   should not allocate per frame; what it learns it reports at once.
//! - [`Command::Start`]: produce turn `turn`: the greeting (turn 0), an
//!   announcement Pronto needs made, or the answer to the caller's input.
//!   One turn at a time: a new one starts only after the last was cancelled
//!   or is over.
//! - [`Command::Cancel`]: stop producing turn `turn` now (the caller spoke
//!   over it, or the call is ending), with how much of its audio the caller
//!   heard. Anything it still reports is dropped.
//! - [`Command::Heard`]: a turn is over and this is how it went: what the
//!   caller said, and of the agent's words only what the caller heard
//!   (Twilio echoed the mark after them). An engine that keeps a
//!   conversation history keeps this, never what it merely produced.
//!
//! Out of it (to the call):
//! - from `hear` (at once) or `poll_event` (when the engine learns it
//!   later, e.g. from a provider): [`Event::SpeechStarted`] (the caller
//!   started talking), [`Event::Interrupting`] (they have talked long enough
//!   to interrupt the agent; reported again while they go on), and
//!   [`Event::TurnEnded`] (their turn is over: the call decides whether to
//!   answer it, and starts a turn with that input; if the caller speaks over
//!   the answer before hearing any of it, they had only paused, and the
//!   call answers both inputs together, see [`TurnInput::continuing`]).
//! - from `poll_event`: [`Event::Turn`], the output of the turn in progress:
//!   sentences it plans to say, μ-law audio with a segment end (and its
//!   text) after each sentence, the transcript of what the caller said,
//!   stage timings, an action for after the words (hang up, transfer), and
//!   last `Finished` or `Failed`. A turn's output may be held back (in order)
//!   while the call has no room for more audio (`room` false); the caller's
//!   events must not be, so that the caller can always interrupt.
//! - from `poll_event`, after a turn is over: [`Event::Amended`], the turn's
//!   record corrected (what the caller said, transcribed late; what they
//!   heard of an interrupted answer, worked out from the audio they heard).
//! - [`Event::Gone`]: the conversation cannot go on (a speech-to-speech
//!   model's session refused or closed); the call ends politely.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;

use crate::model::{CallAction, CallBrief, Timing, TokenUsage, TurnDecider, TurnRecord};
use crate::providers::ProviderError;

pub mod echo;
pub mod endpointing;
pub mod hearing;
pub mod turn_model;

/// What answers calls: one per deployment, opening a [`Conversation`] per call.
pub trait Engine: Send + Sync + 'static {
    /// What `/health` reports as the mode (`echo`, `agent`).
    fn mode(&self) -> &'static str;

    /// Whether its calls can say what an operator types (their
    /// [`Abilities::speaks`]): for the dashboard to offer it.
    fn speaks(&self) -> bool {
        true
    }

    /// A call was admitted and its stream will connect in a moment: warm
    /// what the call will need (provider connections). Must not block.
    fn prepare(&self) {}

    /// How it hears and answers, for `/health`.
    fn status(&self) -> EngineStatus;

    /// The agent's side of one call, about to start. Called once the call's
    /// brief is known (who calls, an outbound call's plan, caller memory),
    /// before the greeting.
    fn open(&self, brief: Arc<CallBrief>) -> Box<dyn Conversation>;
}

/// What `/health` says about the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct EngineStatus {
    /// The turn detector calls get (`provider`, `model`, `silence`).
    pub turn_detector: &'static str,
    /// Who transcribes (`openai`, `deepgram`, …; `none` in echo mode).
    pub speech_to_text: &'static str,
    /// Speculative answers started since start, and how many were dropped
    /// unheard because the caller went on.
    pub speculative_answers: u64,
    pub speculative_wasted: u64,
}

/// The agent's side of one call: it hears the caller and produces the
/// agent's turns. See the module documentation for the events both ways.
/// Dropping it stops everything it runs.
pub trait Conversation: Send {
    /// What this conversation can do, asked once when the call is ready.
    fn abilities(&self) -> Abilities;

    /// The caller's audio: one media payload, 8 kHz μ-law. Events it causes
    /// are pushed to `events` in order.
    fn hear(&mut self, mulaw: &[u8], events: &mut Vec<Event>);

    /// Something the call asks for (see [`Command`]).
    fn command(&mut self, command: Command);

    /// The next event, when there is one. `room` is false while the call's
    /// outbound queue is full: turn output waits, the caller's events do not.
    /// Never ends (`Pending` when there is nothing to report). The call
    /// polls again whenever it wakes (every media frame, every timer), so a
    /// conversation that holds something back for room needs no waker.
    fn poll_event(&mut self, cx: &mut Context<'_>, room: bool) -> Poll<Event>;

    /// At the end of the call, a summary of it for caller memory, if this
    /// engine writes one. The call saves what it yields.
    fn summary(&mut self) -> Option<SummaryFuture> {
        None
    }
}

/// A caller-memory summary being written; `None` when there is nothing to
/// remember.
pub type SummaryFuture =
    Pin<Box<dyn Future<Output = Result<Option<String>, ProviderError>> + Send + 'static>>;

/// What a conversation can do, for the call's decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Abilities {
    /// It has a greeting to play the moment the call is ready.
    pub greets: bool,
    /// It can speak Pronto's own announcements ("are you still there?", the
    /// closing line). Without, the call does without them.
    pub speaks: bool,
    /// How far ahead of Twilio's playback its audio may be sent, when it
    /// needs less than `[call] max_playback_lead_ms`: a model that stops
    /// talking by itself when talked over (and cannot be cleared) wants its
    /// audio to stop reaching the caller soon after.
    pub playback_lead: Option<Duration>,
}

/// What the call asks of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Produce turn `turn`.
    Start { turn: u32, speak: Speak },
    /// Stop producing turn `turn`; the caller heard `heard` of its audio
    /// (by Twilio's mark echoes, and the time played since the last one).
    Cancel { turn: u32, heard: Duration },
    /// A turn is over; how it went.
    Heard(Box<TurnRecord>),
}

/// What a turn is to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Speak {
    /// The greeting, the moment the call is ready (turn 0).
    Greeting,
    /// Something Pronto itself has to tell the caller.
    Announcement(Announcement),
    /// What an operator typed on the dashboard, to say in the agent's voice
    /// (only asked of an engine whose [`Abilities::speaks`]).
    Operator(String),
    /// The answer to what the caller gave.
    Answer(TurnInput),
}

/// Something Pronto itself has to tell the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announcement {
    /// The caller has been silent for a while.
    StillThere,
    /// Pronto is about to end the call (maximum duration, silence, shutdown).
    Closing,
}

/// What the caller gave in one turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnInput {
    /// The caller's utterance, 8 kHz PCM, pre-roll included, to transcribe.
    Speech(Vec<i16>),
    /// The caller's words, already transcribed while they spoke (streaming
    /// speech-to-text).
    Transcript(String),
    /// Keypad digits, already worded for the agent: `[keypad: 1 2 #]`.
    Keypad(String),
    /// Speech the engine heard itself (a speech-to-speech model): it
    /// already has the audio, and reports the words, when transcribed, as
    /// the turn's [`Output::Transcript`] or later in [`Event::Amended`].
    Spoken,
}

/// The longest caller speech carried over into their next turn (30 s at 8 kHz).
const MAX_CARRY_OVER: usize = 30 * 8000;

impl TurnInput {
    /// What of this input is carried into the caller's next turn when they
    /// speak over its answer before hearing any of it (they had only
    /// paused): speech (its last 30 s at most) or its transcript. Keypad
    /// digits are not carried.
    pub fn carried(self) -> Option<TurnInput> {
        match self {
            TurnInput::Speech(mut audio) => {
                let excess = audio.len().saturating_sub(MAX_CARRY_OVER);
                audio.drain(..excess);
                Some(TurnInput::Speech(audio))
            }
            TurnInput::Transcript(text) => Some(TurnInput::Transcript(text)),
            TurnInput::Keypad(_) | TurnInput::Spoken => None,
        }
    }

    /// This input continuing `earlier` (what [`TurnInput::carried`] kept):
    /// speech after speech is one utterance, words after words one sentence.
    pub fn continuing(self, earlier: Option<TurnInput>) -> TurnInput {
        match (earlier, self) {
            (Some(TurnInput::Speech(mut audio)), TurnInput::Speech(more)) => {
                audio.extend_from_slice(&more);
                TurnInput::Speech(audio)
            }
            (Some(TurnInput::Transcript(earlier)), TurnInput::Transcript(more)) => {
                TurnInput::Transcript(format!("{} {}", earlier.trim_end(), more.trim_start()))
            }
            (_, input) => input,
        }
    }
}

/// How the caller's turn ended, for its latency record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InputTiming {
    /// The caller's last word → this input reported: the wait for the
    /// decision, then for the final transcript if it streams (the call
    /// dates the end of their speech from it).
    pub endpoint_wait: Duration,
    /// The caller's last word → the turn decided (at most `endpoint_wait`).
    pub decided_after: Duration,
    /// Who decided.
    pub decided_by: TurnDecider,
    /// The input is a transcript that streamed while the caller spoke.
    pub streamed: bool,
    /// The length of the utterance.
    pub utterance: Duration,
}

/// What a conversation tells the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The caller started speaking.
    SpeechStarted,
    /// The caller has spoken long enough to interrupt the agent.
    Interrupting,
    /// The caller's words so far in the turn they are speaking, as a
    /// streaming speech-to-text provider hears them (for the live view).
    CallerWords(String),
    /// The caller's turn is over.
    TurnEnded {
        input: TurnInput,
        timing: InputTiming,
    },
    /// Output of turn `turn`.
    Turn { turn: u32, output: Output },
    /// A turn already over and recorded, corrected: the record replaces the
    /// one with its number.
    Amended(Box<TurnRecord>),
    /// The conversation cannot go on, and why (for the log): the call ends
    /// politely (the closing line, if the engine can still speak).
    Gone(String),
    /// What a speech-to-speech model billed for one response.
    Usage(TokenUsage),
}

/// What a turn produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// μ-law 8 kHz audio, any length.
    Audio(Bytes),
    /// The audio so far forms one segment; `text` is what it says (empty for
    /// echo). The call sends a mark here and counts the segment heard when
    /// Twilio echoes it.
    SegmentEnd {
        text: String,
    },
    /// A sentence about to be spoken (its audio follows, ending with a
    /// `SegmentEnd`): what the agent said, even if it gets cut off.
    Planned(String),
    /// What the caller said, as the agent understood it. No transcript and
    /// no audio means nothing intelligible was said: the turn is dropped.
    Transcript(String),
    Timing(Timing),
    /// To do when every segment of this turn has been heard.
    Action(CallAction),
    /// The turn has produced everything.
    Finished,
    /// The turn gave up; the caller is listened to again.
    Failed(TurnError),
}

/// Why a turn failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TurnError {
    /// A provider failed while answering; the caller heard the fallback line.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// A fixed line (the greeting, an announcement) could not be spoken.
    #[error("{line}: {error}")]
    Line {
        line: &'static str,
        error: ProviderError,
    },
}
