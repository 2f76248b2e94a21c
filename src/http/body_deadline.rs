//! A deadline for request bodies: a whole body must arrive within
//! `server.body_timeout_secs` of its request's headers, or the request is
//! answered 408 Request Timeout and its connection closed (RFC 9110, section
//! 15.5.9: <https://www.rfc-editor.org/rfc/rfc9110#section-15.5.9>).
//!
//! hyper's header timeout ends where the body begins: without this, a client
//! that declares a body and sends part of it holds its connection, and the
//! handler reading it, for good. A layer, so that every handler that reads a
//! body (the webhooks' form, the API's JSON) has the same deadline without
//! knowing of it, and a handler's own answer to the failed read (a 413, a
//! 400) is replaced by the 408 that says what happened.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tracing::warn;

use super::error::json_error;
use crate::redact::Outside;

/// The middleware (`axum::middleware::from_fn_with_state`, with the timeout
/// as its state).
pub async fn limit(State(timeout): State<Duration>, req: Request, next: Next) -> Response {
    // No body (a GET, the WebSocket upgrade): nothing to wait for.
    if http_body::Body::is_end_stream(req.body()) {
        return next.run(req).await;
    }
    let uri = req.uri().clone();
    let expired = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + timeout;
    let req = req.map(|inner| {
        Body::new(DeadlineBody {
            inner,
            deadline,
            sleep: None,
            expired: Arc::clone(&expired),
        })
    });
    let response = next.run(req).await;
    if !expired.load(Ordering::Relaxed) {
        return response;
    }
    warn!(
        path = %Outside(uri.path()),
        timeout_secs = timeout.as_secs(),
        "request body not received in time: answered 408"
    );
    let mut response = json_error(
        StatusCode::REQUEST_TIMEOUT,
        "the request body did not arrive in time",
    );
    // The rest of the body may still come: the connection cannot carry
    // another request (RFC 9112, section 9.6: https://www.rfc-editor.org/rfc/rfc9112#section-9.6).
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// What reading a body past its deadline gives.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct Expired;

/// A body that fails with [`Expired`] once `deadline` passes, and says so in
/// `expired`.
struct DeadlineBody {
    inner: Body,
    deadline: Instant,
    /// Started at the first wait: a body already received costs no timer.
    sleep: Option<Pin<Box<Sleep>>>,
    expired: Arc<AtomicBool>,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        // What has arrived is taken even at the deadline.
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.expired.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err(axum::Error::new(Expired))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
