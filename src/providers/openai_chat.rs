//! OpenAI Chat Completions, streamed
//! (<https://platform.openai.com/docs/api-reference/chat-streaming>),
//! and the
//! servers that copy it (Ollama, vLLM, LM Studio, Groq; e.g.
//! <https://github.com/ollama/ollama/blob/main/docs/openai.md>). Text deltas are
//! passed on as they come; tool calls, which arrive in pieces per `index`
//! (OpenAI, vLLM) or whole in one delta (Ollama), once the choice finishes.

use std::collections::VecDeque;

use reqwest::header::{AUTHORIZATION, HeaderMap};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::sse::{self, Decode, Flow, SseEvent};
use super::{
    BoxStream, ChatRequest, Endpoint, LanguageModel, LlmEvent, LlmSettings, ProviderError, Role,
    ToolSpec, http, llm,
};

const PROVIDER: &str = "openai-chat";

/// A Chat Completions server. `endpoint.base_url` ends with the API version,
/// e.g. `https://api.openai.com/v1` or `http://localhost:11434/v1`.
pub struct OpenAiChat {
    client: reqwest::Client,
    endpoint: Endpoint,
    settings: LlmSettings,
    token_limit_field: &'static str,
}

impl OpenAiChat {
    pub fn new(client: reqwest::Client, endpoint: Endpoint, settings: LlmSettings) -> Self {
        let token_limit_field = token_limit_field(&endpoint.base_url);
        OpenAiChat {
            client,
            endpoint,
            settings,
            token_limit_field,
        }
    }
}

/// OpenAI itself wants `max_completion_tokens` (its reasoning models reject
/// the deprecated `max_tokens`); the compatible servers know only the old name.
fn token_limit_field(base_url: &str) -> &'static str {
    let host = reqwest::Url::parse(base_url).ok();
    match host.as_ref().and_then(|url| url.host_str()) {
        Some("api.openai.com") => "max_completion_tokens",
        _ => "max_tokens",
    }
}

impl LanguageModel for OpenAiChat {
    fn stream(&self, request: ChatRequest) -> BoxStream<Result<LlmEvent, ProviderError>> {
        // Local servers need no key; an empty `Bearer ` would only confuse them.
        let headers = match self.endpoint.api_key.expose() {
            "" => Ok(HeaderMap::new()),
            key => llm::secret_header(PROVIDER, &format!("Bearer {key}"))
                .map(|auth| HeaderMap::from_iter([(AUTHORIZATION, auth)])),
        };
        let timeout = self.settings.first_token_timeout;
        let body = request_body(&self.settings, self.token_limit_field, &request);
        let url = self.endpoint.url("/chat/completions");
        let send = llm::post_json(PROVIDER, &self.client, url, headers, &body, timeout);
        sse::drive(PROVIDER, timeout, send, Answer::default())
    }
}

/// The JSON body: the system prompt as the first message, tools in the
/// `function` shape (left out when there are none), `temperature` only when
/// set, and usage asked for so that it can be logged.
fn request_body(settings: &LlmSettings, token_limit_field: &str, request: &ChatRequest) -> Value {
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if !request.system.is_empty() {
        messages.push(json!({"role": "system", "content": request.system}));
    }
    messages.extend(request.messages.iter().map(|m| {
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        json!({"role": role, "content": m.content})
    }));
    let mut body = Map::new();
    body.insert("model".into(), json!(settings.model));
    body.insert("stream".into(), json!(true));
    body.insert("stream_options".into(), json!({"include_usage": true}));
    body.insert(token_limit_field.into(), json!(settings.max_tokens));
    body.insert("messages".into(), Value::Array(messages));
    let tool = |tool: &ToolSpec| {
        json!({
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
            },
        })
    };
    llm::insert_optional(&mut body, &request.tools, tool, settings.temperature);
    Value::Object(body)
}

