//! Outbound and test calls that name their agent.

use super::*;

#[tokio::test]
async fn an_outbound_call_names_its_agent_whatever_the_rules_say() {
    let rest = FakeTwilioRest::start(ACCOUNT, AUTH_TOKEN).await;
    let our_number = "+390200000001";
    let callee = SALES_NUMBER;
    let rest_url = rest.base_url().to_string();
    let (server, _dir) = echo_agents(&[
        ("TWILIO_ACCOUNT_SID", ACCOUNT),
        ("TWILIO_API_BASE_URL", &rest_url),
        ("TWILIO_PHONE_NUMBER", our_number),
    ])
    .await;
    let (status, body) = server
        .api(
            Method::POST,
            "/api/calls",
            Some(json!({"to": callee, "agent": "nobody"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("nobody")),
        "{body}"
    );
    assert!(rest.created_calls().is_empty(), "Twilio was not asked");

    let (status, created) = server
        .api(
            Method::POST,
            "/api/calls",
            Some(json!({"to": callee, "agent": "quiet"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let sid = FakeTwilioRest::created_sid(0);
    let form = &rest.created_calls()[0];
    let url = form
        .iter()
        .find(|(k, _)| k == "Url")
        .map(|(_, v)| v.as_str());
    assert_eq!(url, Some("https://pronto.test/voice/quiet"), "{form:?}");
    assert_eq!(
        agent_of(&server, &sid).await,
        "quiet",
        "recorded when placed"
    );

    // Answered: Twilio comes back at the agent's URL. Its To is a number a
    // `to` rule sends to sales, its From one a prefix rule sends to
    // pronto-it; the call is quiet's all the same.
    let mut cfg = sim_for(&server, our_number, callee);
    cfg.direction = "outbound-api".into();
    cfg.call_sid = Some(sid.clone());
    let call = dial_at(&server, "/voice/quiet", &cfg).await;
    let status = server
        .wait_status("the call is live", |s| s["calls"][0]["agent"].is_string())
        .await;
    assert_eq!(status["calls"][0]["agent"], "quiet", "{status}");
    call.hang_up().await.expect("report");
    assert_eq!(agent_of(&server, &sid).await, "quiet");

    // Without an agent: Twilio's URL is /voice, and the call is the
    // default's, not what the rules would make of the callee's number.
    let (status, created) = server
        .api(Method::POST, "/api/calls", Some(json!({"to": callee})))
        .await;
    assert_eq!(status, 201, "{created}");
    let sid = FakeTwilioRest::created_sid(1);
    let form = &rest.created_calls()[1];
    let url = form
        .iter()
        .find(|(k, _)| k == "Url")
        .map(|(_, v)| v.as_str());
    assert_eq!(url, Some("https://pronto.test/voice"), "{form:?}");
    cfg.call_sid = Some(sid.clone());
    let (_, twiml) = webhook(&server, "/voice", &cfg).await;
    assert!(twiml.stream_url.is_some(), "{twiml:?}");
    assert_eq!(agent_of(&server, &sid).await, "reception");
}

#[tokio::test]
async fn a_test_call_talks_to_the_agent_it_names() {
    let (server, _dir) = echo_agents(&[]).await;
    for (body, agent) in [
        (Some(json!({"agent": "sales"})), "sales"),
        (Some(json!({"agent": "pronto-it"})), "pronto-it"),
        (None, "reception"),
        (Some(json!({})), "reception"),
    ] {
        let (status, created) = server
            .api(Method::POST, "/api/test-call", body.clone())
            .await;
        assert_eq!(status, 201, "{body:?}: {created}");
        let sid = created["call_sid"].as_str().expect("call_sid");
        assert!(created["stream_url"].is_string(), "{created}");
        assert_eq!(agent_of(&server, sid).await, agent, "{body:?}");
    }
    for body in [
        json!({"agent": "nobody"}),
        json!({"agent": "sales", "x": 1}),
    ] {
        let (status, answer) = server
            .api(Method::POST, "/api/test-call", Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body}: {answer}");
    }
}
