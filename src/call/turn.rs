//! One answer in progress: the responder task, and what is known about its
//! timing and its segments.

use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::call::registry::TurnLatency;

/// Aborts the task when dropped, so a cancelled or finished turn, or a call
/// that ends for any reason, never leaves a responder running.
pub struct AbortOnDrop(pub JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub struct ActiveTurn {
    pub id: u32,
    _task: AbortOnDrop,
    /// When the caller stopped speaking (the last voiced frame), by the local clock.
    pub speech_ended_at: Instant,
    pub endpoint_wait: Duration,
    pub utterance: Duration,
    pub first_audio_sent_at: Option<Instant>,
    /// The responder has finished producing audio.
    pub responder_done: bool,
    /// Segments completed by the responder (a mark was queued for each).
    pub segments: u32,
    /// Segments whose mark came back: the caller heard them.
    pub segments_heard: u32,
    pub interrupted: bool,
}

impl ActiveTurn {
    pub fn new(
        id: u32,
        task: JoinHandle<()>,
        speech_ended_at: Instant,
        endpoint_wait: Duration,
        utterance: Duration,
    ) -> Self {
        ActiveTurn {
            id,
            _task: AbortOnDrop(task),
            speech_ended_at,
            endpoint_wait,
            utterance,
            first_audio_sent_at: None,
            responder_done: false,
            segments: 0,
            segments_heard: 0,
            interrupted: false,
        }
    }

    /// The name of the mark after segment `index` of this turn.
    pub fn mark_name(&self, index: u32) -> String {
        format!("t{}-s{}", self.id, index)
    }

    /// Whether a mark name belongs to this turn.
    pub fn owns_mark(&self, name: &str) -> bool {
        name.strip_prefix('t')
            .and_then(|rest| rest.split_once("-s"))
            .and_then(|(turn, _)| turn.parse::<u32>().ok())
            == Some(self.id)
    }

    pub fn latency(&self) -> TurnLatency {
        TurnLatency {
            turn: self.id,
            utterance_ms: millis(self.utterance),
            endpoint_wait_ms: millis(self.endpoint_wait),
            voice_to_voice_ms: self
                .first_audio_sent_at
                .map(|t| millis(t.saturating_duration_since(self.speech_ended_at))),
            interrupted: self.interrupted,
        }
    }
}

pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn marks_are_named_by_turn_and_segment() {
        let turn = ActiveTurn::new(
            12,
            tokio::spawn(async {}),
            Instant::now(),
            Duration::ZERO,
            Duration::ZERO,
        );
        assert_eq!(turn.mark_name(0), "t12-s0");
        assert!(turn.owns_mark("t12-s3"));
        assert!(!turn.owns_mark("t1-s0"));
        assert!(!turn.owns_mark("t12"));
        assert!(!turn.owns_mark("greeting"));
    }

    #[tokio::test]
    async fn dropping_a_turn_aborts_its_task() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            std::future::pending::<()>().await;
            drop(tx);
        });
        let turn = ActiveTurn::new(1, task, Instant::now(), Duration::ZERO, Duration::ZERO);
        drop(turn);
        // The sender is dropped when the aborted task's future is dropped.
        assert!(rx.await.is_err());
    }

    #[tokio::test]
    async fn latency_is_measured_from_the_end_of_speech() {
        let t0 = Instant::now();
        let mut turn = ActiveTurn::new(
            1,
            tokio::spawn(async {}),
            t0,
            Duration::from_millis(600),
            Duration::from_millis(1500),
        );
        assert_eq!(turn.latency().voice_to_voice_ms, None);
        turn.first_audio_sent_at = Some(t0 + Duration::from_millis(640));
        let l = turn.latency();
        assert_eq!(
            (l.voice_to_voice_ms, l.endpoint_wait_ms, l.utterance_ms),
            (Some(640), 600, 1500)
        );
    }
}
