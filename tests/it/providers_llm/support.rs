//! Setting up a fake and its client, and reading a whole answer.

use std::ops::Deref;
use std::time::Duration;

use futures_util::StreamExt;
use pronto::providers::anthropic::Anthropic;
use pronto::providers::openai_chat::OpenAiChat;
use pronto::providers::{
    ChatMessage, ChatRequest, Endpoint, LanguageModel, LlmEvent, LlmSettings, ProviderError, Role,
    http,
};
use pronto::redact::Secret;

use pronto::fakes::anthropic::FakeAnthropic;
use pronto::fakes::llm_reply::LlmFake;
use pronto::fakes::openai_chat::FakeOpenAiChat;

pub const KEY: &str = "sk-test-key";
/// The first-token timeout of most tests: short, so that timeouts are quick.
pub const FIRST_TOKEN: Duration = Duration::from_millis(300);
/// Enough for a retry after `retry-after: 1`.
pub const ROOMY: Duration = Duration::from_secs(4);
/// Bounds every answer, so that a broken timeout fails instead of hanging.
pub const TEST_LIMIT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Anthropic,
    OpenAi,
}

pub enum Fake {
    Anthropic(FakeAnthropic),
    OpenAi(FakeOpenAiChat),
}

impl Deref for Fake {
    type Target = LlmFake;

    fn deref(&self) -> &LlmFake {
        match self {
            Fake::Anthropic(fake) => fake,
            Fake::OpenAi(fake) => fake,
        }
    }
}

pub fn settings(first_token: Duration) -> LlmSettings {
    LlmSettings {
        model: "test-model".into(),
        max_tokens: 200,
        temperature: None,
        first_token_timeout: first_token,
    }
}

pub fn model(
    kind: Kind,
    base_url: String,
    key: &str,
    settings: LlmSettings,
) -> Box<dyn LanguageModel> {
    let client = http::client().expect("HTTP client");
    let endpoint = Endpoint {
        base_url,
        api_key: Secret::new(key),
    };
    match kind {
        Kind::Anthropic => Box::new(Anthropic::new(client, endpoint, settings)),
        Kind::OpenAi => Box::new(OpenAiChat::new(client, endpoint, settings)),
    }
}

/// A fake of `kind` taking [`KEY`], and a client of it.
pub async fn setup(kind: Kind, first_token: Duration) -> (Fake, Box<dyn LanguageModel>) {
    let (fake, base_url) = match kind {
        Kind::Anthropic => {
            let fake = FakeAnthropic::start_with_key(KEY).await;
            let url = fake.base_url();
            (Fake::Anthropic(fake), url)
        }
        Kind::OpenAi => {
            let fake = FakeOpenAiChat::start_with_key(KEY).await;
            let url = fake.base_url();
            (Fake::OpenAi(fake), url)
        }
    };
    let model = model(kind, base_url, KEY, settings(first_token));
    (fake, model)
}

pub fn user(text: &str) -> ChatRequest {
    ChatRequest {
        system: "You are Pronto, a phone receptionist.".into(),
        messages: vec![ChatMessage {
            role: Role::User,
            content: text.into(),
        }],
        tools: vec![],
    }
}

/// Everything the stream yields: its events, and the error that ended it.
pub async fn answer(
    model: &dyn LanguageModel,
    request: ChatRequest,
) -> (Vec<LlmEvent>, Option<ProviderError>) {
    let mut stream = model.stream(request);
    let mut events = Vec::new();
    let read = async {
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => events.push(event),
                Err(e) => return Some(e),
            }
        }
        None
    };
    let error = tokio::time::timeout(TEST_LIMIT, read)
        .await
        .expect("the answer ends");
    (events, error)
}

pub fn text_of(events: &[LlmEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            LlmEvent::Text(text) => Some(text.as_str()),
            LlmEvent::ToolCall { .. } => None,
        })
        .collect()
}
