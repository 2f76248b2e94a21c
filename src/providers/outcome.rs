//! Each provider request's outcome, counted in `/metrics` once it is known:
//! an answer read to its end is `ok`, one that failed (after its retry, at
//! any point: the request, the status, the stream) is `error`. A stream
//! dropped before its end (a barge-in, the call over) counts neither: the
//! provider did nothing wrong, and nothing is known of the rest.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;

use super::{BoxStream, ProviderError};
use crate::metrics::{ProviderKind, RequestResult, provider_request};

/// Counts the outcome of a request that answers at once.
pub(crate) fn counted<T>(
    provider: &'static str,
    kind: ProviderKind,
    result: Result<T, ProviderError>,
) -> Result<T, ProviderError> {
    let outcome = match result {
        Ok(_) => RequestResult::Ok,
        Err(_) => RequestResult::Error,
    };
    provider_request(provider, kind, outcome);
    result
}

/// Counts the outcome of a streamed answer: `ok` at its end, `error` at its
/// first error (an error item ends these streams).
pub(crate) fn counted_stream<T: Send + 'static>(
    provider: &'static str,
    kind: ProviderKind,
    inner: BoxStream<Result<T, ProviderError>>,
) -> BoxStream<Result<T, ProviderError>> {
    Box::pin(Counted {
        inner,
        provider,
        kind,
        counted: false,
    })
}

struct Counted<T> {
    inner: BoxStream<Result<T, ProviderError>>,
    provider: &'static str,
    kind: ProviderKind,
    counted: bool,
}

impl<T> Stream for Counted<T> {
    type Item = Result<T, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = self.inner.as_mut().poll_next(cx);
        let outcome = match &next {
            Poll::Ready(None) => Some(RequestResult::Ok),
            Poll::Ready(Some(Err(_))) => Some(RequestResult::Error),
            Poll::Ready(Some(Ok(_))) | Poll::Pending => None,
        };
        if let Some(outcome) = outcome
            && !self.counted
        {
            self.counted = true;
            provider_request(self.provider, self.kind, outcome);
        }
        next
    }
}
