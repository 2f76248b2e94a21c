//! Full calls in agent mode: the simulator plays the caller and Twilio, the
//! fakes play OpenAI, Anthropic, ElevenLabs and Twilio REST. Each test checks
//! what a user would notice: what the caller hears and when, what the LLM is
//! told (the conversation, with only what the caller heard), what Twilio is
//! asked to do, and what `/api/status` records.

use crate::agent_world::{
    ACCOUNT_SID, FALLBACK, GREETING, LINES, Provider, TRANSFER_TO, World, conversation, hear_mark,
    pair, say_hello_and_hear,
};
use crate::harness::{WAIT, expect_event, fixture};
use pronto::fakes::llm_reply::Reply;
use pronto::sim::Event;
use serde_json::json;

async fn greeting_then_two_turns(provider: Provider) {
    let w = World::start(provider).await;
    w.audio.push_transcript("What time do you open?");
    w.audio.push_transcript("And on Saturday?");
    w.llm
        .fake()
        .push_reply(Reply::text("We open at nine. Every day of the week."));
    w.llm
        .fake()
        .push_reply(Reply::text("On Saturday we open at ten."));

    let call = w.dial_and_hear_greeting().await;
    // The greeting is heard before the caller says anything, and before any LLM request.
    assert!(w.llm_requests().is_empty());

    say_hello_and_hear(&call, "t1-s0").await;
    hear_mark(&call, "t1-s1").await;
    let status = w.server.wait_turns(1).await;

    say_hello_and_hear(&call, "t2-s0").await;

    let (system, messages) = conversation(&w.llm_request(2).await);
    assert!(
        system.contains("You opened the call by saying: \"Hello, thanks for calling!"),
        "{system}"
    );
    assert!(system.contains("Always answer in English"), "{system}");
    assert!(
        system.contains("The caller's number: +15551230001."),
        "{system}"
    );
    assert_eq!(
        messages,
        vec![
            pair("user", "What time do you open?"),
            pair("assistant", "We open at nine. Every day of the week."),
            pair("user", "And on Saturday?"),
        ]
    );
    // One TTS request per sentence, after the four fixed lines.
    assert_eq!(
        w.tts_texts()[LINES..],
        [
            "We open at nine.",
            "Every day of the week.",
            "On Saturday we open at ten."
        ]
    );

    // /api/status records the turn with its stage timings.
    let turn = &status["calls"][0]["transcript"][1];
    assert_eq!(turn["caller"], "What time do you open?", "{status}");
    assert_eq!(
        turn["agent_heard"],
        "We open at nine. Every day of the week."
    );
    assert_eq!(turn["interrupted"], false);
    for key in [
        "stt_ms",
        "llm_first_token_ms",
        "first_sentence_ms",
        "tts_first_byte_ms",
        "voice_to_voice_ms",
        "pipeline_overhead_ms",
    ] {
        assert!(turn["latency"][key].is_number(), "{key} missing: {turn}");
    }
    assert_eq!(status["calls"][0]["transcript"][0]["agent_heard"], GREETING);
    assert!(status["calls"][0]["greeting_ms"].is_number(), "{status}");

    let report = call.hang_up().await.expect("report");
    assert!(report.protocol_errors().is_empty(), "{report}");
}

#[tokio::test]
async fn claude_greets_and_answers_two_turns() {
    greeting_then_two_turns(Provider::Anthropic).await;
}

#[tokio::test]
async fn gpt_greets_and_answers_two_turns() {
    greeting_then_two_turns(Provider::OpenAi).await;
}

