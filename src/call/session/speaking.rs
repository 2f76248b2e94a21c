//! Talking to the caller: the responder's audio into the paced playback queue,
//! marks back from Twilio, barge-in, and the end of a turn once it was heard.

use std::time::Instant;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::SinkExt;
use tracing::{debug, info, warn};

use super::Session;

/// The longest caller audio carried over into the next turn (30 s at 8 kHz).
const MAX_CARRY_OVER: usize = 30 * 8000;
use crate::call::playback::{MarkEcho, Outbound};
use crate::call::responder::ResponseEvent;
use crate::call::turn::ActiveTurn;
use crate::model::{CallEvent, SessionState, millis};

impl Session {
    pub(super) fn on_response(&mut self, turn: u32, event: ResponseEvent) {
        let Some(current) = self.current.as_mut().filter(|t| t.id == turn) else {
            return; // from a turn already cancelled
        };
        match event {
            ResponseEvent::Audio(audio) => self.playback.push_audio(audio),
            ResponseEvent::SegmentEnd { text } => {
                let name = current.mark_name(current.segments);
                current.segments += 1;
                current.texts.push(text);
                self.playback.push_mark(name);
            }
            ResponseEvent::Planned(text) => current.planned.push(text),
            ResponseEvent::Transcript(text) => current.transcript = Some(text),
            ResponseEvent::Timing(timing) => current.timings.record(timing),
            ResponseEvent::Action(action) => current.action = Some(action),
            ResponseEvent::Finished => current.responder_done = true,
            ResponseEvent::Failed(reason) => {
                warn!(turn, reason = %reason, "responder failed");
                current.responder_done = true;
                let at_ms = millis(self.opened.elapsed());
                self.log_event(
                    at_ms,
                    CallEvent::ProviderError {
                        turn,
                        error: reason,
                    },
                );
            }
        }
    }

    pub(super) fn on_mark(&mut self, name: &str) {
        match self.playback.on_mark(name, Instant::now()) {
            MarkEcho::Played => {
                if let Some(turn) = self.current.as_mut().filter(|t| t.owns_mark(name)) {
                    turn.segments_heard += 1;
                }
                debug!(mark = name, "mark played");
            }
            MarkEcho::Cleared => debug!(mark = name, "mark cleared"),
            MarkEcho::Unknown => debug!(mark = name, "unknown mark; ignored"),
        }
    }

    /// The caller spoke over the answer: drop it and listen.
    pub(super) async fn barge_in(&mut self) {
        let Some(turn) = self.current.as_ref() else {
            return;
        };
        let at_ms = millis(self.opened.elapsed());
        let turn_id = turn.id;
        info!(
            turn = turn_id,
            heard_segments = turn.segments_heard,
            "barge-in"
        );
        self.log_event(at_ms, CallEvent::BargeIn { turn: turn_id });
        let Some(mut turn) = self.stop_turn().await else {
            return;
        };
        match turn.input_audio.take() {
            // Nothing of the answer was heard: the caller had only paused.
            // What they said is answered together with what they say now.
            Some(mut audio) if !turn.anything_heard() => {
                let excess = audio.len().saturating_sub(MAX_CARRY_OVER);
                audio.drain(..excess);
                self.carry_over = audio;
                self.publish(|s| s.state = SessionState::Listening);
            }
            _ => self.finish_turn(turn),
        }
    }

    /// Cuts the agent off (Pronto is ending the call): the turn is recorded
    /// as interrupted.
    pub(super) async fn cancel_turn(&mut self) {
        if let Some(turn) = self.stop_turn().await {
            self.finish_turn(turn);
        }
    }

    /// Clears Twilio's queue and aborts the responder of the current turn,
    /// returning it flagged as interrupted.
    async fn stop_turn(&mut self) -> Option<ActiveTurn> {
        let mut turn = self.current.take()?;
        turn.interrupted = true;
        let now = Instant::now();
        let cleared = self.playback.clear(now);
        debug!(
            turn = turn.id,
            cleared_marks = cleared.len(),
            "turn stopped"
        );
        if let Some(recorder) = self.recorder.as_mut() {
            recorder.cleared(millis(self.opened.elapsed()));
        }
        if let Some(writer) = self.writer.as_mut() {
            let clear = writer.clear();
            if let Err(e) = send_text(&mut self.socket, clear).await {
                warn!(error = %e, "cannot send clear");
            }
        }
        turn.abort_responder();
        Some(turn)
    }

    /// Sends whatever the pacing allows now, and finishes the turn when all of
    /// its audio has been heard.
    pub(super) async fn pump(&mut self) -> Result<(), String> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        let now = Instant::now();
        let mut sent = false;
        while let Some(out) = self.playback.poll(now) {
            let text = match out {
                Outbound::Media(frame) => {
                    if let Some(turn) = self
                        .current
                        .as_mut()
                        .filter(|t| t.first_audio_sent_at.is_none())
                    {
                        turn.first_audio_sent_at = Some(now);
                        self.live.send_modify(|s| s.state = SessionState::Speaking);
                    }
                    if let Some(recorder) = self.recorder.as_mut() {
                        recorder.agent_audio_sent(millis(self.opened.elapsed()), &frame);
                    }
                    writer.media(&frame)
                }
                Outbound::Mark(name) => writer.mark(&name),
            };
            feed_text(&mut self.socket, text).await?;
            sent = true;
        }
        if sent {
            self.socket.flush().await.map_err(|e| e.to_string())?;
        }
        for name in self.playback.expire_overdue_marks(now) {
            warn!(mark = %name, "mark never came back; assuming it played");
            if let Some(turn) = self.current.as_mut().filter(|t| t.owns_mark(&name)) {
                turn.segments_heard += 1;
            }
        }
        let all_heard =
            self.current.as_ref().is_some_and(|t| t.responder_done) && self.playback.is_idle();
        if all_heard && let Some(mut turn) = self.current.take() {
            if turn.id == 0 {
                let greeting_ms = turn
                    .first_audio_sent_at
                    .map(|t| millis(t.saturating_duration_since(turn.speech_ended_at)));
                self.publish(|s| s.greeting_ms = greeting_ms);
            }
            self.due_action = turn.action.take();
            self.finish_turn(turn);
        }
        Ok(())
    }
}

fn to_message(text: Bytes) -> Result<Message, String> {
    Utf8Bytes::try_from(text)
        .map(Message::Text)
        .map_err(|e| e.to_string())
}

async fn feed_text(sink: &mut WebSocket, text: Bytes) -> Result<(), String> {
    sink.feed(to_message(text)?)
        .await
        .map_err(|e| e.to_string())
}

async fn send_text(sink: &mut WebSocket, text: Bytes) -> Result<(), String> {
    sink.send(to_message(text)?)
        .await
        .map_err(|e| e.to_string())
}
