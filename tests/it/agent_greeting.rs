//! The greeting and the language of the line: the greeting plays the instant
//! the stream starts, cannot be talked over unless configured so, and an
//! Italian line is understood, prompted and spoken in Italian.

use std::time::Duration;

use crate::agent_world::{
    LINES, Provider, World, conversation, dial_until_greeting_starts, hear_mark, pair,
    say_hello_and_hear,
};
use crate::harness::{WAIT, expect_event, fixture};
use pronto::fakes::llm_reply::Reply;
use pronto::sim::Event;

/// About 3 s of greeting at the fake's 15 ms per character.
const LONG_GREETING: &str = "Good morning and thank you for calling the Pronto test line, where every call is answered by a patient agent who is happy to help you with opening hours, prices and bookings.";

#[tokio::test]
async fn health_says_agent_mode() {
    let w = World::start(Provider::Anthropic).await;
    let (status, health) = w.server.get_json("/health", None).await;
    assert_eq!(status, 200);
    assert_eq!(health["mode"], "agent", "{health}");
}

#[tokio::test]
async fn the_greeting_cannot_be_talked_over_by_default() {
    let w = World::start_with(
        Provider::OpenAi,
        false,
        &[("PRONTO_LINES_EN_GREETING", LONG_GREETING)],
    )
    .await;
    w.audio.push_transcript("I have a question.");
    w.llm.fake().push_reply(Reply::text("Go ahead."));
    let call = dial_until_greeting_starts(&w).await;
    say_hello_and_hear(&call, "t0-s0").await;
    assert!(
        !call
            .events()
            .iter()
            .any(|e| matches!(e.event, Event::ClearReceived { .. })),
        "the greeting was cleared"
    );
    assert!(
        w.audio.stt_requests().is_empty(),
        "speech over the greeting was answered"
    );
    say_hello_and_hear(&call, "t1-s0").await;
    let (_, messages) = conversation(&w.llm_request(1).await);
    assert_eq!(messages, vec![pair("user", "I have a question.")]);
    call.hang_up().await.expect("report");
}

#[tokio::test]
async fn an_interruptible_greeting_gives_way_to_the_caller() {
    let w = World::start_with(
        Provider::Anthropic,
        false,
        &[
            ("PRONTO_LINES_EN_GREETING", LONG_GREETING),
            ("PRONTO_AGENT_GREETING_INTERRUPTIBLE", "true"),
        ],
    )
    .await;
    w.audio.push_transcript("Sorry, I'm in a hurry.");
    w.llm
        .fake()
        .push_reply(Reply::text("No problem, how can I help?"));
    let call = dial_until_greeting_starts(&w).await;
    call.say(&fixture("hello.wav"));
    expect_event(&call, "clear", |e| matches!(e, Event::ClearReceived { .. })).await;
    call.wait_said().await.expect("said");
    hear_mark(&call, "t1-s0").await;
    let (system, messages) = conversation(&w.llm_request(1).await);
    assert_eq!(messages, vec![pair("user", "Sorry, I'm in a hurry.")]);
    // The greeting was cut before its mark came back: the LLM is not told it was said.
    assert!(!system.contains("You opened the call"), "{system}");
    call.hang_up().await.expect("report");
}

#[tokio::test]
async fn an_italian_line_is_understood_prompted_and_spoken_in_italian() {
    let w = World::start_with(
        Provider::Anthropic,
        false,
        &[("PRONTO_AGENT_LANGUAGE", "it")],
    )
    .await;
    w.audio
        .push_transcript("Buongiorno, a che ora riceve il dottore?");
    w.llm.fake().push_reply(Reply::text(
        "Il Dott. Rossi riceve alle 10:30, anche sabato. Vuole che le fissi un appuntamento?",
    ));
    let call = w.dial_and_hear_greeting().await;
    say_hello_and_hear(&call, "t1-s1").await;

    let stt = w.audio.stt_requests();
    assert_eq!(stt[0].language.as_deref(), Some("it"), "{stt:?}");
    let texts = w.tts_texts();
    assert!(
        texts.contains(&"Buongiorno, grazie per aver chiamato! Come posso aiutarla?".to_string()),
        "{texts:?}"
    );
    assert_eq!(
        texts[LINES..],
        [
            // The answer's first clause goes to TTS on its own, so the
            // caller hears it sooner; "Dott." and "10:30" are not breaks.
            "Il Dott. Rossi riceve alle 10:30,",
            "anche sabato.",
            "Vuole che le fissi un appuntamento?"
        ]
    );
    let (system, _) = conversation(&w.llm_request(1).await);
    assert!(system.contains("Always answer in Italian"), "{system}");
    tokio::time::timeout(WAIT, async {
        while w.server.api_status().await["calls"][0]["state"] != "listening" {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the turn ends");
    call.hang_up().await.expect("report");
}
