//! Bad input from "Twilio" on the stream: logged, counted and skipped while the
//! call goes on; oversized messages close with 1009; nothing disturbs another
//! call.

use crate::harness::{
    TestServer, expect_event, expect_server_close, find, fixture, speech_part, through_mulaw,
};
use pronto::sim::{Call, Closer, Event};

/// Says hello.wav and checks that the caller hears it back: the call still works.
async fn echo_still_works(call: &Call) {
    call.say(&fixture("hello.wav"));
    call.wait_said().await.expect("said");
    expect_event(call, "the echo's mark", |e| {
        matches!(e, Event::MarkEchoed { cleared: false, .. })
    })
    .await;
    let heard = call.heard();
    assert!(
        find(&heard, &through_mulaw(speech_part(&fixture("hello.wav")))).is_some(),
        "no echo heard"
    );
}

#[tokio::test]
async fn malformed_messages_are_skipped_and_counted() {
    let server = TestServer::start().await;
    let call = Call::dial(&server.fast_sim()).await.expect("call connects");
    let sid = call.stream_sid().to_string();
    let bad = [
        "this is not JSON".to_string(),
        r#"{"event":"dance","streamSid":"MZ"}"#.to_string(),
        format!(
            r#"{{"event":"media","streamSid":"{sid}","media":{{"payload":"***not base64***"}}}}"#
        ),
        r#"{"event":"media"}"#.to_string(),
        "[1,2,3]".to_string(),
    ];
    for text in &bad {
        call.send_raw_text(text.clone()).await.expect("sent");
    }
    call.send_raw_binary(vec![0xff; 160]).await.expect("sent");
    // A second start, and media in an odd size, are fine.
    call.send_start().await.expect("sent");
    call.send_raw_text(format!(
        r#"{{"event":"media","streamSid":"{sid}","media":{{"payload":"/w=="}}}}"#
    ))
    .await
    .expect("sent");
    let status = server
        .wait_status("the bad messages to be counted", |s| {
            s["calls"][0]["bad_messages"] == 6
        })
        .await;
    assert_eq!(status["calls"][0]["state"], "listening", "{status}");
    echo_still_works(&call).await;
    let report = call.hang_up().await.expect("report");
    assert!(report.protocol_errors().is_empty(), "{report}");
    assert_eq!(
        report.close.as_ref().map(|c| c.by),
        Some(Closer::Simulator),
        "{report}"
    );
}

#[tokio::test]
async fn a_message_over_64_kib_closes_the_stream_with_1009_and_only_that_call() {
    let server = TestServer::start().await;
    let cfg = server.fast_sim();
    let (victim, bystander) = tokio::join!(Call::dial(&cfg), Call::dial(&cfg));
    let (victim, bystander) = (victim.expect("call"), bystander.expect("call"));
    // Exactly at the limit is accepted...
    victim.send_text_of_len(64 * 1024).await.expect("sent");
    // ...one byte more is not.
    victim.send_text_of_len(64 * 1024 + 1).await.expect("sent");
    expect_server_close(&victim, 1009).await;
    echo_still_works(&bystander).await;
    bystander.hang_up().await.expect("report");
    server
        .wait_status("both calls to leave", |s| s["active_calls"] == 0)
        .await;
}

#[tokio::test]
async fn media_before_start_is_ignored() {
    let server = TestServer::start().await;
    let (url, options) = {
        let answer = pronto::sim::post_voice(&server.sim())
            .await
            .expect("webhook");
        (
            answer.stream_url().expect("stream").to_string(),
            pronto::sim::StreamOptions::for_answer(&answer),
        )
    };
    let call = Call::connect_stream(
        &server.fast_sim(),
        &url,
        pronto::sim::StreamOptions {
            send_start: false,
            ..options
        },
    )
    .await
    .expect("upgrade");
    // The line sends silence before start; speech before start is dropped too.
    call.say(&fixture("hello.wav"));
    call.wait_said().await.expect("said");
    call.send_start().await.expect("start");
    let status = server
        .wait_status("the stream to start", |s| {
            s["calls"][0]["state"] == "listening"
        })
        .await;
    assert_eq!(
        status["calls"][0]["turns"], 0,
        "speech before start is not a turn: {status}"
    );
    assert_eq!(status["calls"][0]["bad_messages"], 0, "{status}");
    echo_still_works(&call).await;
    call.hang_up().await.expect("report");
}
