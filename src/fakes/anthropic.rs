//! Fake Anthropic Messages API
//! (<https://docs.anthropic.com/en/api/messages-streaming>,
//! <https://docs.anthropic.com/en/api/errors>):
//! `POST /v1/messages`, streamed as the real event sequence (`message_start`,
//! `ping`, `content_block_*` with word-ish text deltas and `input_json_delta`
//! fragments, `message_delta`, `message_stop`), one event per write.
//!
//! It refuses, as the API does, a missing or wrong `x-api-key` (401
//! `authentication_error`; [`FakeAnthropic::start`] takes any non-empty key,
//! [`FakeAnthropic::start_with_key`] only that one), an `anthropic-version`
//! other than `2023-06-01`, and a body without `model`, `max_tokens` or
//! `messages` (400 `invalid_request_error`). `GET /v1/models` lists a model,
//! after the same key and version checks. Replies, faults and latency:
//! [`LlmFake`], which this fake derefs to.

use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::llm_reply::{LlmFake, Reply, Wire, fragments, key_accepted, words};
use super::{Running, serve};

pub struct FakeAnthropic {
    running: Running,
    state: LlmFake,
}

impl FakeAnthropic {
    /// Accepts any non-empty key.
    pub async fn start() -> Self {
        Self::serve(None).await
    }

    /// Accepts only `key`.
    pub async fn start_with_key(key: &str) -> Self {
        Self::serve(Some(key.to_string())).await
    }

    async fn serve(key: Option<String>) -> Self {
        let state = LlmFake::default();
        let wire = AnthropicWire {
            key,
            answers: AtomicUsize::new(0),
        };
        let running = serve(state.router("/v1/messages", wire), "").await;
        FakeAnthropic { running, state }
    }

    /// Without `/v1`, as Pronto is configured.
    pub fn base_url(&self) -> String {
        self.running.base_url.clone()
    }
}

impl Deref for FakeAnthropic {
    type Target = LlmFake;

    fn deref(&self) -> &LlmFake {
        &self.state
    }
}

struct AnthropicWire {
    key: Option<String>,
    /// Numbers the message and tool ids.
    answers: AtomicUsize,
}

/// One SSE event: the `event:` line repeats the JSON's `type`.
fn event(data: Value) -> String {
    let name = data["type"].as_str().unwrap_or("unknown").to_string();
    format!("event: {name}\ndata: {data}\n\n")
}

impl Wire for AnthropicWire {
    fn refuse_headers(&self, headers: &HeaderMap) -> Option<(u16, String)> {
        let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
        if !key_accepted(&self.key, header("x-api-key")) {
            return Some((401, "invalid x-api-key".into()));
        }
        if header("anthropic-version") != Some("2023-06-01") {
            return Some((400, "anthropic-version: header must be 2023-06-01".into()));
        }
        None
    }

    fn refuse(&self, headers: &HeaderMap, body: &Value) -> Option<(u16, String)> {
        if let Some(refusal) = self.refuse_headers(headers) {
            return Some(refusal);
        }
        let missing = [
            ("model", body["model"].is_string()),
            ("max_tokens", body["max_tokens"].is_u64()),
            ("messages", body["messages"].is_array()),
        ];
        let (field, _) = missing.into_iter().find(|(_, ok)| !ok)?;
        Some((400, format!("{field}: Field required")))
    }

    fn models(&self) -> Value {
        json!({
            "data": [{
                "type": "model",
                "id": "claude-haiku-4-5-20251001",
                "display_name": "Claude Haiku 4.5",
                "created_at": "2025-10-01T00:00:00Z",
            }],
            "has_more": false,
            "first_id": "claude-haiku-4-5-20251001",
            "last_id": "claude-haiku-4-5-20251001",
        })
    }

    fn error_body(&self, status: u16, message: &str) -> String {
        let kind = match status {
            400 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            529 => "overloaded_error",
            _ => "api_error",
        };
        json!({
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": "req_fake",
        })
        .to_string()
    }

    fn events(&self, reply: &Reply, request: &Value) -> Vec<String> {
        let n = self.answers.fetch_add(1, Ordering::SeqCst);
        let model = request["model"].as_str().unwrap_or("claude-haiku-4-5");
        let mut events = vec![
            event(json!({
                "type": "message_start",
                "message": {
                    "id": format!("msg_fake{n}"), "type": "message", "role": "assistant",
                    "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": 12, "output_tokens": 1},
                },
            })),
            "event: ping\ndata: {\"type\": \"ping\"}\n\n".to_string(),
        ];
        let (text, tool) = reply.parts();
        let mut index = 0;
        if !text.is_empty() {
            events.push(event(json!({
                "type": "content_block_start", "index": index,
                "content_block": {"type": "text", "text": ""},
            })));
            events.extend(words(text).into_iter().map(|piece| {
                event(json!({
                    "type": "content_block_delta", "index": index,
                    "delta": {"type": "text_delta", "text": piece},
                }))
            }));
            events.push(event(json!({"type": "content_block_stop", "index": index})));
            index += 1;
        }
        if let Some((name, arguments)) = tool {
            events.push(event(json!({
                "type": "content_block_start", "index": index,
                "content_block": {"type": "tool_use", "id": format!("toolu_fake{n}"), "name": name, "input": {}},
            })));
            // A tool without arguments sends only the empty first fragment.
            let mut pieces = vec![String::new()];
            if arguments.as_object().is_none_or(|o| !o.is_empty()) {
                pieces.extend(fragments(&arguments.to_string(), 8));
            }
            events.extend(pieces.into_iter().map(|piece| {
                event(json!({
                    "type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": piece},
                }))
            }));
            events.push(event(json!({"type": "content_block_stop", "index": index})));
        }
        let stop_reason = if tool.is_some() {
            "tool_use"
        } else {
            "end_turn"
        };
        events.push(event(json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": null},
            "usage": {"output_tokens": events.len()},
        })));
        events.push(event(json!({"type": "message_stop"})));
        events
    }

    fn malformed_event(&self) -> String {
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_del\n\n".into()
    }

    fn error_event(&self) -> String {
        "event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n".into()
    }
}
