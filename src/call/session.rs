//! The session: the task that runs one call. It owns the call's socket,
//! its one timer, its engine conversation and its recording, and does what
//! the call's state machine ([`Call`]) decides: every Twilio message, engine
//! event and timer becomes an [`Input`], every [`Effect`] an action here.
//!
//! Bad input from Twilio is logged, counted and skipped; it can end this
//! call (an oversized message, the wrong call) but never another. Whatever
//! ends the call, the record gets its end and the engine stops with it: the
//! conversation is dropped with the session.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::SinkExt;
use tokio::sync::watch;
use tokio::time::sleep_until;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::call::desk::{Desk, Tapped};
use crate::call::journal::Journal;
use crate::call::machine::{ActionResult, Call, Disconnect, Effect, Input, Record};
use crate::call::playback::Outbound;
use crate::call::recording::Recording;
use crate::call::registry::{Attachment, Registry};
use crate::call::roster::Persona;
use crate::engine::{Conversation, Event};
use crate::model::{CallAction, CallBrief, CallInfo, Direction, EndReason, LiveState, millis};
use crate::recordings::Recordings;
use crate::redact::Outside;
use crate::store::Store;
use crate::twilio::media::{self, Inbound, OutboundWriter, Start};
use crate::twilio::rest::{HangUp, TwilioRest};
use crate::twilio::twiml;

/// Bad messages logged per call before logging only every thousandth.
const BAD_MESSAGES_LOGGED: u64 = 5;

/// The longest the start of a call waits for the store (plan, memory).
const STORE_LOOKUP: Duration = Duration::from_millis(800);

/// What every session shares.
#[derive(Clone)]
pub struct SessionContext {
    pub registry: Registry,
    pub journal: Journal,
    /// For an outbound call's plan and caller memory.
    pub store: Store,
    /// For hanging up and transferring; `None` without an account SID.
    pub twilio: Option<Arc<TwilioRest>>,
    /// Where calls are recorded, when recordings are on.
    pub recordings: Option<Recordings>,
    /// Enforced by the WebSocket itself (set on the upgrade); a bigger
    /// message surfaces as a read error, answered with close code 1009.
    pub max_message_bytes: usize,
    /// Turns true when the server's drain time is over.
    pub closing: watch::Receiver<bool>,
}

/// Runs the session for an upgraded socket whose stream token named
/// `call_sid` and its agent.
pub async fn run(socket: WebSocket, call_sid: String, agent: Arc<Persona>, ctx: SessionContext) {
    let span = info_span!("call", call_sid = %call_sid, agent = %agent.name);
    async move {
        let opened = Instant::now();
        let call = Call::new(Arc::clone(&agent.settings), call_sid, opened);
        let desk = Desk::new(agent.transfer_number());
        let mut session = Session {
            agent,
            socket,
            call,
            start: None,
            line: None,
            engine: None,
            live: watch::Sender::new(LiveState::default()),
            desk,
            buffers: Buffers::default(),
            ctx,
        };
        let reason = session.run().await;
        session.finish();
        let live = session.live.borrow();
        info!(end = %reason, turns = live.turns, bad_messages = live.bad_messages, duration_ms = millis(opened.elapsed()), "stream ended");
    }
    .instrument(span)
    .await
}

struct Session {
    ctx: SessionContext,
    /// Who answers: held for the whole call, whatever a reload does.
    agent: Arc<Persona>,
    socket: WebSocket,
    call: Call,
    /// Twilio's `start`, from its arrival until the call connects it.
    start: Option<Start>,
    /// The stream, once connected.
    line: Option<Line>,
    /// The agent's side, once the call is ready.
    engine: Option<Box<dyn Conversation>>,
    /// What `/api/status` and the dashboard show of this call (change it
    /// with [`Session::show`]).
    live: watch::Sender<LiveState>,
    /// Operators listening in and stepping in.
    desk: Desk,
    buffers: Buffers,
}

/// What exists once the stream has started.
struct Line {
    /// When the stream started: the recording's clock.
    started: Instant,
    writer: OutboundWriter,
    /// An active call in `/metrics` while the line lasts. Before the
    /// attachment, so dropped first: once the registry no longer has the
    /// call, its metrics say it ended.
    metrics: crate::metrics::CallMetrics,
    /// Keeps the call in the registry while the session runs.
    _attachment: Attachment,
    recording: Option<Recording>,
    brief: Option<Arc<CallBrief>>,
}

/// Allocations reused for every message.
#[derive(Default)]
struct Buffers {
    /// The caller's latest media payload, decoded.
    payload: Vec<u8>,
    /// What the engine heard in it.
    heard: Vec<Event>,
    /// The call's effects not carried out yet.
    effects: Vec<Effect>,
    queue: VecDeque<Effect>,
}

