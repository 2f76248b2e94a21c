//! One call as a state machine: everything Pronto decides about a call,
//! with no I/O, no tasks and no clock of its own.
//!
//! [`Call::handle`] takes one input (a Twilio message, an event from the
//! engine, a timer, the result of an action) and the time, and appends the
//! effects to carry out: audio, marks and `clear` for Twilio, commands for
//! the engine, records for the store and the live view, an action for
//! Twilio's REST API. The session (`call::session`) owns the socket, the
//! timer and the engine, and does what the effects say.
//!
//! The phases, in order: waiting for Twilio's `start`; connecting (the
//! call's brief is read and its engine opened); live; over. While live, the
//! agent either has a turn in progress or the caller has the floor:
//! - the caller's turn ends (the engine says so) → the agent's turn starts;
//! - its audio is paced out ([`Playback`]) with a mark after each segment;
//!   a mark's echo means the caller heard the segment;
//! - once all of it is heard, the turn is over (and its action, if any, is
//!   carried out);
//! - the caller speaking over it long enough is a barge-in: `clear`, the
//!   engine stops, and the turn keeps only what was heard; if nothing was,
//!   the caller had only paused, and their next turn continues this one.
//!
//! Around that: keypad digits collected into one turn, the greeting,
//! "are you still there?" after a silence and the end after another, the
//! maximum duration, and the server's shutdown, each of which ends the call
//! politely (the closing line, then the hang-up).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use crate::audio::{FRAME_SAMPLES, SAMPLE_RATE};
use crate::call::desk::{Order, Ordered};
use crate::call::keypad::Keypad;
use crate::call::playback::{MarkEcho, Outbound, Playback};
use crate::call::turn::Turn;
use crate::engine::{
    Abilities, Announcement, Command, Event, InputTiming, Output, Speak, TurnInput,
};
use crate::metrics::PlaybackSample;
use crate::model::{
    ActionOutcome, CallAction, CallEvent, EndReason, LiveEvent, SessionState, TurnDecider,
    TurnRecord, millis,
};
use crate::redact::Outside;

/// Agent audio queued beyond this waits in the engine, which slows the
/// engine down instead of growing memory.
const MAX_BUFFERED_AUDIO: Duration = Duration::from_secs(2);

/// How far Twilio's media timestamps may run ahead of the call's clock.
const MEDIA_AHEAD_MS: u64 = 2_000;

/// How long Twilio gets to close the stream after it was told to end or
/// redirect the call (it does within a second).
const HANG_UP_GRACE: Duration = Duration::from_secs(5);

/// While a greeting that cannot be interrupted plays, keypad digits wait and
/// are looked at again this often.
const KEYPAD_RETRY: Duration = Duration::from_millis(250);

/// A call's settings, from `config/pronto.toml`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How far ahead of Twilio's playback agent audio is sent.
    pub max_playback_lead: Duration,
    /// How long Twilio has to send `start` after the upgrade.
    pub start_timeout: Duration,
    pub greeting_interruptible: bool,
    /// Keypad digits are sent on `#` or after this pause.
    pub dtmf_timeout: Duration,
    /// Calls end politely after this long.
    pub max_duration: Option<Duration>,
    /// Caller silence before "are you still there?".
    pub idle_prompt: Option<Duration>,
    /// Further silence before the call is ended.
    pub idle_hangup: Option<Duration>,
}

/// Something that happened to the call.
#[derive(Debug)]
pub enum Input<'a> {
    /// Twilio's `start`: the stream of this call began.
    Start { call_sid: &'a str },
    /// The call's brief is known and its engine open.
    Ready(Abilities),
    /// A media frame of the caller's arrived (the session holds its audio);
    /// `timestamp_ms` is Twilio's stream clock.
    Media { timestamp_ms: Option<u64> },
    /// Twilio echoed a mark: playback reached it (or it was cleared).
    Mark(&'a str),
    /// The caller pressed a key.
    Dtmf(&'a str),
    /// Twilio's `stop`: the call is over.
    Stop,
    /// The socket is gone.
    Disconnected(Disconnect),
    /// Time has passed: what is due now happens (the deadline
    /// [`Call::next_deadline`] gave, pacing). The session ticks after every
    /// input, so that what an input makes possible is sent at once.
    Tick,
    /// The server's drain time is over: live calls end.
    ServerClosing,
    /// The engine reported something.
    Engine(Event),
    /// An action of [`Effect::Perform`] was carried out.
    Performed(CallAction, ActionResult),
    /// An operator acted from the dashboard.
    Operator(Ordered),
}

/// How the socket went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disconnect {
    /// Closed (by Twilio, or the connection dropped).
    Closed,
    /// A message was bigger than allowed.
    TooBig,
    /// Reading failed.
    Failed,
}

/// How Twilio's REST API carried out an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionResult {
    HungUp,
    /// Twilio no longer had the call: it had ended.
    AlreadyEnded,
    /// The call now follows the transfer's TwiML.
    Redirected,
    Failed(String),
    /// No REST access: `TWILIO_ACCOUNT_SID` is not set.
    NoAccount,
    /// A test call from the dashboard: Twilio does not know it.
    NotPhone,
}

