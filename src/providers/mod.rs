//! The three AI stages of a turn, each behind a trait so that every stage can
//! use its own provider: transcribe with Groq, think with Claude, speak with
//! ElevenLabs.
//!
//! - [`SpeechToText`]: one utterance (8 kHz PCM) in, its transcript out.
//! - [`LanguageModel`]: the conversation in, a stream of text deltas and tool
//!   calls out.
//! - [`TextToSpeech`]: one sentence in, a stream of μ-law 8 kHz audio out.
//!
//! Every request has a deadline and at most one retry (see [`http`]); streams
//! are cancelled by dropping them, which closes the HTTP request at once. Wire
//! formats: each client's module names its provider's API reference.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use serde_json::Value;

use crate::redact::Secret;

pub mod anthropic;
pub mod elevenlabs;
pub mod error;
pub mod http;
pub mod listen;
mod llm;
pub mod openai_chat;
pub mod openai_stt;
pub mod openai_tts;
mod outcome;
pub mod socket;
mod sse;

pub use error::ProviderError;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
pub type BoxStream<T> = Pin<Box<dyn Stream<Item = T> + Send + 'static>>;

/// Where a provider lives and the key it takes.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Without a trailing slash, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub api_key: Secret,
}

impl Endpoint {
    /// `base_url` joined with `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url.trim_end_matches('/'), path)
    }
}

/// Settings of a speech-to-text provider (`[stt]` in config/pronto.toml).
#[derive(Debug, Clone, PartialEq)]
pub struct SttSettings {
    pub model: String,
    /// ISO-639-1 code sent as `language`; empty = let the model detect it.
    pub language: String,
    /// Vocabulary hint sent as `prompt`; empty = none.
    pub prompt: String,
    /// Whole request, retry included.
    pub timeout: Duration,
}

/// Settings of a language model (`[llm]`).
#[derive(Debug, Clone, PartialEq)]
pub struct LlmSettings {
    pub model: String,
    pub max_tokens: u32,
    /// `None` = not sent (some reasoning models reject it).
    pub temperature: Option<f32>,
    /// Request sent → first event of the answer, retry included.
    pub first_token_timeout: Duration,
}

/// Settings of a text-to-speech provider (`[tts]`).
#[derive(Debug, Clone, PartialEq)]
pub struct TtsSettings {
    pub model: String,
    /// OpenAI voice name, or ElevenLabs voice id.
    pub voice: String,
    /// OpenAI `instructions` (tone of voice); empty = none. Not for tts-1.
    pub instructions: String,
    /// 1.0 = normal.
    pub speed: f32,
    /// Request sent → first audio byte, retry included.
    pub first_byte_timeout: Duration,
}

/// Speech to text: one caller utterance in, its transcript out.
pub trait SpeechToText: Send + Sync + 'static {
    /// `audio` is 8 kHz mono PCM, pre-roll included. An empty string means
    /// nothing intelligible was said.
    fn transcribe(&self, audio: Vec<i16>) -> BoxFuture<Result<String, ProviderError>>;
}

/// Who said a message of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

/// A tool the model may call, described by a JSON Schema for its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
}

/// One request to the language model. `messages` alternate user/assistant and
/// start with a user message (the conversation keeps them so).
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub system: String,
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolSpec>,
}

/// What the language model streams back.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmEvent {
    /// A piece of the answer's text, in order.
    Text(String),
    /// A complete tool call (arguments parsed; `{}` when the model sent none).
    ToolCall {
        id: String,
        name: String,
        arguments: Value,
    },
}

/// The language model. The stream ends (`None`) when the answer is complete;
/// an `Err` item ends it early (the text already streamed stays valid). No
/// event within the first-token timeout is an `Err(Timeout)`.
pub trait LanguageModel: Send + Sync + 'static {
    fn stream(&self, request: ChatRequest) -> BoxStream<Result<LlmEvent, ProviderError>>;
}

/// Text to speech: one sentence in, μ-law 8 kHz audio out in chunks of any
/// length, each yielded as soon as it arrives. No audio within the first-byte
/// timeout is an `Err(Timeout)`.
pub trait TextToSpeech: Send + Sync + 'static {
    fn synthesize(&self, text: String) -> BoxStream<Result<Bytes, ProviderError>>;
}
