//! The agent with streaming speech-to-text, through the real server: the
//! caller's audio streams to the provider's fake while they speak; the turn
//! is ended by the provider or by Pronto (which then asks for the final
//! transcript); the words reach the LLM without a batch transcription; each
//! turn's record says who decided and how long the final transcript took;
//! a provider that refuses the key leaves the call going, heard by silence.

use serde_json::Value;

use crate::agent_world::{FALLBACK, Provider, World, say_hello_and_hear};
use crate::harness::{API_TOKEN, WAIT};
use pronto::fakes::assemblyai::{AssemblyAiFault, FakeAssemblyAi};
use pronto::fakes::llm_reply::Reply;
use pronto::fakes::openai_realtime::FakeOpenAiRealtime;

const SAID: &str = "what time do you open tomorrow";

/// A world whose speech-to-text streams to `stt_url` as `provider`.
async fn world(provider: &str, stt_url: &str, key: (&str, &str), detector: &str) -> World {
    World::start_with(
        Provider::OpenAi,
        false,
        &[
            ("PRONTO_STT_PROVIDER", provider),
            ("PRONTO_STT_BASE_URL", stt_url),
            key,
            ("PRONTO_TURN_DETECTOR", detector),
        ],
    )
    .await
}

/// An AssemblyAI fake that hears [`SAID`], and a world streaming to it with
/// `detector`.
async fn assemblyai_world(detector: &str) -> (FakeAssemblyAi, World) {
    let stt = FakeAssemblyAi::start().await;
    stt.set_script(&[SAID]);
    let w = world(
        "assemblyai",
        stt.base_url(),
        ("ASSEMBLYAI_API_KEY", "aai-test"),
        detector,
    )
    .await;
    (stt, w)
}

/// A call whose caller says hello and hears the answer (the LLM's one
/// reply); its SID.
async fn one_answered_turn(w: &World) -> (pronto::sim::Call, String) {
    w.llm.fake().push_reply(Reply::text("We open at nine."));
    let call = w.dial_and_hear_greeting().await;
    say_hello_and_hear(&call, "t1-s0").await;
    let sid = call.call_sid().to_string();
    (call, sid)
}

/// The call's turns once it has ended.
async fn turns(w: &World, sid: &str) -> Vec<Value> {
    w.server.end_reason(sid, WAIT).await;
    let (_, call) = w
        .server
        .get_json(&format!("/api/calls/{sid}"), Some(API_TOKEN))
        .await;
    call["turns"].as_array().cloned().unwrap_or_default()
}