/// Something to do.
#[derive(Debug, PartialEq)]
pub enum Effect {
    /// Send the agent's audio or a mark to Twilio.
    Send(Outbound),
    /// Tell Twilio to drop the agent's audio not played yet (`clear`).
    Clear,
    /// Close the stream with this code and reason.
    Close(u16, &'static str),
    /// `start` checked out: connect the stream (register the call, start
    /// its recording, read its brief, open the engine), then [`Input::Ready`].
    Connect,
    /// The caller's media frame goes to the engine (and the recording, at
    /// `at_ms` on the call's clock).
    Hear { at_ms: u64 },
    /// Tell the engine.
    Engine(Command),
    /// Write this to the call's record and its live view.
    Record(Record),
    /// Carry out the agent's action, then [`Input::Performed`].
    Perform(CallAction),
}

/// What the call's record and live view get.
#[derive(Debug, PartialEq)]
pub enum Record {
    Event(LiveEvent),
    Turn(Box<TurnRecord>),
    /// The caller's words so far in the turn they are speaking (`None`: the
    /// turn is over), for the live view only.
    CallerWords(Option<String>),
    /// The call is over (only for a call whose stream started).
    Ended(EndReason),
}

enum Phase {
    /// Waiting for Twilio's `start` until the deadline.
    AwaitingStart {
        deadline: Instant,
    },
    /// `start` came at `started`; the engine is being opened.
    Connecting {
        started: Instant,
    },
    Live(Box<Live>),
    Over(EndReason),
}

/// A live call.
struct Live {
    /// When `start` came: the call's clock and its maximum duration.
    started: Instant,
    abilities: Abilities,
    playback: Playback,
    keypad: Keypad,
    /// The agent's turn in progress.
    turn: Option<Turn>,
    turns_started: u32,
    /// What the caller said before a barge-in that cut an answer they had
    /// not heard at all: their next turn continues it.
    carried: Option<TurnInput>,
    /// Between the engine's `SpeechStarted` and the end of that turn.
    caller_speaking: bool,
    /// What operators typed for the agent to say, waiting for a pause.
    operator_lines: VecDeque<String>,
    /// The last caller speech or agent turn: silence counts from here.
    quiet_since: Instant,
    /// "Are you still there?" was asked since the caller last spoke.
    prompted: bool,
    /// Pronto is ending the call, for this reason (the closing line, then
    /// the hang-up).
    ending: Option<EndReason>,
    /// The greeting's first audio, after the call became ready.
    greeting_ms: Option<u64>,
    /// Twilio was told to end or redirect the call: it sends `stop` and
    /// closes. A peer that does not is closed at this time, so a socket
    /// cannot outlive its call and hold a place under the cap.
    close_at: Option<Instant>,
}

/// One call. See the module documentation.
pub struct Call {
    settings: std::sync::Arc<Settings>,
    /// The call the stream token was issued for.
    call_sid: String,
    /// When the socket opened: the clock of the call's events.
    opened: Instant,
    phase: Phase,
}

impl Call {
    pub fn new(settings: std::sync::Arc<Settings>, call_sid: String, now: Instant) -> Call {
        let deadline = now + settings.start_timeout;
        Call {
            settings,
            call_sid,
            opened: now,
            phase: Phase::AwaitingStart { deadline },
        }
    }

    /// Handles `input` at `now`, appending what to do to `out`.
    pub fn handle(&mut self, input: Input<'_>, now: Instant, out: &mut Vec<Effect>) {
        match input {
            Input::Start { call_sid } => self.on_start(call_sid, now, out),
            Input::Ready(abilities) => self.on_ready(abilities, now, out),
            Input::Disconnected(how) => {
                let reason = match how {
                    Disconnect::Closed => EndReason::CallerHungUp,
                    Disconnect::TooBig => {
                        out.push(Effect::Close(1009, "message too big"));
                        EndReason::StreamError
                    }
                    Disconnect::Failed => EndReason::StreamError,
                };
                self.end(reason, now, out);
            }
            Input::Stop => {
                info!("stop received");
                out.push(Effect::Close(1000, ""));
                self.end(EndReason::CallerHungUp, now, out);
            }
            Input::Tick => self.on_tick(now, out),
            other => {
                if let Phase::Live(live) = &mut self.phase {
                    let at_ms = millis(now.saturating_duration_since(self.opened));
                    if let Some(reason) = live.handle(&self.settings, other, now, at_ms, out) {
                        self.end(reason, now, out);
                    }
                } else if let Input::Operator(Ordered { order, by }) = other {
                    // The engine is still opening: nothing can be done yet,
                    // and the record says so rather than losing the order.
                    let at_ms = millis(now.saturating_duration_since(self.opened));
                    let refused = (order != Order::Listening).then_some("the call is not live yet");
                    out.push(operator_event(at_ms, &order, by, refused));
                } else if matches!(other, Input::Media { .. }) {
                    debug!("media before the call is live; ignored");
                }
            }
        }
    }

