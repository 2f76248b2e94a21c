//! The conversation side of a session: starting turns (the greeting, a caller
//! utterance, keypad digits), recording each finished turn with what the
//! caller heard, and performing the agent's actions (hang up, transfer) once
//! the words before them have been heard.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{Instrument, info, warn};

use super::{End, Session};
use crate::call::recording::Recorder;
use crate::call::responder::{
    Announcement, CallAction, ResponseEvent, ResponseFuture, ResponseSink, TurnInput, TurnRequest,
};
use crate::call::turn::ActiveTurn;
use crate::model::{
    ActionOutcome, CallBrief, CallEvent, CallInfo, EndReason, SessionState, millis,
};
use crate::store::Store;
use crate::twilio::rest::HangUp;
use crate::twilio::twiml;

/// The longest the start of a call waits for the store (plan, memory).
const STORE_LOOKUP: Duration = Duration::from_millis(800);

/// While a greeting that cannot be interrupted plays, keypad digits wait and
/// are looked at again this often.
const KEYPAD_RETRY: Duration = Duration::from_millis(250);

/// Timing of the caller's input for a new turn.
pub(super) struct InputTiming {
    pub speech_ended_at: Instant,
    pub endpoint_wait: Duration,
    pub utterance: Duration,
}

impl Session {
    /// Runs `future` (the responder's work for turn `id`) in a child task
    /// whose last event is `Finished` or `Failed`.
    fn spawn_responder(sink: ResponseSink, future: ResponseFuture) -> tokio::task::JoinHandle<()> {
        tokio::spawn(
            async move {
                let last = match future.await {
                    Ok(()) => ResponseEvent::Finished,
                    Err(e) => ResponseEvent::Failed(e),
                };
                let _ = sink.send(last).await;
            }
            .in_current_span(),
        )
    }

    /// Adds what the store knows to the call: an outbound call's own greeting
    /// and instructions, and (caller memory) summaries of earlier calls.
    /// Bounded in time: the greeting waits for it.
    /// (An associated function, so the session is not borrowed across the
    /// await: it is not `Sync`.)
    pub(super) async fn enrich(
        store: Option<Store>,
        memory_summaries: Option<u32>,
        info: CallInfo,
    ) -> CallBrief {
        let mut brief = CallBrief::of(info);
        let Some(store) = store else {
            return brief;
        };
        let lookups = async {
            let call = &brief.call;
            if call.direction.is_outbound() {
                match store.outbound_plan(&call.call_sid).await {
                    Ok(Some((greeting, instructions))) => {
                        brief.greeting = greeting;
                        brief.instructions = instructions;
                    }
                    Ok(None) => {}
                    Err(e) => warn!(error = %e, "cannot read the outbound call's plan"),
                }
            }
            let caller = brief.call.caller().to_string();
            if let Some(n) = memory_summaries.filter(|_| !caller.is_empty()) {
                match store.recent_summaries(&caller, n).await {
                    Ok(summaries) => brief.memory = summaries,
                    Err(e) => warn!(error = %e, "cannot read caller memory"),
                }
            }
        };
        if tokio::time::timeout(STORE_LOOKUP, lookups).await.is_err() {
            warn!("the store was too slow; the call starts without its plan or memory");
        }
        brief
    }

    /// Starts recording the call, if recordings are on. A recording that
    /// cannot start never stops the call.
    pub(super) fn start_recording(&mut self) {
        let Some(recordings) = &self.ctx.recordings else {
            return;
        };
        let writing = match recordings.begin(&self.expected_call_sid) {
            Ok(w) => w,
            Err(e) => {
                warn!(error = %e, "cannot record this call");
                return;
            }
        };
        match Recorder::create(writing.path()) {
            Ok(recorder) => {
                self.recorder = Some(recorder);
                self.recording = Some(writing);
            }
            Err(e) => warn!(error = %e, "cannot record this call"),
        }
    }

    /// Milliseconds since the stream started: the recording's clock.
    pub(super) fn call_clock_ms(&self) -> u64 {
        self.stream_started.map_or(0, |t| millis(t.elapsed()))
    }

    /// Says an announcement as a turn of its own; `action` follows once it has
    /// been heard. False when the responder cannot speak (echo mode).
    pub(super) fn start_announcement(
        &mut self,
        what: Announcement,
        action: Option<CallAction>,
    ) -> bool {
        let id = self.turns_started + 1;
        let sink = ResponseSink::new(id, self.turn_tx.clone());
        let Some(future) = self.ctx.responder.announce(what, sink.clone()) else {
            return false;
        };
        self.turns_started = id;
        let task = Self::spawn_responder(sink, future);
        let mut turn = ActiveTurn::new(id, task, Instant::now(), Duration::ZERO, Duration::ZERO);
        turn.interruptible = what == Announcement::StillThere;
        turn.action = action;
        self.current = Some(turn);
        self.publish(|s| {
            s.state = SessionState::Responding;
            s.turns = id;
        });
        true
    }

