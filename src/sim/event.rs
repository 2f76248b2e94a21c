//! The call's timeline: what happened, when, seen from Twilio's side.

use std::fmt;

use super::protocol::ProtocolError;

/// Something that happened on the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The voice webhook answered (before the stream, so a negative time).
    WebhookAnswered {
        /// HTTP status of the answer.
        status: u16,
    },
    /// The WebSocket upgrade succeeded: the stream starts (time 0).
    StreamConnected,
    /// `start` was sent (announcing this `streamSid` and `callSid`).
    StartSent {
        /// The `streamSid` every later message must carry.
        stream_sid: String,
        /// The `callSid` claimed (differs from the call's in forgery tests).
        call_sid: String,
    },
    /// The first audible frame of caller turn N was sent.
    SpeechStart {
        /// 1-based caller turn.
        turn: usize,
    },
    /// The last audible frame of caller turn N was sent: the caller stopped
    /// speaking. Voice-to-voice latency is measured from here.
    SpeechEnd {
        /// 1-based caller turn.
        turn: usize,
    },
    /// A `dtmf` message was sent.
    DtmfSent {
        /// The key pressed.
        digit: char,
    },
    /// The server sent audio: one event per burst (messages received with
    /// gaps under 200 ms), stamped at the burst's first message and emitted
    /// when it ends.
    MediaReceived {
        /// `media` messages in the burst.
        messages: u64,
        /// μ-law bytes in the burst (8 per millisecond of audio).
        bytes: u64,
        /// Time of the burst's last message.
        until_ms: i64,
    },
    /// The caller started hearing sound: the first audible frame played
    /// after at least 200 ms of quiet.
    AudioHeardStart,
    /// The sound stopped: stamped when the first quiet frame started playing,
    /// emitted once 200 ms of quiet have confirmed it.
    AudioHeardEnd,
    /// The server sent a mark.
    MarkReceived {
        /// The mark's name.
        name: String,
    },
    /// A mark was echoed to the server: playback reached it, or `clear`
    /// dropped its audio (`cleared`), or nothing was queued.
    MarkEchoed {
        /// The mark's name.
        name: String,
        /// Echoed because `clear` dropped its audio, which was not heard.
        cleared: bool,
    },
    /// The server sent `clear`; this much queued audio was dropped.
    ClearReceived {
        /// Queued audio dropped, never heard.
        dropped_ms: u64,
    },
    /// Queued audio exceeded ten minutes; the excess was discarded (31931).
    MediaDiscarded {
        /// μ-law bytes discarded by the first overflow (reported once).
        bytes: u64,
    },
    /// The server sent something Twilio would have dropped (31950/31951).
    ProtocolError(ProtocolError),
    /// `stop` was sent: the caller hung up.
    StopSent,
    /// The WebSocket closed.
    Closed(CloseInfo),
}

/// Who ended the WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closer {
    /// The server closed it (or the connection broke).
    Server,
    /// The simulator hung up.
    Simulator,
}

/// How the WebSocket ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// Who closed.
    pub by: Closer,
    /// Close code (1000 normal, 1008 policy violation, 1009 too big, …);
    /// `None` when the connection ended without a close frame, or when the
    /// simulator gave up on a server that stopped reading (see `reason`).
    pub code: Option<u16>,
    /// The close frame's reason, or what went wrong without one.
    pub reason: String,
    /// Audio the server had sent that was still queued, never heard: a server
    /// that closes right after its goodbye cuts it off.
    pub unplayed_ms: u64,
}

/// An [`Event`] and when it happened, in ms since the stream started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedEvent {
    /// Milliseconds since the stream started; negative before it.
    pub at_ms: i64,
    /// What happened.
    pub event: Event,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::WebhookAnswered { status } => write!(f, "webhook answered HTTP {status}"),
            Event::StreamConnected => write!(f, "stream connected"),
            Event::StartSent { stream_sid, .. } => write!(f, "start sent ({stream_sid})"),
            Event::SpeechStart { turn } => write!(f, "caller speech {turn} starts"),
            Event::SpeechEnd { turn } => write!(f, "caller speech {turn} ends"),
            Event::DtmfSent { digit } => write!(f, "dtmf {digit} sent"),
            Event::MediaReceived {
                messages,
                bytes,
                until_ms,
            } => write!(
                f,
                "media received: {messages} messages, {} ms of audio, until {until_ms} ms",
                bytes / 8
            ),
            Event::AudioHeardStart => write!(f, "audio heard: starts"),
            Event::AudioHeardEnd => write!(f, "audio heard: ends"),
            Event::MarkReceived { name } => write!(f, "mark {name:?} received"),
            Event::MarkEchoed { name, cleared } => {
                write!(f, "mark {name:?} echoed")?;
                if *cleared {
                    write!(f, " (cleared)")?;
                }
                Ok(())
            }
            Event::ClearReceived { dropped_ms } => {
                write!(f, "clear received: {dropped_ms} ms of audio dropped")
            }
            Event::MediaDiscarded { bytes } => {
                write!(
                    f,
                    "{} ms of audio discarded: queue over 10 min (31931)",
                    bytes / 8
                )
            }
            Event::ProtocolError(e) => write!(f, "protocol error: {e}"),
            Event::StopSent => write!(f, "stop sent"),
            Event::Closed(c) => write!(f, "{c}"),
        }
    }
}

impl fmt::Display for CloseInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = match self.by {
            Closer::Server => "server",
            Closer::Simulator => "simulator",
        };
        match self.code {
            Some(code) => write!(f, "closed by {who}: {code}")?,
            None => write!(f, "closed by {who}: no close frame")?,
        }
        if !self.reason.is_empty() {
            write!(f, " {:?}", self.reason)?;
        }
        if self.unplayed_ms > 0 {
            write!(f, ", {} ms of audio never played", self.unplayed_ms)?;
        }
        Ok(())
    }
}
