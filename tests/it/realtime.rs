//! The OpenAI Realtime engine through the real server: the simulated
//! caller talks to Pronto as Twilio does, and Pronto talks to the fake
//! Realtime API over a real WebSocket. The caller hears the model's μ-law
//! as it was sent; a barge-in truncates the model's item where the caller
//! stopped hearing it; the record holds both sides' words and the usage; a
//! session that does not take μ-law, or refuses the key, ends the call
//! politely without a byte of its audio played.

use std::time::Duration;

use pronto::audio::mulaw;
use pronto::fakes::openai_audio::FakeOpenAiAudio;
use pronto::fakes::realtime_voice::{
    FakeRealtimeVoice, Latency, RealtimeVoiceConnection, RealtimeVoiceFault, Reply, reply_audio,
};
use pronto::fakes::twilio_rest::FakeTwilioRest;
use pronto::sim::{Call, Event};
use serde_json::Value;

use crate::agent_world::ACCOUNT_SID;
use crate::harness::{
    API_TOKEN, AUTH_TOKEN, TestServer, WAIT, eventually, expect_event, find, fixture,
};

const GREETING: &str = "Hello, thanks for calling! How can I help you today?";

struct World {
    server: TestServer,
    model: FakeRealtimeVoice,
    /// The cascade's text-to-speech: Pronto's fixed lines when the model
    /// cannot speak.
    _lines: FakeOpenAiAudio,
    rest: FakeTwilioRest,
}

impl World {
    async fn start(setup: impl FnOnce(&FakeRealtimeVoice)) -> World {
        let model = FakeRealtimeVoice::start().await;
        setup(&model);
        let lines = FakeOpenAiAudio::start().await;
        lines.set_ms_per_char(15);
        let rest = FakeTwilioRest::start(ACCOUNT_SID, AUTH_TOKEN).await;
        let (model_url, lines_url, rest_url) = (
            model.base_url().to_string(),
            lines.base_url().to_string(),
            rest.base_url().to_string(),
        );
        let server = TestServer::agent(
            &[
                ("PRONTO_ENGINE_KIND", "openai-realtime"),
                ("OPENAI_API_KEY", "sk-test-openai"),
                ("OPENAI_BASE_URL", &model_url),
                ("PRONTO_TTS_BASE_URL", &lines_url),
                ("PRONTO_STT_BASE_URL", &lines_url),
                ("PRONTO_LLM_BASE_URL", &lines_url),
                ("TWILIO_ACCOUNT_SID", ACCOUNT_SID),
                ("TWILIO_API_BASE_URL", &rest_url),
            ],
            None,
        )
        .await;
        World {
            server,
            model,
            _lines: lines,
            rest,
        }
    }

    async fn dial(&self) -> Call {
        Call::dial(&self.server.sim()).await.expect("call connects")
    }

    /// Dials, hears the greeting to its end, and says hello.
    async fn dial_and_ask(&self) -> Call {
        let call = self.dial().await;
        expect_event(&call, "the greeting heard", |e| {
            matches!(e, Event::AudioHeardEnd)
        })
        .await;
        say_hello(&call);
        call
    }

    /// The latest connection to the model, once it has `what`.
    async fn connection(
        &self,
        what: &str,
        done: impl Fn(&RealtimeVoiceConnection) -> bool,
    ) -> RealtimeVoiceConnection {
        eventually(what, || {
            self.model
                .connections()
                .into_iter()
                .next_back()
                .filter(|c| done(c))
        })
        .await
    }

    /// The call's record once it has ended.
    async fn record(&self, sid: &str) -> Value {
        self.server.end_reason(sid, WAIT).await;
        let (_, call) = self
            .server
            .get_json(&format!("/api/calls/{sid}"), Some(API_TOKEN))
            .await;
        call
    }
}

/// The model's reply `index` as the caller hears it (decoded μ-law).
fn heard_reply(index: usize, bytes: usize) -> Vec<i16> {
    mulaw::decode(&reply_audio(index, bytes))
}

/// The caller says hello; the model's next reply is `reply`.
fn say_hello(call: &Call) {
    call.say(&fixture("hello.wav"));
}

