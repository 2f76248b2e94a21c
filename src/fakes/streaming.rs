//! The socket writer of the streaming speech-to-text fakes that answer
//! with a delay ([`super::assemblyai`], [`super::openai_realtime`]): a task
//! that sends each message in order and not before its time, so that a
//! held final keeps the messages after it waiting, as on one socket.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What the writer task sends, in order, each not before its time.
pub(super) struct Writer {
    tx: mpsc::UnboundedSender<(Instant, Message)>,
    writer: JoinHandle<()>,
}

impl Writer {
    pub(super) fn new(mut sink: SplitSink<WebSocket, Message>) -> Writer {
        let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Message)>();
        let writer = tokio::spawn(async move {
            while let Some((at, message)) = rx.recv().await {
                tokio::time::sleep_until(at).await;
                let close = matches!(message, Message::Close(_));
                if sink.send(message).await.is_err() || close {
                    break;
                }
            }
        });
        Writer { tx, writer }
    }

    /// Sends `message` as text, not before `delay` from now.
    pub(super) fn later(&self, message: &Value, delay: Duration) {
        let message = Message::Text(message.to_string().into());
        let _ = self.tx.send((Instant::now() + delay, message));
    }

    /// A close frame after what is queued; nothing is sent after it.
    pub(super) fn closing(&self, code: u16, reason: &str) {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = self.tx.send((Instant::now(), Message::Close(Some(frame))));
    }

    /// Waits until what is queued has gone (or the client is gone).
    pub(super) async fn flushed(self) {
        drop(self.tx);
        let _ = self.writer.await;
    }

    /// A close frame after what is queued; waits for it to go.
    pub(super) async fn close(self, code: u16, reason: &str) {
        self.closing(code, reason);
        self.flushed().await;
    }

    /// Gone at once: nothing more is written, no close frame.
    pub(super) fn abort(self) {
        self.writer.abort();
    }
}