    /// When [`Input::Tick`] is next due, if anything is waiting.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        match &self.phase {
            Phase::AwaitingStart { deadline } => Some(*deadline),
            Phase::Live(live) => [
                live.playback.next_send_at(now),
                live.playback.next_mark_deadline(),
                live.close_at,
                live.keypad.deadline(),
                live.limits_due(&self.settings),
            ]
            .into_iter()
            .flatten()
            .min(),
            Phase::Connecting { .. } | Phase::Over(_) => None,
        }
    }

    /// Whether the engine's turn output is wanted now: a turn is in
    /// progress and the outbound queue has room.
    pub fn room_for_audio(&self) -> bool {
        match &self.phase {
            Phase::Live(live) => live.turn.is_some() && live.playback.queued() < MAX_BUFFERED_AUDIO,
            _ => false,
        }
    }

    /// The call the stream token was issued for.
    pub fn call_sid(&self) -> &str {
        &self.call_sid
    }

    /// When the socket opened.
    pub fn opened(&self) -> Instant {
        self.opened
    }

    /// Why the call ended, once it has.
    pub fn ended(&self) -> Option<EndReason> {
        match self.phase {
            Phase::Over(reason) => Some(reason),
            _ => None,
        }
    }

    /// Whether Twilio's `start` has come: the stream is the call's.
    pub fn started(&self) -> bool {
        !matches!(self.phase, Phase::AwaitingStart { .. })
    }

    /// Whether Pronto is ending the call (so the server's closing signal
    /// has nothing more to do).
    pub fn ending(&self) -> bool {
        match &self.phase {
            Phase::Live(live) => live.ending.is_some(),
            _ => true,
        }
    }

    /// Where the conversation stands, for the live view.
    pub fn state(&self) -> SessionState {
        match &self.phase {
            Phase::AwaitingStart { .. } => SessionState::Connecting,
            Phase::Live(live) => match &live.turn {
                Some(turn) if turn.first_audio_sent_at.is_some() => SessionState::Speaking,
                Some(_) => SessionState::Responding,
                None => SessionState::Listening,
            },
            Phase::Connecting { .. } | Phase::Over(_) => SessionState::Listening,
        }
    }

    /// Turns started so far (the greeting is turn 0).
    pub fn turns(&self) -> u32 {
        match &self.phase {
            Phase::Live(live) => live.turns_started,
            _ => 0,
        }
    }

    /// What the playback measured since the last take, for the server's
    /// metrics (nothing once the call is over).
    pub fn take_playback_sample(&mut self) -> PlaybackSample {
        match &mut self.phase {
            Phase::Live(live) => live.playback.take_measured(),
            _ => PlaybackSample::default(),
        }
    }

    /// The greeting's first audio, after the call became ready (ms).
    pub fn greeting_ms(&self) -> Option<u64> {
        match &self.phase {
            Phase::Live(live) => live.greeting_ms,
            _ => None,
        }
    }

    fn on_start(&mut self, call_sid: &str, now: Instant, out: &mut Vec<Effect>) {
        if !matches!(self.phase, Phase::AwaitingStart { .. }) {
            warn!("second start message; ignored");
            return;
        }
        if call_sid != self.call_sid {
            warn!(start_call_sid = %Outside(call_sid), "start.callSid differs from the call the stream token was issued for; closing");
            out.push(Effect::Close(1008, "callSid does not match the stream"));
            self.end(EndReason::StreamError, now, out);
            return;
        }
        self.phase = Phase::Connecting { started: now };
        out.push(Effect::Connect);
    }

    fn on_ready(&mut self, abilities: Abilities, now: Instant, out: &mut Vec<Effect>) {
        let Phase::Connecting { started } = self.phase else {
            return;
        };
        let lead = abilities
            .playback_lead
            .map_or(self.settings.max_playback_lead, |lead| {
                lead.min(self.settings.max_playback_lead)
            });
        let mut live = Box::new(Live {
            started,
            abilities,
            playback: Playback::new(lead),
            keypad: Keypad::default(),
            turn: None,
            turns_started: 0,
            carried: None,
            caller_speaking: false,
            operator_lines: VecDeque::new(),
            quiet_since: started,
            prompted: false,
            ending: None,
            close_at: None,
            greeting_ms: None,
        });
        if abilities.greets {
            let mut turn = Turn::new(0, now, InputTiming::default());
            turn.interruptible = self.settings.greeting_interruptible;
            live.turn = Some(turn);
            out.push(Effect::Engine(Command::Start {
                turn: 0,
                speak: Speak::Greeting,
            }));
        }
        self.phase = Phase::Live(live);
    }

    fn on_tick(&mut self, now: Instant, out: &mut Vec<Effect>) {
        match &mut self.phase {
            Phase::AwaitingStart { deadline } if now >= *deadline => {
                warn!(
                    timeout_secs = self.settings.start_timeout.as_secs(),
                    "no start message; closing"
                );
                out.push(Effect::Close(1008, "no start message"));
                self.end(EndReason::NoStream, now, out);
            }
            Phase::Live(live) => {
                let at_ms = millis(now.saturating_duration_since(self.opened));
                if live.keypad.deadline().is_some_and(|d| now >= d) {
                    live.on_keypad_due(now, at_ms, out);
                }
                if live.limits_due(&self.settings).is_some_and(|d| now >= d) {
                    live.on_limits_due(&self.settings, now, out);
                }
                if live.close_at.is_some_and(|d| now >= d) {
                    warn!("the stream stayed open after the call ended; closing it");
                    out.push(Effect::Close(1000, ""));
                    let reason = live.ending.unwrap_or(EndReason::AgentHungUp);
                    self.end(reason, now, out);
                    return;
                }
                live.pump(now, out);
            }
            _ => {}
        }
    }

    /// The call is over: a turn still in progress goes into the record as
    /// cut, and the end (with Pronto's reason if it was ending the call).
    fn end(&mut self, cause: EndReason, now: Instant, out: &mut Vec<Effect>) {
        let reason = match &mut self.phase {
            Phase::Over(_) => return,
            Phase::AwaitingStart { .. } => {
                // The stream never started: the webhook's record stands.
                self.phase = Phase::Over(cause);
                return;
            }
            Phase::Connecting { .. } => cause,
            Phase::Live(live) => {
                if let Some(mut turn) = live.turn.take() {
                    turn.interrupted = true;
                    let heard = live.heard(&turn, now);
                    out.push(Effect::Engine(Command::Cancel {
                        turn: turn.id,
                        heard,
                    }));
                    live.finish_turn(turn, now, out);
                }
                live.ending.unwrap_or(cause)
            }
        };
        out.push(Effect::Record(Record::Ended(reason)));
        self.phase = Phase::Over(reason);
    }
}

