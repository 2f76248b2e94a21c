//! The two language-model clients against their fakes, over real HTTP on
//! loopback: streamed text and tool calls, the request each sends, the
//! compatible servers' quirks, retries, timeouts and broken streams.
//!
//! Behaviour both providers share is one scenario function run for each
//! (`both!`, tests `scenario::anthropic` and `scenario::openai`);
//! `provider_specific` holds each provider's own tests.

mod provider_specific;
mod support;

use std::time::Duration;

use futures_util::StreamExt;
use pronto::providers::{LlmEvent, ProviderError};
use serde_json::json;

use pronto::fakes::Fault;
use pronto::fakes::llm_reply::{DEFAULT_REPLY, Reply};
use support::{
    FIRST_TOKEN, Fake, Kind, ROOMY, TEST_LIMIT, answer, model, settings, setup, text_of, user,
};

/// Runs each scenario `fn name(kind)` once per provider, as `name::anthropic`
/// and `name::openai`.
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn anthropic() {
                super::$name(super::Kind::Anthropic).await
            }
            #[tokio::test]
            async fn openai() {
                super::$name(super::Kind::OpenAi).await
            }
        }
    )*};
}

both!(
    text_is_streamed_in_pieces_and_reassembled_exactly,
    a_tool_call_follows_its_text,
    a_tool_without_arguments_gets_an_empty_object,
    events_split_inside_characters_are_reassembled,
    a_429_with_retry_after_is_retried_once_and_answered,
    an_exhausted_quota_is_not_retried,
    a_server_error_twice_fails_after_two_requests,
    a_wrong_key_is_refused_without_retry,
    a_hung_server_times_out_at_the_first_token_timeout,
    a_late_first_token_times_out,
    a_short_delay_is_answered,
    silence_between_events_times_out,
    steady_tokens_outlast_the_first_token_timeout,
    a_cut_stream_is_an_error_after_its_partial_text,
    malformed_json_is_an_error,
    an_error_in_the_stream_is_an_error,
    dropping_the_stream_closes_the_connection,
);

async fn text_is_streamed_in_pieces_and_reassembled_exactly(kind: Kind) {
    let (fake, model) = setup(kind, FIRST_TOKEN).await;
    let said = "Hello there!  How can I help you today? We open at 9:30, café au lait included.";
    fake.push_reply(Reply::text(said));
    let (events, error) = answer(&*model, user("Hi")).await;
    assert_eq!(error, None);
    assert_eq!(text_of(&events), said);
    assert!(events.len() > 5, "streamed in pieces: {events:?}");
    assert!(
        events
            .iter()
            .all(|e| matches!(e, LlmEvent::Text(t) if !t.is_empty()))
    );

    let (events, error) = answer(&*model, user("Again")).await;
    assert_eq!((text_of(&events).as_str(), error), (DEFAULT_REPLY, None));
}

async fn a_tool_call_follows_its_text(kind: Kind) {
    let (fake, model) = setup(kind, FIRST_TOKEN).await;
    let arguments = json!({"city": "Paris", "days": 2, "units": "metric", "note": "naïve café"});
    fake.push_reply(Reply::Tool {
        text: "Let me check the weather.".into(),
        name: "get_weather".into(),
        arguments: arguments.clone(),
    });
    let (events, error) = answer(&*model, user("Weather in Paris?")).await;
    assert_eq!(error, None);
    let (call, text) = events.split_last().expect("events");
    assert_eq!(text_of(text), "Let me check the weather.");
    assert_eq!(text.len(), text_of(text).split(' ').count(), "word by word");
    match call {
        LlmEvent::ToolCall {
            id,
            name,
            arguments: got,
        } => {
            assert!(!id.is_empty());
            assert_eq!((name.as_str(), got), ("get_weather", &arguments));
        }
        other => panic!("expected the tool call last, got {other:?}"),
    }
}

