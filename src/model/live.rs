//! What `/api/status` shows of a call in progress: what its session
//! publishes about itself ([`LiveState`]), joined with what the webhooks said
//! ([`CallSnapshot`]).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::redact::mask_phone;

use super::{CallInfo, CallStatus, Direction, LiveEvent, TurnLatency, TurnRecord};

/// Where a call's conversation stands, as `/api/status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// The TwiML was served; the media stream has not started.
    #[default]
    Connecting,
    Listening,
    /// The caller's turn ended and the answer is being prepared.
    Responding,
    Speaking,
}

/// Turn records kept per live call; older ones are dropped first.
pub const MAX_TURN_RECORDS: usize = 100;

/// Events kept per call; older ones are dropped first.
pub const MAX_EVENTS: usize = 200;

/// What a live session publishes about itself.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct LiveState {
    pub stream_sid: Option<String>,
    pub state: SessionState,
    /// Turns started (the greeting is turn 0).
    pub turns: u32,
    /// Stream `start` → the greeting's first audio frame sent.
    pub greeting_ms: Option<u64>,
    pub transcript: Vec<TurnRecord>,
    /// The caller's words so far in the turn they are speaking, as a
    /// streaming speech-to-text provider hears them; absent between turns
    /// and without a streaming provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller_words: Option<String>,
    pub events: Vec<LiveEvent>,
    /// Inbound messages that were malformed and skipped.
    pub bad_messages: u64,
    /// Counts the changes: a view that saw this version has seen it all.
    #[serde(skip)]
    pub version: u64,
}

impl LiveState {
    pub fn push_event(&mut self, event: LiveEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.remove(0);
        }
        self.events.push(event);
    }

    /// Adds a turn, or replaces the one with its number (an amended record).
    pub fn push_turn(&mut self, record: TurnRecord) {
        if let Some(kept) = self.transcript.iter_mut().find(|t| t.turn == record.turn) {
            *kept = record;
            return;
        }
        if self.transcript.len() >= MAX_TURN_RECORDS {
            self.transcript.remove(0);
        }
        self.transcript.push(record);
    }
}

/// One call in `/api/status`. Phone numbers are masked.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CallSnapshot {
    pub call_sid: String,
    pub from: String,
    pub to: String,
    pub direction: Direction,
    /// The agent answering it.
    pub agent: String,
    pub started_at: DateTime<Utc>,
    pub duration_secs: u64,
    /// The latest `CallStatus` from Twilio's status callbacks, if any came.
    pub call_status: Option<CallStatus>,
    /// The latency of the latest turn in the transcript.
    pub last_turn: Option<TurnLatency>,
    #[serde(flatten)]
    pub live: LiveState,
}

impl CallSnapshot {
    /// `info` with its numbers masked, and the session's state.
    pub fn new(
        info: &CallInfo,
        duration_secs: u64,
        call_status: Option<CallStatus>,
        live: LiveState,
    ) -> CallSnapshot {
        CallSnapshot {
            call_sid: info.call_sid.clone(),
            from: mask_phone(&info.from),
            to: mask_phone(&info.to),
            direction: info.direction.clone(),
            agent: info.agent.clone(),
            started_at: info.started_at,
            duration_secs,
            call_status,
            last_turn: live.transcript.last().map(|r| r.latency.clone()),
            live,
        }
    }
}
