//! The calls this process is handling, for `/api/status`, the concurrency cap
//! and status callbacks.
//!
//! The registry holds no call state of its own beyond what Twilio told the
//! webhooks: each live session publishes its state through a `watch` channel,
//! and the registry keeps only the receiving end. The map is behind a mutex held
//! for a few microseconds at a time, never across an `.await`.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;

use crate::redact::mask_phone;

/// What the webhook (or the stream's `start` parameters) said about a call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallInfo {
    pub call_sid: String,
    pub from: String,
    pub to: String,
    pub direction: String,
    pub started_at: DateTime<Utc>,
    /// An outbound call's own greeting, instead of the configured one.
    pub greeting: Option<String>,
    /// An outbound call's instructions to the agent (why it calls).
    pub instructions: Option<String>,
    /// Caller memory: summaries of earlier calls with this number, newest first.
    pub memory: Vec<String>,
}

/// Where a session is in its conversation loop.
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

/// The latency of one caller turn, as Pronto measured it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct TurnLatency {
    pub turn: u32,
    /// Length of the caller's utterance, pre-roll included.
    pub utterance_ms: u64,
    /// Silence waited before deciding the caller had finished (the hangover).
    pub endpoint_wait_ms: u64,
    /// The speech-to-text request.
    pub stt_ms: Option<u64>,
    /// LLM request → first token.
    pub llm_first_token_ms: Option<u64>,
    /// LLM request → first complete sentence.
    pub first_sentence_ms: Option<u64>,
    /// The first sentence's TTS request → its first audio byte.
    pub tts_first_byte_ms: Option<u64>,
    /// End of the caller's speech → first audio frame sent to Twilio.
    pub voice_to_voice_ms: Option<u64>,
    /// What Pronto itself added: voice-to-voice minus the endpoint wait, STT,
    /// time to the first sentence and TTS first byte. Only when all are known.
    pub pipeline_overhead_ms: Option<i64>,
    /// The caller spoke over the answer and it was cleared.
    pub interrupted: bool,
}

/// One exchange of the conversation, as it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct TurnRecord {
    /// 0 is the greeting.
    pub turn: u32,
    /// What the caller said (transcript or keypad), if anything was understood.
    pub caller: Option<String>,
    /// Everything the agent produced for this turn.
    pub agent_said: String,
    /// What the caller heard of it: the sentences whose marks came back.
    pub agent_heard: String,
    pub interrupted: bool,
    pub latency: TurnLatency,
}

/// Something that happened in a call, kept in its event list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CallEvent {
    Dtmf {
        at_ms: u64,
        digit: String,
    },
    BargeIn {
        at_ms: u64,
        turn: u32,
    },
    /// A provider failed; the caller heard the fallback line.
    ProviderError {
        at_ms: u64,
        turn: u32,
        error: String,
    },
    /// The agent ended or transferred the call (`action`: `end_call`,
    /// `transfer_call`); `outcome` says how the REST request went.
    Action {
        at_ms: u64,
        action: String,
        outcome: String,
    },
}

/// Turn records kept per live call; older ones are dropped first.
pub const MAX_TURN_RECORDS: usize = 100;

/// Events kept per call; older ones are dropped first.
pub const MAX_EVENTS: usize = 200;

/// What a live session publishes about itself.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct LiveState {
    pub stream_sid: String,
    pub state: SessionState,
    pub turns: u32,
    pub last_turn: Option<TurnLatency>,
    /// Stream `start` → the greeting's first audio frame sent.
    pub greeting_ms: Option<u64>,
    pub transcript: Vec<TurnRecord>,
    pub events: Vec<CallEvent>,
    /// Inbound messages that were malformed and skipped.
    pub bad_messages: u64,
}

impl LiveState {
    pub fn push_event(&mut self, event: CallEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.remove(0);
        }
        self.events.push(event);
    }

    pub fn push_turn(&mut self, record: TurnRecord) {
        if self.transcript.len() >= MAX_TURN_RECORDS {
            self.transcript.remove(0);
        }
        self.last_turn = Some(record.latency.clone());
        self.transcript.push(record);
    }
}

/// One call in `/api/status`. Phone numbers are masked.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CallSnapshot {
    pub call_sid: String,
    pub stream_sid: Option<String>,
    pub from: String,
    pub to: String,
    pub direction: String,
    pub started_at: DateTime<Utc>,
    pub duration_secs: u64,
    pub state: SessionState,
    /// The latest `CallStatus` from Twilio's status callbacks, if any came.
    pub call_status: Option<String>,
    pub turns: u32,
    pub last_turn: Option<TurnLatency>,
    pub greeting_ms: Option<u64>,
    pub transcript: Vec<TurnRecord>,
    pub events: Vec<CallEvent>,
    pub bad_messages: u64,
}

struct Entry {
    info: CallInfo,
    started: Instant,
    /// Until a stream attaches, the entry lapses when its stream token does.
    pending_until: Option<Instant>,
    live: Option<(u64, watch::Receiver<LiveState>)>,
    status: Option<String>,
    status_seq: Option<u32>,
    seen_seqs: BTreeSet<u32>,
}

impl Entry {
    fn new(info: CallInfo, pending_until: Option<Instant>) -> Self {
        Entry {
            info,
            started: Instant::now(),
            pending_until,
            live: None,
            status: None,
            status_seq: None,
            seen_seqs: BTreeSet::new(),
        }
    }
}

/// The answer when the cap is reached.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