impl Live {
    /// Handles an input of the live call; `Some` ends the call for that reason.
    fn handle(
        &mut self,
        settings: &Settings,
        input: Input<'_>,
        now: Instant,
        at_ms: u64,
        out: &mut Vec<Effect>,
    ) -> Option<EndReason> {
        match input {
            Input::Media { timestamp_ms } => {
                // Twilio's clock, but never ahead of the call's own by more
                // than network jitter: a timestamp that jumps an hour ahead
                // would otherwise make the recording write an hour of silence.
                let wall = millis(now.saturating_duration_since(self.started));
                let at_ms = timestamp_ms.map_or(wall, |t| t.min(wall + MEDIA_AHEAD_MS));
                out.push(Effect::Hear { at_ms });
            }
            Input::Mark(name) => self.on_mark(name, now),
            Input::Dtmf(digit) => {
                info!(digit = %Outside(digit), "dtmf");
                let digit_text: String = digit.chars().take(4).collect();
                out.push(event(at_ms, CallEvent::Dtmf { digit: digit_text }));
                if self.keypad.push(digit, now, settings.dtmf_timeout) {
                    self.on_keypad_due(now, at_ms, out);
                }
            }
            Input::ServerClosing => {
                if self.ending.is_none() {
                    info!("server shutting down: ending the call");
                    self.end_politely(EndReason::Shutdown, now, out);
                }
            }
            Input::Engine(event) => self.on_engine(event, now, at_ms, out),
            Input::Performed(action, result) => {
                return self.performed(action, result, now, at_ms, out);
            }
            Input::Operator(ordered) => self.on_order(ordered, now, at_ms, out),
            Input::Start { .. }
            | Input::Ready(_)
            | Input::Stop
            | Input::Disconnected(_)
            | Input::Tick => {}
        }
        None
    }