    /// Plays the greeting as turn 0, the instant the stream starts.
    pub(super) fn start_greeting(&mut self, call: Arc<CallBrief>) {
        let sink = ResponseSink::new(0, self.turn_tx.clone());
        let Some(future) = self.ctx.responder.greet(call, sink.clone()) else {
            return;
        };
        let task = Self::spawn_responder(sink, future);
        let now = Instant::now();
        let mut turn = ActiveTurn::new(0, task, now, Duration::ZERO, Duration::ZERO);
        turn.interruptible = self.ctx.config.greeting_interruptible;
        self.current = Some(turn);
        self.publish(|s| s.state = SessionState::Responding);
    }

    /// Starts answering a caller turn.
    pub(super) fn start_turn(&mut self, input: TurnInput, timing: InputTiming) {
        let Some(call) = self.call.clone() else {
            return;
        };
        self.turns_started += 1;
        let id = self.turns_started;
        let input_audio = match &input {
            TurnInput::Speech(audio) => Some(audio.clone()),
            TurnInput::Keypad(_) => None,
        };
        let request = TurnRequest {
            turn: id,
            call,
            input,
            history: self.conversation.messages(),
        };
        let sink = ResponseSink::new(id, self.turn_tx.clone());
        let future = self.ctx.responder.respond(request, sink.clone());
        let task = Self::spawn_responder(sink, future);
        let mut turn = ActiveTurn::new(
            id,
            task,
            timing.speech_ended_at,
            timing.endpoint_wait,
            timing.utterance,
        );
        turn.input_audio = input_audio;
        self.current = Some(turn);
        self.publish(|s| {
            s.state = SessionState::Responding;
            s.turns = id;
        });
    }

    /// Records a turn that is over (heard, interrupted or cut by the end of
    /// the call) into the conversation and the call's transcript.
    pub(super) fn finish_turn(&mut self, turn: ActiveTurn) {
        let record = turn.record();
        if turn.id > 0 && record.caller.is_none() && turn.segments == 0 {
            info!(turn = turn.id, "nothing intelligible; the turn is dropped");
            self.publish(|s| s.state = SessionState::Listening);
            return;
        }
        self.conversation
            .add_turn(record.caller.as_deref(), &record.agent_heard);
        self.last_activity = Instant::now();
        self.ctx
            .journal
            .turn(&self.expected_call_sid, record.clone());
        let l = &record.latency;
        info!(
            turn = turn.id,
            interrupted = record.interrupted,
            heard_segments = turn.segments_heard,
            segments = turn.segments,
            endpoint_wait_ms = l.endpoint_wait_ms,
            stt_ms = ?l.stt_ms,
            llm_first_token_ms = ?l.llm_first_token_ms,
            first_sentence_ms = ?l.first_sentence_ms,
            tts_first_byte_ms = ?l.tts_first_byte_ms,
            voice_to_voice_ms = ?l.voice_to_voice_ms,
            pipeline_overhead_ms = ?l.pipeline_overhead_ms,
            "turn over"
        );
        self.publish(|s| {
            s.state = SessionState::Listening;
            s.push_turn(record);
        });
    }

    /// The call ended: a turn still in progress goes into the record as cut,
    /// the call's end and its reason are written, the recording is finished,
    /// and (caller memory) the conversation is summarized.
    pub(super) fn end_of_call(&mut self, end: &End) {
        if let Some(mut turn) = self.current.take() {
            turn.interrupted = true;
            self.finish_turn(turn);
        }
        if self.writer.is_none() {
            return; // the stream never started: the webhook's record stands
        }
        let reason = self.ending.unwrap_or(match end {
            End::Stop | End::SocketClosed => EndReason::CallerHungUp,
            End::AgentHungUp => EndReason::AgentHungUp,
            End::StartTimeout => EndReason::NoStream,
            End::WrongCall | End::MessageTooBig | End::SocketError(_) | End::Internal(_) => {
                EndReason::StreamError
            }
        });
        let sid = self.expected_call_sid.clone();
        self.ctx
            .journal
            .call_ended(&sid, chrono::Utc::now(), reason);
        if let (Some(recorder), Some(writing)) = (self.recorder.take(), self.recording.take()) {
            let at = self.call_clock_ms();
            let recordings = self.ctx.recordings.clone();
            tokio::spawn(
                async move {
                    if let Err(e) = recorder.finish(at).await {
                        warn!(error = %e, "the recording could not be finished");
                    }
                    drop(writing);
                    if let Some(recordings) = recordings {
                        let _ = tokio::task::spawn_blocking(move || recordings.enforce_cap()).await;
                    }
                }
                .in_current_span(),
            );
        }
        self.summarize();
    }

