//! The task that is Twilio for one stream: it owns the WebSocket, sends the
//! caller's line on a real-time 20 ms clock, plays the server's audio on the
//! same clock, echoes marks, checks every message, and records it all.
//!
//! One `select!` loop over the clock, the socket and the handle's commands;
//! no other task touches the socket.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::codec::FRAME_MS;
use super::event::{CloseInfo, Closer, Event};
use super::level::HeardTracker;
use super::line::{Frame, Line};
use super::player::Player;
use super::protocol::TwilioWriter;
use super::shared::Shared;

mod inbound;

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const FRAME: Duration = Duration::from_millis(FRAME_MS);
/// Media messages closer together than this belong to one burst.
const BURST_GAP: Duration = Duration::from_millis(200);
/// How long to wait for the server's answer to our close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// A write that takes this long means the server stopped reading (its TCP
/// window is full): the call is given up rather than hanging the test.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Protocol errors recorded as events; later ones are dropped, as Twilio
/// only warns once per stream anyway.
const MAX_PROTOCOL_EVENTS: usize = 200;

/// What the [`Call`](super::Call) handle asks the session to do.
pub(crate) enum Command {
    Say(Vec<i16>),
    Dtmf {
        digit: char,
        at: Option<Duration>,
    },
    Send {
        what: Outgoing,
        done: oneshot::Sender<bool>,
    },
    HangUp {
        done: oneshot::Sender<()>,
    },
}

pub(crate) enum Outgoing {
    Start,
    Text(String),
    Binary(Vec<u8>),
}

/// The server's audio arriving in one go (messages < 200 ms apart).
struct Burst {
    first: Instant,
    last: Instant,
    messages: u64,
    bytes: u64,
}

pub(crate) struct Session {
    shared: Arc<Shared>,
    origin: Instant,
    sink: SplitSink<Ws, Message>,
    stream: SplitStream<Ws>,
    writer: TwilioWriter,
    /// `start.callSid` if it must differ from the call's (forgery tests).
    start_call_sid: Option<String>,
    custom_parameters: Vec<(String, String)>,
    line: Line,
    player: Player,
    heard: HeardTracker<Instant>,
    burst: Option<Burst>,
    fast: bool,
    /// The socket can still be written to.
    open: bool,
    /// The server stopped reading: end the session.
    stalled: bool,
    discard_reported: bool,
    protocol_errors: usize,
}

impl Session {
    pub(crate) fn new(
        ws: Ws,
        shared: Arc<Shared>,
        origin: Instant,
        writer: TwilioWriter,
        start_call_sid: Option<String>,
        custom_parameters: Vec<(String, String)>,
        fast: bool,
    ) -> Self {
        let (sink, stream) = ws.split();
        Session {
            shared,
            origin,
            sink,
            stream,
            writer,
            start_call_sid,
            custom_parameters,
            line: Line::new(),
            player: Player::new(),
            heard: HeardTracker::new(),
            burst: None,
            fast,
            open: true,
            stalled: false,
            discard_reported: false,
            protocol_errors: 0,
        }
    }

