//! Provider faults during a call: whatever fails, the caller hears the
//! fallback line, the failure is in the call's events, and the next turn works.

use crate::agent_world::{FALLBACK, Provider, World, conversation, pair, say_hello_and_hear};
use pronto::fakes::Fault;
use pronto::fakes::llm_reply::Reply;

fn status(code: u16) -> Fault {
    Fault::Status {
        status: code,
        body: String::new(),
        retry_after: None,
    }
}

/// Turn 1 meets the fault set up by `inject`; the caller must hear the
/// fallback line, and turn 2 must be answered normally.
async fn fallback_then_recovery(provider: Provider, what: &str, inject: impl FnOnce(&World)) {
    let w = World::start(provider).await;
    w.audio.push_transcript("First question.");
    w.audio.push_transcript("Second question.");
    inject(&w);
    let call = w.dial_and_hear_greeting().await;
    say_hello_and_hear(&call, "t1-s0").await;
    let status = w.server.wait_turns(1).await;
    let turn = &status["calls"][0]["transcript"][1];
    assert!(
        turn["agent_heard"]
            .as_str()
            .is_some_and(|h| h.ends_with(FALLBACK)),
        "{what}: the fallback line was not heard: {status}"
    );
    let events = status["calls"][0]["events"].to_string();
    assert!(events.contains("provider_error"), "{what}: {events}");

    w.llm
        .fake()
        .push_reply(Reply::text("Here is the second answer."));
    say_hello_and_hear(&call, "t2-s0").await;
    let status = w.server.wait_turns(2).await;
    assert_eq!(
        status["calls"][0]["transcript"][2]["agent_heard"], "Here is the second answer.",
        "{what}: {status}"
    );
    let report = call.hang_up().await.expect("report");
    assert!(report.protocol_errors().is_empty(), "{what}: {report}");
}

#[tokio::test]
async fn stt_server_errors() {
    fallback_then_recovery(Provider::Anthropic, "STT 500 twice", |w| {
        w.audio.push_stt_fault(status(500));
        w.audio.push_stt_fault(status(500));
    })
    .await;
}

#[tokio::test]
async fn stt_that_never_answers() {
    fallback_then_recovery(Provider::OpenAi, "STT hangs", |w| {
        w.audio.push_stt_fault(Fault::Hang);
    })
    .await;
}

#[tokio::test]
async fn llm_rate_limit_is_retried_once_and_succeeds() {
    let w = World::start(Provider::Anthropic).await;
    w.audio.push_transcript("Hello?");
    w.llm.fake().push_fault(Fault::Status {
        status: 429,
        body: String::new(),
        retry_after: Some("1".into()),
    });
    w.llm.fake().push_reply(Reply::text("Hello, I'm here."));
    let call = w.dial_and_hear_greeting().await;
    say_hello_and_hear(&call, "t1-s0").await;
    assert_eq!(w.llm_requests().len(), 2, "one retry");
    let status = w.server.wait_turns(1).await;
    assert_eq!(
        status["calls"][0]["transcript"][1]["agent_heard"],
        "Hello, I'm here."
    );
    call.hang_up().await.expect("report");
}

#[tokio::test]
async fn claude_overloaded_mid_stream() {
    fallback_then_recovery(Provider::Anthropic, "Anthropic error event", |w| {
        w.llm.fake().push_reply(Reply::text(
            "Let me check that for you right now. It will take a moment. Thanks for waiting.",
        ));
        w.llm.fake().push_fault(Fault::StreamError);
    })
    .await;
}

#[tokio::test]
async fn gpt_stream_cut_midway() {
    fallback_then_recovery(Provider::OpenAi, "OpenAI stream cut", |w| {
        w.llm.fake().push_reply(Reply::text(
            "Let me check that for you right now. It will take a moment. Thanks for waiting.",
        ));
        w.llm.fake().push_fault(Fault::CutMidway);
    })
    .await;
}

#[tokio::test]
async fn llm_that_never_answers() {
    fallback_then_recovery(Provider::Anthropic, "LLM hangs", |w| {
        w.llm.fake().push_fault(Fault::Hang);
    })
    .await;
}

#[tokio::test]
async fn gpt_malformed_stream() {
    fallback_then_recovery(Provider::OpenAi, "malformed SSE", |w| {
        w.llm.fake().push_fault(Fault::Malformed);
    })
    .await;
}

#[tokio::test]
async fn llm_quota_exhausted_is_not_retried() {
    fallback_then_recovery(Provider::OpenAi, "insufficient_quota", |w| {
        w.llm.fake().push_fault(Fault::Status {
            status: 429,
            body: r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#.into(),
            retry_after: Some("1".into()),
        });
    })
    .await;
}

#[tokio::test]
async fn tts_server_errors() {
    fallback_then_recovery(Provider::Anthropic, "TTS 500 twice", |w| {
        // One sentence, so that both faults hit its request and its retry.
        w.llm.fake().push_reply(Reply::text("One sentence only."));
        w.audio.push_tts_fault(status(500));
        w.audio.push_tts_fault(status(500));
    })
    .await;
}

#[tokio::test]
async fn tts_that_never_answers() {
    fallback_then_recovery(Provider::OpenAi, "TTS hangs", |w| {
        w.llm.fake().push_reply(Reply::text("One sentence only."));
        w.audio.push_tts_fault(Fault::Hang);
    })
    .await;
}

#[tokio::test]
async fn a_failed_turn_leaves_the_conversation_consistent() {
    let w = World::start(Provider::Anthropic).await;
    w.audio.push_transcript("First question.");
    w.audio.push_transcript("Second question.");
    w.llm.fake().push_fault(Fault::Status {
        status: 400,
        body: String::new(),
        retry_after: None,
    });
    let call = w.dial_and_hear_greeting().await;
    say_hello_and_hear(&call, "t1-s0").await;
    say_hello_and_hear(&call, "t2-s0").await;
    let (_, messages) = conversation(&w.llm_request(2).await);
    assert_eq!(
        messages,
        vec![
            pair("user", "First question."),
            pair("assistant", FALLBACK),
            pair("user", "Second question."),
        ]
    );
    call.hang_up().await.expect("report");
}