impl Session {
    async fn run(&mut self) -> EndReason {
        // One timer for every deadline (start, pacing, keypad, limits), reset
        // only when the earliest one changes: building and dropping a timer
        // per wakeup on every 20 ms message was a visible CPU cost.
        let timer = sleep_until(tokio::time::Instant::now());
        tokio::pin!(timer);
        let mut armed = None;
        let closing = server_closing(self.ctx.closing.clone());
        tokio::pin!(closing);
        loop {
            let next = self.call.next_deadline(Instant::now());
            if let Some(at) = next
                && next != armed
            {
                timer.as_mut().reset(tokio::time::Instant::from_std(at));
                armed = next;
            }
            let room = self.call.room_for_audio();
            let engine = &mut self.engine;
            tokio::select! {
                message = self.socket.recv() => self.on_message(message),
                event = next_event(engine, room) => self.input(Input::Engine(event)),
                () = &mut timer, if next.is_some() => {}
                () = &mut closing, if self.call.started() && !self.call.ending() => {
                    self.input(Input::ServerClosing);
                }
                ordered = self.desk.next_order() => self.input(Input::Operator(ordered)),
            }
            self.carry_out().await;
            // Whatever woke the session, what is due now happens now, and
            // what it made possible is sent.
            self.input(Input::Tick);
            self.carry_out().await;
            self.publish();
            crate::metrics::playback_measured(self.call.take_playback_sample());
            if let Some(reason) = self.call.ended() {
                return reason;
            }
        }
    }

    /// Gives the call one input now; its effects wait in the queue.
    fn input(&mut self, input: Input<'_>) {
        self.call
            .handle(input, Instant::now(), &mut self.buffers.effects);
        self.buffers.queue.extend(self.buffers.effects.drain(..));
    }

