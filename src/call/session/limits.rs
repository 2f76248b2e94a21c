//! The operations a public number needs, per call: a maximum duration, the
//! caller-silence prompt and hang-up, and the end of the server's drain time.
//! Each ends the call politely: the agent says the closing line, and Pronto
//! hangs up once it has been heard.

use std::time::Instant;

use tracing::info;

use super::Session;
use crate::call::responder::{Announcement, CallAction};
use crate::model::EndReason;

impl Session {
    /// When the next limit falls due, if any.
    pub(super) fn limits_due(&self) -> Option<Instant> {
        let started = self.stream_started?;
        if self.closing_started {
            return None;
        }
        let config = &self.ctx.config;
        let max_duration = config.max_duration.map(|d| started + d);
        let idle_wait = if self.idle_prompted {
            config.idle_hangup
        } else {
            config.idle_prompt
        };
        let quiet = self.current.is_none() && !self.endpointer.in_speech();
        let idle = idle_wait.filter(|_| quiet).map(|d| self.last_activity + d);
        match (max_duration, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Something happened on the line: the silence clock starts again.
    pub(super) fn activity(&mut self) {
        self.last_activity = Instant::now();
        self.idle_prompted = false;
    }

    pub(super) async fn on_limits_due(&mut self) {
        let now = Instant::now();
        let Some(started) = self.stream_started else {
            return;
        };
        if self
            .ctx
            .config
            .max_duration
            .is_some_and(|d| now >= started + d)
        {
            info!("maximum call duration reached");
            self.end_politely(EndReason::MaxDuration).await;
            return;
        }
        if self.idle_prompted {
            info!("the caller stayed silent");
            self.end_politely(EndReason::Idle).await;
            return;
        }
        info!("caller silent: asking whether they are still there");
        self.idle_prompted = true;
        self.last_activity = now;
        self.start_announcement(Announcement::StillThere, None);
    }

    /// The drain time is over: end this call like the others.
    pub(super) async fn on_server_closing(&mut self) {
        if !self.closing_started {
            info!("server shutting down: ending the call");
            self.end_politely(EndReason::Shutdown).await;
        }
    }

    /// Stops what the agent is saying, says the closing line, then hangs up
    /// (at once in echo mode, which has no voice of its own).
    async fn end_politely(&mut self, reason: EndReason) {
        self.closing_started = true;
        self.ending = Some(reason);
        if self.current.is_some() {
            self.cancel_turn().await;
        }
        if !self.start_announcement(Announcement::Closing, Some(CallAction::EndCall)) {
            self.due_action = Some(CallAction::EndCall);
        }
    }
}