/// One `data:` chunk. Every field may be absent or `null`: servers differ.
#[derive(Deserialize)]
struct Chunk {
    choices: Option<Vec<Choice>>,
    error: Option<Value>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    index: Option<u32>,
    delta: Option<Delta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct Delta {
    content: Option<String>,
    tool_calls: Option<Vec<ToolCallPiece>>,
}

#[derive(Deserialize)]
struct ToolCallPiece {
    index: Option<usize>,
    id: Option<String>,
    function: Option<FunctionPiece>,
}

#[derive(Deserialize, Default)]
struct FunctionPiece {
    name: Option<String>,
    /// A fragment of the JSON text; some servers send the object itself.
    arguments: Option<Value>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

/// A tool call whose pieces are still arriving.
struct PendingCall {
    index: usize,
    id: String,
    name: String,
    arguments: String,
}

/// Reads the answer's chunks (choice 0 only: `n` is never sent).
#[derive(Default)]
struct Answer {
    calls: Vec<PendingCall>,
    /// A `finish_reason` was seen: the end of the body is then a normal end
    /// even without `[DONE]`.
    finished: bool,
}

impl Decode for Answer {
    type Item = LlmEvent;

    fn event(
        &mut self,
        event: SseEvent,
        out: &mut VecDeque<LlmEvent>,
    ) -> Result<Flow, ProviderError> {
        if event.data.trim_start().starts_with("[DONE]") {
            self.flush(out)?;
            return Ok(Flow::End);
        }
        let chunk: Chunk = serde_json::from_str(&event.data).map_err(|e| {
            ProviderError::protocol(PROVIDER, format!("a chunk is not valid JSON: {e}"))
        })?;
        if chunk.error.is_some() {
            let detail = format!("error in the stream: {}", http::error_message(&event.data));
            return Err(ProviderError::protocol(PROVIDER, detail));
        }
        let choices = chunk.choices.unwrap_or_default();
        for choice in choices.into_iter().filter(|c| c.index.unwrap_or(0) == 0) {
            let delta = choice.delta.unwrap_or_default();
            if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                out.push_back(LlmEvent::Text(text));
            }
            for piece in delta.tool_calls.unwrap_or_default() {
                self.add(piece);
            }
            if let Some(reason) = choice.finish_reason {
                if reason == "length" {
                    tracing::warn!(
                        provider = PROVIDER,
                        "the answer was cut at the token limit; raise llm.max_tokens"
                    );
                }
                self.finished = true;
                self.flush(out)?;
            }
        }
        if let Some(usage) = chunk.usage {
            tracing::debug!(
                provider = PROVIDER,
                prompt_tokens = usage.prompt_tokens,
                completion_tokens = usage.completion_tokens,
                "usage"
            );
        }
        Ok(Flow::Progress)
    }

    fn eof(&mut self, out: &mut VecDeque<LlmEvent>) -> Result<(), ProviderError> {
        if !self.finished {
            let detail = "the stream ended before [DONE] or a finish_reason";
            return Err(ProviderError::protocol(PROVIDER, detail));
        }
        self.flush(out)
    }
}

impl Answer {
    /// Adds a piece to its call: the one with its `index` (and `id`, so that
    /// a server numbering every call 0 still yields separate calls), else a
    /// new one.
    fn add(&mut self, piece: ToolCallPiece) {
        let index = piece
            .index
            .unwrap_or_else(|| match (&piece.id, self.calls.last()) {
                (None, Some(last)) => last.index,
                _ => self.calls.len(),
            });
        let belongs = |call: &PendingCall| {
            call.index == index
                && piece
                    .id
                    .as_ref()
                    .is_none_or(|id| call.id.is_empty() || call.id == *id)
        };
        let at = match self.calls.iter().rposition(belongs) {
            Some(at) => at,
            None => {
                self.calls.push(PendingCall {
                    index,
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                });
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[at];
        if let Some(id) = piece.id.filter(|id| !id.is_empty()) {
            call.id = id;
        }
        let function = piece.function.unwrap_or_default();
        if let Some(name) = function.name.filter(|n| !n.is_empty()) {
            call.name = name;
        }
        match function.arguments {
            Some(Value::String(fragment)) => call.arguments.push_str(&fragment),
            Some(Value::Null) | None => {}
            Some(whole) => call.arguments = whole.to_string(),
        }
    }

    /// Emits the calls gathered so far, in order.
    fn flush(&mut self, out: &mut VecDeque<LlmEvent>) -> Result<(), ProviderError> {
        for call in self.calls.drain(..) {
            if call.name.is_empty() {
                return Err(ProviderError::protocol(PROVIDER, "a tool call has no name"));
            }
            let arguments = llm::tool_arguments(PROVIDER, &call.name, &call.arguments)?;
            let id = match call.id.is_empty() {
                true => format!("call_{}", call.index),
                false => call.id,
            };
            out.push_back(LlmEvent::ToolCall {
                id,
                name: call.name,
                arguments,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