    fn on_message(&mut self, message: Option<Result<Message, axum::Error>>) {
        let text = match message {
            None | Some(Ok(Message::Close(_))) => {
                return self.input(Input::Disconnected(Disconnect::Closed));
            }
            Some(Err(e)) => return self.on_socket_error(e),
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(b))) => {
                return self.count_bad("binary frame", &format_args!("{} bytes", b.len()));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return,
        };
        let parsed = match media::parse(text.as_str()) {
            Ok(p) => p,
            Err(e) => return self.count_bad("message", &e),
        };
        match parsed.message {
            Inbound::Media(m) => {
                let mut payload = std::mem::take(&mut self.buffers.payload);
                match m.decode_into(&mut payload) {
                    Ok(()) => self.input(Input::Media {
                        timestamp_ms: m.timestamp_ms,
                    }),
                    Err(e) => self.count_bad("media", &e),
                }
                self.buffers.payload = payload;
            }
            Inbound::Start(start) => {
                let call_sid = start.call_sid.clone();
                self.start = Some(*start);
                self.input(Input::Start {
                    call_sid: &call_sid,
                });
            }
            Inbound::Mark { name } => self.input(Input::Mark(&name)),
            Inbound::Dtmf { digit } => self.input(Input::Dtmf(&digit)),
            Inbound::Connected => debug!("connected"),
            Inbound::Stop => self.input(Input::Stop),
        }
    }

    fn on_socket_error(&mut self, e: axum::Error) {
        use tokio_tungstenite::tungstenite::Error as WsError;
        let too_big = e
            .into_inner()
            .downcast_ref::<WsError>()
            .is_some_and(|inner| matches!(inner, WsError::Capacity(_)));
        if too_big {
            warn!(
                max_bytes = self.ctx.max_message_bytes,
                "message too big; closing"
            );
            self.input(Input::Disconnected(Disconnect::TooBig));
        } else {
            debug!("websocket read failed");
            self.input(Input::Disconnected(Disconnect::Failed));
        }
    }

    fn count_bad(&self, what: &str, detail: &dyn std::fmt::Display) {
        crate::metrics::twilio_bad_message();
        let mut n = 0;
        self.show(|s| {
            s.bad_messages += 1;
            n = s.bad_messages;
        });
        if n <= BAD_MESSAGES_LOGGED || n % 1000 == 0 {
            // The detail may quote the message (a parse error's token).
            let detail = crate::redact::outside(&detail.to_string());
            warn!(bad_messages = n, "skipped {what}: {detail}");
        }
    }

    /// Carries out the call's effects in order, with the inputs they cause.
    async fn carry_out(&mut self) {
        loop {
            let mut fed = false;
            while let Some(effect) = self.buffers.queue.pop_front() {
                let delivered = match effect {
                    Effect::Send(next) => {
                        fed = true;
                        self.send(next).await
                    }
                    Effect::Clear => self.send_clear().await,
                    Effect::Close(code, reason) => {
                        self.close(code, reason).await;
                        true
                    }
                    Effect::Connect => {
                        if let Some(start) = self.start.take() {
                            self.connect(start).await;
                        }
                        true
                    }
                    Effect::Hear { at_ms } => {
                        self.hear(at_ms);
                        true
                    }
                    Effect::Engine(command) => {
                        if let Some(engine) = self.engine.as_mut() {
                            engine.command(command);
                        }
                        true
                    }
                    Effect::Record(record) => {
                        self.record(record);
                        true
                    }
                    Effect::Perform(action) => {
                        let result = self.perform(&action).await;
                        self.input(Input::Performed(action, result));
                        true
                    }
                };
                if !delivered {
                    self.input(Input::Disconnected(Disconnect::Failed));
                }
            }
            if fed && let Err(e) = self.socket.flush().await {
                debug!(error = %e, "cannot flush");
                self.input(Input::Disconnected(Disconnect::Failed));
            }
            if self.buffers.queue.is_empty() {
                break;
            }
        }
    }

    /// Queues the agent's audio or a mark for Twilio (sent with the next
    /// flush). False when the socket failed.
    async fn send(&mut self, next: Outbound) -> bool {
        let Some(line) = self.line.as_mut() else {
            return true;
        };
        let text = match next {
            Outbound::Media(frame) => {
                if let Some(recording) = line.recording.as_mut() {
                    recording
                        .recorder
                        .agent_audio_sent(millis(self.call.opened().elapsed()), &frame);
                }
                self.desk.tap(|| Tapped::Agent(frame.clone()));
                line.writer.media(&frame)
            }
            Outbound::Mark(name) => line.writer.mark(&name),
        };
        match to_message(text) {
            Some(message) => self.socket.feed(message).await.is_ok(),
            None => false,
        }
    }

    /// Tells Twilio to drop the agent's audio it has not played.
    async fn send_clear(&mut self) -> bool {
        let Some(line) = self.line.as_mut() else {
            return true;
        };
        if let Some(recording) = line.recording.as_mut() {
            recording
                .recorder
                .cleared(millis(self.call.opened().elapsed()));
        }
        self.desk.tap(|| Tapped::Clear);
        let Some(clear) = to_message(line.writer.clear()) else {
            return false;
        };
        match self.socket.send(clear).await {
            Ok(()) => true,
            Err(e) => {
                warn!(error = %e, "cannot send clear");
                false
            }
        }
    }

    /// The caller's latest frame: into the recording, then the engine, whose
    /// events the call hears at once.
    fn hear(&mut self, at_ms: u64) {
        let payload = std::mem::take(&mut self.buffers.payload);
        if let Some(recording) = self.line.as_mut().and_then(|l| l.recording.as_mut()) {
            recording.recorder.caller_audio(at_ms, &payload);
        }
        self.desk
            .tap(|| Tapped::Caller(Bytes::copy_from_slice(&payload)));
        let mut heard = std::mem::take(&mut self.buffers.heard);
        if let Some(engine) = self.engine.as_mut() {
            engine.hear(&payload, &mut heard);
        }
        for event in heard.drain(..) {
            self.input(Input::Engine(event));
        }
        self.buffers.heard = heard;
        self.buffers.payload = payload;
    }

    /// The stream started: the call is registered and recorded, its brief
    /// read, and its engine opened.
    async fn connect(&mut self, start: Start) {
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
            agent: self.agent.name.clone(),
            started_at: chrono::Utc::now(),
        };
        self.live
            .send_modify(|s| s.stream_sid = Some(start.stream_sid.clone()));
        let attachment =
            self.ctx
                .registry
                .attach(info.clone(), self.live.subscribe(), self.desk.handle());
        info!(stream_sid = %Outside(&start.stream_sid), "stream started");
        self.ctx
            .journal
            .call_answered(&info.call_sid, chrono::Utc::now(), &info.agent);
        let recording = self
            .ctx
            .recordings
            .as_ref()
            .and_then(|r| Recording::begin(r, self.call.call_sid()));
        self.line = Some(Line {
            started: Instant::now(),
            writer: OutboundWriter::new(start.stream_sid.clone()),
            _attachment: attachment,
            recording,
            brief: None,
            metrics: crate::metrics::CallMetrics::start(&info.direction),
        });
        self.publish();
        let brief = Arc::new(brief(&self.ctx.store, self.agent.memory_summaries, info).await);
        let engine = self.agent.engine.open(Arc::clone(&brief));
        let abilities = engine.abilities();
        self.engine = Some(engine);
        if let Some(line) = self.line.as_mut() {
            line.brief = Some(brief);
        }
        self.input(Input::Ready(abilities));
    }

    fn record(&mut self, record: Record) {
        let journal = &self.ctx.journal;
        match record {
            Record::Event(event) => {
                crate::metrics::event_recorded(&event.event);
                journal.event(self.call.call_sid(), &event.event);
                self.show(|s| s.push_event(event));
            }
            Record::Turn(turn) => {
                if let Some(line) = self.line.as_mut() {
                    line.metrics.turn_recorded(&turn);
                }
                journal.turn(self.call.call_sid(), (*turn).clone());
                self.show(|s| s.push_turn(*turn));
            }
            Record::CallerWords(words) => {
                self.show(|s| s.caller_words = words);
            }
            Record::Ended(reason) => {
                if let Some(line) = self.line.as_mut() {
                    line.metrics.ended(reason);
                }
                journal.call_ended(self.call.call_sid(), chrono::Utc::now(), reason)
            }
        }
    }

    /// Asks Twilio's REST API to carry out the agent's action.
    async fn perform(&mut self, action: &CallAction) -> ActionResult {
        // A test call from the dashboard is not Twilio's: closing the
        // stream ends it, and there is nothing to transfer.
        let brief = self.line.as_ref().and_then(|l| l.brief.as_ref());
        if brief.is_some_and(|b| !b.call.direction.is_phone()) {
            return ActionResult::NotPhone;
        }
        let Some(rest) = self.ctx.twilio.clone() else {
            return ActionResult::NoAccount;
        };
        let sid = self.call.call_sid();
        match action {
            CallAction::EndCall => match rest.hang_up(sid).await {
                Ok(HangUp::Ended) => ActionResult::HungUp,
                Ok(HangUp::AlreadyEnded) => ActionResult::AlreadyEnded,
                Err(e) => ActionResult::Failed(e.to_string()),
            },
            CallAction::Transfer { to } => match rest.redirect(sid, &twiml::dial(to)).await {
                Ok(()) => ActionResult::Redirected,
                Err(e) => ActionResult::Failed(e.to_string()),
            },
        }
    }

    /// Copies what the call derives about itself into the live view, if it
    /// changed (compared under the read lock: most wakeups change nothing).
    fn publish(&self) {
        let now = (
            self.call.state(),
            self.call.turns(),
            self.call.greeting_ms(),
        );
        let shown = {
            let s = self.live.borrow();
            (s.state, s.turns, s.greeting_ms)
        };
        if now != shown {
            self.show(|s| (s.state, s.turns, s.greeting_ms) = now);
        }
    }

    /// Changes what the live view shows of this call, and tells the
    /// dashboard's event streams.
    fn show(&self, change: impl FnOnce(&mut LiveState)) {
        self.live.send_modify(|s| {
            change(s);
            s.version += 1;
        });
        self.ctx.registry.touch();
    }

    async fn close(&mut self, code: u16, reason: &'static str) {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        if let Err(e) = self.socket.send(Message::Close(Some(frame))).await {
            debug!(error = %e, "close frame not sent");
        }
    }

    /// The call is over: its recording is finished, and (caller memory) the
    /// engine's summary of it is kept for the caller's next call.
    fn finish(&mut self) {
        let Some(line) = self.line.take() else {
            return;
        };
        if let Some(recording) = line.recording {
            recording.finish(millis(line.started.elapsed()), self.ctx.recordings.clone());
        }
        let (Some(brief), Some(engine)) = (line.brief, self.engine.as_mut()) else {
            return;
        };
        let caller = brief.call.caller().to_string();
        if caller.is_empty() {
            return;
        }
        let Some(summary) = engine.summary() else {
            return;
        };
        let journal = self.ctx.journal.clone();
        tokio::spawn(
            async move {
                match summary.await {
                    Ok(Some(text)) => journal.summary(&brief.call.call_sid, &caller, text),
                    Ok(None) => {}
                    Err(e) => warn!(error = %e, "no caller-memory summary"),
                }
            }
            .in_current_span(),
        );
    }
}

/// The engine's next event; pending until the call is ready.
async fn next_event(engine: &mut Option<Box<dyn Conversation>>, room: bool) -> Event {
    std::future::poll_fn(|cx| match engine.as_mut() {
        Some(engine) => engine.poll_event(cx, room),
        None => std::task::Poll::Pending,
    })
    .await
}

/// Adds what the store knows to the call: an outbound call's own greeting
/// and instructions, and (caller memory) summaries of earlier calls.
/// Bounded in time: the greeting waits for it.
async fn brief(store: &Store, memory_summaries: Option<u32>, info: CallInfo) -> CallBrief {
    let mut brief = CallBrief::of(info);
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

/// Resolves once the server's drain time is over (never, if the server
/// goes away without closing).
async fn server_closing(mut closing: watch::Receiver<bool>) {
    if closing.wait_for(|closed| *closed).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// An outbound message as a text frame. `OutboundWriter` writes JSON, which
/// is UTF-8; `None` would be a bug there, and ends the call.
fn to_message(text: Bytes) -> Option<Message> {
    Utf8Bytes::try_from(text).ok().map(Message::Text)
}