async fn barge_in_keeps_only_heard_sentences(provider: Provider) {
    let w = World::start(provider).await;
    // Long sentences: 60 ms of audio per character.
    w.audio.set_ms_per_char(60);
    w.audio.push_transcript("Tell me about your prices.");
    w.audio.push_transcript("Wait, are you open today?");
    w.llm.fake().push_reply(Reply::text(
        "Our basic plan costs ten euros. The premium plan costs twenty euros and includes support. There is also a family plan, which costs thirty euros and covers up to five people in the same household.",
    ));
    w.llm.fake().set_latency(
        std::time::Duration::ZERO,
        std::time::Duration::from_millis(120),
    );
    w.llm.fake().push_reply(Reply::text("Yes, until six."));

    let call = w.dial_and_hear_greeting().await;
    say_hello_and_hear(&call, "t1-s0").await;
    // The second sentence is playing: the caller talks over it.
    call.say(&fixture("hello.wav"));
    expect_event(&call, "clear", |e| matches!(e, Event::ClearReceived { .. })).await;
    // The LLM was still writing (one word every 120 ms): its stream is cancelled.
    let deadline = tokio::time::Instant::now() + WAIT;
    while w.llm.fake().open_streams() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the LLM stream was not cancelled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    call.wait_said().await.expect("said");
    hear_mark(&call, "t2-s0").await;

    let (_, messages) = conversation(&w.llm_request(2).await);
    assert_eq!(
        messages,
        vec![
            pair("user", "Tell me about your prices."),
            pair("assistant", "Our basic plan costs ten euros."),
            pair("user", "Wait, are you open today?"),
        ]
    );
    let status = w.server.wait_turns(2).await;
    let interrupted = &status["calls"][0]["transcript"][1];
    assert_eq!(interrupted["interrupted"], true, "{status}");
    assert_eq!(
        interrupted["agent_heard"],
        "Our basic plan costs ten euros."
    );
    assert!(
        interrupted["agent_said"]
            .as_str()
            .is_some_and(|s| s.starts_with("Our basic plan costs ten euros. The premium plan")),
        "{interrupted}"
    );
    let report = call.hang_up().await.expect("report");
    assert!(report.protocol_errors().is_empty(), "{report}");
}

#[tokio::test]
async fn claude_barge_in_keeps_only_what_was_heard() {
    barge_in_keeps_only_heard_sentences(Provider::Anthropic).await;
}

#[tokio::test]
async fn gpt_barge_in_keeps_only_what_was_heard() {
    barge_in_keeps_only_heard_sentences(Provider::OpenAi).await;
}

async fn end_call_hangs_up_after_the_goodbye(provider: Provider) {
    let w = World::start(provider).await;
    w.audio.push_transcript("That's all, thank you.");
    w.llm.fake().push_reply(Reply::Tool {
        text: "You're welcome, goodbye!".into(),
        name: "end_call".into(),
        arguments: json!({}),
    });
    let call = w.dial_and_hear_greeting().await;
    say_hello_and_hear(&call, "t1-s0").await;
    let updates = w.rest.wait_updates(1, WAIT).await;
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].account_sid, ACCOUNT_SID);
    assert_eq!(updates[0].call_sid, call.call_sid());
    assert_eq!(
        updates[0].form,
        vec![("Status".to_string(), "completed".to_string())]
    );
    // The tools were offered.
    let request = w.llm_request(1).await;
    assert!(request.to_string().contains("end_call"), "{request}");
    assert!(request.to_string().contains("transfer_call"), "{request}");
    let status = w.server.api_status().await;
    let events = status["calls"][0]["events"].to_string();
    assert!(
        events.contains("\"action\":\"end_call\"") && events.contains("hung up"),
        "{events}"
    );
    call.hang_up().await.expect("report");
}

#[tokio::test]
async fn claude_ends_the_call_through_twilio_rest() {
    end_call_hangs_up_after_the_goodbye(Provider::Anthropic).await;
}

#[tokio::test]
async fn gpt_ends_the_call_through_twilio_rest() {
    end_call_hangs_up_after_the_goodbye(Provider::OpenAi).await;
}