    fn on_engine(&mut self, reported: Event, now: Instant, at_ms: u64, out: &mut Vec<Effect>) {
        match reported {
            Event::SpeechStarted => {
                debug!("caller speech started");
                self.caller_speaking = true;
                self.activity(now);
            }
            Event::Interrupting => {
                if self.turn.as_ref().is_some_and(|t| t.interruptible) {
                    self.barge_in(now, at_ms, out);
                }
            }
            Event::CallerWords(words) => {
                self.activity(now);
                out.push(Effect::Record(Record::CallerWords(Some(words))));
            }
            Event::TurnEnded { input, timing } => {
                self.caller_speaking = false;
                out.push(Effect::Record(Record::CallerWords(None)));
                if let Some(turn) = &self.turn {
                    debug!(
                        turn = turn.id,
                        "short caller sound while answering; ignored"
                    );
                    return;
                }
                let input = input.continuing(self.carried.take());
                info!(
                    turn = self.turns_started + 1,
                    utterance_ms = millis(timing.utterance),
                    decided_by = timing.decided_by.as_str(),
                    turn_decided_ms = millis(timing.decided_after),
                    endpoint_wait_ms = millis(timing.endpoint_wait),
                    "caller turn ended"
                );
                let speech_ended_at = now.checked_sub(timing.endpoint_wait).unwrap_or(now);
                self.start_turn(input, speech_ended_at, timing, out);
            }
            Event::Turn { turn, output } => self.on_output(turn, output, at_ms, out),
            Event::Amended(record) => {
                // Only a turn that is over: the one in progress records itself.
                let over = record.turn <= self.turns_started
                    && self.turn.as_ref().is_none_or(|t| t.id != record.turn);
                if over {
                    debug!(turn = record.turn, "turn record amended");
                    out.push(Effect::Record(Record::Turn(record)));
                }
            }
            Event::Usage(usage) => out.push(event(at_ms, CallEvent::Usage(usage))),
            Event::Gone(why) => {
                warn!(reason = %why, "the engine cannot go on; ending the call");
                if self.ending.is_none() {
                    self.end_politely(EndReason::EngineFailed, now, out);
                }
            }
        }
    }

    /// Something of the turn in progress (late output of a cancelled one is
    /// dropped).
    fn on_output(&mut self, id: u32, output: Output, at_ms: u64, out: &mut Vec<Effect>) {
        let Some(turn) = self.turn.as_mut().filter(|t| t.id == id) else {
            return;
        };
        match output {
            Output::Audio(audio) => self.playback.push_audio(audio),
            Output::SegmentEnd { text } => {
                let name = turn.mark_name(turn.segments);
                turn.segments += 1;
                turn.texts.push(text);
                self.playback.push_mark(name);
            }
            Output::Planned(text) => turn.planned.push(text),
            Output::Transcript(text) => turn.transcript = Some(text),
            Output::Timing(timing) => turn.timings.record(timing),
            Output::Action(action) => turn.action = Some(action),
            Output::Finished => turn.produced = true,
            Output::Failed(error) => {
                warn!(turn = id, reason = %error, "responder failed");
                turn.produced = true;
                out.push(event(
                    at_ms,
                    CallEvent::ProviderError {
                        turn: id,
                        error: error.to_string(),
                    },
                ));
            }
        }
    }

    fn on_mark(&mut self, name: &str, now: Instant) {
        match self.playback.on_mark(name, now) {
            MarkEcho::Played => {
                if let Some(turn) = self.turn.as_mut().filter(|t| t.owns_mark(name)) {
                    turn.segments_heard += 1;
                }
                debug!(mark = name, "mark played");
            }
            MarkEcho::Cleared => debug!(mark = name, "mark cleared"),
            MarkEcho::Unknown => debug!(mark = name, "unknown mark; ignored"),
        }
    }

    /// Sends whatever the pacing allows now, and finishes the turn once all
    /// of it has been heard (then its action is due).
    fn pump(&mut self, now: Instant, out: &mut Vec<Effect>) {
        while let Some(next) = self.playback.poll(now) {
            if let Outbound::Media(_) = next
                && let Some(turn) = self.turn.as_mut()
            {
                if turn.first_audio_sent_at.is_none() {
                    turn.first_audio_sent_at = Some(now);
                } else if self.playback.ran_dry() {
                    // More of a turn already playing, after a silence: the
                    // engine did not keep up (a slow sentence's TTS).
                    self.playback.underrun();
                }
            }
            out.push(Effect::Send(next));
        }
        for name in self.playback.expire_overdue_marks(now) {
            warn!(mark = %name, "mark never came back; assuming it played");
            if let Some(turn) = self.turn.as_mut().filter(|t| t.owns_mark(&name)) {
                turn.segments_heard += 1;
            }
        }
        let all_heard = self.turn.as_ref().is_some_and(|t| t.produced) && self.playback.is_idle();
        if all_heard && let Some(mut turn) = self.turn.take() {
            if turn.id == 0 {
                self.greeting_ms = turn
                    .first_audio_sent_at
                    .map(|t| millis(t.saturating_duration_since(turn.speech_ended_at)));
            }
            let action = turn.action.take();
            self.finish_turn(turn, now, out);
            if let Some(action) = action {
                out.push(Effect::Perform(action));
            }
        }
        if !self.operator_lines.is_empty() {
            self.say_operator_line(now, out);
        }
    }

