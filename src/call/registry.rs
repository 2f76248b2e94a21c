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

use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;

use crate::call::desk::DeskHandle;
use crate::call::roster::Persona;
use crate::model::{CallInfo, CallSnapshot, CallStatus, LiveState};

struct Entry {
    info: CallInfo,
    /// Until the stream attaches: the agent the webhook routed the call to,
    /// which answers it whatever a reload does in between (then the
    /// session holds it).
    routed: Option<Arc<Persona>>,
    started: Instant,
    /// Until a stream attaches, the entry lapses when its stream token does.
    pending_until: Option<Instant>,
    live: Option<(u64, watch::Receiver<LiveState>)>,
    desk: Option<DeskHandle>,
    status: Option<CallStatus>,
    status_seq: Option<u32>,
    seen_seqs: BTreeSet<u32>,
    /// Counts the changes of what the webhooks said (the status).
    version: u64,
}

impl Entry {
    fn new(info: CallInfo, routed: Option<Arc<Persona>>, pending_until: Option<Instant>) -> Self {
        Entry {
            info,
            routed,
            started: Instant::now(),
            pending_until,
            live: None,
            desk: None,
            status: None,
            status_seq: None,
            seen_seqs: BTreeSet::new(),
            version: 0,
        }
    }
}

/// What a view has seen of each call: the versions of its live state and
/// of its status.
#[derive(Debug, Default)]
pub struct Seen(HashMap<String, (u64, u64)>);

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

/// Told of each call whose stream never started, once, as it leaves.
/// Called with the registry locked: it must not call the registry.
pub type OnLapse = Arc<dyn Fn(&str) + Send + Sync>;

/// Where a call this process holds stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Its webhook was answered; its stream has not started yet.
    Pending,
    /// Its stream is running.
    Live,
}

#[derive(Clone, Default)]
pub struct Registry {
    calls: Arc<Mutex<HashMap<String, Entry>>>,
    on_lapse: Option<OnLapse>,
    next_id: Arc<AtomicU64>,
    /// One token per live call, held by its attachment: the server's drain
    /// waits for the last one to be dropped.
    live: TaskTracker,
    /// Counts every change of the calls shown (a call came or went, a live
    /// call's state changed), for the dashboard's event stream.
    changes: Arc<watch::Sender<u64>>,
}

