//! The outbound audio queue of one call: pacing, marks and what was heard.
//!
//! Twilio plays whatever it receives in order and holds up to ten minutes of it.
//! Sending everything at once would make a barge-in `clear` throw away a lot and
//! make marks come back long after the text was generated, so audio is released
//! at playback speed, at most `max_lead` ahead of where Twilio's playback is
//! estimated to be. The estimate runs on the local clock and is corrected by
//! every returning mark, which is Twilio's own statement that playback reached
//! that point.
//!
//! After each segment (an echo, later a sentence) a mark is queued; its echo
//! means the caller heard the segment. A `clear` drops the queue, and Twilio then
//! echoes every pending mark at once: those echoes are recognised as "cleared",
//! not "heard".
//!
//! Pure logic: the caller passes `now`; no I/O, no allocation per frame
//! (frames are `Bytes` slices of the queued chunks). What it measures for
//! the server's metrics (marks' round trips, gaps) it keeps for the session
//! to take.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::audio::{FRAME_SAMPLES, SAMPLE_RATE};
use crate::metrics::PlaybackSample;

/// A mark not echoed this long after its audio should have finished playing is
/// assumed played, so a lost echo cannot leave the call "speaking" forever.
const MARK_GRACE: Duration = Duration::from_secs(5);

/// The largest batch of frames sent at once once the lead is full.
const MAX_BATCH: Duration = Duration::from_millis(200);

/// A frame sent later than this after the estimated end of the audio before
/// it found Twilio's playback empty: the caller heard a gap. One frame of
/// slack, for the estimate's rounding and the timer's lateness.
const GAP: Duration = Duration::from_millis(20);

enum Item {
    Audio(Bytes),
    Mark(String),
}

struct PendingMark {
    name: String,
    /// When the local estimate expects Twilio to reach this mark.
    expected_at: Instant,
    /// The audio sent before it (bytes since the call began).
    offset: u64,
    /// When it was sent, for its round trip.
    sent_at: Instant,
}

/// What to send next.
#[derive(Debug, PartialEq, Eq)]
pub enum Outbound {
    /// Up to one 20 ms frame of μ-law audio.
    Media(Bytes),
    Mark(String),
}

/// What a returning mark means.
#[derive(Debug, PartialEq, Eq)]
pub enum MarkEcho {
    /// Playback reached it: the audio before it was heard.
    Played,
    /// It was pending when we sent `clear`: the audio before it was dropped.
    Cleared,
    /// Not a mark this call has outstanding (a duplicate, or not ours).
    Unknown,
}

pub struct Playback {
    queue: VecDeque<Item>,
    queued_bytes: usize,
    max_lead: Duration,
    /// Once the lead is full, sending resumes only after this much has
    /// played, so frames go out in batches: one wakeup and one socket write
    /// per batch instead of per 20 ms frame (the largest CPU cost per call).
    batch: Duration,
    /// A batch is being sent: frames go up to the full lead.
    topping_up: bool,
    /// When Twilio is expected to finish playing everything sent so far.
    playout_end: Option<Instant>,
    pending: VecDeque<PendingMark>,
    cleared: HashSet<String>,
    /// Audio sent since the call began (bytes).
    sent: u64,
    /// The last frame sent found the playback empty (by the estimate).
    ran_dry: bool,
    /// For the server's metrics, taken by the session.
    measured: PlaybackSample,
}

fn duration_of(bytes: usize) -> Duration {
    Duration::from_micros(bytes as u64 * 1_000_000 / u64::from(SAMPLE_RATE))
}

impl Playback {
    pub fn new(max_lead: Duration) -> Self {
        Playback {
            queue: VecDeque::new(),
            queued_bytes: 0,
            max_lead,
            batch: (max_lead / 5).min(MAX_BATCH),
            topping_up: false,
            playout_end: None,
            pending: VecDeque::new(),
            cleared: HashSet::new(),
            sent: 0,
            ran_dry: false,
            measured: PlaybackSample::default(),
        }
    }

    /// Queues μ-law audio (any length).
    pub fn push_audio(&mut self, mulaw: Bytes) {
        if !mulaw.is_empty() {
            self.queued_bytes += mulaw.len();
            self.queue.push_back(Item::Audio(mulaw));
        }
    }

    /// Queues a mark after the audio queued so far.
    pub fn push_mark(&mut self, name: String) {
        self.queue.push_back(Item::Mark(name));
    }

    /// Audio queued here and not yet sent.
    pub fn queued(&self) -> Duration {
        duration_of(self.queued_bytes)
    }

    /// How far Twilio's estimated playback runs past `now`.
    pub fn lead(&self, now: Instant) -> Duration {
        self.playout_end
            .map_or(Duration::ZERO, |end| end.saturating_duration_since(now))
    }

    /// Audio sent since the call began (bytes of μ-law: 8 per ms).
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Where Twilio's playback is at `now` (bytes since the call began): the
    /// audio sent less what the estimate says is still ahead of playback,
    /// and never past a mark Twilio has not echoed yet, so that a stalled
    /// playback is not taken for heard audio. Call it before
    /// [`clear`](Self::clear).
    pub fn played(&self, now: Instant) -> u64 {
        let ahead = self.lead(now).as_micros() * u128::from(SAMPLE_RATE) / 1_000_000;
        let estimate = self
            .sent
            .saturating_sub(u64::try_from(ahead).unwrap_or(u64::MAX));
        match self.pending.front() {
            Some(mark) => estimate.min(mark.offset),
            None => estimate,
        }
    }