#[tokio::test]
async fn the_caller_hears_the_models_mulaw_as_sent_and_the_record_has_both_sides() {
    let w = World::start(|m| {
        m.push_transcript("What time do you open?");
        m.push_reply(Reply::say("We open at nine."));
    })
    .await;
    let call = w.dial().await;
    let c = w
        .connection("the session is set up", |c| !c.session_updates.is_empty())
        .await;
    assert!(
        c.authorization && !c.beta_header,
        "Bearer key, no beta header"
    );
    assert_eq!(c.model.as_deref(), Some("gpt-realtime"));
    let session = &c.session_updates[0]["session"];
    assert_eq!(session["type"], "realtime");
    assert_eq!(session["audio"]["input"]["format"]["type"], "audio/pcmu");
    assert_eq!(session["audio"]["output"]["format"]["type"], "audio/pcmu");
    assert!(
        session["instructions"]
            .as_str()
            .is_some_and(|i| i.contains("Always answer in English")),
        "the cascade's prompt and language: {session}"
    );

    // The greeting, spoken by the model.
    let greeting = w
        .connection("the greeting", |c| {
            c.replies.first().is_some_and(|r| r.status == "completed")
        })
        .await;
    assert_eq!(greeting.replies[0].transcript, GREETING);
    expect_event(&call, "the greeting heard", |e| {
        matches!(e, Event::AudioHeardEnd)
    })
    .await;

    say_hello(&call);
    call.wait_said().await.expect("said");
    let c = w
        .connection("the answer", |c| {
            c.replies.get(1).is_some_and(|r| r.status == "completed")
        })
        .await;
    let answer = &c.replies[1];
    w.server.wait_turns(1).await;
    let heard = call.heard();
    assert!(
        find(&heard, &heard_reply(0, greeting.replies[0].audio_bytes)).is_some(),
        "the greeting's audio, byte for byte"
    );
    assert!(
        find(&heard, &heard_reply(1, answer.audio_bytes)).is_some(),
        "the answer's audio, byte for byte"
    );
    assert!(c.audio_bytes > 8000, "the caller's audio went to the model");
    assert!(c.truncates.is_empty(), "nothing was interrupted");

    let sid = call.call_sid().to_string();
    call.hang_up().await.expect("hang up");
    let record = w.record(&sid).await;
    let turns = record["turns"].as_array().cloned().unwrap_or_default();
    assert_eq!(turns[0]["agent_heard"], GREETING, "{turns:?}");
    assert_eq!(turns[1]["caller"], "What time do you open?", "{turns:?}");
    assert_eq!(turns[1]["agent_heard"], "We open at nine.", "{turns:?}");
    let latency = &turns[1]["latency"];
    assert_eq!(latency["decided_by"], "provider", "{latency}");
    assert!(latency["model_first_audio_ms"].is_u64(), "{latency}");
    assert!(latency["voice_to_voice_ms"].is_u64(), "{latency}");
    let overhead = latency["pipeline_overhead_ms"].as_i64().expect("overhead");
    assert!((0..200).contains(&overhead), "Pronto's part: {latency}");
    let usage: Vec<&Value> = record["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == "usage")
        .collect();
    assert_eq!(usage.len(), 2, "one per response: {usage:?}");
    assert!(
        usage[1]["detail"]["audio_out"].as_u64().unwrap_or(0) > 0,
        "{usage:?}"
    );
    assert!(
        usage[1]["detail"]["cost_microusd"].as_u64().unwrap_or(0) > 0,
        "{usage:?}"
    );
    let total = &record["usage"];
    assert_eq!(
        total["audio_out"].as_u64(),
        Some(
            usage
                .iter()
                .filter_map(|u| u["detail"]["audio_out"].as_u64())
                .sum()
        ),
        "the call's total: {record}"
    );
    let (_, health) = w.server.get_json("/health", None).await;
    assert_eq!(health["mode"], "openai-realtime", "{health}");
}

#[tokio::test]
async fn a_barge_in_truncates_the_models_item_where_the_caller_stopped_hearing_it() {
    let text = "We are open every day from nine in the morning to six in the evening, and on Sundays from ten to four.";
    let w = World::start(|m| {
        m.push_transcript("When are you open?");
        m.push_reply(Reply::say(text).with_audio_ms(5000));
    })
    .await;
    let call = w.dial_and_ask().await;
    expect_event(&call, "the caller's speech", |e| {
        matches!(e, Event::SpeechEnd { .. })
    })
    .await;
    expect_event(&call, "the answer starts", |e| {
        matches!(e, Event::AudioHeardStart)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    say_hello(&call);
    expect_event(&call, "the answer cleared", |e| {
        matches!(e, Event::ClearReceived { .. })
    })
    .await;
    let c = w
        .connection("the truncate", |c| !c.truncates.is_empty())
        .await;
    let truncate = &c.truncates[0];
    assert!(truncate.accepted, "{truncate:?}");
    assert_eq!(Some(&truncate.item_id), c.replies[1].item_id.as_ref());
    // What the caller heard of the answer: its samples in the heard track.
    let heard = call.heard();
    let reply = heard_reply(1, c.replies[1].audio_bytes);
    let start = find(&heard, &reply[..800]).expect("the answer was heard");
    let heard_samples = heard[start..]
        .iter()
        .zip(&reply)
        .take_while(|(a, b)| a == b)
        .count() as i64;
    let heard_ms = heard_samples / 8;
    let told = truncate.audio_end_ms as i64;
    assert!(
        (told - heard_ms).abs() <= 20,
        "truncated at {told} ms; the caller heard {heard_ms} ms"
    );

    let sid = call.call_sid().to_string();
    w.server.wait_turns(2).await;
    call.hang_up().await.expect("hang up");
    let record = w.record(&sid).await;
    let turn = &record["turns"][1];
    assert_eq!(turn["interrupted"], true, "{turn}");
    assert_eq!(turn["heard_approximate"], true, "{turn}");
    let heard_text = turn["agent_heard"].as_str().unwrap_or("");
    assert!(
        !heard_text.is_empty() && text.starts_with(heard_text) && heard_text.len() < text.len() / 2,
        "about a quarter of it: {turn}"
    );
    assert_eq!(turn["agent_said"], text, "{turn}");
}

#[tokio::test]
async fn the_callers_words_arriving_after_the_answer_go_into_its_turn() {
    let w = World::start(|m| {
        m.push_transcript("Do you repair bikes?");
        m.push_reply(Reply::say("Yes."));
        m.set_latency(Latency {
            transcript: Duration::from_millis(1500),
            ..m.latency()
        });
    })
    .await;
    let call = w.dial_and_ask().await;
    w.server.wait_turns(1).await;
    let sid = call.call_sid().to_string();
    // The turn is recorded before the words come; then it is amended.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, record) = w
            .server
            .get_json(&format!("/api/calls/{sid}"), Some(API_TOKEN))
            .await;
        if record["turns"][1]["caller"] == "Do you repair bikes?" {
            assert_eq!(record["turns"][1]["agent_heard"], "Yes.");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{record}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    call.hang_up().await.expect("hang up");
}

#[tokio::test]
async fn end_call_hangs_up_after_the_goodbye_is_heard() {
    let w = World::start(|m| {
        m.push_transcript("That's all, bye.");
        m.push_reply(Reply::say_then_call("Goodbye!", "end_call", "{}"));
    })
    .await;
    let call = w.dial_and_ask().await;
    let sid = call.call_sid().to_string();
    assert_eq!(w.server.end_reason(&sid, WAIT).await, "agent_hung_up");
    let updates = w.rest.updates();
    assert_eq!(
        updates
            .iter()
            .map(|u| u.field("Status"))
            .collect::<Vec<_>>(),
        [Some("completed")],
        "hung up through Twilio's REST API"
    );

    let c = w.model.connections().remove(0);
    let outputs = c.events_of("conversation.item.create");
    assert!(
        outputs
            .iter()
            .any(|e| e["item"]["type"] == "function_call_output"),
        "the tool's result went back: {outputs:?}"
    );
    let _ = call.hang_up().await;
}

/// A call whose model session fails with `fault`: it ends as
/// `engine_failed` after the closing line, said in the cascade's voice (the
/// model cannot speak); the model's connection.
async fn ends_politely(fault: RealtimeVoiceFault) -> RealtimeVoiceConnection {
    let w = World::start(|m| m.push_fault(fault)).await;
    let call = w.dial().await;
    let sid = call.call_sid().to_string();
    let record = w.record(&sid).await;
    assert_eq!(record["end_reason"], "engine_failed", "{record}");
    let closing = "I'm sorry, I have to end the call now. Thank you for calling, goodbye!";
    let turns = record["turns"].as_array().cloned().unwrap_or_default();
    assert!(
        turns.iter().any(|t| t["agent_heard"] == closing),
        "the caller heard the closing line: {turns:?}"
    );
    let _ = call.hang_up().await;
    w.model.connections().remove(0)
}

#[tokio::test]
async fn a_session_that_keeps_pcm_never_plays_a_byte_of_it_and_ends_politely() {
    let c = ends_politely(RealtimeVoiceFault::KeepPcm).await;
    assert_eq!(c.appends, 0, "no caller audio into a PCM session");
    assert!(
        c.events_of("response.create").is_empty(),
        "nothing asked of it"
    );
    assert!(c.replies.is_empty());
}

#[tokio::test]
async fn a_refused_key_ends_the_call_politely() {
    let c = ends_politely(RealtimeVoiceFault::RefuseKey).await;
    assert!(c.events.is_empty(), "refused at the upgrade");
}

#[tokio::test]
async fn a_session_at_its_time_limit_is_opened_again_with_the_conversation() {
    let w = World::start(|m| {
        m.push_transcript("Do you sell helmets?");
        m.push_reply(Reply::say("Yes, we do."));
        // After the greeting (3 s) and the first answer.
        m.push_fault(RealtimeVoiceFault::SessionCap { after_ms: 8000 });
    })
    .await;
    let call = w.dial_and_ask().await;
    w.server.wait_turns(1).await;
    let second = w
        .connection("a second session", |c| {
            !c.session_updates.is_empty() && !c.items_created.is_empty()
        })
        .await;
    assert_eq!(w.model.connections().len(), 2);
    let texts: Vec<&Value> = second
        .items_created
        .iter()
        .flat_map(|i| i["content"].as_array().into_iter().flatten())
        .map(|c| &c["text"])
        .collect();
    assert!(
        texts.iter().any(|t| *t == "Yes, we do."),
        "what the caller heard went into the new session: {texts:?}"
    );
    assert!(!call.is_closed(), "the call goes on");
    call.hang_up().await.expect("hang up");
}