impl Registry {
    /// A registry that reports every call whose stream never started.
    pub fn with_on_lapse(on_lapse: OnLapse) -> Registry {
        Registry {
            on_lapse: Some(on_lapse),
            ..Registry::default()
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // A panic elsewhere while holding the lock leaves plain data behind.
        self.calls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Removes the calls whose stream did not start in time, reporting each.
    fn prune(&self, calls: &mut HashMap<String, Entry>, now: Instant) {
        self.drop_unstarted(calls, Some(now));
    }

    /// Removes, and reports, the calls whose stream has not started: all of
    /// them, or (given `now`) those whose time to start it is over.
    fn drop_unstarted(&self, calls: &mut HashMap<String, Entry>, now: Option<Instant>) {
        calls.retain(|sid, e| {
            let over = match (now, e.pending_until) {
                (None, _) => true,
                (Some(now), Some(until)) => until <= now,
                (Some(_), None) => false,
            };
            let lapsed = e.live.is_none() && over;
            if lapsed {
                crate::metrics::never_streamed(&e.info.direction);
            }
            if lapsed && let Some(on_lapse) = &self.on_lapse {
                on_lapse(sid);
            }
            !lapsed
        });
    }

    /// Removes (and reports) the calls whose time to start their stream is
    /// over. Every method does this first; this is for the timer that makes
    /// sure it happens at the deadline even when nothing else asks.
    pub fn sweep(&self) {
        let mut calls = self.lock();
        self.prune(&mut calls, Instant::now());
    }

    /// Removes (and reports) every call whose stream has not started: the
    /// server is stopping, and they never will.
    pub fn abandon_pending(&self) {
        let mut calls = self.lock();
        self.drop_unstarted(&mut calls, None);
    }

    /// Where `call_sid` stands, if this process holds it.
    pub fn held(&self, call_sid: &str) -> Option<Held> {
        let mut calls = self.lock();
        self.prune(&mut calls, Instant::now());
        calls.get(call_sid).map(|e| match e.live {
            Some(_) => Held::Live,
            None => Held::Pending,
        })
    }

    /// Counts the call against the cap and records it, with the agent it
    /// was routed to, until its stream starts (or `pending_for` passes). A
    /// repeated webhook for a known call is not counted twice; its agent
    /// (routed again) is the one its newest stream token names.
    pub fn reserve(
        &self,
        info: CallInfo,
        routed: Option<Arc<Persona>>,
        max_calls: usize,
        pending_for: Duration,
    ) -> Result<(), Busy> {
        let now = Instant::now();
        let mut calls = self.lock();
        self.prune(&mut calls, now);
        if let Some(existing) = calls.get_mut(&info.call_sid) {
            if existing.live.is_none() {
                existing.pending_until = Some(now + pending_for);
                existing.routed = routed;
            }
            return Ok(());
        }
        if calls.len() >= max_calls {
            return Err(Busy);
        }
        calls.insert(
            info.call_sid.clone(),
            Entry::new(info, routed, Some(now + pending_for)),
        );
        Ok(())
    }

    /// The agent a call waiting for its stream was routed to here, if it
    /// was.
    pub fn routed_agent(&self, call_sid: &str) -> Option<Arc<Persona>> {
        self.lock().get(call_sid).and_then(|e| e.routed.clone())
    }

    /// Marks the call live with its session's state channel and desk.
    /// `info` is used when this process did not serve the call's webhook
    /// (another replica did); its agent, the one that answers, is kept
    /// either way. The call leaves the registry when the returned guard is
    /// dropped.
    pub fn attach(
        &self,
        info: CallInfo,
        live: watch::Receiver<LiveState>,
        desk: DeskHandle,
    ) -> Attachment {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut calls = self.lock();
        let entry = calls
            .entry(info.call_sid.clone())
            .or_insert_with(|| Entry::new(info.clone(), None, None));
        entry.info.agent.clone_from(&info.agent);
        // The session holds its agent from now on.
        entry.routed = None;
        entry.pending_until = None;
        entry.live = Some((id, live));
        entry.desk = Some(desk);
        drop(calls);
        self.touch();
        Attachment {
            registry: self.clone(),
            call_sid: info.call_sid,
            id,
            _live: self.live.token(),
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
        let status = CallStatus::from_twilio(status);
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
        // A call that ended before its stream started has nothing left to wait for.
        let ended = status.is_final() && entry.live.is_none();
        entry.status = Some(status);
        entry.version += 1;
        if ended {
            crate::metrics::never_streamed(&entry.info.direction);
            calls.remove(call_sid);
        }
        drop(calls);
        self.touch();
        StatusOutcome::Applied
    }

    /// Calls counted against the cap (live, or waiting for their stream).
    pub fn len(&self) -> usize {
        let mut calls = self.lock();
        self.prune(&mut calls, Instant::now());
        calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves once no call is live (calls attached meanwhile are waited
    /// for too). For the server's shutdown: it is not meant to be reused.
    pub async fn all_ended(&self) {
        self.live.close();
        self.live.wait().await;
    }

    /// The desk of a call live here: to listen in and step in.
    pub fn desk(&self, call_sid: &str) -> Option<DeskHandle> {
        self.lock().get(call_sid).and_then(|e| e.desk.clone())
    }

    /// Tells the dashboard's event streams that what they show changed.
    pub fn touch(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Changes from now on (see [`Registry::touch`]).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Calls with a running media stream.
    pub fn live_count(&self) -> usize {
        self.lock().values().filter(|e| e.live.is_some()).count()
    }

    /// Every call, oldest first, numbers masked.
    pub fn snapshot(&self) -> Vec<CallSnapshot> {
        self.changed_since(&mut Seen::default()).0
    }

    /// The calls that changed since `seen` (updated to now), oldest first,
    /// and those that left since: what a view that saw `seen` is missing.
    /// Calls that did not change are not copied.
    pub fn changed_since(&self, seen: &mut Seen) -> (Vec<CallSnapshot>, Vec<String>) {
        let now = Instant::now();
        let mut calls = self.lock();
        self.prune(&mut calls, now);
        let mut out = Vec::new();
        for (sid, e) in calls.iter() {
            let live = e.live.as_ref().map(|(_, rx)| rx.borrow());
            let version = (live.as_ref().map_or(0, |l| l.version), e.version);
            if seen.0.insert(sid.clone(), version) == Some(version) {
                continue;
            }
            let live = live.map(|l| l.clone()).unwrap_or_default();
            let duration = now.saturating_duration_since(e.started).as_secs();
            out.push(CallSnapshot::new(&e.info, duration, e.status.clone(), live));
        }
        let mut gone = Vec::new();
        seen.0.retain(|sid, _| {
            let here = calls.contains_key(sid);
            if !here {
                gone.push(sid.clone());
            }
            here
        });
        out.sort_by(|a, b| {
            a.started_at
                .cmp(&b.started_at)
                .then_with(|| a.call_sid.cmp(&b.call_sid))
        });
        (out, gone)
    }
}

/// Keeps a call in the registry while its session runs; dropping it (on any
/// exit, including a panic) removes the call.
pub struct Attachment {
    registry: Registry,
    call_sid: String,
    id: u64,
    _live: TaskTrackerToken,
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
        drop(calls);
        self.registry.touch();
    }
}

#[cfg(test)]
mod tests;
