//! What a user reads back through the API after calls: the full record of an
//! agent call (what was said, what was heard, latencies), erasing it,
//! outbound calls through Twilio REST, status callbacks in any order, and the
//! OpenAPI document.

use crate::agent_world::{self, Provider, World, hear_mark, say_hello_and_hear};
use crate::harness::{self, PUBLIC, expect_event};
use pronto::fakes::Fault;
use pronto::fakes::llm_reply::Reply;
use pronto::fakes::twilio_rest::FakeTwilioRest;
use pronto::sim::Event;
use reqwest::Method;
use serde_json::{Value, json};

/// Waits until the store has the call ended (the writer runs behind the call).
async fn ended_call(w: &World, sid: &str) -> Value {
    w.server
        .wait_status("the call to leave", |s| s["active_calls"] == 0)
        .await;
    let deadline = tokio::time::Instant::now() + harness::WAIT;
    loop {
        let (status, call) = w
            .server
            .api(Method::GET, &format!("/api/calls/{sid}"), None)
            .await;
        if status == 200 && !call["ended_at"].is_null() {
            return call;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never ended: {status} {call}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_call_leaves_its_full_record_and_can_be_erased() {
    let w = World::start(Provider::Anthropic).await;
    w.audio.set_ms_per_char(60);
    w.audio.push_transcript("Tell me about your prices.");
    w.audio.push_transcript("Are you open today?");
    w.llm.fake().push_reply(Reply::text(
        "Our basic plan costs ten euros. The premium plan costs twenty euros and includes support.",
    ));
    w.llm.fake().push_reply(Reply::text("Yes, until six."));
    let call = w.dial_and_hear_greeting().await;
    say_hello_and_hear(&call, "t1-s0").await;
    call.say(&harness::fixture("hello.wav"));
    expect_event(&call, "clear", |e| matches!(e, Event::ClearReceived { .. })).await;
    call.wait_said().await.expect("said");
    hear_mark(&call, "t2-s0").await;
    w.server.wait_turns(2).await;
    // A key pressed just before hanging up is kept as an event.
    call.dtmf('9');
    w.server
        .wait_status("the key recorded", |s| {
            s["calls"][0]["events"].to_string().contains("dtmf")
        })
        .await;
    let sid = call.call_sid().to_string();
    call.hang_up().await.expect("report");

    let record = ended_call(&w, &sid).await;
    assert_eq!(record["direction"], "inbound");
    assert_eq!(record["from"], "+*******0001", "{record}");
    assert_eq!(record["from_number"], "+15551230001");
    assert_eq!(record["end_reason"], "caller_hung_up");
    assert!(!record["answered_at"].is_null());
    let turns = record["turns"].as_array().expect("turns");
    assert_eq!(turns.len(), 3, "{record}");
    assert_eq!(turns[0]["agent_heard"], agent_world::GREETING);
    assert_eq!(turns[1]["caller"], "Tell me about your prices.");
    assert_eq!(turns[1]["agent_heard"], "Our basic plan costs ten euros.");
    assert_eq!(turns[1]["interrupted"], true);
    assert!(
        turns[1]["agent_said"]
            .as_str()
            .is_some_and(|s| s.contains("premium"))
    );
    assert_eq!(turns[2]["agent_heard"], "Yes, until six.");
    for key in [
        "stt_ms",
        "llm_first_token_ms",
        "tts_first_byte_ms",
        "voice_to_voice_ms",
    ] {
        assert!(turns[2]["latency"][key].is_number(), "{key}: {}", turns[2]);
    }
    let kinds: Vec<&str> = record["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"dtmf") && kinds.contains(&"barge_in"),
        "{kinds:?}"
    );

    let (status, erased) = w
        .server
        .api(Method::DELETE, &format!("/api/calls/{sid}"), None)
        .await;
    assert_eq!(status, 200, "{erased}");
    assert_eq!(erased["history"]["call"], true, "{erased}");
    assert!(erased["history"]["turns"].as_u64() >= Some(3), "{erased}");
    assert_eq!(erased["recording"], Value::Null, "recordings are off");
    let (status, body) = w
        .server
        .api(Method::GET, &format!("/api/calls/{sid}"), None)
        .await;
    assert_eq!((status, body["error"].is_string()), (404, true), "{body}");
    let (status, _) = w
        .server
        .api(Method::DELETE, &format!("/api/calls/{sid}"), None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn outbound_calls_go_through_twilio_with_their_own_greeting() {
    let w = World::start_with(
        Provider::OpenAi,
        false,
        &[("TWILIO_PHONE_NUMBER", "+15550009999")],
    )
    .await;
    let (status, created) = w
        .server
        .api(
            Method::POST,
            "/api/calls",
            Some(json!({
                "to": "+393331234567",
                "greeting": "Hello, this is the clinic calling about your appointment.",
                "instructions": "Confirm tomorrow's 10:30 appointment."
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let sid = FakeTwilioRest::created_sid(0);
    assert_eq!(created["call_sid"], sid.as_str());
    let forms = w.rest.created_calls();
    assert_eq!(
        forms[0],
        [
            ("To", "+393331234567"),
            ("From", "+15550009999"),
            ("Url", &format!("{PUBLIC}/voice")),
            ("Method", "POST"),
            ("StatusCallback", &format!("{PUBLIC}/voice/status")),
            ("StatusCallbackMethod", "POST"),
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "completed"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    );

    // Twilio calls back when the callee answers: the call's own greeting
    // plays, and the agent is told why it calls.
    let mut sim = w.server.fast_sim();
    sim.call_sid = Some(sid.clone());
    sim.direction = "outbound-api".into();
    sim.from = "+15550009999".into();
    sim.to = "+393331234567".into();
    let call = pronto::sim::Call::dial(&sim).await.expect("answered");
    hear_mark(&call, "t0-s0").await;
    assert!(
        w.tts_texts()
            .contains(&"Hello, this is the clinic calling about your appointment.".to_string())
    );
    w.audio.push_transcript("Yes, that's fine.");
    say_hello_and_hear(&call, "t1-s0").await;
    let (system, _) = agent_world::conversation(&w.llm_request(1).await);
    assert!(
        system.contains("Confirm tomorrow's 10:30 appointment."),
        "{system}"
    );
    assert!(system.contains("You placed this call."), "{system}");
    call.hang_up().await.expect("report");
}

#[tokio::test]
async fn outbound_errors_are_4xx_with_a_message() {
    let w = World::start(Provider::OpenAi).await;
    let cases = [
        (json!({"to": "12345"}), 400, "E.164"),
        (json!({"to": "+15551234567"}), 400, "TWILIO_PHONE_NUMBER"),
        (
            json!({"to": "+15551234567", "from": "+15550009999", "extra": 1}),
            400,
            "extra",
        ),
        (json!([1, 2]), 400, ""),
    ];
    for (body, want, says) in cases {
        let (status, answer) = w
            .server
            .api(Method::POST, "/api/calls", Some(body.clone()))
            .await;
        assert_eq!(status, want, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{body}: {answer}");
    }
    w.rest.push_fault(Fault::Status {
        status: 400,
        body: r#"{"code": 21211, "message": "The 'To' number +15551234567 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#.into(),
        retry_after: None,
    });
    let (status, answer) = w
        .server
        .api(
            Method::POST,
            "/api/calls",
            Some(json!({"to": "+15551234567", "from": "+15550009999"})),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("is not a valid phone number"))
    );
    let (status, _) = w
        .server
        .api(Method::POST, "/api/calls", Some(json!({"to": "not json"})))
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn status_callbacks_in_any_order_and_twice_leave_the_last_status() {
    let w = World::start(Provider::Anthropic).await;
    let sid = "CAfeedfacefeedfacefeedfacefeedface";
    let callback = |seq: u32, status: &str| {
        let mut form = vec![
            ("CallSid".to_string(), sid.to_string()),
            (
                "AccountSid".to_string(),
                agent_world::ACCOUNT_SID.to_string(),
            ),
            ("CallStatus".to_string(), status.to_string()),
            ("SequenceNumber".to_string(), seq.to_string()),
        ];
        if status == "completed" {
            form.push(("CallDuration".to_string(), "42".to_string()));
        }
        form
    };
    let sequence = [
        (3, "completed"),
        (0, "initiated"),
        (2, "in-progress"),
        (3, "completed"),
        (1, "ringing"),
        (0, "initiated"),
    ];
    for (seq, status) in sequence {
        let (code, _) = w
            .server
            .post_signed("/voice/status", &callback(seq, status))
            .await;
        assert_eq!(code, 200);
    }
    let (code, call) = w
        .server
        .api(Method::GET, &format!("/api/calls/{sid}"), None)
        .await;
    assert_eq!(code, 200, "{call}");
    assert_eq!(call["status"], "completed");
    assert_eq!(call["duration_secs"], 42);
    let callbacks = call["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "status_callback")
        .count();
    assert_eq!(callbacks, 4, "duplicates are ignored: {call}");
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let w = World::start(Provider::Anthropic).await;
    let (status, doc) = w.server.api(Method::GET, "/api/openapi.json", None).await;
    assert_eq!(status, 200);
    for path in [
        "/api/status",
        "/api/calls",
        "/api/calls/{sid}",
        "/api/calls/{sid}/recording.wav",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    assert!(doc["paths"]["/api/calls"]["post"].is_object());
    assert!(doc["paths"]["/api/calls/{sid}"]["delete"].is_object());
    assert!(
        doc["components"]["schemas"]["CallDetail"].is_object(),
        "{doc}"
    );
    let (status, _) = w.server.get_json("/api/openapi.json", None).await;
    assert_eq!(status, 401, "the document needs the token too");
}

#[tokio::test]
async fn every_replica_shows_the_calls_in_progress_on_the_others() {
    let dir = harness::temp_dir("shared-db");
    let database = format!("sqlite://{}/pronto.db", dir.display());
    let a = harness::TestServer::with(
        &[
            ("DATABASE_URL", &database),
            ("PRONTO_REPLICA_ID", "replica-a"),
        ],
        None,
    )
    .await;
    let b = harness::TestServer::with(
        &[
            ("DATABASE_URL", &database),
            ("PRONTO_REPLICA_ID", "replica-b"),
        ],
        None,
    )
    .await;
    let call = pronto::sim::Call::dial(&a.fast_sim())
        .await
        .expect("call on replica a");
    let sid = call.call_sid().to_string();
    let seen = b
        .wait_status("replica b to see replica a's call", |s| {
            s["other_replicas"].to_string().contains(&sid)
        })
        .await;
    assert_eq!(seen["active_calls"], 1, "{seen}");
    assert_eq!(seen["calls"], json!([]), "not a call of replica b: {seen}");
    assert_eq!(a.api_status().await["other_replicas"], json!([]));
    call.hang_up().await.expect("report");
    b.wait_status("the call to end everywhere", |s| s["active_calls"] == 0)
        .await;
}
