//! Sending a provider request with a deadline and at most one retry.
//!
//! The rules (<https://platform.openai.com/docs/guides/error-codes>,
//! <https://docs.anthropic.com/en/api/errors>), tightened for a live caller who is
//! waiting in silence: retry once on a connection error, 408, 409, 429 and any
//! 5xx; honour `retry-after`/`retry-after-ms` only up to [`MAX_RETRY_WAIT`]
//! (a longer wait is worse than the fallback line, so it is not retried);
//! never retry an exhausted quota or spend limit; respect `x-should-retry`.
//! Only the initial HTTP status is retried: once a stream has begun, an error
//! in it ends the stage.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, Response, StatusCode};
use tokio::time::{Instant, sleep, timeout_at};

use super::ProviderError;
use crate::metrics::{ProviderKind, RequestResult};

/// Longest `retry-after` honoured.
pub const MAX_RETRY_WAIT: Duration = Duration::from_millis(2000);
/// Pause before the retry when the server does not say how long to wait.
const DEFAULT_RETRY_WAIT: Duration = Duration::from_millis(250);
/// Longest provider error message kept (they can be whole HTML pages).
const MAX_MESSAGE_CHARS: usize = 300;

/// The HTTP client every provider shares: one connection pool, so a turn
/// reuses the TLS session of the last one.
pub fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(concat!("pronto/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// Opens connections to provider hosts ahead of their first request, so
/// that a call's first turn does not pay the TCP and TLS handshakes (80-200
/// ms each). Each is a `HEAD` of the provider's base URL with no key: the
/// answer (usually 404) does not matter, the pooled connection it leaves
/// behind does. At most one warm-up per host runs at a time.
#[derive(Clone)]
pub struct Warmup {
    client: reqwest::Client,
    bases: std::sync::Arc<[String]>,
    running: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Warmup {
    /// Warm-ups of `bases` (duplicates are dropped: stages often share a host).
    pub fn new(client: reqwest::Client, mut bases: Vec<String>) -> Warmup {
        bases.sort();
        bases.dedup();
        Warmup {
            client,
            bases: bases.into(),
            running: Default::default(),
        }
    }

    /// Starts the warm-ups in the background; never waits.
    pub fn start(&self) {
        use std::sync::atomic::Ordering;
        if self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let requests = this.bases.iter().map(|base| {
                let request = this.client.head(base).timeout(Duration::from_secs(5));
                async move {
                    if let Err(e) = request.send().await {
                        tracing::debug!(error = %describe(e), "provider warm-up failed");
                    }
                }
            });
            futures_util::future::join_all(requests).await;
            this.running.store(false, Ordering::Release);
        });
    }
}

/// Sends the request built by `build` (called again for the retry) and returns
/// the response once it has a success status. `deadline` bounds everything,
/// retry included; `timeout` is only what a timeout error reports. A retry
/// is counted here (as `kind`); the request's outcome, known only once its
/// body is read, by the stage ([`super::outcome`]).
pub async fn send(
    provider: &'static str,
    kind: ProviderKind,
    build: impl Fn() -> RequestBuilder,
    deadline: Instant,
    timeout: Duration,
) -> Result<Response, ProviderError> {
    let timed_out = ProviderError::Timeout {
        provider,
        after: timeout,
    };
    let mut retried = false;
    loop {
        let (error, wait) = match timeout_at(deadline, build().send()).await {
            Err(_) => return Err(timed_out),
            Ok(Err(e)) => {
                let wait = (e.is_connect() || e.is_request()).then_some(DEFAULT_RETRY_WAIT);
                let error = ProviderError::Connect {
                    provider,
                    detail: describe(e),
                };
                (error, wait)
            }
            Ok(Ok(response)) if response.status().is_success() => return Ok(response),
            Ok(Ok(response)) => {
                let status = response.status();
                let headers = response.headers().clone();
                let body = match timeout_at(deadline, response.text()).await {
                    Ok(Ok(body)) => body,
                    Ok(Err(_)) => String::new(),
                    Err(_) => return Err(timed_out),
                };
                let wait = retry_wait(status, &headers, &body);
                let error = ProviderError::Status {
                    provider,
                    status: status.as_u16(),
                    message: error_message(&body),
                };
                (error, wait)
            }
        };
        let Some(wait) = wait.filter(|_| !retried) else {
            return Err(error);
        };
        if Instant::now() + wait >= deadline {
            return Err(error);
        }
        tracing::info!(provider, error = %error, wait_ms = wait.as_millis() as u64, "retrying once");
        crate::metrics::provider_request(provider, kind, RequestResult::Retry);
        sleep(wait).await;
        retried = true;
    }
}

/// How long to wait before retrying a failed status, or `None` not to retry.
pub fn retry_wait(status: StatusCode, headers: &HeaderMap, body: &str) -> Option<Duration> {
    match headers.get("x-should-retry").and_then(|v| v.to_str().ok()) {
        Some("false") => return None,
        Some("true") => return Some(asked_wait(headers).unwrap_or(DEFAULT_RETRY_WAIT)),
        _ => {}
    }
    let retryable = matches!(status.as_u16(), 408 | 409 | 429) || status.is_server_error();
    if !retryable || is_quota_error(body) {
        return None;
    }
    match asked_wait(headers) {
        Some(wait) if wait > MAX_RETRY_WAIT => None,
        Some(wait) => Some(wait),
        None => Some(DEFAULT_RETRY_WAIT),
    }
}

/// A 429 that no retry can fix: the account is out of credit or over its
/// spend limit (OpenAI `insufficient_quota`, Anthropic billing and spend
/// limits).
pub fn is_quota_error(body: &str) -> bool {
    [
        "insufficient_quota",
        "billing_error",
        "enforced_spend_limit",
        "quota_exceeded",
    ]
    .iter()
    .any(|marker| body.contains(marker))
}

/// The server's `retry-after-ms` (milliseconds) or `retry-after` (seconds,
/// fractions allowed). An HTTP-date is not honoured: it would need the clocks
/// to agree, and such waits are long anyway.
fn asked_wait(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    if let Some(ms) = header("retry-after-ms") {
        return Some(Duration::from_secs_f64(ms.min(3.6e6) / 1000.0));
    }
    header("retry-after").map(|s| Duration::from_secs_f64(s.min(3600.0)))
}

/// The provider's own message from an error body: OpenAI and Anthropic put it
/// in `error.message`, ElevenLabs in `detail.message` or `detail`; otherwise the
/// body itself, shortened.
pub fn error_message(body: &str) -> String {
    let from_json = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let candidates = [
                v.pointer("/error/message"),
                v.pointer("/detail/message"),
                v.pointer("/message"),
                v.get("detail"),
                v.get("error"),
            ];
            candidates
                .into_iter()
                .flatten()
                .find_map(|m| m.as_str().map(str::to_string))
        });
    let message = from_json.unwrap_or_else(|| body.trim().to_string());
    if message.is_empty() {
        return "(no message)".into();
    }
    // Logged and kept in records: numbers masked, control characters escaped.
    crate::redact::clean(&message.chars().take(MAX_MESSAGE_CHARS).collect::<String>())
}

