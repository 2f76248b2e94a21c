//! The session's clocks: what runs when its single timer fires, when playback
//! next needs a wakeup, and the server's closing signal.

use std::time::Instant;

use tokio::sync::watch;
use tracing::warn;

use super::{End, Session};

/// Resolves once the server's drain time is over (never, if the server
/// goes away without closing).
pub(super) async fn server_closing(mut closing: watch::Receiver<bool>) {
    loop {
        let closed = *closing.borrow_and_update();
        if closed {
            return;
        }
        if closing.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Session {
    /// The timer fired: whatever is due now runs (pacing needs nothing here:
    /// `pump` runs after every wakeup). `Some` ends the session.
    pub(super) async fn on_timer(&mut self, start_deadline: Instant) -> Option<End> {
        let now = Instant::now();
        if self.writer.is_none() && now >= start_deadline {
            warn!(
                timeout_secs = self.ctx.config.start_timeout.as_secs(),
                "no start message; closing"
            );
            self.close(1008, "no start message").await;
            return Some(End::StartTimeout);
        }
        if self.keypad.deadline().is_some_and(|d| now >= d) {
            self.on_keypad_due().await;
        }
        if self.limits_due().is_some_and(|d| now >= d) {
            self.on_limits_due().await;
        }
        None
    }

    pub(super) fn next_wake(&self, now: Instant) -> Option<Instant> {
        match (
            self.playback.next_send_at(now),
            self.playback.next_mark_deadline(),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