async fn a_tool_without_arguments_gets_an_empty_object(kind: Kind) {
    let (fake, model) = setup(kind, FIRST_TOKEN).await;
    fake.push_reply(Reply::Tool {
        text: String::new(),
        name: "end_call".into(),
        arguments: json!({}),
    });
    let (events, error) = answer(&*model, user("Bye")).await;
    assert_eq!(error, None);
    assert!(
        matches!(&events[..], [LlmEvent::ToolCall { name, arguments, .. }] if name == "end_call" && *arguments == json!({})),
        "{events:?}"
    );
}

async fn events_split_inside_characters_are_reassembled(kind: Kind) {
    let (fake, model) = setup(kind, FIRST_TOKEN).await;
    fake.set_fragmented(true);
    let said = "Ünïcödé ☕☕☕ 👋👋 everywhere: naïve café, 東京, Zürich.";
    fake.push_reply(Reply::text(said));
    let (events, error) = answer(&*model, user("Hi")).await;
    assert_eq!((text_of(&events).as_str(), error), (said, None));
}

fn assert_failed_with_status(events: &[LlmEvent], error: Option<ProviderError>, status: u16) {
    assert!(events.is_empty(), "{events:?}");
    match error {
        Some(ProviderError::Status { status: got, .. }) => assert_eq!(got, status),
        other => panic!("expected HTTP {status}, got {other:?}"),
    }
}

async fn a_429_with_retry_after_is_retried_once_and_answered(kind: Kind) {
    let (fake, model) = setup(kind, ROOMY).await;
    fake.push_fault(Fault::Status {
        status: 429,
        body: String::new(),
        retry_after: Some("1".into()),
    });
    let (events, error) = answer(&*model, user("Hi")).await;
    assert_eq!((text_of(&events).as_str(), error), (DEFAULT_REPLY, None));
    assert_eq!(fake.requests().len(), 2);
}

async fn an_exhausted_quota_is_not_retried(kind: Kind) {
    let (fake, model) = setup(kind, ROOMY).await;
    let body = match kind {
        Kind::OpenAi => {
            r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#
        }
        Kind::Anthropic => {
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"Spend limit reached","details":{"error_code":"enforced_spend_limit_reached"}}}"#
        }
    };
    fake.push_fault(Fault::Status {
        status: 429,
        body: body.into(),
        retry_after: Some("1".into()),
    });
    let (events, error) = answer(&*model, user("Hi")).await;
    assert_failed_with_status(&events, error, 429);
    assert_eq!(fake.requests().len(), 1);
}

async fn a_server_error_twice_fails_after_two_requests(kind: Kind) {
    let (fake, model) = setup(kind, ROOMY).await;
    for _ in 0..2 {
        fake.push_fault(Fault::Status {
            status: 500,
            body: String::new(),
            retry_after: None,
        });
    }
    let (events, error) = answer(&*model, user("Hi")).await;
    assert_failed_with_status(&events, error, 500);
    assert_eq!(fake.requests().len(), 2);
}

async fn a_wrong_key_is_refused_without_retry(kind: Kind) {
    let (fake, _) = setup(kind, ROOMY).await;
    let base_url = match &fake {
        Fake::Anthropic(f) => f.base_url(),
        Fake::OpenAi(f) => f.base_url(),
    };
    let model = model(kind, base_url, "sk-wrong", settings(ROOMY));
    let (events, error) = answer(&*model, user("Hi")).await;
    assert_failed_with_status(&events, error, 401);
    assert_eq!(fake.requests().len(), 1);
}

