//! Driving a provider's streamed answer: the request is sent at the first
//! poll, its events are handed to the provider's [`Decode`], and one moving
//! deadline bounds it all: the first-token timeout from the request to the
//! first event (retry included), then the same duration of silence between
//! events. The whole answer lives in the returned stream's state (no task is
//! spawned), so dropping the stream drops the response and closes the
//! connection at once.

use std::collections::VecDeque;
use std::time::Duration;

use reqwest::Response;
use tokio::time::{Instant, timeout, timeout_at};

use super::{SseEvent, SseReader};
use crate::metrics::ProviderKind;
use crate::providers::{BoxFuture, BoxStream, ProviderError};

/// How long the end of a finished answer's body is awaited: reading it to its
/// end lets the connection go back to the pool (the next turn then skips the
/// TLS handshake), but a server that keeps it open must not delay the end.
const DRAIN_LIMIT: Duration = Duration::from_millis(100);

/// What a provider's reader made of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Part of the answer: the silence deadline starts again.
    Progress,
    /// A keep-alive (`ping`): it does not count as progress, so a server that
    /// only pings still times out.
    KeepAlive,
    /// The answer is complete.
    End,
}

/// A provider's reading of its events into items of the answer.
pub(crate) trait Decode: Send + 'static {
    type Item: Send + 'static;
    /// Reads one event with data, appending what it completes to `out`.
    fn event(
        &mut self,
        event: SseEvent,
        out: &mut VecDeque<Self::Item>,
    ) -> Result<Flow, ProviderError>;
    /// The body ended before [`Flow::End`]: append what is left, or say why
    /// the answer is cut.
    fn eof(&mut self, out: &mut VecDeque<Self::Item>) -> Result<(), ProviderError>;
}

type SendFn = Box<dyn FnOnce(Instant) -> BoxFuture<Result<Response, ProviderError>> + Send>;

/// Sends the request at the first poll and returns the decoded answer.
/// `send` gets the deadline of the first event, to bound the request and its
/// retry. An `Err` item ends the stream.
pub(crate) fn drive<D: Decode>(
    provider: &'static str,
    timeout: Duration,
    send: impl FnOnce(Instant) -> BoxFuture<Result<Response, ProviderError>> + Send + 'static,
    decoder: D,
) -> BoxStream<Result<D::Item, ProviderError>> {
    let driver = Driver {
        provider,
        timeout,
        phase: Phase::Send(Box::new(send)),
        decoder,
        ready: VecDeque::new(),
    };
    // Only language models stream server-sent events here.
    crate::providers::outcome::counted_stream(
        provider,
        ProviderKind::Llm,
        Box::pin(futures_util::stream::unfold(
            driver,
            |mut driver| async move {
                let item = driver.next().await?;
                Some((item, driver))
            },
        )),
    )
}

enum Phase {
    Send(SendFn),
    Read {
        body: SseReader,
        deadline: Instant,
    },
    /// The answer is complete; what is left of the body is read and dropped.
    Drain(SseReader),
    Done,
}

struct Driver<D: Decode> {
    provider: &'static str,
    timeout: Duration,
    phase: Phase,
    decoder: D,
    /// Items decoded and not yet yielded.
    ready: VecDeque<D::Item>,
}

impl<D: Decode> Driver<D> {
    async fn next(&mut self) -> Option<Result<D::Item, ProviderError>> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some(Ok(item));
            }
            match std::mem::replace(&mut self.phase, Phase::Done) {
                Phase::Done => return None,
                Phase::Send(send) => {
                    let deadline = Instant::now() + self.timeout;
                    match send(deadline).await {
                        Ok(response) => {
                            let body = SseReader::from_response(self.provider, response);
                            self.phase = Phase::Read { body, deadline };
                        }
                        Err(e) => return Some(Err(e)),
                    }
                }
                Phase::Read { mut body, deadline } => {
                    match self.read(&mut body, deadline).await {
                        Err(e) => return Some(Err(e)),
                        Ok(None) => {} // the body ended: done once `ready` is empty
                        Ok(Some(Flow::End)) => self.phase = Phase::Drain(body),
                        Ok(Some(Flow::KeepAlive)) => self.phase = Phase::Read { body, deadline },
                        Ok(Some(Flow::Progress)) => {
                            let deadline = Instant::now() + self.timeout;
                            self.phase = Phase::Read { body, deadline };
                        }
                    }
                }
                Phase::Drain(mut body) => {
                    let rest = async { while body.next().await.is_some() {} };
                    let _ = timeout(DRAIN_LIMIT, rest).await;
                    return None;
                }
            }
        }
    }

    /// Reads the next event before `deadline`; `None` at the end of the body.
    async fn read(
        &mut self,
        body: &mut SseReader,
        deadline: Instant,
    ) -> Result<Option<Flow>, ProviderError> {
        let event = match timeout_at(deadline, body.next()).await {
            Err(_) => {
                return Err(ProviderError::Timeout {
                    provider: self.provider,
                    after: self.timeout,
                });
            }
            Ok(None) => return self.decoder.eof(&mut self.ready).map(|()| None),
            Ok(Some(event)) => event?,
        };
        if event.data.is_empty() {
            return Ok(Some(Flow::KeepAlive));
        }
        self.decoder.event(event, &mut self.ready).map(Some)
    }
}

/// Feeds a whole SSE text to `decoder` as a response would: up to
/// [`Flow::End`], or to the end of the text and then [`Decode::eof`].
#[cfg(test)]
pub(crate) fn replay<D: Decode>(
    decoder: &mut D,
    stream: &str,
) -> Result<Vec<D::Item>, ProviderError> {
    let mut events = VecDeque::new();
    super::SseDecoder::default()
        .feed(stream.as_bytes(), &mut events)
        .map_err(|e| ProviderError::protocol("test", e))?;
    let mut out = VecDeque::new();
    for event in events.into_iter().filter(|e| !e.data.is_empty()) {
        if decoder.event(event, &mut out)? == Flow::End {
            return Ok(out.into());
        }
    }
    decoder.eof(&mut out)?;
    Ok(out.into())
}
