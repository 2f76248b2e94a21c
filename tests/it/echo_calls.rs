//! Whole echo calls through the simulator against the real server: what the
//! caller hears, barge-in, DTMF, concurrent calls, `/api/status` during and
//! after a call, and draining at shutdown.

use crate::harness::{TestServer, WAIT, expect_event, find, fixture, speech_part, through_mulaw};
use pronto::sim::{Call, Closer, Event};
use serde_json::Value;

fn calls(status: &Value) -> &Vec<Value> {
    status["calls"].as_array().expect("calls array")
}

/// A call whose caller has said hello.wav and now hears it echoed.
async fn hello_being_echoed(server: &TestServer) -> Call {
    let call = Call::dial(&server.fast_sim()).await.expect("call connects");
    call.say(&fixture("hello.wav"));
    call.wait_said().await.expect("said");
    expect_event(&call, "the echo to start playing", |e| {
        *e == Event::AudioHeardStart
    })
    .await;
    call
}

#[tokio::test]
async fn the_caller_hears_their_own_words_back() {
    let server = TestServer::start().await;
    let call = Call::dial(&server.fast_sim()).await.expect("call connects");
    let hello = fixture("hello.wav");
    call.say(&hello);
    call.wait_said().await.expect("said");
    expect_event(&call, "mark after the echo", |e| {
        matches!(e, Event::MarkEchoed { cleared: false, .. })
    })
    .await;

    // While the call lasts, /api/status shows it with a masked number and the turn's latency.
    let status = server.wait_turns(1).await;
    let c = &calls(&status)[0];
    assert_eq!(c["call_sid"], call.call_sid());
    assert_eq!(c["stream_sid"], call.stream_sid());
    assert_eq!(c["from"], "+*******0001");
    assert_eq!(c["direction"], "inbound");
    assert!(
        !status.to_string().contains("15551230001"),
        "full number leaked: {status}"
    );
    let latency = &c["last_turn"];
    assert_eq!(latency["interrupted"], false);
    assert_eq!(latency["endpoint_wait_ms"], 600, "{latency}");
    assert!(
        latency["voice_to_voice_ms"]
            .as_u64()
            .is_some_and(|ms| (600..1500).contains(&ms)),
        "{latency}"
    );

    let report = call.hang_up().await.expect("report");
    assert!(report.protocol_errors().is_empty(), "{report}");
    assert_eq!(report.marks_echoed(), vec!["t1-s0"]);
    // Exactly the caller's speech, after a trip through μ-law both ways.
    let spoken = through_mulaw(speech_part(&hello));
    assert!(
        find(&report.heard, &spoken).is_some(),
        "the echo does not contain the caller's speech\n{report}"
    );
    assert_eq!(report.turns.len(), 1);
    assert!(report.turns[0].voice_to_voice_ms.is_some(), "{report}");

    // After the call, the registry is empty.
    server
        .wait_status("the call to leave", |s| s["active_calls"] == 0)
        .await;
}

#[tokio::test]
async fn speech_over_the_echo_clears_it_and_is_echoed_next() {
    let server = TestServer::start().await;
    let call = hello_being_echoed(&server).await;

    // The first sentence of two_turns.wav (with its mid-sentence pause).
    let two_turns = fixture("two_turns.wav");
    let interruption = &two_turns[..30400];
    call.say(interruption);
    let clear = expect_event(&call, "clear", |e| matches!(e, Event::ClearReceived { .. })).await;
    let Event::ClearReceived { dropped_ms } = clear.event else {
        unreachable!()
    };
    assert!(dropped_ms > 0, "the clear dropped queued audio");

    // The interrupting speech (pre-roll included) is the next turn and is echoed.
    call.wait_said().await.expect("said");
    expect_event(
        &call,
        "the interruption's echo to be heard",
        |e| matches!(e, Event::MarkEchoed { name, cleared: false } if name.starts_with("t2")),
    )
    .await;
    let status = server.api_status().await;
    let c = &calls(&status)[0];
    let events = c["events"].as_array().expect("events");
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "barge_in" && e["turn"] == 1),
        "{status}"
    );
    let report = call.hang_up().await.expect("report");
    assert!(report.protocol_errors().is_empty(), "{report}");
    // The interrupted echo's mark had not been sent yet (only about a second is
    // sent ahead of playback), so it never comes back as played.
    assert!(!report.marks_echoed().contains(&"t1-s0"), "{report}");
    let interrupting_speech = through_mulaw(speech_part(interruption));
    assert!(
        find(&report.heard, &interrupting_speech).is_some(),
        "the interruption was not echoed whole\n{report}"
    );
}

#[tokio::test]
async fn a_short_cough_while_the_agent_speaks_does_not_interrupt() {
    let server = TestServer::start().await;
    let call = hello_being_echoed(&server).await;
    call.say(&fixture("short_cough.wav"));
    call.wait_said().await.expect("said");
    expect_event(&call, "the echo's mark", |e| {
        matches!(e, Event::MarkEchoed { .. })
    })
    .await;
    let status = server
        .wait_status("listening", |s| {
            calls(s).first().is_some_and(|c| c["state"] == "listening")
        })
        .await;
    assert_eq!(
        calls(&status)[0]["turns"],
        1,
        "a cough is not a turn: {status}"
    );
    let report = call.hang_up().await.expect("report");
    assert!(
        !report
            .events
            .iter()
            .any(|e| matches!(e.event, Event::ClearReceived { .. })),
        "{report}"
    );
}