fn assert_timed_out(error: Option<ProviderError>, after: Duration) {
    match error {
        Some(ProviderError::Timeout { after: got, .. }) => assert_eq!(got, after),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

async fn a_hung_server_times_out_at_the_first_token_timeout(kind: Kind) {
    let (fake, model) = setup(kind, FIRST_TOKEN).await;
    fake.push_fault(Fault::Hang);
    let (events, error) = answer(&*model, user("Hi")).await;
    assert!(events.is_empty());
    assert_timed_out(error, FIRST_TOKEN);
    assert_eq!(fake.requests().len(), 1);
}

async fn a_late_first_token_times_out(kind: Kind) {
    let (fake, model) = setup(kind, FIRST_TOKEN).await;
    fake.set_latency(Duration::from_secs(5), Duration::ZERO);
    let (events, error) = answer(&*model, user("Hi")).await;
    assert!(events.is_empty());
    assert_timed_out(error, FIRST_TOKEN);
}

async fn a_short_delay_is_answered(kind: Kind) {
    let (fake, model) = setup(kind, ROOMY).await;
    fake.push_fault(Fault::Delay(Duration::from_millis(50)));
    let (events, error) = answer(&*model, user("Hi")).await;
    assert_eq!((text_of(&events).as_str(), error), (DEFAULT_REPLY, None));
}

async fn silence_between_events_times_out(kind: Kind) {
    let (fake, model) = setup(kind, FIRST_TOKEN).await;
    fake.set_latency(Duration::ZERO, Duration::from_secs(5));
    let (events, error) = answer(&*model, user("Hi")).await;
    assert!(events.is_empty(), "{events:?}");
    assert_timed_out(error, FIRST_TOKEN);
}

/// Each event comes well within the timeout, the whole answer does not: the
/// deadline moves with every event.
async fn steady_tokens_outlast_the_first_token_timeout(kind: Kind) {
    let timeout = Duration::from_millis(600);
    let (fake, model) = setup(kind, timeout).await;
    fake.set_latency(Duration::from_millis(80), Duration::from_millis(80));
    let (events, error) = answer(&*model, user("Hi")).await;
    assert_eq!((text_of(&events).as_str(), error), (DEFAULT_REPLY, None));
}

/// The text before the error, which must be the start of the reply.
fn partial_text(events: &[LlmEvent]) -> String {
    let text = text_of(events);
    assert!(
        DEFAULT_REPLY.starts_with(&text) && text.len() < DEFAULT_REPLY.len(),
        "partial text: {text:?}"
    );
    text
}

fn assert_protocol_error(error: Option<ProviderError>, detail_has: &str) {
    match error {
        Some(ProviderError::Protocol { detail, .. }) => {
            assert!(
                detail.contains(detail_has),
                "{detail:?} lacks {detail_has:?}"
            )
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

async fn a_cut_stream_is_an_error_after_its_partial_text(kind: Kind) {
    let (fake, model) = setup(kind, ROOMY).await;
    fake.push_fault(Fault::CutMidway);
    let (events, error) = answer(&*model, user("Hi")).await;
    assert!(!partial_text(&events).is_empty());
    assert_protocol_error(error, "");
    assert_eq!(fake.requests().len(), 1);
}

async fn malformed_json_is_an_error(kind: Kind) {
    let (fake, model) = setup(kind, ROOMY).await;
    fake.push_fault(Fault::Malformed);
    let (events, error) = answer(&*model, user("Hi")).await;
    partial_text(&events);
    assert_protocol_error(error, "not valid JSON");
}

async fn an_error_in_the_stream_is_an_error(kind: Kind) {
    let (fake, model) = setup(kind, ROOMY).await;
    fake.push_fault(Fault::StreamError);
    let (events, error) = answer(&*model, user("Hi")).await;
    assert!(!partial_text(&events).is_empty());
    let says = match kind {
        Kind::Anthropic => "Overloaded",
        Kind::OpenAi => "The server had an error",
    };
    assert_protocol_error(error, says);
}

/// The reply would take 20 s to stream: only a dropped connection ends the
/// fake's answer within the 5 s waited for.
async fn dropping_the_stream_closes_the_connection(kind: Kind) {
    let (fake, model) = setup(kind, ROOMY).await;
    fake.set_latency(Duration::ZERO, Duration::from_millis(100));
    fake.push_reply(Reply::Text("word ".repeat(200)));
    let mut stream = model.stream(user("Hi"));
    let first = tokio::time::timeout(TEST_LIMIT, stream.next()).await;
    assert!(
        matches!(first, Ok(Some(Ok(LlmEvent::Text(_))))),
        "{first:?}"
    );
    assert_eq!(fake.open_streams(), 1);
    drop(stream);
    let closed = async {
        while fake.open_streams() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), closed)
        .await
        .expect("the fake sees the connection close");
}
