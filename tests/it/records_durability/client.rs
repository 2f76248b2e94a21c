//! The history API as a client sees it: GET with or without the token, and
//! polling until the background writer has caught up.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{API_TOKEN, WAIT, get_json};

/// `GET {base}{path}` with an optional bearer token: the status and the JSON body.
pub async fn get(base: &str, path: &str, bearer: Option<&str>) -> (u16, Value) {
    get_json(&reqwest::Client::new(), &format!("{base}{path}"), bearer).await
}

/// `GET {base}{path}` with the API token, which must answer 200.
pub async fn api(base: &str, path: &str) -> Value {
    let (status, body) = get(base, path, Some(API_TOKEN)).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// Polls `GET {base}{path}` (with the token) until `pred` holds: the history is
/// written by a background writer, a moment after the call does something.
pub async fn api_until(base: &str, path: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let body = api(base, path).await;
        if pred(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The SIDs of a page of `GET /api/calls`, in the order listed.
pub fn sids(page: &Value) -> Vec<String> {
    page["calls"]
        .as_array()
        .unwrap_or_else(|| panic!("no calls array: {page}"))
        .iter()
        .map(|c| c["call_sid"].as_str().expect("call_sid").to_string())
        .collect()
}

/// An error answer: the status, and a JSON body with a non-empty `error`.
pub fn assert_error(status: u16, body: &Value, expected: u16, what: &str) {
    assert_eq!(status, expected, "{what}: {body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: no JSON error: {body}"
    );
}
