//! `CallSession`: the actor that owns one call (DESIGN.md §1).
//!
//! One task per call runs a single `select!` loop over the WebSocket, the
//! running turn's responder events and the pacing timer. All of the call's
//! state lives here, touched by nothing else: the registry only sees what the
//! session publishes through a `watch` channel. Bad input from Twilio is
//! logged, counted and skipped; it can end this call (oversized message, wrong
//! call) but never another.
//!
//! Conversation loop: listening → (end of caller turn) responding → (first
//! audio) speaking → (last mark back) listening. Caller speech of
//! `barge_in_min_ms` while responding or speaking is a barge-in: `clear`, abort
//! the responder, listen, and keep the interrupting speech as the next turn.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use tokio::sync::{mpsc, watch};
use tokio::time::sleep_until;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::agent::conversation::Conversation;
use crate::audio::framer::Framer;
use crate::audio::vad::{EndpointEvent, Endpointer, EndpointerConfig};
use crate::call::journal::Journal;
use crate::call::keypad::Keypad;
use crate::call::playback::Playback;
use crate::call::recording::Recorder;
use crate::call::registry::{Attachment, Registry};
use crate::call::responder::{CallAction, Responder, ResponseEvent};
use crate::call::turn::ActiveTurn;
use crate::model::{CallBrief, CallEvent, EndReason, LiveEvent, LiveState, millis};
use crate::providers::LanguageModel;
use crate::recordings::{Recordings, Writing};
use crate::store::Store;
use crate::twilio::media::{self, Inbound, OutboundWriter};
use crate::twilio::rest::TwilioRest;

mod conversing;
mod hearing;
mod limits;
mod speaking;
mod start;
mod timers;

/// Responder audio buffered in the session beyond this is left in the
/// responder's channel, which slows the responder down instead of growing memory.
const MAX_BUFFERED_AUDIO: Duration = Duration::from_secs(2);

/// Bad messages logged per call before logging only every thousandth.
const BAD_MESSAGES_LOGGED: u64 = 5;

/// Settings of a session, from `config/pronto.toml`.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub vad: EndpointerConfig,
    pub barge_in_min_ms: u32,
    pub max_playback_lead: Duration,
    pub start_timeout: Duration,
    /// Enforced by the WebSocket itself (set on the upgrade); a bigger message
    /// surfaces as a read error, answered with close code 1009.
    pub max_message_bytes: usize,
    pub greeting_interruptible: bool,
    pub dtmf_timeout: Duration,
    pub max_history_turns: usize,
    /// Calls end politely after this long.
    pub max_duration: Option<Duration>,
    /// Caller silence before "are you still there?".
    pub idle_prompt: Option<Duration>,
    /// Further silence before the call is ended.
    pub idle_hangup: Option<Duration>,
    /// Caller memory on: how many summaries of earlier calls the agent gets.
    pub memory_summaries: Option<u32>,
}

/// What every session shares.
#[derive(Clone)]
pub struct SessionContext {
    pub config: Arc<SessionConfig>,
    pub registry: Registry,
    pub responder: Arc<dyn Responder>,
    /// For hanging up and transferring; `None` without an account SID.
    pub twilio: Option<Arc<TwilioRest>>,
    pub journal: Journal,
    pub store: Option<Store>,
    pub summarizer: Option<Arc<dyn LanguageModel>>,
    /// Where calls are recorded, when recordings are on.
    pub recordings: Option<Recordings>,
    /// Turns true when the server's drain time is over.
    pub closing: watch::Receiver<bool>,
}

/// Why a call's stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Stop,
    SocketClosed,
    StartTimeout,
    WrongCall,
    MessageTooBig,
    SocketError(String),
    Internal(String),
    /// The agent ended the call by closing the stream.
    AgentHungUp,
}

/// Runs the session for an upgraded socket whose stream token named `call_sid`.
pub async fn run(socket: WebSocket, call_sid: String, ctx: SessionContext) {
    let span = info_span!("call", call_sid = %call_sid);
    async move {
        let opened = Instant::now();
        // Not split into a sink and a stream: the split's lock is taken on
        // every read and write, and the session is the socket's only user.
        let (mut session, turn_rx) = match Session::new(socket, call_sid, ctx) {
            Ok(pair) => pair,
            Err(e) => {
                warn!(error = %e, "cannot start a session");
                return;
            }
        };
        let end = session.run(turn_rx).await;
        session.end_of_call(&end);
        let live = session.live.borrow().clone();
        info!(end = ?end, turns = live.turns, bad_messages = live.bad_messages, duration_ms = millis(opened.elapsed()), "stream ended");
    }
    .instrument(span)
    .await
}

