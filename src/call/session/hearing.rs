//! Hearing the caller: μ-law frames through the endpointer, barge-in while the
//! agent talks, and the start of a turn when the caller has finished.

use std::time::{Duration, Instant};

use tracing::{debug, info};

use super::Session;
use super::conversing::InputTiming;
use crate::audio::vad::{EndpointEvent, Utterance};
use crate::audio::{FRAME_MS, FRAME_SAMPLES};
use crate::call::responder::TurnInput;

impl Session {
    pub(super) async fn on_audio(&mut self, mulaw: &[u8]) {
        let barge_in_ms = self.ctx.config.barge_in_min_ms;
        let answering = self.current.as_ref().is_some_and(|t| t.interruptible);
        let mut barge_in = false;
        let Session {
            framer,
            endpointer,
            endpoint_events,
            ..
        } = self;
        framer.push_mulaw(mulaw, |frame| {
            if let Some(event) = endpointer.push_frame(frame) {
                endpoint_events.push(event);
            }
            barge_in |=
                answering && endpointer.in_speech() && endpointer.speech_ms() >= barge_in_ms;
        });
        if barge_in {
            self.barge_in().await;
        }
        let mut events = std::mem::take(&mut self.endpoint_events);
        for event in events.drain(..) {
            match event {
                EndpointEvent::SpeechStarted { .. } => {
                    debug!("caller speech started");
                    self.activity();
                }
                EndpointEvent::UtteranceEnded(utterance) => self.on_utterance(utterance),
            }
        }
        self.endpoint_events = events;
    }

    fn on_utterance(&mut self, utterance: Utterance) {
        if let Some(turn) = &self.current {
            debug!(
                turn = turn.id,
                speech_ms = utterance.speech_ms,
                "short caller sound while answering; ignored"
            );
            return;
        }
        let frame = Duration::from_millis(u64::from(FRAME_MS));
        let frames_since_speech = self
            .endpointer
            .frames_seen()
            .saturating_sub(utterance.last_voiced_frame + 1);
        let endpoint_wait = frame * u32::try_from(frames_since_speech).unwrap_or(u32::MAX);
        let utterance_len =
            frame * u32::try_from(utterance.samples.len() / FRAME_SAMPLES).unwrap_or(u32::MAX);
        let mut audio = std::mem::take(&mut self.carry_over);
        audio.extend_from_slice(&utterance.samples);
        info!(turn = self.turns_started + 1, speech_ms = utterance.speech_ms, end = ?utterance.end, "caller turn ended");
        self.start_turn(
            TurnInput::Speech(audio),
            InputTiming {
                speech_ended_at: Instant::now()
                    .checked_sub(endpoint_wait)
                    .unwrap_or_else(Instant::now),
                endpoint_wait,
                utterance: utterance_len,
            },
        );
    }
}
