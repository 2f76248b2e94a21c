//! The dashboard's views with one agent: live calls, the replay, listening
//! in and stepping in, a test call from the microphone, signing out.

use super::*;

/// A call with two turns, after the greeting: what the caller says and what
/// the agent answers.
const TURNS: [(&str, &str); 2] = [
    (
        "What time do you open?",
        "We open at nine. Every day of the week.",
    ),
    ("And on Saturday?", "On Saturday we open at ten."),
];

fn script_two_turns(w: &World) {
    for (caller, agent) in TURNS {
        w.audio.push_transcript(caller);
        w.llm.fake().push_reply(Reply::text(agent));
    }
}

#[tokio::test]
async fn a_call_appears_live_its_transcript_grows_and_it_leaves_when_it_ends() {
    let Some((_turn, w)) = setup().await else {
        return;
    };
    script_two_turns(&w);
    let w = &w;
    in_browser("live_call", w, |page| async move {
        page.sign_in().await;
        page.until("the empty live view", "!document.querySelector('#live-empty').hidden")
            .await;

        let call = w.dial_and_hear_greeting().await;
        let card = card(call.call_sid());
        page.until_text("the call's card with the greeting", &card, GREETING)
            .await;
        // Masked as in the logs: the caller's full number is not on the page.
        let shown = page.text(&card).await;
        assert!(!shown.contains("+15551230001"), "unmasked number: {shown}");

        say_hello_and_hear(&call, "t1-s0").await;
        page.until_text("the first answer", &card, TURNS[0].1).await;
        say_hello_and_hear(&call, "t2-s0").await;
        page.until_text("the second turn's question", &card, TURNS[1].0)
            .await;
        page.until_text("the second turn's answer", &card, TURNS[1].1)
            .await;
        // Each answered turn has its latency waterfall, the latest one open.
        page.until(
            "the second turn's waterfall",
            &format!(
                "document.querySelector('{card} li[data-turn=\"2\"] details[open] .waterfall .wf-bar.total')"
            ),
        )
        .await;

        call.hang_up().await.expect("hung up");
        page.until(
            "the card to leave the live view",
            &format!("document.querySelector('{card}') === null"),
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn an_ended_call_replays_with_its_waveform_and_a_turn_click_seeks() {
    let Some((_turn, w)) = setup().await else {
        return;
    };
    script_two_turns(&w);
    // In real time (not the fast simulator): the recording's clock is the
    // call's, as a phone call's is.
    let call = Call::dial(&w.server.sim()).await.expect("call connects");
    hear_mark(&call, "t0-s0").await;
    say_hello_and_hear(&call, "t1-s0").await;
    hear_mark(&call, "t1-s1").await;
    say_hello_and_hear(&call, "t2-s0").await;
    let sid = call.call_sid().to_string();
    call.hang_up().await.expect("hung up");
    w.server.end_reason(&sid, WAIT).await;
    // The recording is served once it is finished.
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, detail) = w
            .server
            .api(Method::GET, &format!("/api/calls/{sid}"), None)
            .await;
        if detail["recording"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "no recording: {detail}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let w = &w;
    in_browser("replay", w, |page| async move {
        page.sign_in().await;
        page.open("#/calls").await;
        let row = format!("#calls tr[data-sid=\"{sid}\"]");
        page.until("the call in the history", &format!("document.querySelector('{row}')"))
            .await;
        let listed = page.text(&row).await;
        assert!(!listed.contains("+15551230001"), "unmasked in the list: {listed}");
        // Searching the transcripts: a word the caller said finds it, another does not.
        for (words, found) in [("bicycle", false), ("saturday", true)] {
            page.eval(&format!("document.querySelector('#f-q').value = '{words}'"))
                .await;
            page.click("Search", "#filters button[type=submit]").await;
            page.until(
                &format!("the search for {words}"),
                &format!(
                    "document.querySelector('#export-csv').href.endsWith('q={words}') \
                     && (document.querySelector('{row}') !== null) === {found} \
                     && document.querySelectorAll('#calls tbody tr').length === {}",
                    u8::from(found)
                ),
            )
            .await;
        }
        page.click("the call's link", &format!("{row} a")).await;

        // The call page shows the full number.
        page.until_text("the call page", "#view", "+15551230001").await;
        page.until_text("its transcript", "#call-transcript", TURNS[1].1)
            .await;
        let drawn = page
            .until(
                "the waveform drawn",
                "document.querySelector('#waveform')?.dataset.drawn === 'true' \
                 && Number(document.querySelector('#waveform').dataset.peaks)",
            )
            .await;
        assert!(drawn.as_f64().unwrap_or(0.0) > 0.0, "a blank waveform");

        let turn = "#call-transcript li.seekable[data-turn=\"2\"]";
        let at_ms = page
            .until(
                "the second turn placed on the recording",
                &format!("document.querySelector('{turn}')?.dataset.atMs"),
            )
            .await;
        let at_ms: f64 = at_ms.as_str().unwrap_or("0").parse().expect("a number");
        // Where the record says the caller began the turn.
        let (_, detail) = w
            .server
            .api(Method::GET, &format!("/api/calls/{sid}"), None)
            .await;
        let second = &detail["turns"][2];
        let spoke_from = second["at_ms"].as_f64().expect("at_ms")
            - second["latency"]["utterance_ms"].as_f64().expect("utterance_ms");
        assert!(
            at_ms > 0.0 && (at_ms - spoke_from).abs() <= 1.0,
            "the second turn placed at {at_ms} ms, the caller spoke from {spoke_from} ms: {second}"
        );
        page.click("the second turn", turn).await;
        page.until(
            "the audio to move to the second turn",
            &format!(
                "Math.abs(document.querySelector('#replay-audio').currentTime * 1000 - {at_ms}) < 50"
            ),
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn listening_in_plays_both_sides_and_stepping_in_says_and_ends_a_live_call() {
    let Some((_turn, w)) = setup().await else {
        return;
    };
    script_two_turns(&w);
    let w = &w;
    in_browser("listen_in", w, |page| async move {
        page.sign_in().await;
        let call = w.dial_and_hear_greeting().await;
        let card = card(call.call_sid());
        page.until_text("the call's card", &card, GREETING).await;

        page.click("Listen", &format!("{card} [data-action=\"listen\"]"))
            .await;
        page.confirm("the listen-in confirmation").await;
        // The caller's side flows all the time (silence too): it arrives at once.
        let started = Instant::now();
        page.until(
            "the caller's audio",
            "Number(document.querySelector('#player').dataset.bytesCaller) > 0",
        )
        .await;
        eprintln!(
            "listen-in: first caller audio after {:?}",
            started.elapsed()
        );

        // The agent's side: its answer to the caller.
        say_hello_and_hear(&call, "t1-s0").await;
        page.until(
            "the agent's audio",
            "Number(document.querySelector('#player').dataset.bytesAgent) >= 1600",
        )
        .await;
        assert_eq!(
            page.eval("document.querySelector('#player').dataset.state")
                .await,
            "playing"
        );

        page.click("Stop", "#listen-stop").await;
        page.until(
            "the player to close",
            "document.querySelector('#player').hidden",
        )
        .await;

        // Stepping in: the agent's voice says what the operator typed, and
        // the transcript marks it as the operator's; then the operator ends
        // the call.
        page.click("Say…", &format!("{card} [data-action=\"say\"]"))
            .await;
        page.until("the say dialog", "document.querySelector('#dialog-input')")
            .await;
        page.eval(&format!(
            "document.querySelector('#dialog-input').value = '{OPERATOR_LINE}'"
        ))
        .await;
        page.click("Say", "#dialog-ok").await;
        page.until_text(
            "the operator's line in the transcript",
            &format!("{card} .said.operator"),
            OPERATOR_LINE,
        )
        .await;
        page.click("End call", &format!("{card} [data-action=\"hangup\"]"))
            .await;
        page.confirm("the end-call confirmation").await;
        page.until(
            "the ended call to leave the live view",
            &format!("document.querySelector('{card}') === null"),
        )
        .await;
        let sid = call.call_sid().to_string();
        let _ = call.hang_up().await;
        assert_eq!(w.server.end_reason(&sid, WAIT).await, "operator_hung_up");
        let (_, detail) = w
            .server
            .api(Method::GET, &format!("/api/calls/{sid}"), None)
            .await;
        let actions = operator_actions(&detail);
        for action in ["listen", "say", "hang_up"] {
            assert!(
                actions.contains(&action),
                "{action} is not on the record: {detail}"
            );
        }
    })
    .await;
}

/// What the operator has the agent say in the step-in test.
const OPERATOR_LINE: &str = "A colleague will call you back today.";

#[tokio::test]
async fn a_test_call_from_the_browser_microphone_is_answered_by_the_agent() {
    let Some((_turn, w)) = setup().await else {
        return;
    };
    // Every utterance of the looping fake microphone gets the same answer.
    w.audio.set_default_transcript("What time do you open?");
    w.llm
        .fake()
        .set_default_reply(Reply::text("We open at nine."));
    in_browser("test_call", &w, |page| async move {
        page.sign_in().await;
        page.open("#/test").await;
        page.click("Start test call", "#test-start").await;
        page.until(
            "the test call to connect",
            "document.querySelector('#test-call').dataset.state === 'connected'",
        )
        .await;
        page.until_text(
            "the greeting in the test call's transcript",
            "#test-card",
            GREETING,
        )
        .await;
        page.until_text(
            "the caller's words in the transcript",
            "#test-card",
            "What time do you open?",
        )
        .await;
        page.until_text("the agent's answer", "#test-card", "We open at nine.")
            .await;
        page.until(
            "the agent's audio played",
            "Number(document.querySelector('#test-call').dataset.receivedBytes) > 0",
        )
        .await;
        page.click("Hang up", "#test-hangup").await;
        page.until(
            "the test call to end",
            "document.querySelector('#test-call').dataset.state === 'ended'",
        )
        .await;
    })
    .await;
    let (_, list) = w.server.api(Method::GET, "/api/calls", None).await;
    let call = &list["calls"][0];
    assert_eq!(call["direction"], "browser", "{list}");
    let sid = call["call_sid"].as_str().expect("a call").to_string();
    assert_eq!(w.server.end_reason(&sid, WAIT).await, "caller_hung_up");
}

#[tokio::test]
async fn signing_out_returns_to_the_sign_in_form() {
    let Some((_turn, w)) = setup().await else {
        return;
    };
    in_browser("sign_out", &w, |page| async move {
        page.sign_in().await;
        page.until("the live view", "document.querySelector('#live-status')")
            .await;
        page.open("#/health").await;
        page.until_text("the server's mode on the health view", "#health-facts", "agent")
            .await;
        page.click("Sign out", "#sign-out").await;
        page.until(
            "the sign-in form",
            "!document.querySelector('#signin').hidden && document.querySelector('#nav').hidden",
        )
        .await;
        // The cookie is gone: a reload stays signed out, and the API refuses.
        page.open("#/calls").await;
        page.until(
            "the sign-in form after a reload",
            "document.body.dataset.signedIn === 'false'",
        )
        .await;
        let status = page
            .client
            .execute_async(
                "const done = arguments[0]; fetch('/api/overview').then(r => done(r.status), () => done(0));",
                vec![],
            )
            .await
            .expect("fetch");
        assert_eq!(status, 401);
    })
    .await;
}