struct Session {
    ctx: SessionContext,
    expected_call_sid: String,
    socket: WebSocket,
    /// Present once `start` has arrived.
    writer: Option<OutboundWriter>,
    live: watch::Sender<LiveState>,
    _attachment: Option<Attachment>,
    opened: Instant,
    framer: Framer,
    endpointer: Endpointer,
    endpoint_events: Vec<EndpointEvent>,
    payload: Vec<u8>,
    playback: Playback,
    turn_tx: mpsc::Sender<(u32, ResponseEvent)>,
    turns_started: u32,
    current: Option<ActiveTurn>,
    /// Present once `start` has arrived.
    call: Option<Arc<CallBrief>>,
    conversation: Conversation,
    keypad: Keypad,
    /// The caller's audio of a turn whose answer they spoke over before
    /// hearing any of it: it is answered together with what they say next.
    carry_over: Vec<i16>,
    /// An action whose turn has been heard, to perform now.
    due_action: Option<CallAction>,
    /// When `start` arrived.
    stream_started: Option<Instant>,
    /// The last caller speech or agent turn: idle time counts from here.
    last_activity: Instant,
    /// "Are you still there?" has been asked since the caller last spoke.
    idle_prompted: bool,
    /// Pronto is ending the call (closing line, then hang-up).
    closing_started: bool,
    /// Why Pronto ended the call, when it did (else the caller hung up).
    ending: Option<EndReason>,
    /// The two-channel recording, when recordings are on.
    recorder: Option<Recorder>,
    /// Keeps the recording's file out of the size cap while it is written.
    recording: Option<Writing>,
}

impl Session {
    fn new(
        socket: WebSocket,
        call_sid: String,
        ctx: SessionContext,
    ) -> Result<(Self, mpsc::Receiver<(u32, ResponseEvent)>), String> {
        let endpointer = Endpointer::new(&ctx.config.vad).map_err(|e| e.to_string())?;
        let (turn_tx, turn_rx) = mpsc::channel(64);
        let playback = Playback::new(ctx.config.max_playback_lead);
        let session = Session {
            expected_call_sid: call_sid,
            socket,
            writer: None,
            live: watch::Sender::new(LiveState::default()),
            _attachment: None,
            opened: Instant::now(),
            framer: Framer::default(),
            endpointer,
            endpoint_events: Vec::with_capacity(4),
            payload: Vec::with_capacity(512),
            playback,
            turn_tx,
            turns_started: 0,
            current: None,
            call: None,
            conversation: Conversation::new(ctx.config.max_history_turns),
            keypad: Keypad::default(),
            carry_over: Vec::new(),
            due_action: None,
            stream_started: None,
            last_activity: Instant::now(),
            idle_prompted: false,
            closing_started: false,
            ending: None,
            recorder: None,
            recording: None,
            ctx,
        };
        Ok((session, turn_rx))
    }

    async fn run(&mut self, mut turn_rx: mpsc::Receiver<(u32, ResponseEvent)>) -> End {
        let start_deadline = self.opened + self.ctx.config.start_timeout;
        // One timer for every deadline (start, pacing, keypad, limits),
        // reset only when the earliest one changes: building and dropping a
        // timer per branch on every 20 ms message was a visible CPU cost.
        let timer = sleep_until(tokio::time::Instant::from_std(start_deadline));
        tokio::pin!(timer);
        let mut armed = start_deadline;
        let closing = timers::server_closing(self.ctx.closing.clone());
        tokio::pin!(closing);
        loop {
            let now = Instant::now();
            let next = [
                self.writer.is_none().then_some(start_deadline),
                self.next_wake(now),
                self.keypad.deadline(),
                self.limits_due(),
            ]
            .into_iter()
            .flatten()
            .min();
            if let Some(next) = next
                && next != armed
            {
                timer.as_mut().reset(tokio::time::Instant::from_std(next));
                armed = next;
            }
            let accepting = self.current.is_some() && self.playback.queued() < MAX_BUFFERED_AUDIO;
            tokio::select! {
                message = self.socket.recv() => {
                    let ended = match message {
                        None => Some(End::SocketClosed),
                        Some(Err(e)) => Some(self.on_socket_error(e).await),
                        Some(Ok(m)) => self.on_message(m).await,
                    };
                    if let Some(end) = ended {
                        return end;
                    }
                }
                Some((turn, event)) = turn_rx.recv(), if accepting => self.on_response(turn, event),
                () = &mut timer, if next.is_some() => {
                    if let Some(end) = self.on_timer(start_deadline).await {
                        return end;
                    }
                }
                () = &mut closing, if self.writer.is_some() && !self.closing_started => {
                    self.on_server_closing().await;
                }
            }
            if let Err(e) = self.pump().await {
                return End::SocketError(e);
            }
            if let Some(action) = self.due_action.take()
                && let Some(end) = self.perform(action).await
            {
                return end;
            }
        }
    }

