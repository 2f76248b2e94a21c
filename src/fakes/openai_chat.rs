//! Fake OpenAI Chat Completions
//! (<https://platform.openai.com/docs/api-reference/chat-streaming>):
//! `POST /v1/chat/completions` streamed as `data:` chunks: a role chunk,
//! word-ish content chunks, tool calls fragmented per index, a finish_reason
//! chunk, a `choices: []` usage chunk when `stream_options.include_usage`,
//! then `data: [DONE]`. Chunks carry `obfuscation`, and `usage: null` when
//! usage was asked for, as OpenAI's do now.
//!
//! [`Style`] switches to what compatible servers send instead. It refuses a
//! missing or wrong `Authorization: Bearer` key (401 `invalid_api_key`;
//! [`FakeOpenAiChat::start`] takes any non-empty key, `start_with_key(k)` only
//! `k`, `start_with_key("")` anything, like a local server) and a body without
//! `model` or `messages` (400). `GET /v1/models` lists three models after
//! the same key check. Replies, faults and latency: [`LlmFake`],
//! which this fake derefs to.

use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::llm_reply::{LlmFake, Reply, Wire, fragments, key_accepted, words};
use super::{Running, lock, serve};

/// Which server the fake imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Style {
    /// api.openai.com.
    #[default]
    OpenAi,
    /// Ollama: `role` repeated in every delta, each tool call whole in one
    /// delta, no usage chunk, `system_fingerprint: fp_ollama`.
    Ollama,
    /// A lax server: OpenAI's chunks, but the body ends right after the
    /// finish_reason chunk, with neither usage nor `[DONE]`.
    NoDone,
}

/// The fake; the server stops when it is dropped (with [`FakeOpenAi`]'s
/// audio, when both are).
///
/// [`FakeOpenAi`]: super::openai::FakeOpenAi
pub struct FakeOpenAiChat {
    running: Arc<Running>,
    state: LlmFake,
    style: Arc<Mutex<Style>>,
}

impl FakeOpenAiChat {
    /// Accepts any non-empty key.
    pub async fn start() -> Self {
        Self::serve(None).await
    }

    /// Accepts only `key`; `""` accepts anything, even no header.
    pub async fn start_with_key(key: &str) -> Self {
        Self::serve(Some(key.to_string())).await
    }

    async fn serve(key: Option<String>) -> Self {
        let (router, on) = Self::routes(key);
        on(Arc::new(serve(router, "/v1").await))
    }

    /// The chat and models routes (see [`Self::start_with_key`] for `key`),
    /// and the fake that answers them once given the server they are on.
    pub(super) fn routes(key: Option<String>) -> (Router, impl FnOnce(Arc<Running>) -> Self) {
        let state = LlmFake::default();
        let style = Arc::new(Mutex::new(Style::default()));
        let wire = OpenAiWire {
            key,
            style: style.clone(),
            answers: AtomicUsize::new(0),
        };
        let router = state.router("/v1/chat/completions", wire);
        let on = move |running| FakeOpenAiChat {
            running,
            state,
            style,
        };
        (router, on)
    }

    /// With `/v1`, as Pronto is configured.
    pub fn base_url(&self) -> String {
        self.running.base_url.clone()
    }

    pub fn set_style(&self, style: Style) {
        *lock(&self.style) = style;
    }
}

impl Deref for FakeOpenAiChat {
    type Target = LlmFake;

    fn deref(&self) -> &LlmFake {
        &self.state
    }
}

struct OpenAiWire {
    key: Option<String>,
    style: Arc<Mutex<Style>>,
    /// Numbers the completion and tool call ids.
    answers: AtomicUsize,
}

impl Wire for OpenAiWire {
    fn refuse_headers(&self, headers: &HeaderMap) -> Option<(u16, String)> {
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !key_accepted(&self.key, bearer) {
            // Like OpenAI, quote the start of the wrong key back.
            let shown: String = bearer.unwrap_or("").chars().take(7).collect();
            return Some((401, format!("Incorrect API key provided: {shown}***.")));
        }
        None
    }

    fn refuse(&self, headers: &HeaderMap, body: &Value) -> Option<(u16, String)> {
        if let Some(refusal) = self.refuse_headers(headers) {
            return Some(refusal);
        }
        let missing = [
            ("model", body["model"].is_string()),
            ("messages", body["messages"].is_array()),
        ];
        let (field, _) = missing.into_iter().find(|(_, ok)| !ok)?;
        Some((400, format!("Missing required parameter: '{field}'.")))
    }

