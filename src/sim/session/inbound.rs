//! The server's half of the stream: every frame it sends is checked like
//! Twilio checks it, valid audio and marks go into the playback queue, and
//! the queue is played (and marks echoed) on the session's clock.

use std::time::Instant;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::{self, Message};

use super::{BURST_GAP, Burst, CLOSE_WAIT, MAX_PROTOCOL_EVENTS, Session};
use crate::sim::codec;
use crate::sim::event::{CloseInfo, Closer, Event};
use crate::sim::level::{self, Heard};
use crate::sim::protocol::{ProtocolError, ServerMessage, parse_server_message};

impl Session {
    /// Plays the next 20 ms of the server's audio into the heard track,
    /// echoing the marks playback has reached.
    pub(super) async fn play(&mut self, now: Instant) {
        let played = self.player.tick();
        for name in played.marks {
            self.echo_mark(name, false).await;
        }
        let pcm = codec::decode(&played.frame);
        let change = self.heard.frame(level::is_audible(&pcm), now);
        let busy = !self.player.is_idle();
        self.shared.update(|s| {
            s.heard.extend_from_slice(&pcm);
            if busy {
                s.last_busy = now;
            }
            match change {
                Some(Heard::Start) => s.push(now, Event::AudioHeardStart),
                Some(Heard::End(at)) => s.push(at, Event::AudioHeardEnd),
                None => {}
            }
        });
    }

    /// Sends a mark back to the server, as Twilio does when playback (or a
    /// `clear`) reaches it.
    pub(super) async fn echo_mark(&mut self, name: String, cleared: bool) {
        let text = self.writer.mark(&name);
        if self.send(Message::text(text)).await {
            self.shared
                .record(Instant::now(), Event::MarkEchoed { name, cleared });
        }
    }

    /// Handles what the socket yielded; false once the connection is over.
    pub(super) async fn on_incoming(
        &mut self,
        incoming: Option<Result<Message, tungstenite::Error>>,
    ) -> bool {
        match incoming {
            Some(Ok(Message::Text(text))) => {
                self.on_text(text.as_str()).await;
                true
            }
            Some(Ok(Message::Binary(bytes))) => {
                self.protocol_error(ProtocolError::BinaryFrame { len: bytes.len() });
                true
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => true,
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) = match frame {
                    Some(f) => (Some(u16::from(f.code)), f.reason.to_string()),
                    None => (None, String::new()),
                };
                self.server_closed(code, reason);
                // Let tungstenite send its close reply and see the socket end.
                let _ = tokio::time::timeout(CLOSE_WAIT, async {
                    while let Some(Ok(_)) = self.stream.next().await {}
                })
                .await;
                false
            }
            Some(Err(e)) => {
                self.server_closed(None, format!("connection error: {e}"));
                false
            }
            None => {
                self.server_closed(None, "connection ended without a close frame".into());
                false
            }
        }
    }

    /// The server ended the connection: what it said, and what it cut off.
    pub(super) fn server_closed(&mut self, code: Option<u16>, reason: String) {
        self.open = false;
        let info = CloseInfo {
            by: Closer::Server,
            code,
            reason,
            unplayed_ms: (self.player.queued_bytes() / 8) as u64,
        };
        self.close_burst();
        self.shared.record(Instant::now(), Event::Closed(info));
    }

    /// Checks a text frame and acts on it as Twilio's playback would.
    pub(super) async fn on_text(&mut self, text: &str) {
        let now = Instant::now();
        match parse_server_message(text, self.writer.stream_sid()) {
            Ok(ServerMessage::Media { mulaw }) => {
                self.add_to_burst(now, mulaw.len());
                let discarded = self.player.push_media(&mulaw);
                let report = discarded > 0 && !self.discard_reported;
                self.discard_reported |= report;
                self.shared.update(|s| {
                    s.last_busy = now;
                    if report {
                        let bytes = discarded as u64;
                        s.push(now, Event::MediaDiscarded { bytes });
                    }
                });
            }
            Ok(ServerMessage::Mark { name }) => {
                self.shared.update(|s| {
                    s.last_busy = now;
                    s.push(now, Event::MarkReceived { name: name.clone() });
                });
                if let Some(name) = self.player.push_mark(name) {
                    self.echo_mark(name, false).await;
                }
            }
            Ok(ServerMessage::Clear) => {
                let cleared = self.player.clear();
                let dropped_ms = (cleared.dropped_bytes / 8) as u64;
                self.shared.update(|s| {
                    s.last_busy = now;
                    s.push(now, Event::ClearReceived { dropped_ms });
                });
                for name in cleared.marks {
                    self.echo_mark(name, true).await;
                }
            }
            Err(e) => self.protocol_error(e),
        }
    }

    /// Records what Twilio would have dropped with a warning.
    pub(super) fn protocol_error(&mut self, error: ProtocolError) {
        self.protocol_errors += 1;
        if self.protocol_errors <= MAX_PROTOCOL_EVENTS {
            self.shared
                .record(Instant::now(), Event::ProtocolError(error));
        }
    }

    /// Counts a media message into the current burst, or starts a new one.
    pub(super) fn add_to_burst(&mut self, now: Instant, bytes: usize) {
        match &mut self.burst {
            Some(b) if now - b.last < BURST_GAP => {
                b.last = now;
                b.messages += 1;
                b.bytes += bytes as u64;
            }
            _ => {
                self.close_burst();
                self.burst = Some(Burst {
                    first: now,
                    last: now,
                    messages: 1,
                    bytes: bytes as u64,
                });
            }
        }
    }

    /// Records the current burst as one `MediaReceived` event.
    pub(super) fn close_burst(&mut self) {
        if let Some(b) = self.burst.take() {
            self.shared.update(|s| {
                let until_ms = crate::sim::shared::signed_ms(s.origin, b.last);
                let event = Event::MediaReceived {
                    messages: b.messages,
                    bytes: b.bytes,
                    until_ms,
                };
                s.push(b.first, event);
            });
        }
    }
}
