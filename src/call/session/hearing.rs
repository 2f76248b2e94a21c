//! Hearing the caller: μ-law frames through the endpointer, barge-in while the
//! agent talks, and the start of a turn when the caller has finished.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{Instrument, debug, info};

use super::Session;
use crate::audio::vad::{EndpointEvent, Utterance};
use crate::audio::{FRAME_MS, FRAME_SAMPLES};
use crate::call::registry::SessionState;
use crate::call::responder::{ResponseEvent, ResponseSink, TurnRequest};
use crate::call::turn::ActiveTurn;

impl Session {
    pub(super) async fn on_audio(&mut self, mulaw: &[u8]) {
        let barge_in_ms = self.ctx.config.barge_in_min_ms;
        let answering = self.current.is_some();
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
                EndpointEvent::SpeechStarted { .. } => debug!("caller speech started"),
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
        self.turns_started += 1;
        let id = self.turns_started;
        info!(turn = id, speech_ms = utterance.speech_ms, end = ?utterance.end, "caller turn ended");
        let request = TurnRequest {
            turn: id,
            call_sid: self.expected_call_sid.as_str().into(),
            audio: utterance.samples,
        };
        let sink = ResponseSink::new(id, self.turn_tx.clone());
        let responder = Arc::clone(&self.ctx.responder);
        let task = tokio::spawn(
            async move {
                let result = responder.respond(request, sink.clone()).await;
                let last = match result {
                    Ok(()) => ResponseEvent::Finished,
                    Err(e) => ResponseEvent::Failed(e),
                };
                let _ = sink.send(last).await;
            }
            .in_current_span(),
        );
        self.current = Some(ActiveTurn::new(
            id,
            task,
            Instant::now()
                .checked_sub(endpoint_wait)
                .unwrap_or_else(Instant::now),
            endpoint_wait,
            utterance_len,
        ));
        self.publish(|s| {
            s.state = SessionState::Responding;
            s.turns = id;
        });
    }
}
