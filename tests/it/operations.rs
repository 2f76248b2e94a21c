//! The operations a public number needs: silence and maximum duration end a
//! call politely, unwanted callers are rejected before answering, and a
//! shutdown says goodbye. (Recordings and caller memory: `kept_and_erased.rs`.)

use std::time::Duration;

use crate::agent_world::{ACCOUNT_SID, Provider, World, hear_mark, say_hello_and_hear};
use crate::harness::{self, WAIT};
use pronto::fakes::llm_reply::Reply;
use pronto::sim::{Call, SimConfig, voice_params};
use reqwest::Method;

const CLOSING: &str = "I'm sorry, I have to end the call now. Thank you for calling, goodbye!";

/// Waits for Pronto to hang up through Twilio REST, then plays Twilio's part.
async fn hung_up_by_pronto(w: &World, call: Call) {
    let updates = w.rest.wait_updates(1, WAIT).await;
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].field("Status"), Some("completed"));
    call.hang_up().await.expect("report");
}

#[tokio::test]
async fn a_silent_caller_is_asked_then_hung_up_on() {
    let w = World::start_with(
        Provider::Anthropic,
        false,
        &[
            ("PRONTO_LIMITS_IDLE_PROMPT_SECS", "1"),
            ("PRONTO_LIMITS_IDLE_HANGUP_SECS", "1"),
        ],
    )
    .await;
    let call = w.dial_and_hear_greeting().await;
    hear_mark(&call, "t1-s0").await; // "Are you still there?"
    hear_mark(&call, "t2-s0").await; // the closing line
    let sid = call.call_sid().to_string();
    let status = w.server.api_status().await;
    let transcript = status["calls"][0]["transcript"].to_string();
    assert!(transcript.contains("Are you still there?"), "{transcript}");
    assert!(transcript.contains(CLOSING), "{transcript}");
    hung_up_by_pronto(&w, call).await;
    assert_eq!(w.server.end_reason(&sid, WAIT).await, "idle");
}

#[tokio::test]
async fn speaking_after_the_prompt_keeps_the_call_going() {
    let w = World::start_with(
        Provider::OpenAi,
        false,
        &[
            ("PRONTO_LIMITS_IDLE_PROMPT_SECS", "1"),
            ("PRONTO_LIMITS_IDLE_HANGUP_SECS", "3"),
        ],
    )
    .await;
    w.audio.push_transcript("Yes, I'm here.");
    w.llm.fake().push_reply(Reply::text("Great."));
    let call = w.dial_and_hear_greeting().await;
    hear_mark(&call, "t1-s0").await; // "Are you still there?"
    say_hello_and_hear(&call, "t2-s0").await;
    assert!(
        w.rest.updates().is_empty(),
        "hung up on a caller who answered"
    );
    call.hang_up().await.expect("report");
}

#[tokio::test]
async fn the_maximum_duration_ends_the_call_with_the_closing_line() {
    let w = World::start_with(
        Provider::Anthropic,
        false,
        &[("PRONTO_LIMITS_MAX_CALL_DURATION_SECS", "3")],
    )
    .await;
    w.audio.set_ms_per_char(60);
    w.audio.push_transcript("Tell me everything.");
    w.llm.fake().push_reply(Reply::text(
        "There is a lot to say about our many products and services, so let me start from the very beginning of the story.",
    ));
    let call = w.dial_and_hear_greeting().await;
    call.say(&harness::fixture("hello.wav"));
    // The long answer is cut by the time limit; the closing line follows.
    harness::expect_event(&call, "clear", |e| {
        matches!(e, pronto::sim::Event::ClearReceived { .. })
    })
    .await;
    hear_mark(&call, "t2-s0").await;
    let sid = call.call_sid().to_string();
    hung_up_by_pronto(&w, call).await;
    assert_eq!(w.server.end_reason(&sid, WAIT).await, "max_duration");
    let (_, record) = w
        .server
        .api(Method::GET, &format!("/api/calls/{sid}"), None)
        .await;
    let turns = record["turns"].as_array().expect("turns");
    assert_eq!(
        turns.last().expect("a turn")["agent_heard"],
        CLOSING,
        "{record}"
    );
    assert_eq!(turns[1]["interrupted"], true, "{record}");
}