    /// `connected`, then (unless a test skips it) `start`: what Twilio sends
    /// as soon as the upgrade succeeds.
    pub(crate) async fn greet(&mut self, send_start: bool) {
        let connected = self.writer.connected();
        self.send(Message::text(connected)).await;
        if send_start {
            self.send_start().await;
        }
    }

    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let first_tick = tokio::time::Instant::from_std(self.origin) + FRAME;
        let mut ticker = tokio::time::interval_at(first_tick, FRAME);
        // Catch up after a stall: every tick is 20 ms of audio both ways, so
        // the heard track and the line stay aligned with the clock.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
        loop {
            tokio::select! {
                biased;
                scheduled = ticker.tick() => {
                    self.note_tick(scheduled.into_std());
                    self.on_tick().await
                }
                incoming = self.stream.next() => {
                    if !self.on_incoming(incoming).await {
                        break;
                    }
                }
                command = commands.recv() => match command {
                    Some(Command::HangUp { done }) => {
                        self.hang_up().await;
                        let _ = done.send(());
                        break;
                    }
                    // The handle was dropped without hanging up: hang up.
                    None => {
                        self.hang_up().await;
                        break;
                    }
                    Some(other) => self.on_command(other).await,
                },
                _ = std::future::ready(()), if self.fast && self.open && self.line.has_speech() => {
                    if let Some(frame) = self.line.next_speech() {
                        self.send_frame(frame).await;
                    }
                }
            }
            if self.stalled {
                break;
            }
        }
        self.close_burst();
        self.shared.update(|s| s.ended = true);
    }

    fn elapsed_ms(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.origin).as_millis()).unwrap_or(u64::MAX)
    }

    /// Writes one message; false (and the socket marked unusable) on failure.
    /// The reading side reports how the connection ended.
    async fn send(&mut self, message: Message) -> bool {
        if !self.open {
            return false;
        }
        match tokio::time::timeout(SEND_TIMEOUT, self.sink.send(message)).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "simulator: send failed");
                self.open = false;
                false
            }
            Err(_) => {
                self.open = false;
                self.stalled = true;
                let info = CloseInfo {
                    by: Closer::Simulator,
                    code: None,
                    reason: format!("the server stopped reading for {SEND_TIMEOUT:?}"),
                    unplayed_ms: (self.player.queued_bytes() / 8) as u64,
                };
                self.shared.record(Instant::now(), Event::Closed(info));
                false
            }
        }
    }

    async fn send_start(&mut self) {
        let start = self
            .writer
            .start(self.start_call_sid.as_deref(), &self.custom_parameters);
        if self.send(Message::text(start)).await {
            let event = Event::StartSent {
                stream_sid: self.writer.stream_sid().to_string(),
                call_sid: self
                    .start_call_sid
                    .clone()
                    .unwrap_or_else(|| self.writer.call_sid().to_string()),
            };
            self.shared.record(Instant::now(), event);
        }
    }

    /// Records how late a tick ran: the generator's own health.
    fn note_tick(&self, scheduled: Instant) {
        let late = Instant::now().saturating_duration_since(scheduled);
        if late > super::shared::LATE_TICK {
            self.shared.update(|s| {
                s.late_ticks += 1;
                s.max_tick_lateness = s.max_tick_lateness.max(late);
            });
        }
    }

    /// One 20 ms tick: play a frame of the server's audio, then send a frame
    /// of the caller's line (and any DTMF now due).
    async fn on_tick(&mut self) {
        let now = Instant::now();
        self.play(now).await;
        if self
            .burst
            .as_ref()
            .is_some_and(|b| now - b.last >= BURST_GAP)
        {
            self.close_burst();
        }
        if !self.open {
            return;
        }
        for digit in self.line.due_dtmf(self.elapsed_ms(now)) {
            self.send_dtmf(digit).await;
        }
        // In fast mode queued speech goes out on its own; the clock only
        // carries the silence between utterances.
        if !(self.fast && self.line.has_speech()) {
            let frame = self.line.next_frame();
            self.send_frame(frame).await;
        }
    }

    async fn send_frame(&mut self, frame: Frame) {
        let timestamp = self.line.timestamp(self.elapsed_ms(Instant::now()));
        let text = self.writer.media(timestamp, &frame.mulaw);
        if !self.send(Message::text(text)).await {
            return;
        }
        let now = Instant::now();
        let was_speech = frame.from_speech;
        self.shared.update(|s| {
            if was_speech {
                s.speech_pending = s.speech_pending.saturating_sub(1);
            }
            if let Some(turn) = frame.speech_start {
                s.push(now, Event::SpeechStart { turn });
            }
            if let Some(turn) = frame.speech_end {
                s.push(now, Event::SpeechEnd { turn });
            }
        });
    }

    async fn send_dtmf(&mut self, digit: char) {
        let text = self.writer.dtmf(digit);
        if self.send(Message::text(text)).await {
            self.shared
                .record(Instant::now(), Event::DtmfSent { digit });
        }
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            Command::Say(pcm) => {
                self.line.push_speech(&pcm);
            }
            Command::Dtmf { digit, at: None } => self.send_dtmf(digit).await,
            Command::Dtmf {
                digit,
                at: Some(at),
            } => {
                let at_ms = u64::try_from(at.as_millis()).unwrap_or(u64::MAX);
                self.line.schedule_dtmf(at_ms, digit);
            }
            Command::Send { what, done } => {
                let sent = match what {
                    Outgoing::Start => {
                        self.send_start().await;
                        self.open
                    }
                    Outgoing::Text(text) => self.send(Message::text(text)).await,
                    Outgoing::Binary(bytes) => self.send(Message::binary(bytes)).await,
                };
                let _ = done.send(sent);
            }
            Command::HangUp { .. } => {}
        }
    }

    /// The caller hangs up: `stop`, then a normal close, as Twilio does.
    async fn hang_up(&mut self) {
        if !self.open {
            return;
        }
        let stop = self.writer.stop();
        if self.send(Message::text(stop)).await {
            self.shared.record(Instant::now(), Event::StopSent);
        }
        let unplayed_ms = (self.player.queued_bytes() / 8) as u64;
        let close = Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }));
        self.send(close).await;
        if self.stalled {
            return;
        }
        self.open = false;
        self.close_burst();
        let info = CloseInfo {
            by: Closer::Simulator,
            code: Some(1000),
            reason: String::new(),
            unplayed_ms,
        };
        self.shared.record(Instant::now(), Event::Closed(info));
        // Wait briefly for the server's close reply; what it sends after
        // `stop` is ignored, as Twilio ignores it.
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while let Some(Ok(_)) = self.stream.next().await {}
        })
        .await;
    }
}