    /// Nothing queued, nothing playing, no mark outstanding.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.pending.is_empty()
    }

    /// When [`poll`](Self::poll) will next have something to send, if anything
    /// is queued: now, or when the lead has shrunk below the limit.
    pub fn next_send_at(&self, now: Instant) -> Option<Instant> {
        match self.queue.front()? {
            Item::Mark(_) => Some(now),
            Item::Audio(chunk) => {
                // A frame may go while the lead after sending it is within
                // the limit: the full lead during a batch, else the lead less
                // a batch (so that the next batch waits for room for it).
                let frame = duration_of(chunk.len().min(FRAME_SAMPLES));
                let limit = if self.topping_up {
                    self.max_lead
                } else {
                    self.max_lead.saturating_sub(self.batch)
                };
                Some(match self.playout_end {
                    Some(end) if end + frame > now + limit => end + frame - limit,
                    _ => now,
                })
            }
        }
    }

    /// The next message to send at `now`, if the pacing allows one.
    pub fn poll(&mut self, now: Instant) -> Option<Outbound> {
        if self.next_send_at(now)? > now {
            self.topping_up = false;
            return None;
        }
        match self.queue.front_mut()? {
            Item::Mark(_) => {
                let Some(Item::Mark(name)) = self.queue.pop_front() else {
                    return None;
                };
                let expected_at = self.playout_end.map_or(now, |end| end.max(now));
                self.pending.push_back(PendingMark {
                    name: name.clone(),
                    expected_at,
                    offset: self.sent,
                    sent_at: now,
                });
                Some(Outbound::Mark(name))
            }
            Item::Audio(chunk) => {
                let frame = chunk.split_to(chunk.len().min(FRAME_SAMPLES));
                if chunk.is_empty() {
                    self.queue.pop_front();
                }
                self.queued_bytes -= frame.len();
                self.sent += frame.len() as u64;
                self.topping_up = true;
                self.ran_dry = self.playout_end.is_some_and(|end| now > end + GAP);
                let start = self.playout_end.map_or(now, |end| end.max(now));
                self.playout_end = Some(start + duration_of(frame.len()));
                Some(Outbound::Media(frame))
            }
        }
    }

    /// Accounts for a `mark` echoed by Twilio at `now`.
    pub fn on_mark(&mut self, name: &str, now: Instant) -> MarkEcho {
        if self.cleared.remove(name) {
            return MarkEcho::Cleared;
        }
        let Some(index) = self.pending.iter().position(|m| m.name == name) else {
            return MarkEcho::Unknown;
        };
        // Marks play in order: any earlier one was played too (its echo is late or lost).
        let Some(mark) = self.pending.drain(..=index).next_back() else {
            return MarkEcho::Unknown;
        };
        self.measured
            .mark_roundtrip(now.saturating_duration_since(mark.sent_at));
        // Twilio says playback is at this mark now: shift the estimate of
        // everything sent after it by the difference.
        if let Some(end) = self.playout_end {
            let remaining = end.saturating_duration_since(mark.expected_at);
            let corrected = now + remaining;
            for later in &mut self.pending {
                let after = later
                    .expected_at
                    .saturating_duration_since(mark.expected_at);
                later.expected_at = now + after;
            }
            self.playout_end = Some(corrected);
        }
        MarkEcho::Played
    }

    /// Drops everything queued and playing (for a barge-in `clear`). Returns the
    /// names of the marks that will now come back as [`MarkEcho::Cleared`].
    pub fn clear(&mut self, now: Instant) -> Vec<String> {
        self.queue.clear();
        self.queued_bytes = 0;
        self.playout_end = Some(now);
        let names: Vec<String> = self.pending.drain(..).map(|m| m.name).collect();
        self.cleared.extend(names.iter().cloned());
        names
    }

    /// Marks whose echo is overdue by [`MARK_GRACE`]: treated as played and
    /// returned, so the caller can log it.
    pub fn expire_overdue_marks(&mut self, now: Instant) -> Vec<String> {
        let mut expired = Vec::new();
        while let Some(front) = self.pending.front() {
            if front.expected_at + MARK_GRACE > now {
                break;
            }
            if let Some(m) = self.pending.pop_front() {
                expired.push(m.name);
            }
        }
        expired
    }

    /// When the oldest outstanding mark becomes overdue, if one is outstanding.
    pub fn next_mark_deadline(&self) -> Option<Instant> {
        self.pending.front().map(|m| m.expected_at + MARK_GRACE)
    }

    /// Whether the last frame [`poll`](Self::poll) gave went out after
    /// Twilio, by the estimate, had played everything sent before it (by
    /// more than a frame): the caller heard silence before it. The caller
    /// of `poll` knows whether that was a gap inside a turn.
    pub fn ran_dry(&self) -> bool {
        self.ran_dry
    }

    /// Counts an underrun: audio ran dry inside a turn.
    pub fn underrun(&mut self) {
        self.measured.underrun();
    }

    /// What was measured since the last take (mark round trips, underruns).
    pub fn take_measured(&mut self) -> PlaybackSample {
        std::mem::take(&mut self.measured)
    }
}

#[cfg(test)]
mod tests;