#[tokio::test]
async fn denied_and_too_frequent_callers_are_rejected_before_answering() {
    let w = World::start_with(
        Provider::Anthropic,
        false,
        &[
            ("PRONTO_LIMITS_DENY_NUMBERS", "+15550006666"),
            ("PRONTO_LIMITS_CALLS_PER_HOUR_PER_NUMBER", "2"),
        ],
    )
    .await;
    let voice = |from: &str, n: u32| {
        let mut cfg = SimConfig::new("http://unused");
        cfg.from = from.into();
        voice_params(&cfg, &format!("CA{n:032x}"), ACCOUNT_SID)
    };
    let (status, twiml) = w
        .server
        .post_signed("/voice", &voice("+15550006666", 1))
        .await;
    assert_eq!(status, 200);
    assert!(twiml.contains("<Reject/>"), "{twiml}");
    for n in 2..=3 {
        let (_, twiml) = w
            .server
            .post_signed("/voice", &voice("+15550007777", n))
            .await;
        assert!(twiml.contains("<Connect>"), "call {n}: {twiml}");
        // The call's row is written behind the answer.
        let deadline = tokio::time::Instant::now() + WAIT;
        while w
            .server
            .api(Method::GET, &format!("/api/calls/CA{n:032x}"), None)
            .await
            .0
            != 200
        {
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (_, twiml) = w
        .server
        .post_signed("/voice", &voice("+15550007777", 4))
        .await;
    assert!(
        twiml.contains("<Reject/>"),
        "third call within the hour: {twiml}"
    );
    let (_, twiml) = w
        .server
        .post_signed("/voice", &voice("+15550008888", 5))
        .await;
    assert!(
        twiml.contains("<Connect>"),
        "another caller is not limited: {twiml}"
    );
    let (_, rejected) = w
        .server
        .api(Method::GET, &format!("/api/calls/CA{:032x}", 1), None)
        .await;
    assert_eq!(rejected["end_reason"], "rejected", "{rejected}");
}

#[tokio::test]
async fn shutdown_lets_calls_finish_then_says_goodbye() {
    let mut w = World::start_with(
        Provider::Anthropic,
        false,
        &[("PRONTO_SERVER_DRAIN_TIMEOUT_SECS", "1")],
    )
    .await;
    let call = w.dial_and_hear_greeting().await;
    w.server.begin_shutdown();
    // New callers hear the busy message meanwhile.
    let (status, twiml) = w
        .server
        .post_signed(
            "/voice",
            &voice_params(
                &SimConfig::new("http://unused"),
                "CA00000000000000000000000000000042",
                ACCOUNT_SID,
            ),
        )
        .await;
    assert_eq!(status, 200);
    assert!(twiml.contains("busy"), "{twiml}");
    // After the drain time, the live call hears the closing line and ends.
    hear_mark(&call, "t1-s0").await;
    let sid = call.call_sid().to_string();
    hung_up_by_pronto(&w, call).await;
    assert_eq!(end_reason_after_stop(&mut w, &sid).await, "shutdown");
}

/// The server stops: the record is read from its database file afterwards.
async fn end_reason_after_stop(w: &mut World, sid: &str) -> String {
    let url = w.server.state.config.deployment.database_url.clone();
    let store = w.server.state.store.clone();
    let _ = tokio::time::timeout(WAIT, async {
        while w.server.state.switchboard.live_calls() > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(reason) = store
            .get_call(sid)
            .await
            .expect("store")
            .and_then(|call| call.call.end_reason)
        {
            return reason.to_string();
        }
        assert!(tokio::time::Instant::now() < deadline, "no end in {url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
