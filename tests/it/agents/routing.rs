//! Which agent answers: each rule over signed webhooks, the exact URL a
//! signature holds for, the stream token that names the agent.

use super::*;

#[tokio::test]
async fn each_routing_rule_picks_its_agent_and_the_record_says_which() {
    let (server, _dir) = echo_agents(&[]).await;
    // (path, from, to, the agent, why)
    let cases = [
        (
            "/voice",
            US_CALLER,
            SALES_NUMBER,
            "sales",
            "the number called",
        ),
        (
            "/voice/assistenza",
            US_CALLER,
            OTHER_NUMBER,
            "support",
            "the webhook's path",
        ),
        (
            "/voice",
            ITALIAN_CALLER,
            OTHER_NUMBER,
            "pronto-it",
            "the caller's prefix",
        ),
        (
            "/voice/quiet",
            US_CALLER,
            OTHER_NUMBER,
            "quiet",
            "its own URL, no rule",
        ),
        (
            "/voice/sales",
            US_CALLER,
            OTHER_NUMBER,
            "sales",
            "its own URL",
        ),
        (
            "/voice",
            US_CALLER,
            OTHER_NUMBER,
            "reception",
            "the default",
        ),
        (
            "/voice/nobody",
            US_CALLER,
            OTHER_NUMBER,
            "reception",
            "an unknown path",
        ),
        // The first matching rule wins: the number before the path and the prefix.
        (
            "/voice/assistenza",
            ITALIAN_CALLER,
            SALES_NUMBER,
            "sales",
            "the first rule of three that match",
        ),
        // The rules come before an agent's own URL.
        (
            "/voice/quiet",
            ITALIAN_CALLER,
            OTHER_NUMBER,
            "pronto-it",
            "a rule before the URL",
        ),
    ];
    for (path, from, to, agent, why) in cases {
        let (sid, twiml) = webhook(&server, path, &sim_for(&server, from, to)).await;
        assert!(twiml.stream_url.is_some(), "{why}: {twiml:?}");
        assert_eq!(
            agent_of(&server, &sid).await,
            agent,
            "{why}: {path} {from} → {to}"
        );
    }
}

#[tokio::test]
async fn a_signature_holds_only_for_the_exact_webhook_url() {
    let (server, _dir) = echo_agents(&[]).await;
    let params = voice_params(
        &sim_for(&server, US_CALLER, OTHER_NUMBER),
        &new_sid(),
        ACCOUNT,
    );
    let signed_for = |path: &str| {
        pronto::twilio::signature::compute(AUTH_TOKEN, &format!("{PUBLIC}{path}"), &params)
    };
    for (signed, posted) in [
        ("/voice", "/voice/sales"),
        ("/voice/sales", "/voice"),
        ("/voice/sales", "/voice/support"),
        ("/voice/assistenza", "/voice/sales"),
    ] {
        let (status, body) = server
            .post_form(posted, &params, Some(&signed_for(signed)))
            .await;
        assert_eq!(
            status, 403,
            "signed for {signed}, posted to {posted}: {body}"
        );
        assert!(!body.contains("<Stream"), "{body}");
    }
    // Signed for where it goes, the same request is answered.
    let (status, body) = server
        .post_form("/voice/sales", &params, Some(&signed_for("/voice/sales")))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<Stream"), "{body}");
}

#[tokio::test]
async fn a_stream_from_voice_sales_is_a_sales_call_and_its_token_names_it_for_good() {
    let (server, _dir) = echo_agents(&[]).await;
    let cfg = sim_for(&server, US_CALLER, OTHER_NUMBER);

    // The agent in the token is signed: another agent's name in its place is
    // a made-up token.
    let (sid, twiml) = webhook(&server, "/voice/sales", &cfg).await;
    let url = twiml.stream_url.expect("a stream");
    assert!(url.contains(".sales."), "the token names its agent: {url}");
    let options = StreamOptions {
        call_sid: Some(sid.clone()),
        account_sid: Some(ACCOUNT.to_string()),
        custom_parameters: twiml.stream_parameters.clone(),
        ..StreamOptions::default()
    };
    for other in ["support", "reception", "default"] {
        let forged = url.replace(".sales.", &format!(".{other}."));
        match Call::connect_stream(&cfg, &forged, options.clone()).await {
            Err(SimError::Handshake { status, .. }) => assert_eq!(status, 403, "{other}"),
            Err(e) => panic!("{other}: {e}"),
            Ok(_) => panic!("a token retargeted to {other} was accepted"),
        }
    }
    // The genuine one still works, and the call is sales' while live and after.
    let call = Call::connect_stream(&cfg, &url, options)
        .await
        .expect("the stream connects");
    let status = server
        .wait_status("the call is live", |s| {
            s["calls"][0]["call_sid"] == sid.as_str() && s["calls"][0]["agent"].is_string()
        })
        .await;
    assert_eq!(status["calls"][0]["agent"], "sales", "{status}");
    call.hang_up().await.expect("report");
    assert_eq!(agent_of(&server, &sid).await, "sales");
    server.end_reason(&sid, WAIT).await;
    assert_eq!(agent_of(&server, &sid).await, "sales", "after the end too");
}