    /// Caller memory: the LLM summarizes the call for the next one.
    fn summarize(&self) {
        let (Some(llm), Some(call)) = (self.ctx.summarizer.clone(), self.call.clone()) else {
            return;
        };
        let history = self.conversation.messages();
        let journal = self.ctx.journal.clone();
        let caller = call.call.caller().to_string();
        if caller.is_empty() {
            return;
        }
        tokio::spawn(
            async move {
                match crate::agent::memory::summarize(llm.as_ref(), &history).await {
                    Ok(Some(summary)) => journal.summary(&call.call.call_sid, &caller, summary),
                    Ok(None) => {}
                    Err(e) => warn!(error = %e, "no caller-memory summary"),
                }
            }
            .in_current_span(),
        );
    }

    /// Keypad digits are due: they become a turn, interrupting the agent
    /// unless it is a greeting that cannot be interrupted.
    pub(super) async fn on_keypad_due(&mut self) {
        if self.current.as_ref().is_some_and(|t| !t.interruptible) {
            self.keypad.postpone(Instant::now() + KEYPAD_RETRY);
            return;
        }
        let Some(text) = self.keypad.take() else {
            return;
        };
        if self.current.is_some() {
            self.barge_in().await;
        }
        info!(digits = text.len(), "keypad digits to the agent");
        let now = Instant::now();
        self.start_turn(
            TurnInput::Keypad(text),
            InputTiming {
                speech_ended_at: now,
                endpoint_wait: Duration::ZERO,
                utterance: Duration::ZERO,
            },
        );
    }

    /// Performs an action whose turn has been heard. `Some` ends the session.
    pub(super) async fn perform(&mut self, action: CallAction) -> Option<End> {
        let call_sid = self.expected_call_sid.clone();
        let at_ms = millis(self.opened.elapsed());
        let (outcome, end) = match (&action, self.ctx.twilio.clone()) {
            (CallAction::EndCall, Some(rest)) => match rest.hang_up(&call_sid).await {
                Ok(HangUp::Ended) => (ActionOutcome::HungUp, None),
                Ok(HangUp::AlreadyEnded) => (ActionOutcome::AlreadyEnded, None),
                Err(e) => {
                    warn!(error = %e, "cannot hang up through Twilio; closing the stream instead");
                    self.close(1000, "").await;
                    (
                        ActionOutcome::StreamClosed(format!("{e}; closed the stream")),
                        Some(End::AgentHungUp),
                    )
                }
            },
            (CallAction::EndCall, None) => {
                // With no REST access, closing the stream ends the call: the
                // TwiML has nothing after <Connect>.
                self.close(1000, "").await;
                (
                    ActionOutcome::StreamClosed(
                        "closed the stream (no TWILIO_ACCOUNT_SID for REST)".into(),
                    ),
                    Some(End::AgentHungUp),
                )
            }
            (CallAction::Transfer { to }, Some(rest)) => {
                match rest.redirect(&call_sid, &twiml::dial(to)).await {
                    // Twilio now leaves the stream and sends `stop`.
                    Ok(()) => (ActionOutcome::Transferred, None),
                    Err(e) => {
                        warn!(error = %e, "cannot transfer the call");
                        (ActionOutcome::Failed(e.to_string()), None)
                    }
                }
            }
            (CallAction::Transfer { .. }, None) => {
                warn!("transfer_call needs TWILIO_ACCOUNT_SID; the call goes on");
                (
                    ActionOutcome::Failed("not possible without TWILIO_ACCOUNT_SID".into()),
                    None,
                )
            }
        };
        let name = action.name();
        info!(action = name, outcome = %outcome, "agent action");
        match (&action, &outcome) {
            (CallAction::Transfer { .. }, ActionOutcome::Transferred) => {
                self.ending = Some(EndReason::Transferred);
            }
            (CallAction::EndCall, _) if self.ending.is_none() => {
                self.ending = Some(EndReason::AgentHungUp);
            }
            _ => {}
        }
        self.log_event(
            at_ms,
            CallEvent::Action {
                action: name.into(),
                outcome: outcome.to_string(),
            },
        );
        end
    }
}