#[tokio::test]
async fn dtmf_digits_are_kept_in_the_call_events() {
    let server = TestServer::start().await;
    let call = Call::dial(&server.fast_sim()).await.expect("call connects");
    call.dtmf('5');
    call.dtmf('#');
    let status = server
        .wait_status("two digits", |s| {
            calls(s)
                .first()
                .is_some_and(|c| c["events"].as_array().is_some_and(|e| e.len() == 2))
        })
        .await;
    let digits: Vec<&str> = calls(&status)[0]["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["digit"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(digits, vec!["5", "#"]);
    call.hang_up().await.expect("report");
}

#[tokio::test]
async fn two_concurrent_calls_each_hear_only_themselves() {
    let server = TestServer::start().await;
    let cfg = server.fast_sim();
    let (a, b) = tokio::join!(Call::dial(&cfg), Call::dial(&cfg));
    let (a, b) = (a.expect("call a"), b.expect("call b"));
    let hello = fixture("hello.wav");
    let other = fixture("two_turns.wav");
    let other = &other[..other.len() / 2]; // the first sentence and a pause
    a.say(&hello);
    b.say(other);
    let (ra, rb) = tokio::join!(
        async {
            a.wait_said().await.expect("a said");
            expect_event(&a, "a's echo", |e| matches!(e, Event::MarkEchoed { .. })).await;
            let status = server.api_status().await;
            (status, a.hang_up().await.expect("a's report"))
        },
        async {
            b.wait_said().await.expect("b said");
            expect_event(&b, "b's echo", |e| matches!(e, Event::MarkEchoed { .. })).await;
            b.hang_up().await.expect("b's report")
        }
    );
    let (status_during, ra) = ra;
    assert!(!calls(&status_during).is_empty(), "{status_during}");
    let hello_heard = through_mulaw(speech_part(&hello));
    let other_heard = through_mulaw(speech_part(other));
    assert!(
        find(&ra.heard, &hello_heard).is_some(),
        "a did not hear itself\n{ra}"
    );
    assert!(
        find(&rb.heard, &other_heard).is_some(),
        "b did not hear itself\n{rb}"
    );
    assert!(find(&ra.heard, &other_heard[..4000]).is_none(), "a heard b");
    assert!(find(&rb.heard, &hello_heard[..4000]).is_none(), "b heard a");
    assert!(ra.protocol_errors().is_empty() && rb.protocol_errors().is_empty());
    server
        .wait_status("both calls to leave", |s| s["active_calls"] == 0)
        .await;
}

#[tokio::test]
async fn shutdown_turns_new_callers_away_and_lets_live_calls_finish() {
    let mut server = TestServer::start().await;
    let call = Call::dial(&server.fast_sim()).await.expect("call connects");
    server
        .wait_status("the call to be live", |s| {
            calls(s).first().is_some_and(|c| c["state"] == "listening")
        })
        .await;
    server.begin_shutdown();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, health) = server.get_json("/health", None).await;
        if health["status"] == "draining" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never started draining: {health}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // A new caller hears the busy message.
    let answer = pronto::sim::post_voice(&server.sim())
        .await
        .expect("webhook answers");
    assert_eq!(answer.status, 200);
    let twiml = answer.twiml.as_ref().expect("TwiML");
    assert!(
        twiml.hangup && twiml.stream_url.is_none(),
        "{}",
        answer.body
    );
    // The live call still works.
    call.say(&fixture("hello.wav"));
    call.wait_said().await.expect("said");
    expect_event(&call, "the echo", |e| {
        matches!(e, Event::MarkEchoed { cleared: false, .. })
    })
    .await;
    let report = call.hang_up().await.expect("report");
    assert!(
        report
            .close
            .as_ref()
            .is_some_and(|c| c.by == Closer::Simulator),
        "{report}"
    );
    server
        .stop()
        .await
        .expect("server exits cleanly once the call is over");
}

#[tokio::test]
async fn marks_pending_at_a_clear_come_back_cleared_and_the_call_goes_on() {
    // With a long playback lead the whole echo and its mark are sent at once,
    // so the mark is still pending in Twilio's queue when the caller interrupts.
    let server = TestServer::with(&[("PRONTO_CALL_MAX_PLAYBACK_LEAD_MS", "10000")], None).await;
    let call = Call::dial(&server.fast_sim()).await.expect("call connects");
    call.say(&fixture("hello.wav"));
    call.wait_said().await.expect("said");
    expect_event(&call, "the mark to be sent", |e| {
        matches!(e, Event::MarkReceived { .. })
    })
    .await;
    let two_turns = fixture("two_turns.wav");
    call.say(&two_turns[..30400]);
    expect_event(&call, "clear", |e| matches!(e, Event::ClearReceived { .. })).await;
    expect_event(
        &call,
        "the pending mark back, cleared",
        |e| matches!(e, Event::MarkEchoed { name, cleared: true } if name == "t1-s0"),
    )
    .await;
    call.wait_said().await.expect("said");
    expect_event(
        &call,
        "the next turn's echo",
        |e| matches!(e, Event::MarkEchoed { name, cleared: false } if name == "t2-s0"),
    )
    .await;
    let status = server.wait_turns(2).await;
    assert_eq!(
        calls(&status)[0]["last_turn"]["interrupted"],
        false,
        "{status}"
    );
    let report = call.hang_up().await.expect("report");
    assert!(report.protocol_errors().is_empty(), "{report}");
}
