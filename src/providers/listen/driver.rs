//! One call's connection to a streaming speech-to-text provider: the task
//! behind a [`Listener`](super::Listener).
//!
//! It connects (TLS through rustls with the system's roots), sends the
//! dialect's opening, then forwards the call's audio and controls and reads
//! the provider's messages until the call drops its listener. A connection
//! that drops, or that the provider closes as retryable, is made again once:
//! the opening is sent again, then the audio sent since the last final
//! transcript, so the turn in progress is transcribed whole. A refusal (the
//! key, the account) or a second drop ends the stream with
//! [`Heard::Failed`]. When the listener is dropped the dialect's closing
//! message is sent and the provider's last words are read for at most
//! [`Settings::close_wait`].

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{self, Message};
use tracing::{debug, info, warn};

use super::{Closed, Control, Dialect, Heard};
use crate::metrics::{ProviderKind, RequestResult};
use crate::providers::socket::{self, Socket, dropped};

/// How one call's stream behaves.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The upgrade, TLS included.
    pub connect_timeout: Duration,
    /// Connections made again after a drop, per call.
    pub reconnects: u32,
    /// Audio kept for a replay after a drop (bytes of μ-law: 8 per ms).
    pub replay_bytes: usize,
    /// After the closing message, how long the provider's last words are
    /// waited for.
    pub close_wait: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            connect_timeout: Duration::from_secs(5),
            reconnects: 1,
            // 30 s of caller audio.
            replay_bytes: 30 * 8000,
            close_wait: Duration::from_secs(2),
        }
    }
}

/// The task: runs until the listener is dropped or the stream fails for good.
pub(super) async fn run(
    mut dialect: Box<dyn Dialect>,
    mut control: mpsc::Receiver<Control>,
    heard: mpsc::UnboundedSender<Heard>,
    settings: Settings,
) {
    let provider = dialect.provider();
    // A ring: once it holds 30 s (a caller silent that long), each frame
    // drops the oldest 20 ms, not a memmove of the whole buffer.
    let mut since_final: VecDeque<u8> = VecDeque::new();
    let mut attempts_left = settings.reconnects;
    loop {
        let failure = match connect(dialect.as_mut(), settings).await {
            Ok(mut socket) => {
                if attempts_left < settings.reconnects {
                    info!(
                        provider,
                        replayed_ms = since_final.len() / 8,
                        "speech-to-text stream reconnected"
                    );
                }
                let mut out = Vec::new();
                dialect.opening(&mut out);
                if !since_final.is_empty() {
                    dialect.audio(since_final.make_contiguous(), &mut out);
                }
                match session(
                    dialect.as_mut(),
                    &mut socket,
                    &mut control,
                    &heard,
                    &mut since_final,
                    settings,
                    out,
                )
                .await
                {
                    Ok(()) => return counted(provider, RequestResult::Ok),
                    Err(closed) => closed,
                }
            }
            Err(closed) => closed,
        };
        match failure {
            Closed::Clean => return counted(provider, RequestResult::Ok),
            Closed::Retry(error) if attempts_left > 0 => {
                attempts_left -= 1;
                warn!(provider, %error, "speech-to-text stream dropped; reconnecting once");
                counted(provider, RequestResult::Retry);
            }
            Closed::Retry(error) | Closed::Fatal(error) => {
                warn!(provider, %error, "speech-to-text stream failed");
                let _ = heard.send(Heard::Failed(error));
                return counted(provider, RequestResult::Error);
            }
        }
    }
}

/// Counts how a call's stream went: once `ok` or `error` at its end, and
/// each reconnect as a `retry`.
fn counted(provider: &'static str, result: RequestResult) {
    crate::metrics::provider_request(provider, ProviderKind::SttStream, result);
}

async fn connect(dialect: &mut dyn Dialect, settings: Settings) -> Result<Socket, Closed> {
    let provider = dialect.provider();
    let request = dialect.request().map_err(Closed::Fatal)?;
    let (socket, response) = socket::connect(provider, request, settings.connect_timeout).await?;
    dialect.connected(&response).map_err(Closed::Fatal)?;
    debug!(provider, "speech-to-text stream connected");
    Ok(socket)
}