fn user_text(request: &Value) -> String {
    let (_, messages) = crate::agent_world::conversation(request);
    messages
        .iter()
        .filter(|(role, _)| role == "user")
        .map(|(_, text)| text.clone())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[tokio::test]
async fn the_providers_end_of_turn_brings_its_words_to_the_llm() {
    let (stt, w) = assemblyai_world("provider").await;
    let (call, sid) = one_answered_turn(&w).await;

    assert_eq!(user_text(&w.llm_request(1).await), SAID);
    assert!(
        w.audio.stt_requests().is_empty(),
        "nothing was uploaded for transcription"
    );
    let connections = stt.connections();
    assert_eq!(connections.len(), 1, "one stream for the call");
    assert!(
        connections[0]
            .binary_sizes
            .iter()
            .all(|&n| (400..=8000).contains(&n)),
        "AssemblyAI's 50-1000 ms rule held: {:?}",
        connections[0].binary_sizes
    );
    call.hang_up().await.expect("hang up");
    let turns = turns(&w, &sid).await;
    let latency = &turns[1]["latency"];
    assert_eq!(turns[1]["caller"], SAID, "{turns:?}");
    assert_eq!(latency["decided_by"], "provider", "{latency}");
    assert!(latency["stt_ms"].is_null(), "no batch request: {latency}");
    assert!(latency["stt_final_ms"].is_u64(), "{latency}");
    assert!(latency["first_tts_request_ms"].is_u64(), "{latency}");
    assert!(
        latency["pipeline_overhead_ms"].is_i64(),
        "the overhead is known with a streamed transcript: {latency}"
    );
    let (_, health) = w.server.get_json("/health", None).await;
    assert_eq!(health["engine"]["turn_detector"], "provider", "{health}");
    assert_eq!(health["engine"]["speech_to_text"], "assemblyai", "{health}");
}

#[tokio::test]
async fn a_turn_pronto_decides_asks_the_provider_for_its_final_words() {
    let (stt, w) = assemblyai_world("silence").await;
    let (call, sid) = one_answered_turn(&w).await;
    assert_eq!(user_text(&w.llm_request(1).await), SAID);
    let connection = &stt.connections()[0];
    assert!(
        connection
            .control
            .iter()
            .any(|m| m["type"] == "ForceEndpoint"),
        "{:?}",
        connection.control
    );
    // Pronto ends turns: the provider's own end of turn is pushed out.
    assert_eq!(
        connection.query.get("max_turn_silence").map(String::as_str),
        Some("10000")
    );
    call.hang_up().await.expect("hang up");
    let turns = turns(&w, &sid).await;
    let latency = &turns[1]["latency"];
    assert_eq!(latency["decided_by"], "silence", "{latency}");
    assert_eq!(latency["turn_decided_ms"], 600, "{latency}");
    // The wait for the final transcript is reported on its own (in audio
    // time: the simulator sends faster than real time, so no bound here).
    let total = latency["endpoint_wait_ms"].as_u64().unwrap_or(0);
    assert_eq!(
        latency["stt_final_ms"].as_u64(),
        Some(total - 600),
        "{latency}"
    );
}

#[tokio::test]
async fn a_refused_key_leaves_the_call_going_and_the_turn_gets_the_fallback() {
    let stt = FakeAssemblyAi::start().await;
    stt.push_fault(AssemblyAiFault::RefuseKey);
    let w = world(
        "assemblyai",
        stt.base_url(),
        ("ASSEMBLYAI_API_KEY", "aai-test"),
        "provider",
    )
    .await;
    let call = w.dial_and_hear_greeting().await;
    // Heard by silence now; nothing can transcribe the turn: the caller
    // hears the fallback line, and the call goes on.
    say_hello_and_hear(&call, "t1-s0").await;
    assert!(w.llm_requests().is_empty(), "no words, no LLM request");
    assert_eq!(stt.connections().len(), 1, "a refusal is not retried");
    let sid = call.call_sid().to_string();
    let (_, live) = w.server.get_json("/api/status", Some(API_TOKEN)).await;
    assert_eq!(live["calls"][0]["state"], "listening", "{live}");
    call.hang_up().await.expect("hang up");
    let turns = turns(&w, &sid).await;
    assert_eq!(turns[1]["agent_said"], FALLBACK, "{turns:?}");
}

#[tokio::test]
async fn an_openai_realtime_session_transcribes_the_call() {
    let stt = FakeOpenAiRealtime::start().await;
    stt.set_script(&[SAID]);
    let w = world(
        "openai-realtime",
        stt.base_url(),
        ("OPENAI_API_KEY", "sk-test-openai"),
        "provider",
    )
    .await;
    let (call, _) = one_answered_turn(&w).await;
    assert_eq!(user_text(&w.llm_request(1).await), SAID);
    let session = &stt.connections()[0];
    let update = session
        .events
        .iter()
        .find(|e| e["type"] == "session.update")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        update["session"]["audio"]["input"]["format"]["type"], "audio/pcmu",
        "{update}"
    );
    assert!(!session.beta_header);
    assert_eq!(
        session.audio.len(),
        session.append_sizes.iter().sum::<usize>(),
        "the caller's μ-law went out as it came"
    );
    call.hang_up().await.expect("hang up");
}

#[tokio::test]
async fn an_eager_end_prepares_the_answer_and_a_resumption_drops_it_unheard() {
    use pronto::fakes::deepgram::FakeDeepgram;
    const ANSWER: &str = "We open at nine.";
    let stt = FakeDeepgram::start().await;
    stt.set_script(&[SAID]);
    // Flux's early signal after 100 ms of silence, its end of turn after
    // 260 ms: hello.wav's pauses between words bring eager ends that the
    // caller's next word takes back.
    stt.set_flux_silences(100, 260);
    let w = world(
        "deepgram",
        stt.base_url(),
        ("DEEPGRAM_API_KEY", "dg-test"),
        "provider",
    )
    .await;
    w.llm.fake().set_default_reply(Reply::text(ANSWER));
    let call = w.dial_and_hear_greeting().await;
    say_hello_and_hear(&call, "t1-s0").await;
    let sid = call.call_sid().to_string();
    assert_eq!(
        stt.connections()[0].param("eager_eot_threshold"),
        ["0.5"],
        "eager mode asked for"
    );
    let (_, health) = w.server.get_json("/health", None).await;
    let started = health["engine"]["speculative_answers"]
        .as_u64()
        .unwrap_or(0);
    let wasted = health["engine"]["speculative_wasted"].as_u64().unwrap_or(0);
    assert!(wasted >= 1, "a resumption dropped one: {health}");
    assert_eq!(
        started,
        wasted + 1,
        "all but the kept one dropped: {health}"
    );
    // A dropped answer's request may be cancelled before it reaches the
    // LLM (the simulator speaks faster than real time); none is made after
    // the end of turn, whose answer was already prepared.
    let requests = w.llm_requests().len() as u64;
    assert!(
        (1..=started).contains(&requests),
        "{requests} LLM requests for {started} speculative answers"
    );
    call.hang_up().await.expect("hang up");
    let turns = turns(&w, &sid).await;
    assert_eq!(turns.len(), 2, "the greeting and one answer: {turns:?}");
    assert_eq!(turns[1]["caller"], SAID);
    assert_eq!(turns[1]["agent_heard"], ANSWER, "{turns:?}");
    assert_eq!(turns[1]["latency"]["speculative"], true, "{turns:?}");
}
