//! One small HTTP request with a deadline, read into what a check judges: the
//! status, the headers and the start of the body. A check makes one request
//! per thing it tests and never retries: a retry would hide the very problem
//! it is looking for.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder};
use tokio::time::{Instant, timeout_at};

/// Enough of a body to recognise an error JSON or an HTML page.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// What came back.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body's first [`MAX_BODY_BYTES`], lossily decoded.
    pub body: String,
}

/// Why nothing came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No answer within the check's timeout.
    Timeout(Duration),
    /// Refused, reset, DNS, TLS: the innermost cause, which is the telling one
    /// ("Connection refused (os error 111)").
    Unreachable(String),
}

impl Failure {
    /// `"host is unreachable (cause)"` or `"host did not answer within 5 s"`.
    pub fn describe(&self, host: &str) -> String {
        match self {
            Failure::Timeout(after) => {
                format!("{host} did not answer within {} s", after.as_secs())
            }
            Failure::Unreachable(cause) => format!("{host} is unreachable ({cause})"),
        }
    }
}

/// The client for requests that must see the first answer as it is:
/// redirects are reported, not followed.
pub fn direct_client(timeout: Duration) -> Result<Client, String> {
    Client::builder()
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("pronto-check/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {}", innermost(&e)))
}

/// Sends `request` and reads the answer, all within `timeout`.
pub async fn fetch(request: RequestBuilder, timeout: Duration) -> Result<Answer, Failure> {
    let deadline = Instant::now() + timeout;
    let response = match timeout_at(deadline, request.send()).await {
        Err(_) => return Err(Failure::Timeout(timeout)),
        Ok(Err(e)) if e.is_timeout() => return Err(Failure::Timeout(timeout)),
        Ok(Err(e)) => return Err(Failure::Unreachable(innermost(&e))),
        Ok(Ok(response)) => response,
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    // A 101 has switched protocols: there is no HTTP body to read.
    if status != 101 {
        let mut stream = response.bytes_stream();
        while body.len() < MAX_BODY_BYTES {
            match timeout_at(deadline, stream.next()).await {
                Ok(Some(Ok(chunk))) => body.extend_from_slice(&chunk),
                // The status is the answer; a body cut short is not worse.
                Ok(Some(Err(_)) | None) | Err(_) => break,
            }
        }
        body.truncate(MAX_BODY_BYTES);
    }
    Ok(Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// The last error in the chain of sources: reqwest's own text names the URL
/// (which may carry a secret) and says little; the root cause says what
/// happened.
pub fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

impl Answer {
    /// The `content-type` without parameters, or `"no content type"`.
    pub fn content_type(&self) -> &str {
        self.headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map_or("no content type", str::trim)
    }

    /// Cloudflare's edge answered (its error pages say so in these headers).
    pub fn is_cloudflare(&self) -> bool {
        self.headers.contains_key("cf-ray")
            || self
                .headers
                .get(reqwest::header::SERVER)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|s| s.eq_ignore_ascii_case("cloudflare"))
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// The `location` header of a redirect.
    pub fn location(&self) -> &str {
        self.headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("nowhere")
    }
}