    /// An operator's order: recorded with who gave it, then carried out
    /// (or refused, and why, in the record).
    fn on_order(&mut self, ordered: Ordered, now: Instant, at_ms: u64, out: &mut Vec<Effect>) {
        let Ordered { order, by } = ordered;
        let refused = match &order {
            Order::Listening => None,
            _ if self.ending.is_some() => Some("the call is already ending"),
            Order::Say(_) if !self.abilities.speaks => Some("this engine cannot speak typed text"),
            Order::HangUp | Order::Transfer(_) | Order::Say(_) => None,
        };
        out.push(operator_event(at_ms, &order, by, refused));
        if refused.is_some() {
            return;
        }
        let action = match order {
            Order::Listening => return,
            Order::Say(text) => {
                self.operator_lines.push_back(text);
                return self.say_operator_line(now, out);
            }
            Order::HangUp => {
                self.ending = Some(EndReason::OperatorHungUp);
                CallAction::EndCall
            }
            Order::Transfer(to) => CallAction::Transfer { to },
        };
        // The agent stops talking; what was heard of its turn is kept.
        if let Some(turn) = self.stop_turn(now, out) {
            self.finish_turn(turn, now, out);
        }
        out.push(Effect::Perform(action));
    }

    /// Says the next line an operator typed, if this is a pause: no turn in
    /// progress, the caller not speaking, the call not ending.
    fn say_operator_line(&mut self, now: Instant, out: &mut Vec<Effect>) {
        if self.turn.is_some() || self.caller_speaking || self.ending.is_some() {
            return;
        }
        let Some(text) = self.operator_lines.pop_front() else {
            return;
        };
        self.start_own_turn(Speak::Operator(text), now, out)
            .by_operator = true;
    }

    /// The caller spoke over the agent's turn: stop it and listen.
    fn barge_in(&mut self, now: Instant, at_ms: u64, out: &mut Vec<Effect>) {
        let Some(turn) = self.turn.as_ref() else {
            return;
        };
        info!(
            turn = turn.id,
            heard_segments = turn.segments_heard,
            "barge-in"
        );
        out.push(event(at_ms, CallEvent::BargeIn { turn: turn.id }));
        let Some(mut turn) = self.stop_turn(now, out) else {
            return;
        };
        match turn.speech.take() {
            // Nothing of the answer was heard: the caller had only paused.
            // What they said is answered together with what they say now.
            Some(speech) if !turn.anything_heard() => self.carried = speech.carried(),
            _ => self.finish_turn(turn, now, out),
        }
    }

    /// Clears Twilio's queue and stops the engine's turn, returning the turn
    /// flagged as interrupted.
    fn stop_turn(&mut self, now: Instant, out: &mut Vec<Effect>) -> Option<Turn> {
        let mut turn = self.turn.take()?;
        turn.interrupted = true;
        let heard = self.heard(&turn, now);
        let cleared = self.playback.clear(now);
        debug!(
            turn = turn.id,
            cleared_marks = cleared.len(),
            "turn stopped"
        );
        out.push(Effect::Clear);
        out.push(Effect::Engine(Command::Cancel {
            turn: turn.id,
            heard,
        }));
        Some(turn)
    }

    /// How much of `turn`'s audio the caller has heard by `now`. Twilio
    /// plays 20 ms frames and the playback knows the position to about a
    /// frame, so the frame playing is taken as heard to its middle: half a
    /// frame more than the position halves the worst error (never past what
    /// was sent).
    fn heard(&self, turn: &Turn, now: Instant) -> Duration {
        let half_frame = FRAME_SAMPLES as u64 / 2;
        let position = (self.playback.played(now) + half_frame).min(self.playback.sent());
        let bytes = position.saturating_sub(turn.audio_from);
        Duration::from_micros(bytes.saturating_mul(1_000_000) / u64::from(SAMPLE_RATE))
    }