/// A reqwest error without its URL (which may carry a key in a query string).
pub(crate) fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn wait(status: u16, h: &[(&'static str, &'static str)], body: &str) -> Option<Duration> {
        retry_wait(
            StatusCode::from_u16(status).expect("status"),
            &headers(h),
            body,
        )
    }

    #[test]
    fn rate_limits_and_server_errors_are_retried() {
        assert_eq!(
            wait(429, &[("retry-after", "1")], ""),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            wait(429, &[("retry-after-ms", "150"), ("retry-after", "9")], ""),
            Some(Duration::from_millis(150))
        );
        assert_eq!(wait(500, &[], ""), Some(DEFAULT_RETRY_WAIT));
        assert_eq!(wait(529, &[], ""), Some(DEFAULT_RETRY_WAIT));
        assert_eq!(wait(408, &[], ""), Some(DEFAULT_RETRY_WAIT));
        assert_eq!(
            wait(503, &[("retry-after", "0.5")], ""),
            Some(Duration::from_millis(500))
        );
    }

    #[test]
    fn client_errors_quota_and_long_waits_are_not_retried() {
        assert_eq!(wait(400, &[], ""), None);
        assert_eq!(wait(401, &[], ""), None);
        assert_eq!(wait(404, &[], ""), None);
        let quota = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        assert_eq!(wait(429, &[("retry-after", "1")], quota), None);
        assert_eq!(wait(429, &[("retry-after", "30")], ""), None);
        assert_eq!(wait(503, &[("x-should-retry", "false")], ""), None);
        assert_eq!(
            wait(400, &[("x-should-retry", "true")], ""),
            Some(DEFAULT_RETRY_WAIT)
        );
    }

    #[test]
    fn error_messages_come_from_each_providers_body() {
        let openai = r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
        assert_eq!(error_message(openai), "Incorrect API key provided");
        let anthropic = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}"#;
        assert_eq!(error_message(anthropic), "Overloaded");
        let eleven = r#"{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}"#;
        assert_eq!(error_message(eleven), "Invalid API key");
        assert_eq!(error_message("  bad gateway \n"), "bad gateway");
        assert_eq!(error_message(""), "(no message)");
        assert_eq!(error_message(&"x".repeat(1000)).len(), MAX_MESSAGE_CHARS);
    }
}