#[tokio::test]
async fn a_call_twilio_already_ended_is_not_an_error() {
    let w = World::start(Provider::Anthropic).await;
    w.audio.push_transcript("Bye.");
    w.llm.fake().push_reply(Reply::Tool {
        text: String::new(),
        name: "end_call".into(),
        arguments: json!({}),
    });
    let call = w.dial_and_hear_greeting().await;
    w.rest.mark_ended(call.call_sid());
    call.say(&fixture("hello.wav"));
    call.wait_said().await.expect("said");
    // The agent said nothing itself: the configured goodbye is spoken.
    hear_mark(&call, "t1-s0").await;
    assert_eq!(
        w.tts_texts().len(),
        LINES,
        "the goodbye came from the cache"
    );
    w.rest.wait_updates(1, WAIT).await;
    let status = w
        .server
        .wait_status("the action recorded", |s| {
            s["calls"][0]["events"]
                .to_string()
                .contains("already ended")
        })
        .await;
    assert_eq!(
        status["calls"][0]["transcript"][1]["agent_heard"],
        "Thank you for calling. Goodbye!"
    );
    call.hang_up().await.expect("report");
}

#[tokio::test]
async fn transfer_call_dials_the_configured_number_after_the_handover() {
    let w = World::start(Provider::OpenAi).await;
    w.audio.push_transcript("Can I speak to a person?");
    w.llm.fake().push_reply(Reply::Tool {
        text: "Of course, I'm transferring you now.".into(),
        name: "transfer_call".into(),
        arguments: json!({"reason": "asked for a person"}),
    });
    let call = w.dial_and_hear_greeting().await;
    say_hello_and_hear(&call, "t1-s0").await;
    let updates = w.rest.wait_updates(1, WAIT).await;
    let twiml = updates[0].field("Twiml").expect("Twiml sent");
    assert!(
        twiml.contains(&format!("<Dial>{TRANSFER_TO}</Dial>")),
        "{twiml}"
    );
    assert_eq!(updates[0].form.len(), 1, "{updates:?}");
    call.hang_up().await.expect("report");
}

#[tokio::test]
async fn keypad_digits_reach_the_llm_as_one_message() {
    let w = World::start(Provider::Anthropic).await;
    w.llm
        .fake()
        .push_reply(Reply::text("You pressed one and two."));
    let call = w.dial_and_hear_greeting().await;
    call.dtmf('1');
    call.dtmf('2');
    call.dtmf('#');
    hear_mark(&call, "t1-s0").await;
    let (_, messages) = conversation(&w.llm_request(1).await);
    assert_eq!(messages, vec![pair("user", "[keypad: 1 2 #]")]);
    assert!(
        w.audio.stt_requests().is_empty(),
        "digits need no transcription"
    );
    call.hang_up().await.expect("report");
}

#[tokio::test]
async fn an_empty_transcript_gets_no_answer() {
    let w = World::start(Provider::Anthropic).await;
    w.audio.push_transcript("");
    w.audio.push_transcript("Hello?");
    let call = w.dial_and_hear_greeting().await;
    call.say(&fixture("hello.wav"));
    call.wait_said().await.expect("said");
    w.server
        .wait_status("the noise turn dropped", |s| {
            s["calls"][0]["turns"] == 1 && s["calls"][0]["state"] == "listening"
        })
        .await;
    assert!(w.llm_requests().is_empty(), "noise was answered");
    say_hello_and_hear(&call, "t2-s0").await;
    let (_, messages) = conversation(&w.llm_request(1).await);
    assert_eq!(messages, vec![pair("user", "Hello?")]);
    call.hang_up().await.expect("report");
}

#[tokio::test]
async fn elevenlabs_speaks_the_greeting_and_the_answers() {
    let w = World::start_with(Provider::OpenAi, true, &[]).await;
    w.audio.push_transcript("Hi there.");
    w.llm.fake().push_reply(Reply::text("Hi! How can I help?"));
    let call = w.dial_and_hear_greeting().await;
    say_hello_and_hear(&call, "t1-s1").await;
    let eleven = w.eleven.as_ref().expect("elevenlabs");
    let texts: Vec<String> = eleven.requests().into_iter().map(|r| r.text).collect();
    assert!(texts.contains(&GREETING.to_string()), "{texts:?}");
    assert_eq!(texts[LINES..], ["Hi!", "How can I help?"]);
    assert!(w.audio.tts_requests().is_empty(), "OpenAI TTS was used");
    assert!(
        eleven
            .requests()
            .iter()
            .all(|r| r.output_format.as_deref() == Some("ulaw_8000"))
    );
    let _ = FALLBACK;
    call.hang_up().await.expect("report");
}
