//! Claude through the Anthropic Messages API, streamed
//! (<https://docs.anthropic.com/en/api/messages-streaming>):
//! text deltas are passed on as they come, tool
//! calls once their block is complete.

use std::collections::VecDeque;

use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::sse::{self, Decode, Flow, SseEvent};
use super::{
    BoxStream, ChatMessage, ChatRequest, Endpoint, LanguageModel, LlmEvent, LlmSettings,
    ProviderError, Role, ToolSpec, llm,
};

const PROVIDER: &str = "anthropic";
/// Still the only version the official SDKs send.
const API_VERSION: &str = "2023-06-01";

/// Anthropic's Messages API. `endpoint.base_url` is the host without `/v1`,
/// e.g. `https://api.anthropic.com`.
pub struct Anthropic {
    client: reqwest::Client,
    endpoint: Endpoint,
    settings: LlmSettings,
}

impl Anthropic {
    pub fn new(client: reqwest::Client, endpoint: Endpoint, settings: LlmSettings) -> Self {
        Anthropic {
            client,
            endpoint,
            settings,
        }
    }
}

impl LanguageModel for Anthropic {
    fn stream(&self, request: ChatRequest) -> BoxStream<Result<LlmEvent, ProviderError>> {
        let headers = llm::secret_header(PROVIDER, self.endpoint.api_key.expose()).map(|key| {
            let mut headers = HeaderMap::new();
            headers.insert("x-api-key", key);
            headers.insert("anthropic-version", HeaderValue::from_static(API_VERSION));
            headers
        });
        let timeout = self.settings.first_token_timeout;
        let send = llm::post_json(
            PROVIDER,
            &self.client,
            self.endpoint.url("/v1/messages"),
            headers,
            &request_body(&self.settings, &request),
            timeout,
        );
        sse::drive(PROVIDER, timeout, send, Answer::default())
    }
}

/// The JSON body: `system` at the top level (not a message), tools with
/// `input_schema`, `temperature` only when set.
fn request_body(settings: &LlmSettings, request: &ChatRequest) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(settings.model));
    body.insert("max_tokens".into(), json!(settings.max_tokens));
    if !request.system.is_empty() {
        body.insert("system".into(), json!(request.system));
    }
    body.insert("stream".into(), json!(true));
    body.insert("messages".into(), Value::Array(messages(&request.messages)));
    let tool = |tool: &ToolSpec| {
        json!({
            "name": tool.name,
            "description": tool.description,
            "input_schema": tool.parameters,
        })
    };
    llm::insert_optional(&mut body, &request.tools, tool, settings.temperature);
    Value::Object(body)
}

/// The conversation as Anthropic takes it: the API rejects empty text, so
/// empty messages (an answer cut before its first word) are left out, and the
/// messages of one speaker that then meet are joined into one turn.
fn messages(history: &[ChatMessage]) -> Vec<Value> {
    let mut turns: Vec<(Role, String)> = Vec::new();
    for message in history.iter().filter(|m| !m.content.trim().is_empty()) {
        match turns.last_mut() {
            Some((role, text)) if *role == message.role => {
                text.push_str("\n\n");
                text.push_str(&message.content);
            }
            _ => turns.push((message.role, message.content.clone())),
        }
    }
    let role_name = |role| match role {
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    turns
        .into_iter()
        .map(|(role, content)| json!({"role": role_name(role), "content": content}))
        .collect()
}

/// The events of the stream this client acts on, by their `type` (which
/// always equals the `event:` name); any other type is ignored.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    ContentBlockStart {
        index: u64,
        content_block: Block,
    },
    ContentBlockDelta {
        index: u64,
        delta: BlockDelta,
    },
    ContentBlockStop {
        index: u64,
    },
    MessageDelta {
        #[serde(default)]
        delta: MessageDelta,
    },
    MessageStop,
    Ping,
    Error {
        #[serde(default)]
        error: ErrorBody,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default)]
struct MessageDelta {
    stop_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: String,
}

/// A `tool_use` block whose input is still arriving.
struct ToolBlock {
    index: u64,
    id: String,
    name: String,
    input: String,
}

/// Reads the answer's events; tool input is gathered per block index and
/// parsed when its block stops.
#[derive(Default)]
struct Answer {
    tools: Vec<ToolBlock>,
}

impl Decode for Answer {
    type Item = LlmEvent;

    fn event(
        &mut self,
        event: SseEvent,
        out: &mut VecDeque<LlmEvent>,
    ) -> Result<Flow, ProviderError> {
        let parsed: Event = serde_json::from_str(&event.data).map_err(|e| {
            ProviderError::protocol(PROVIDER, format!("an event is not valid JSON: {e}"))
        })?;
        match parsed {
            Event::ContentBlockStart {
                index,
                content_block,
            } => match content_block {
                Block::Text { text } => push_text(out, text),
                Block::ToolUse { id, name } => self.tools.push(ToolBlock {
                    index,
                    id,
                    name,
                    input: String::new(),
                }),
                Block::Other => {}
            },
            Event::ContentBlockDelta { index, delta } => match delta {
                BlockDelta::TextDelta { text } => push_text(out, text),
                BlockDelta::InputJsonDelta { partial_json } => {
                    let tool = self.tools.iter_mut().find(|t| t.index == index);
                    let tool = tool.ok_or_else(|| {
                        let detail = format!("tool input for block {index}, not a tool_use");
                        ProviderError::protocol(PROVIDER, detail)
                    })?;
                    tool.input.push_str(&partial_json);
                }
                BlockDelta::Other => {}
            },
            Event::ContentBlockStop { index } => {
                if let Some(at) = self.tools.iter().position(|t| t.index == index) {
                    out.push_back(tool_call(self.tools.remove(at))?);
                }
            }
            Event::MessageDelta { delta } => {
                if delta.stop_reason.as_deref() == Some("max_tokens") {
                    tracing::warn!(
                        provider = PROVIDER,
                        "the answer was cut at max_tokens; raise llm.max_tokens"
                    );
                }
            }
            Event::MessageStop => return Ok(Flow::End),
            Event::Ping => return Ok(Flow::KeepAlive),
            Event::Error { error } => {
                let detail = format!("error in the stream: {}: {}", error.kind, error.message);
                return Err(ProviderError::protocol(PROVIDER, detail));
            }
            Event::Other => {}
        }
        Ok(Flow::Progress)
    }

    fn eof(&mut self, _out: &mut VecDeque<LlmEvent>) -> Result<(), ProviderError> {
        Err(ProviderError::protocol(
            PROVIDER,
            "the stream ended before message_stop",
        ))
    }
}

fn push_text(out: &mut VecDeque<LlmEvent>, text: String) {
    if !text.is_empty() {
        out.push_back(LlmEvent::Text(text));
    }
}

/// A finished tool block as a call.
fn tool_call(tool: ToolBlock) -> Result<LlmEvent, ProviderError> {
    let arguments = llm::tool_arguments(PROVIDER, &tool.name, &tool.input)?;
    Ok(LlmEvent::ToolCall {
        id: tool.id,
        name: tool.name,
        arguments,
    })
}

#[cfg(test)]
mod tests;
