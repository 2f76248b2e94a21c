//! The seam between a call session and whatever answers the caller.
//!
//! At the end of each caller turn the session hands the utterance (or the
//! keypad digits) and the conversation so far to a [`Responder`], which streams
//! back μ-law audio in segments (an echo is one segment; the agent sends one
//! per sentence) and what it learned on the way: the transcript, stage
//! timings, an action such as hanging up. The session owns pacing, marks,
//! barge-in, what was heard and the conversation; a responder only produces.
//! It runs in a child task that the session aborts on barge-in or hang-up, so
//! dropping its future must be a clean cancellation (true of any HTTP stream
//! in flight).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::audio::mulaw;
use crate::model::CallBrief;
pub use crate::model::{CallAction, Timing};
use crate::providers::ChatMessage;

/// What the caller gave in one turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnInput {
    /// The caller's utterance, 8 kHz PCM, pre-roll included.
    Speech(Vec<i16>),
    /// Keypad digits, already worded for the agent: `[keypad: 1 2 #]`.
    Keypad(String),
}

/// One caller turn to answer.
#[derive(Debug, Clone)]
pub struct TurnRequest {
    pub turn: u32,
    pub call: Arc<CallBrief>,
    pub input: TurnInput,
    /// The conversation before this turn: what was said, and of the agent's
    /// answers only what the caller heard.
    pub history: Arc<[ChatMessage]>,
}

/// Something Pronto itself has to tell the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announcement {
    /// The caller has been silent for a while.
    StillThere,
    /// Pronto is about to end the call (maximum duration, silence, shutdown).
    Closing,
}

/// What a responder streams back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseEvent {
    /// μ-law 8 kHz audio, any length.
    Audio(Bytes),
    /// The audio so far forms one segment; `text` is what it says (empty for
    /// echo). The session sends a mark here and counts the segment heard when
    /// it comes back.
    SegmentEnd {
        text: String,
    },
    /// A sentence the responder is about to speak (its audio follows, ending
    /// with a `SegmentEnd`): what the agent said, even if it gets cut off.
    Planned(String),
    /// What the caller said, as the agent understood it. No transcript and
    /// no audio means nothing intelligible was said: the turn is dropped.
    Transcript(String),
    Timing(Timing),
    /// To do when every segment of this turn has been heard.
    Action(CallAction),
    /// The responder has finished this turn.
    Finished,
    /// The responder gave up on this turn; the caller is listened to again.
    Failed(String),
}

/// Where a responder sends its events, tagged with the turn so the session can
/// drop late events from a turn it has already cancelled.
#[derive(Clone)]
pub struct ResponseSink {
    turn: u32,
    tx: mpsc::Sender<(u32, ResponseEvent)>,
}

/// The session has gone (the call ended): stop producing.
#[derive(Debug, PartialEq, Eq)]
pub struct SessionGone;

impl ResponseSink {
    pub fn new(turn: u32, tx: mpsc::Sender<(u32, ResponseEvent)>) -> Self {
        ResponseSink { turn, tx }
    }

    pub async fn send(&self, event: ResponseEvent) -> Result<(), SessionGone> {
        self.tx
            .send((self.turn, event))
            .await
            .map_err(|_| SessionGone)
    }
}

pub type ResponseFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Answers caller turns. One instance serves every call; per-call state comes
/// in the [`TurnRequest`].
pub trait Responder: Send + Sync + 'static {
    /// What `/health` reports as the mode (`echo`, `agent`).
    fn mode(&self) -> &'static str;

    /// The greeting, streamed like an answer the moment the stream starts;
    /// `None` when there is none.
    fn greet(&self, _call: Arc<CallBrief>, _sink: ResponseSink) -> Option<ResponseFuture> {
        None
    }

    /// Speaks an announcement, streamed like an answer; `None` when this
    /// responder cannot speak (echo mode), and the session does without.
    fn announce(&self, _what: Announcement, _sink: ResponseSink) -> Option<ResponseFuture> {
        None
    }

    /// Produces the answer to one turn into `sink`. Returning `Err` reports a
    /// failure for this turn; `Finished` is sent by the session when the future
    /// completes.
    fn respond(&self, request: TurnRequest, sink: ResponseSink) -> ResponseFuture;
}

/// Echo mode: the caller hears their own utterance played back. It proves the
/// whole phone path (Twilio → tunnel → Pronto → Twilio) before any AI key is
/// configured.
pub struct Echo;

impl Responder for Echo {
    fn mode(&self) -> &'static str {
        "echo"
    }

    fn respond(&self, request: TurnRequest, sink: ResponseSink) -> ResponseFuture {
        Box::pin(async move {
            let TurnInput::Speech(audio) = request.input else {
                return Ok(()); // keypad digits have no sound to echo
            };
            let audio = Bytes::from(mulaw::encode(&audio));
            sink.send(ResponseEvent::Audio(audio))
                .await
                .map_err(|_| "call ended".to_string())?;
            sink.send(ResponseEvent::SegmentEnd {
                text: String::new(),
            })
            .await
            .map_err(|_| "call ended".to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CallInfo;

    fn request(turn: u32, input: TurnInput) -> TurnRequest {
        TurnRequest {
            turn,
            call: Arc::new(CallBrief::of(CallInfo {
                call_sid: "CA1".into(),
                from: "+15550001111".into(),
                to: "+15550002222".into(),
                direction: "inbound".into(),
                started_at: chrono::Utc::now(),
            })),
            input,
            history: Arc::from(Vec::new()),
        }
    }

    #[tokio::test]
    async fn echo_plays_the_utterance_back_as_one_segment() {
        let (tx, mut rx) = mpsc::channel(8);
        let audio: Vec<i16> = (0..800).map(|i| ((i % 50) * 300 - 7000) as i16).collect();
        let request = request(3, TurnInput::Speech(audio.clone()));
        Echo.respond(request, ResponseSink::new(3, tx))
            .await
            .expect("echo works");
        assert_eq!(
            rx.recv().await,
            Some((3, ResponseEvent::Audio(Bytes::from(mulaw::encode(&audio)))))
        );
        assert_eq!(
            rx.recv().await,
            Some((
                3,
                ResponseEvent::SegmentEnd {
                    text: String::new()
                }
            ))
        );
    }

    #[tokio::test]
    async fn echo_stops_when_the_session_is_gone() {
        let (tx, rx) = mpsc::channel(8);
        drop(rx);
        let request = request(1, TurnInput::Speech(vec![0; 160]));
        assert!(
            Echo.respond(request, ResponseSink::new(1, tx))
                .await
                .is_err()
        );
    }
}
