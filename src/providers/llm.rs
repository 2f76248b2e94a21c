//! What the two language-model clients (Anthropic, OpenAI chat) share: the
//! streamed POST and the small wire details both get right the same way.

use std::time::Duration;

use bytes::Bytes;
use reqwest::Response;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::{BoxFuture, ProviderError, ToolSpec, http};
use crate::metrics::ProviderKind;

/// The request of a streamed answer, for [`super::sse::drive`]: `body` as
/// JSON to `url` with `headers`, sent (and retried once) by [`http::send`]
/// within the deadline `drive` gives. A header that could not be made is
/// reported when the stream is first polled, like any other failure.
pub(crate) fn post_json(
    provider: &'static str,
    client: &reqwest::Client,
    url: String,
    headers: Result<HeaderMap, ProviderError>,
    body: &Value,
    timeout: Duration,
) -> impl FnOnce(Instant) -> BoxFuture<Result<Response, ProviderError>> + Send + 'static {
    let client = client.clone();
    let body = Bytes::from(body.to_string());
    move |deadline| {
        Box::pin(async move {
            let headers = headers?;
            let build = || {
                client
                    .post(&url)
                    .headers(headers.clone())
                    .header(CONTENT_TYPE, "application/json")
                    .header(ACCEPT, "text/event-stream")
                    .body(body.clone())
            };
            http::send(provider, ProviderKind::Llm, build, deadline, timeout).await
        })
    }
}

/// A header carrying a key, marked sensitive so that it never shows in debug
/// output. The error does not repeat the value.
pub(crate) fn secret_header(
    provider: &'static str,
    value: &str,
) -> Result<HeaderValue, ProviderError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| ProviderError::Connect {
        provider,
        detail: "the API key is not a valid HTTP header value".into(),
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// Adds the fields sent only when there is something to send: `tools`, each
/// in the provider's `shape` (an empty list is refused by some servers), and
/// `temperature` (some reasoning models refuse any).
pub(crate) fn insert_optional(
    body: &mut Map<String, Value>,
    tools: &[ToolSpec],
    shape: impl Fn(&ToolSpec) -> Value,
    temperature: Option<f32>,
) {
    if !tools.is_empty() {
        body.insert("tools".into(), tools.iter().map(shape).collect());
    }
    if let Some(t) = temperature {
        // Through its shortest decimal form: 0.7f32 widened to f64 would be
        // sent as 0.699999988079071.
        let t = t.to_string().parse::<f64>().unwrap_or(f64::from(t));
        body.insert("temperature".into(), json!(t));
    }
}

/// The arguments of a tool call from their JSON text; none at all (a tool
/// without parameters) is `{}`.
pub(crate) fn tool_arguments(
    provider: &'static str,
    tool: &str,
    text: &str,
) -> Result<Value, ProviderError> {
    if text.trim().is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_str(text).map_err(|e| {
        ProviderError::protocol(
            provider,
            format!("the arguments of tool {tool} are not JSON: {e}"),
        )
    })
}