    fn models(&self) -> Value {
        let model = |id: &str, owner: &str| json!({"id": id, "object": "model", "created": 1686935002, "owned_by": owner});
        json!({"object": "list", "data": [
            model("gpt-4o-mini", "system"),
            model("gpt-4o-mini-transcribe", "system"),
            model("gpt-4o-mini-tts", "system"),
        ]})
    }

    fn error_body(&self, status: u16, message: &str) -> String {
        let (kind, code) = match status {
            401 => ("invalid_request_error", json!("invalid_api_key")),
            404 => ("invalid_request_error", json!("model_not_found")),
            429 => ("requests", json!("rate_limit_exceeded")),
            503 => ("service_unavailable_error", json!("server_is_overloaded")),
            500.. => ("server_error", Value::Null),
            _ => ("invalid_request_error", Value::Null),
        };
        json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
            .to_string()
    }

    fn events(&self, reply: &Reply, request: &Value) -> Vec<String> {
        let style = *lock(&self.style);
        let n = self.answers.fetch_add(1, Ordering::SeqCst);
        let ollama = style == Style::Ollama;
        let usage = style == Style::OpenAi && request["stream_options"]["include_usage"] == true;
        let head = json!({
            "id": format!("chatcmpl-fake{n}"),
            "object": "chat.completion.chunk",
            "created": 1727346168,
            "model": request["model"],
            "system_fingerprint": if ollama { "fp_ollama" } else { "fp_fake" },
        });
        let chunk = |choices: Value, totals: Option<Value>| {
            let mut chunk = head.clone();
            chunk["choices"] = choices;
            if usage {
                chunk["usage"] = totals.unwrap_or(Value::Null);
            }
            if !ollama {
                chunk["obfuscation"] = json!("r4N7vQ2m");
            }
            format!("data: {chunk}\n\n")
        };
        let delta = |mut delta: Value, finish: Value| {
            if ollama {
                delta["role"] = json!("assistant");
            }
            let choice =
                json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish});
            chunk(json!([choice]), None)
        };

        let (text, tool) = reply.parts();
        let call_id = format!("call_fake{n}");
        let mut events = Vec::new();
        if !ollama {
            let content = if text.is_empty() {
                Value::Null
            } else {
                json!("")
            };
            let role = json!({"role": "assistant", "content": content, "refusal": null});
            events.push(delta(role, Value::Null));
        }
        for piece in words(text) {
            events.push(delta(json!({"content": piece}), Value::Null));
        }
        if let Some((name, arguments)) = tool {
            let arguments = arguments.to_string();
            if ollama {
                let call = json!({"id": call_id, "index": 0, "type": "function",
                                  "function": {"name": name, "arguments": arguments}});
                events.push(delta(
                    json!({"content": "", "tool_calls": [call]}),
                    Value::Null,
                ));
            } else {
                let first = json!({"index": 0, "id": call_id, "type": "function",
                                   "function": {"name": name, "arguments": ""}});
                events.push(delta(json!({"tool_calls": [first]}), Value::Null));
                for piece in fragments(&arguments, 6) {
                    let more = json!({"index": 0, "function": {"arguments": piece}});
                    events.push(delta(json!({"tool_calls": [more]}), Value::Null));
                }
            }
        }
        let finish = if tool.is_some() { "tool_calls" } else { "stop" };
        let last = if ollama {
            json!({"content": ""})
        } else {
            json!({})
        };
        events.push(delta(last, json!(finish)));
        if usage {
            let totals = json!({"prompt_tokens": 14, "completion_tokens": events.len(), "total_tokens": 14 + events.len()});
            events.push(chunk(json!([]), Some(totals)));
        }
        if style != Style::NoDone {
            events.push("data: [DONE]\n\n".into());
        }
        events
    }

    fn malformed_event(&self) -> String {
        "data: {\"id\":\"chatcmpl-fake\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Sur\n\n".into()
    }

    fn error_event(&self) -> String {
        let error = json!({"error": {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error", "param": null, "code": null,
        }});
        format!("data: {error}\n\n")
    }
}
