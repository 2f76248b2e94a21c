//! Each provider's own tests: the request it sends, and (OpenAI) the quirks
//! of the compatible servers.

use pronto::providers::{ChatMessage, ChatRequest, LlmEvent, LlmSettings, Role, ToolSpec};
use serde_json::{Value, json};

use super::support::{KEY, Kind, ROOMY, answer, model, settings, text_of, user};
use pronto::fakes::anthropic::FakeAnthropic;
use pronto::fakes::llm_reply::{DEFAULT_REPLY, LlmFake, Reply};
use pronto::fakes::openai_chat::{FakeOpenAiChat, Style};

fn conversation() -> ChatRequest {
    let message = |role, content: &str| ChatMessage {
        role,
        content: content.into(),
    };
    ChatRequest {
        system: "You are Pronto.".into(),
        messages: vec![
            message(Role::User, "Hi, are you open today?"),
            message(Role::Assistant, "Yes, until six."),
            message(Role::User, "Great, book me at five."),
        ],
        tools: vec![ToolSpec {
            name: "book".into(),
            description: "Book an appointment".into(),
            parameters: json!({"type": "object", "properties": {"time": {"type": "string"}}, "required": ["time"]}),
        }],
    }
}

fn header(fake: &LlmFake, name: &str) -> Option<String> {
    let headers = fake.headers();
    let first = headers.first().expect("a request");
    first
        .get(name)
        .map(|v| v.to_str().expect("ASCII header").to_string())
}

#[tokio::test]
async fn anthropic_request_has_the_system_on_top_alternating_messages_and_input_schemas() {
    let fake = FakeAnthropic::start_with_key(KEY).await;
    let settings = LlmSettings {
        temperature: Some(0.6),
        ..settings(ROOMY)
    };
    let model = model(Kind::Anthropic, fake.base_url(), KEY, settings);
    let (_, error) = answer(&*model, conversation()).await;
    assert_eq!(error, None);
    let body = &fake.requests()[0];
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["max_tokens"], 200);
    assert_eq!(body["stream"], true);
    assert_eq!(body["temperature"], 0.6);
    assert_eq!(body["system"], "You are Pronto.");
    let roles: Vec<&Value> = body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| &m["role"])
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    assert_eq!(body["messages"][2]["content"], "Great, book me at five.");
    assert_eq!(
        body["tools"],
        json!([{"name": "book", "description": "Book an appointment", "input_schema": conversation().tools[0].parameters}])
    );
    assert_eq!(header(&fake, "x-api-key").as_deref(), Some(KEY));
    assert_eq!(
        header(&fake, "anthropic-version").as_deref(),
        Some("2023-06-01")
    );
    assert_eq!(header(&fake, "authorization"), None);
}

#[tokio::test]
async fn openai_request_has_the_system_message_first_function_tools_and_max_tokens() {
    let fake = FakeOpenAiChat::start_with_key(KEY).await;
    let model = model(Kind::OpenAi, fake.base_url(), KEY, settings(ROOMY));
    let (_, error) = answer(&*model, conversation()).await;
    assert_eq!(error, None);
    let body = &fake.requests()[0];
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    // A loopback server is not api.openai.com: the name compatible servers know.
    assert_eq!(body["max_tokens"], 200);
    assert!(body.get("max_completion_tokens").is_none());
    assert!(body.get("temperature").is_none());
    let messages = body["messages"].as_array().expect("messages");
    let roles: Vec<&Value> = messages.iter().map(|m| &m["role"]).collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
    assert_eq!(messages[0]["content"], "You are Pronto.");
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {"name": "book", "description": "Book an appointment", "parameters": conversation().tools[0].parameters}}])
    );
    assert_eq!(
        header(&fake, "authorization"),
        Some(format!("Bearer {KEY}"))
    );

    let (_, error) = answer(&*model, user("Hi")).await;
    assert_eq!(error, None);
    assert!(
        fake.requests()[1].get("tools").is_none(),
        "no tools, no field"
    );
}

#[tokio::test]
async fn openai_ollama_style_repeated_roles_and_a_whole_tool_call_without_a_key() {
    let fake = FakeOpenAiChat::start_with_key("").await;
    fake.set_style(Style::Ollama);
    let model = model(Kind::OpenAi, fake.base_url(), "", settings(ROOMY));
    fake.push_reply(Reply::Tool {
        text: "Booking that now.".into(),
        name: "book".into(),
        arguments: json!({"time": "17:00"}),
    });
    let (events, error) = answer(&*model, conversation()).await;
    assert_eq!(error, None);
    assert_eq!(text_of(&events), "Booking that now.");
    assert!(
        matches!(events.last(), Some(LlmEvent::ToolCall { name, arguments, .. }) if name == "book" && *arguments == json!({"time": "17:00"})),
        "{events:?}"
    );
    assert_eq!(header(&fake, "authorization"), None, "no key, no header");

    let (events, error) = answer(&*model, user("Hi")).await;
    assert_eq!((text_of(&events).as_str(), error), (DEFAULT_REPLY, None));
}

#[tokio::test]
async fn openai_an_end_after_the_finish_reason_without_done_is_a_normal_end() {
    let fake = FakeOpenAiChat::start_with_key(KEY).await;
    fake.set_style(Style::NoDone);
    let model = model(Kind::OpenAi, fake.base_url(), KEY, settings(ROOMY));
    let (events, error) = answer(&*model, user("Hi")).await;
    assert_eq!((text_of(&events).as_str(), error), (DEFAULT_REPLY, None));
}
