//! The stream's `start`: the call it announces is checked against the
//! stream token, registered, recorded, completed from the store (an outbound
//! call's plan, caller memory) and greeted.

use std::sync::Arc;
use std::time::Instant;

use tracing::{info, warn};

use super::{End, Session};
use crate::model::{CallInfo, Direction, SessionState};
use crate::twilio::media::{OutboundWriter, Start};

impl Session {
    pub(super) async fn on_start(&mut self, start: Start) -> Option<End> {
        if self.writer.is_some() {
            warn!("second start message; ignored");
            return None;
        }
        if start.call_sid != self.expected_call_sid {
            warn!(start_call_sid = %start.call_sid, "start.callSid differs from the call the stream token was issued for; closing");
            self.close(1008, "callSid does not match the stream").await;
            return Some(End::WrongCall);
        }
        let param = |name: &str| {
            start
                .custom_parameters
                .get(name)
                .cloned()
                .unwrap_or_default()
        };
        let info = CallInfo {
            call_sid: start.call_sid.clone(),
            from: param("From"),
            to: param("To"),
            direction: Direction::parse(&param("Direction")),
            started_at: chrono::Utc::now(),
        };
        self.publish(|s| {
            s.stream_sid = Some(start.stream_sid.clone());
            s.state = SessionState::Listening;
        });
        self._attachment = Some(
            self.ctx
                .registry
                .attach(info.clone(), self.live.subscribe()),
        );
        info!(stream_sid = %start.stream_sid, "stream started");
        self.ctx
            .journal
            .call_answered(&info.call_sid, chrono::Utc::now());
        self.writer = Some(OutboundWriter::new(start.stream_sid));
        self.stream_started = Some(Instant::now());
        self.last_activity = Instant::now();
        self.start_recording();
        let store = self.ctx.store.clone();
        let call = Arc::new(Self::enrich(store, self.ctx.config.memory_summaries, info).await);
        self.call = Some(Arc::clone(&call));
        self.start_greeting(call);
        None
    }
}