    /// Records a turn that is over (heard, interrupted or cut by the end of
    /// the call): what the caller said and heard, for the engine and the
    /// record.
    fn finish_turn(&mut self, turn: Turn, now: Instant, out: &mut Vec<Effect>) {
        let record = turn.record(self.started);
        if turn.id > 0 && record.caller.is_none() && turn.segments == 0 {
            info!(turn = turn.id, "nothing intelligible; the turn is dropped");
            return;
        }
        out.push(Effect::Engine(Command::Heard(Box::new(record.clone()))));
        self.quiet_since = now;
        let l = &record.latency;
        info!(
            turn = turn.id,
            interrupted = record.interrupted,
            heard_segments = turn.segments_heard,
            segments = turn.segments,
            decided_by = l.decided_by.as_str(),
            turn_decided_ms = l.turn_decided_ms,
            endpoint_wait_ms = l.endpoint_wait_ms,
            stt_final_ms = ?l.stt_final_ms,
            stt_ms = ?l.stt_ms,
            speculative = l.speculative,
            llm_first_token_ms = ?l.llm_first_token_ms,
            first_sentence_ms = ?l.first_sentence_ms,
            first_tts_request_ms = ?l.first_tts_request_ms,
            tts_first_byte_ms = ?l.tts_first_byte_ms,
            voice_to_voice_ms = ?l.voice_to_voice_ms,
            pipeline_overhead_ms = ?l.pipeline_overhead_ms,
            "turn over"
        );
        out.push(Effect::Record(Record::Turn(Box::new(record))));
    }

    /// Starts answering what the caller gave.
    fn start_turn(
        &mut self,
        input: TurnInput,
        speech_ended_at: Instant,
        timing: InputTiming,
        out: &mut Vec<Effect>,
    ) {
        self.turns_started += 1;
        let id = self.turns_started;
        let mut turn = Turn::new(id, speech_ended_at, timing);
        turn.audio_from = self.playback.sent();
        if let TurnInput::Speech(_) | TurnInput::Transcript(_) = &input {
            turn.speech = Some(input.clone());
        }
        self.turn = Some(turn);
        out.push(Effect::Engine(Command::Start {
            turn: id,
            speak: Speak::Answer(input),
        }));
    }

    /// Says an announcement as a turn of its own; `action` follows once it
    /// has been heard. False when the engine cannot speak (echo mode).
    fn start_announcement(
        &mut self,
        what: Announcement,
        action: Option<CallAction>,
        now: Instant,
        out: &mut Vec<Effect>,
    ) -> bool {
        if !self.abilities.speaks {
            return false;
        }
        let turn = self.start_own_turn(Speak::Announcement(what), now, out);
        turn.interruptible = what == Announcement::StillThere;
        turn.action = action;
        true
    }

    /// Starts a turn that answers nobody (an announcement, an operator's
    /// line): it starts now, after the audio already sent.
    fn start_own_turn(&mut self, speak: Speak, now: Instant, out: &mut Vec<Effect>) -> &mut Turn {
        self.turns_started += 1;
        let id = self.turns_started;
        let mut turn = Turn::new(id, now, InputTiming::default());
        turn.audio_from = self.playback.sent();
        out.push(Effect::Engine(Command::Start { turn: id, speak }));
        self.turn.insert(turn)
    }

    /// Keypad digits are due: they become a turn, interrupting the agent
    /// unless it is a greeting that cannot be interrupted.
    fn on_keypad_due(&mut self, now: Instant, at_ms: u64, out: &mut Vec<Effect>) {
        if self.turn.as_ref().is_some_and(|t| !t.interruptible) {
            self.keypad.postpone(now + KEYPAD_RETRY);
            return;
        }
        let Some(text) = self.keypad.take() else {
            return;
        };
        if self.turn.is_some() {
            self.barge_in(now, at_ms, out);
        }
        info!(digits = text.len(), "keypad digits to the agent");
        let timing = InputTiming {
            decided_by: TurnDecider::Keypad,
            ..InputTiming::default()
        };
        self.start_turn(TurnInput::Keypad(text), now, timing, out);
    }

