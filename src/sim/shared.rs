//! What the session task records and the [`Call`](super::Call) handle reads:
//! the timeline, the heard audio and a few gauges, behind one mutex, with a
//! version counter that wakes anyone waiting for a change.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::SimError;
use super::event::{Event, TimedEvent};

#[derive(Debug)]
pub(crate) struct State {
    /// When the stream started: time 0 of the timeline.
    pub origin: Instant,
    pub events: Vec<TimedEvent>,
    pub heard: Vec<i16>,
    /// Speech frames queued by `say` and not yet sent.
    pub speech_pending: usize,
    /// Last time the server's side was busy: audio queued, a mark pending or
    /// a message received.
    pub last_busy: Instant,
    /// The session task has finished: nothing more will be recorded.
    pub ended: bool,
    /// The simulator's own health: 20 ms ticks that ran more than
    /// [`LATE_TICK`] late (its machine was too busy), and the worst lateness.
    /// A load generator that falls behind must not be mistaken for a slow
    /// server.
    pub late_ticks: u64,
    pub max_tick_lateness: Duration,
}

/// A tick this late means the simulator itself is behind.
pub(crate) const LATE_TICK: Duration = Duration::from_millis(10);

impl State {
    /// Records `event` as having happened at `at`.
    pub fn push(&mut self, at: Instant, event: Event) {
        let at_ms = signed_ms(self.origin, at);
        self.events.push(TimedEvent { at_ms, event });
    }
}

/// `at − origin` in milliseconds, negative for times before the origin.
pub(crate) fn signed_ms(origin: Instant, at: Instant) -> i64 {
    match at.checked_duration_since(origin) {
        Some(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        None => -i64::try_from(origin.duration_since(at).as_millis()).unwrap_or(i64::MAX),
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    version: watch::Sender<u64>,
}

impl Shared {
    pub(crate) fn new(origin: Instant) -> Arc<Self> {
        Arc::new(Shared {
            state: Mutex::new(State {
                origin,
                events: Vec::new(),
                heard: Vec::new(),
                speech_pending: 0,
                last_busy: origin,
                ended: false,
                late_ticks: 0,
                max_tick_lateness: Duration::ZERO,
            }),
            version: watch::Sender::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the plain data in it
        // inconsistent in a way that matters to a report; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the state and wakes the waiters.
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let r = f(&mut self.lock());
        self.version.send_modify(|v| *v = v.wrapping_add(1));
        r
    }

    /// Reads the state.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.lock())
    }

    /// Records one event and wakes the waiters.
    pub(crate) fn record(&self, at: Instant, event: Event) {
        self.update(|s| s.push(at, event));
    }

    /// Waits until `check` returns `Some`, re-checking after every change.
    /// Fails with `Ended` once the session has ended without `check`
    /// succeeding, and with `Timeout` after `timeout`.
    pub(crate) async fn wait_until<R>(
        &self,
        timeout: Duration,
        what: &'static str,
        mut check: impl FnMut(&State) -> Option<R>,
    ) -> Result<R, SimError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.version.subscribe();
        loop {
            changes.borrow_and_update();
            let (found, ended) = self.read(|s| (check(s), s.ended));
            if let Some(r) = found {
                return Ok(r);
            }
            if ended {
                return Err(SimError::Ended);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(SimError::Ended),
                Err(_) => return Err(SimError::Timeout(timeout, what)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_before_the_origin_are_negative() {
        let origin = Instant::now() + Duration::from_millis(500);
        assert_eq!(signed_ms(origin, origin + Duration::from_millis(20)), 20);
        assert_eq!(signed_ms(origin, origin - Duration::from_millis(300)), -300);
    }

    #[tokio::test]
    async fn waiters_wake_on_change_and_give_up_when_ended() {
        let shared = Shared::new(Instant::now());
        let s2 = shared.clone();
        let waiter = tokio::spawn(async move {
            s2.wait_until(Duration::from_secs(5), "test", |s| {
                s.events
                    .iter()
                    .any(|e| e.event == Event::StopSent)
                    .then_some(())
            })
            .await
        });
        tokio::task::yield_now().await;
        shared.record(Instant::now(), Event::StreamConnected);
        shared.record(Instant::now(), Event::StopSent);
        assert!(waiter.await.unwrap().is_ok());

        let r = shared
            .wait_until(Duration::from_millis(30), "nothing", |_| None::<()>)
            .await;
        assert!(matches!(r, Err(SimError::Timeout(..))));
        shared.update(|s| s.ended = true);
        let r = shared
            .wait_until(Duration::from_secs(5), "nothing", |_| None::<()>)
            .await;
        assert!(matches!(r, Err(SimError::Ended)));
    }
}