/// One connection's life. `Ok` when the call is over (the listener was
/// dropped); `Err` with how the connection ended otherwise.
async fn session(
    dialect: &mut dyn Dialect,
    socket: &mut Socket,
    control: &mut mpsc::Receiver<Control>,
    heard: &mpsc::UnboundedSender<Heard>,
    since_final: &mut VecDeque<u8>,
    settings: Settings,
    mut out: Vec<Message>,
) -> Result<(), Closed> {
    let provider = dialect.provider();
    let mut events = Vec::new();
    let keep_alive = dialect.keep_alive_after();
    let quiet_until = |d: Duration| tokio::time::Instant::now() + d;
    let mut idle_at = keep_alive.map(quiet_until);
    loop {
        for message in out.drain(..) {
            if let Err(e) = socket.feed(message).await {
                return Err(dropped(provider, e));
            }
        }
        if let Err(e) = socket.flush().await {
            return Err(dropped(provider, e));
        }
        tokio::select! {
            request = control.recv() => match request {
                Some(Control::Audio(mulaw)) => {
                    idle_at = keep_alive.map(quiet_until);
                    keep(since_final, &mulaw, settings.replay_bytes);
                    dialect.audio(&mulaw, &mut out);
                }
                Some(Control::ForceEnd) => {
                    dialect.force_end(&mut out, &mut events);
                    report(&mut events, heard, since_final);
                }
                None => {
                    dialect.finish(&mut out);
                    close(dialect, socket, heard, out, settings.close_wait).await;
                    return Ok(());
                }
            },
            // Not polled when disabled; the instant is only a placeholder.
            () = tokio::time::sleep_until(idle_at.unwrap_or_else(tokio::time::Instant::now)),
                if idle_at.is_some() => {
                dialect.idle(&mut out);
                idle_at = keep_alive.map(quiet_until);
            }
            message = socket.next() => {
                let message = match message {
                    Some(Ok(message)) => message,
                    Some(Err(e)) => return Err(dropped(provider, e)),
                    None => return Err(dialect.closed(None, "")),
                };
                match message {
                    Message::Text(text) => {
                        dialect.text(text.as_str(), &mut out, &mut events)?;
                        report(&mut events, heard, since_final);
                    }
                    Message::Close(frame) => {
                        let (code, reason) = frame
                            .map(|f| (Some(u16::from(f.code)), f.reason.to_string()))
                            .unwrap_or((None, String::new()));
                        return Err(dialect.closed(code, &reason));
                    }
                    // Pings are answered by tungstenite; providers send no
                    // binary frames to a transcription client.
                    Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                }
            }
        }
    }
}

/// Hands what the dialect heard to the call; a final transcript empties the
/// replay buffer.
fn report(
    events: &mut Vec<Heard>,
    heard: &mpsc::UnboundedSender<Heard>,
    since_final: &mut VecDeque<u8>,
) {
    for event in events.drain(..) {
        if matches!(event, Heard::TurnEnded { .. }) {
            since_final.clear();
        }
        // The listener is gone: the call is over, and the control channel
        // says so next.
        let _ = heard.send(event);
    }
}

/// Sends the goodbye and reads the provider's last words, for a while.
async fn close(
    dialect: &mut dyn Dialect,
    socket: &mut Socket,
    heard: &mpsc::UnboundedSender<Heard>,
    out: Vec<Message>,
    wait: Duration,
) {
    let provider = dialect.provider();
    let finish = async {
        for message in out {
            socket.feed(message).await?;
        }
        socket.flush().await?;
        let mut events = Vec::new();
        let mut replies = Vec::new();
        while let Some(message) = socket.next().await {
            match message? {
                Message::Text(text) => {
                    // Past the end of the call, errors only end the wait.
                    if dialect
                        .text(text.as_str(), &mut replies, &mut events)
                        .is_err()
                    {
                        break;
                    }
                    for event in events.drain(..) {
                        let _ = heard.send(event);
                    }
                }
                // tungstenite has queued the answering close frame; a
                // close() now would be refused as sending after closing.
                Message::Close(_) => return socket.flush().await,
                _ => {}
            }
        }
        socket.close(None).await
    };
    match tokio::time::timeout(wait, finish).await {
        Ok(Ok(())) | Ok(Err(tungstenite::Error::ConnectionClosed)) => {
            debug!(provider, "speech-to-text stream closed")
        }
        Ok(Err(e)) => debug!(provider, error = %e, "speech-to-text stream closed uncleanly"),
        Err(_) => debug!(
            provider,
            "speech-to-text stream did not close in time; dropped"
        ),
    }
}

/// Keeps the audio since the last final transcript, the newest `cap` bytes.
fn keep(since_final: &mut VecDeque<u8>, mulaw: &Bytes, cap: usize) {
    since_final.extend(mulaw.iter());
    let excess = since_final.len().saturating_sub(cap);
    since_final.drain(..excess);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replay_keeps_the_newest_audio() {
        let mut kept = VecDeque::new();
        keep(&mut kept, &Bytes::from_static(&[1, 2, 3]), 4);
        keep(&mut kept, &Bytes::from_static(&[4, 5, 6]), 4);
        assert_eq!(kept, [3, 4, 5, 6]);
    }
}