    /// When the next limit falls due, if any: the maximum duration, or the
    /// caller's silence while nobody speaks.
    fn limits_due(&self, settings: &Settings) -> Option<Instant> {
        if self.ending.is_some() {
            return None;
        }
        let max_duration = settings.max_duration.map(|d| self.started + d);
        let idle_wait = if self.prompted {
            settings.idle_hangup
        } else {
            settings.idle_prompt
        };
        let quiet = self.turn.is_none() && !self.caller_speaking;
        let idle = idle_wait.filter(|_| quiet).map(|d| self.quiet_since + d);
        match (max_duration, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_limits_due(&mut self, settings: &Settings, now: Instant, out: &mut Vec<Effect>) {
        if settings
            .max_duration
            .is_some_and(|d| now >= self.started + d)
        {
            info!("maximum call duration reached");
            self.end_politely(EndReason::MaxDuration, now, out);
            return;
        }
        if self.prompted {
            info!("the caller stayed silent");
            self.end_politely(EndReason::Idle, now, out);
            return;
        }
        info!("caller silent: asking whether they are still there");
        self.prompted = true;
        self.quiet_since = now;
        self.start_announcement(Announcement::StillThere, None, now, out);
    }

    /// The caller spoke: the silence clock starts again.
    fn activity(&mut self, now: Instant) {
        self.quiet_since = now;
        self.prompted = false;
    }

    /// Stops what the agent is saying, says the closing line, then hangs up
    /// (at once when the engine cannot speak).
    fn end_politely(&mut self, reason: EndReason, now: Instant, out: &mut Vec<Effect>) {
        self.ending = Some(reason);
        if let Some(turn) = self.stop_turn(now, out) {
            self.finish_turn(turn, now, out);
        }
        if !self.start_announcement(Announcement::Closing, Some(CallAction::EndCall), now, out) {
            out.push(Effect::Perform(CallAction::EndCall));
        }
    }

    /// The agent's action was carried out (or not). `Some` ends the call:
    /// Pronto hung up by closing the stream.
    fn performed(
        &mut self,
        action: CallAction,
        result: ActionResult,
        now: Instant,
        at_ms: u64,
        out: &mut Vec<Effect>,
    ) -> Option<EndReason> {
        let mut hung_up = false;
        let outcome = match (&action, result) {
            (CallAction::EndCall, ActionResult::Failed(e)) => {
                warn!(error = %e, "cannot hang up through Twilio; closing the stream instead");
                hung_up = true;
                ActionOutcome::StreamClosed(format!("{e}; closed the stream"))
            }
            (CallAction::EndCall, ActionResult::NoAccount) => {
                // With no REST access, closing the stream ends the call: the
                // TwiML has nothing after <Connect>.
                hung_up = true;
                ActionOutcome::StreamClosed(
                    "closed the stream (no TWILIO_ACCOUNT_SID for REST)".into(),
                )
            }
            (CallAction::EndCall, ActionResult::NotPhone) => {
                hung_up = true;
                ActionOutcome::StreamClosed("closed the stream (a test call)".into())
            }
            (CallAction::Transfer { .. }, ActionResult::NotPhone) => {
                ActionOutcome::Failed("a test call cannot be transferred".into())
            }
            (CallAction::Transfer { .. }, ActionResult::Failed(e)) => {
                warn!(error = %e, "cannot transfer the call");
                ActionOutcome::Failed(e)
            }
            (CallAction::Transfer { .. }, ActionResult::NoAccount) => {
                warn!("transfer_call needs TWILIO_ACCOUNT_SID; the call goes on");
                ActionOutcome::Failed("not possible without TWILIO_ACCOUNT_SID".into())
            }
            (_, ActionResult::HungUp) => ActionOutcome::HungUp,
            (_, ActionResult::AlreadyEnded) => ActionOutcome::AlreadyEnded,
            // Twilio now leaves the stream and sends `stop`.
            (_, ActionResult::Redirected) => ActionOutcome::Transferred,
        };
        info!(action = action.name(), outcome = %outcome, "agent action");
        match (&action, &outcome) {
            (CallAction::Transfer { .. }, ActionOutcome::Transferred) => {
                self.ending = Some(EndReason::Transferred);
            }
            (CallAction::EndCall, _) if self.ending.is_none() => {
                self.ending = Some(EndReason::AgentHungUp);
            }
            _ => {}
        }
        out.push(event(
            at_ms,
            CallEvent::Action {
                action: action.name().into(),
                outcome: outcome.to_string(),
            },
        ));
        if hung_up {
            out.push(Effect::Close(1000, ""));
            return Some(EndReason::AgentHungUp);
        }
        if matches!(
            outcome,
            ActionOutcome::HungUp | ActionOutcome::AlreadyEnded | ActionOutcome::Transferred
        ) {
            self.close_at = Some(now + HANG_UP_GRACE);
        }
        None
    }
}

/// An event of the call, stamped with the call's clock.
fn event(at_ms: u64, event: CallEvent) -> Effect {
    Effect::Record(Record::Event(LiveEvent { at_ms, event }))
}

/// An operator's order for the record (and the log): who gave it, and why
/// it was refused, if it was.
fn operator_event(at_ms: u64, order: &Order, by: String, refused: Option<&str>) -> Effect {
    info!(action = order.name(), %by, refused = refused.unwrap_or(""), "operator");
    event(
        at_ms,
        CallEvent::Operator {
            action: order.name().into(),
            by,
            outcome: refused.map(Into::into),
        },
    )
}

#[cfg(test)]
mod tests;