    fn publish(&self, update: impl FnOnce(&mut LiveState)) {
        self.live.send_modify(update);
    }

    /// Writes `event` to the call's record and its live view.
    fn log_event(&self, at_ms: u64, event: CallEvent) {
        self.ctx.journal.event(&self.expected_call_sid, &event);
        self.publish(|s| s.push_event(LiveEvent { at_ms, event }));
    }

    fn count_bad(&self, what: &str, detail: &dyn std::fmt::Display) {
        let mut n = 0;
        self.publish(|s| {
            s.bad_messages += 1;
            n = s.bad_messages;
        });
        if n <= BAD_MESSAGES_LOGGED || n % 1000 == 0 {
            warn!(bad_messages = n, "skipped {what}: {detail}");
        }
    }

    async fn on_socket_error(&mut self, e: axum::Error) -> End {
        use tokio_tungstenite::tungstenite::Error as WsError;
        let too_big = e
            .into_inner()
            .downcast_ref::<WsError>()
            .map(|inner| matches!(inner, WsError::Capacity(_)));
        if too_big == Some(true) {
            warn!(
                max_bytes = self.ctx.config.max_message_bytes,
                "message too big; closing"
            );
            self.close(1009, "message too big").await;
            return End::MessageTooBig;
        }
        End::SocketError("websocket read failed".into())
    }

    /// Handles one WebSocket message; `Some` ends the session.
    async fn on_message(&mut self, message: Message) -> Option<End> {
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(b) => {
                self.count_bad("binary frame", &format_args!("{} bytes", b.len()));
                return None;
            }
            Message::Close(_) => return Some(End::SocketClosed),
            Message::Ping(_) | Message::Pong(_) => return None,
        };
        let parsed = match media::parse(text.as_str()) {
            Ok(p) => p,
            Err(e) => {
                self.count_bad("message", &e);
                return None;
            }
        };
        match parsed.message {
            Inbound::Media(m) => {
                if self.writer.is_none() {
                    debug!("media before start; ignored");
                    return None;
                }
                let mut payload = std::mem::take(&mut self.payload);
                match m.decode_into(&mut payload) {
                    Ok(()) => {
                        let at = m.timestamp_ms.unwrap_or_else(|| self.call_clock_ms());
                        if let Some(recorder) = self.recorder.as_mut() {
                            recorder.caller_audio(at, &payload);
                        }
                        self.on_audio(&payload).await
                    }
                    Err(e) => self.count_bad("media", &e),
                }
                self.payload = payload;
            }
            Inbound::Start(start) => return self.on_start(*start).await,
            Inbound::Mark { name } => self.on_mark(&name),
            Inbound::Dtmf { digit } => {
                let at_ms = millis(self.opened.elapsed());
                info!(digit = %digit, "dtmf");
                let digit_text: String = digit.chars().take(4).collect();
                self.log_event(at_ms, CallEvent::Dtmf { digit: digit_text });
                let timeout = self.ctx.config.dtmf_timeout;
                if self.keypad.push(&digit, Instant::now(), timeout) {
                    self.on_keypad_due().await;
                }
            }
            Inbound::Connected => debug!("connected"),
            Inbound::Stop => {
                info!("stop received");
                self.close(1000, "").await;
                return Some(End::Stop);
            }
        }
        None
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
}