/// What a status callback did.
#[derive(Debug, PartialEq, Eq)]
pub enum StatusOutcome {
    Applied,
    /// Same (CallSid, SequenceNumber) seen before: ignored.
    Duplicate,
    /// Older than a status already applied: recorded, state unchanged.
    Stale,
    /// Not a call this process knows (ended, or on another replica).
    Unknown,
}

const TERMINAL: [&str; 5] = ["completed", "busy", "failed", "no-answer", "canceled"];

#[derive(Clone, Default)]
pub struct Registry {
    calls: Arc<Mutex<HashMap<String, Entry>>>,
    next_id: Arc<AtomicU64>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // A panic elsewhere while holding the lock leaves plain data behind.
        self.calls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn prune(calls: &mut HashMap<String, Entry>, now: Instant) {
        calls.retain(|_, e| e.live.is_some() || e.pending_until.is_none_or(|until| until > now));
    }

    /// Counts the call against the cap and records it until its stream starts
    /// (or `pending_for` passes). A repeated webhook for a known call is not
    /// counted twice.
    pub fn reserve(
        &self,
        info: CallInfo,
        max_calls: usize,
        pending_for: Duration,
    ) -> Result<(), Busy> {
        let now = Instant::now();
        let mut calls = self.lock();
        Self::prune(&mut calls, now);
        if let Some(existing) = calls.get_mut(&info.call_sid) {
            if existing.live.is_none() {
                existing.pending_until = Some(now + pending_for);
            }
            return Ok(());
        }
        if calls.len() >= max_calls {
            return Err(Busy);
        }
        calls.insert(
            info.call_sid.clone(),
            Entry::new(info, Some(now + pending_for)),
        );
        Ok(())
    }

    /// Marks the call live with its session's state channel. `info` is used
    /// when this process did not serve the call's webhook (another replica did).
    /// The call leaves the registry when the returned guard is dropped.
    pub fn attach(&self, info: CallInfo, live: watch::Receiver<LiveState>) -> Attachment {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut calls = self.lock();
        let entry = calls
            .entry(info.call_sid.clone())
            .or_insert_with(|| Entry::new(info.clone(), None));
        entry.pending_until = None;
        entry.live = Some((id, live));
        Attachment {
            registry: self.clone(),
            call_sid: info.call_sid,
            id,
        }
    }

    /// Applies a status callback, idempotent on (CallSid, SequenceNumber) and
    /// correct in any arrival order: the status with the highest sequence
    /// number wins.
    pub fn apply_status(
        &self,
        call_sid: &str,
        sequence: Option<u32>,
        status: &str,
    ) -> StatusOutcome {
        let mut calls = self.lock();
        let Some(entry) = calls.get_mut(call_sid) else {
            return StatusOutcome::Unknown;
        };
        if let Some(seq) = sequence {
            if !entry.seen_seqs.insert(seq) {
                return StatusOutcome::Duplicate;
            }
            if entry.status_seq.is_some_and(|applied| applied > seq) {
                return StatusOutcome::Stale;
            }
            entry.status_seq = Some(seq);
        }
        entry.status = Some(status.to_string());
        // A call that ended before its stream started has nothing left to wait for.
        if TERMINAL.contains(&status) && entry.live.is_none() {
            calls.remove(call_sid);
        }
        StatusOutcome::Applied
    }

    /// Calls counted against the cap (live, or waiting for their stream).
    pub fn len(&self) -> usize {
        let mut calls = self.lock();
        Self::prune(&mut calls, Instant::now());
        calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls with a running media stream.
    pub fn live_count(&self) -> usize {
        self.lock().values().filter(|e| e.live.is_some()).count()
    }

    /// Every call, oldest first, numbers masked.
    pub fn snapshot(&self) -> Vec<CallSnapshot> {
        let now = Instant::now();
        let mut calls = self.lock();
        Self::prune(&mut calls, now);
        let mut out: Vec<CallSnapshot> = calls
            .values()
            .map(|e| {
                let live = e
                    .live
                    .as_ref()
                    .map(|(_, rx)| rx.borrow().clone())
                    .unwrap_or_default();
                CallSnapshot {
                    call_sid: e.info.call_sid.clone(),
                    stream_sid: Some(live.stream_sid).filter(|s| !s.is_empty()),
                    from: mask_phone(&e.info.from),
                    to: mask_phone(&e.info.to),
                    direction: e.info.direction.clone(),
                    started_at: e.info.started_at,
                    duration_secs: now.saturating_duration_since(e.started).as_secs(),
                    state: live.state,
                    call_status: e.status.clone(),
                    turns: live.turns,
                    last_turn: live.last_turn,
                    greeting_ms: live.greeting_ms,
                    transcript: live.transcript,
                    events: live.events,
                    bad_messages: live.bad_messages,
                }
            })
            .collect();
        out.sort_by(|a, b| {
            a.started_at
                .cmp(&b.started_at)
                .then_with(|| a.call_sid.cmp(&b.call_sid))
        });
        out
    }
}

/// Keeps a call in the registry while its session runs; dropping it (on any
/// exit, including a panic) removes the call.
pub struct Attachment {
    registry: Registry,
    call_sid: String,
    id: u64,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        let mut calls = self.registry.lock();
        // Only if a newer stream for the same call has not replaced this one.
        if calls
            .get(&self.call_sid)
            .is_some_and(|e| e.live.as_ref().is_some_and(|(id, _)| *id == self.id))
        {
            calls.remove(&self.call_sid);
        }
    }
}

#[cfg(test)]
mod tests;
