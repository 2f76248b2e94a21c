//! The HTTP edge: signed webhooks, TwiML, the concurrency cap, status
//! callbacks, `/health` and the bearer-protected API.

use std::time::Duration;

use crate::harness::{API_TOKEN, AUTH_TOKEN, PUBLIC, TestServer};
use pronto::sim::{SimConfig, post_voice, voice_params};
use pronto::twilio::signature::compute;
use reqwest::StatusCode;

const CALL_SID: &str = "CA0123456789abcdef0123456789abcdef";

fn voice_form() -> Vec<(String, String)> {
    let mut cfg = SimConfig::new("http://unused");
    cfg.from = "+14155551234".into();
    voice_params(&cfg, CALL_SID, "AC0123456789abcdef0123456789abcdef")
}

#[tokio::test]
async fn a_signed_call_gets_a_stream_with_its_parameters() {
    let server = TestServer::start().await;
    let answer = post_voice(&server.sim()).await.expect("webhook");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer
            .content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("text/xml"))
    );
    let twiml = answer.twiml.as_ref().expect("TwiML");
    let url = twiml.stream_url.as_deref().expect("a stream");
    assert!(url.starts_with("wss://pronto.test/stream/"), "{url}");
    assert!(
        twiml.says.is_empty(),
        "no <Say> by default: {}",
        answer.body
    );
    let params: Vec<(&str, &str)> = twiml
        .stream_parameters
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        params,
        vec![
            ("From", "+15551230001"),
            ("To", "+15551230002"),
            ("Direction", "inbound")
        ]
    );
    // Each call gets its own stream URL.
    let again = post_voice(&server.sim()).await.expect("webhook");
    assert_ne!(again.stream_url(), answer.stream_url());
}

#[tokio::test]
async fn a_pre_stream_say_is_spoken_first_with_its_voice_and_language() {
    let toml = "[twilio]\npre_stream_say = \"Hello & welcome\"\nsay_voice = \"Polly.Joanna\"\nsay_language = \"en-GB\"";
    let server = TestServer::with(&[], Some(toml)).await;
    let answer = post_voice(&server.sim()).await.expect("webhook");
    assert!(
        answer.body.contains(
            r#"<Say voice="Polly.Joanna" language="en-GB">Hello &amp; welcome</Say><Connect>"#
        ),
        "{}",
        answer.body
    );
    assert_eq!(
        answer.twiml.as_ref().expect("TwiML").says,
        vec!["Hello & welcome".to_string()]
    );
}

#[tokio::test]
async fn unsigned_wrongly_signed_and_tampered_webhooks_get_403_and_no_twiml() {
    let server = TestServer::start().await;
    let params = voice_form();
    let good = compute(AUTH_TOKEN, &format!("{PUBLIC}/voice"), &params);
    let (status, body) = server.post_form("/voice", &params, Some(&good)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let cases = [
        ("no signature", None),
        (
            "another token",
            Some(compute(
                "not-the-token",
                &format!("{PUBLIC}/voice"),
                &params,
            )),
        ),
        // Signed over the URL the request really reached, not the public one.
        (
            "signed over the loopback URL",
            Some(compute(
                AUTH_TOKEN,
                &format!("{}/voice", server.url),
                &params,
            )),
        ),
        ("garbage", Some("not-a-signature".to_string())),
    ];
    for (what, sig) in cases {
        let (status, body) = server.post_form("/voice", &params, sig.as_deref()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
        assert!(!body.contains("<Response"), "{what}: {body}");
    }
    let mut tampered = params.clone();
    if let Some(from) = tampered.iter_mut().find(|(k, _)| k == "From") {
        from.1 = "+19995550000".into();
    }
    let (status, _) = server.post_form("/voice", &tampered, Some(&good)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "tampered From");
}

#[tokio::test]
async fn signatures_over_the_default_port_and_with_new_parameters_are_accepted() {
    let server = TestServer::start().await;
    let mut params = voice_form();
    // Twilio adds parameters over time; all of them are signed.
    params.push(("StirVerstat".into(), "TN-Validation-Passed-A".into()));
    params.push(("Empty".into(), String::new()));
    let sig = compute(AUTH_TOKEN, "https://pronto.test:443/voice", &params);
    let (status, body) = server.post_form("/voice", &params, Some(&sig)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The query string is part of the signed URL, byte for byte.
    let sig = compute(AUTH_TOKEN, &format!("{PUBLIC}/voice?source=a%20b"), &params);
    let (status, _) = server
        .post_form("/voice?source=a%20b", &params, Some(&sig))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .post_form("/voice?source=a+b", &params, Some(&sig))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a differently encoded query is a different URL"
    );
}

#[tokio::test]
async fn a_json_body_is_checked_with_its_body_hash() {
    let server = TestServer::start().await;
    let body = r#"{"CallSid":"CA0123456789abcdef0123456789abcdef"}"#;
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body.as_bytes()));
    let path = format!("/voice/status?bodySHA256={hash}");
    let sig = compute(AUTH_TOKEN, &format!("{PUBLIC}{path}"), &[]);
    let send = |path: String, body: &'static str, sig: String| {
        server
            .http()
            .post(format!("{}{path}", server.url))
            .header("content-type", "application/json")
            .header("X-Twilio-Signature", sig)
            .body(body)
            .send()
    };
    // The signature and hash pass; a JSON status callback carries no form
    // fields, so it is a bad request rather than a forbidden one.
    let resp = send(path.clone(), body, sig.clone()).await.expect("POST");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = send(
        path,
        r#"{"CallSid":"CA0000000000000000000000000000000"}"#,
        sig,
    )
    .await
    .expect("POST");
    assert_eq!(
        resp.status(),
        StatusCode::FORBIDDEN,
        "body changed after signing"
    );
    let bare_sig = compute(AUTH_TOKEN, &format!("{PUBLIC}/voice/status"), &[]);
    let resp = send("/voice/status".into(), body, bare_sig)
        .await
        .expect("POST");
    assert_eq!(
        resp.status(),
        StatusCode::FORBIDDEN,
        "JSON without bodySHA256"
    );
}

#[tokio::test]
async fn above_the_cap_callers_hear_the_busy_message_and_are_hung_up() {
    let server = TestServer::with(&[("PRONTO_SERVER_MAX_CONCURRENT_CALLS", "1")], None).await;
    let first = post_voice(&server.sim()).await.expect("webhook");
    assert!(first.stream_url().is_some());
    let second = post_voice(&server.sim()).await.expect("webhook");
    let twiml = second.twiml.as_ref().expect("TwiML");
    assert!(
        twiml.stream_url.is_none() && twiml.hangup,
        "{}",
        second.body
    );
    assert!(
        twiml.says.first().is_some_and(|s| s.contains("busy")),
        "{}",
        second.body
    );
    // A retried webhook for the call already counted is not refused.
    let mut retry = server.sim();
    retry.call_sid = Some(first.call_sid.clone());
    assert!(
        post_voice(&retry)
            .await
            .expect("webhook")
            .stream_url()
            .is_some()
    );
}

#[tokio::test]
async fn status_callbacks_are_signed_and_update_the_call() {
    let server = TestServer::start().await;
    let answer = post_voice(&server.sim()).await.expect("webhook");
    let callback = |seq: &str, status: &str| {
        let mut p = answer.params.clone();
        p.retain(|(k, _)| k != "CallStatus");
        p.push(("CallStatus".into(), status.into()));
        p.push(("SequenceNumber".into(), seq.into()));
        p.push(("CallbackSource".into(), "call-progress-events".into()));
        p
    };
    let p = callback("1", "in-progress");
    let (status, body) = server.post_signed("/voice/status", &p).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("<Response>"), "{body}");
    let (status, _) = server
        .post_form("/voice/status", &callback("2", "completed"), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "unsigned callback");
    // An older event arriving late does not roll the status back.
    let p = callback("0", "ringing");
    let (status, _) = server.post_signed("/voice/status", &p).await;
    assert_eq!(status, StatusCode::OK);
    let s = server.api_status().await;
    assert_eq!(s["calls"][0]["call_status"], "in-progress", "{s}");
    // The call ended before its stream started: it leaves the list.
    let p = callback("2", "completed");
    server.post_signed("/voice/status", &p).await;
    assert_eq!(server.api_status().await["active_calls"], 0);
}

#[tokio::test]
async fn a_webhook_without_a_call_sid_is_a_bad_request() {
    let server = TestServer::start().await;
    let params = vec![("From".to_string(), "+15550001111".to_string())];
    let (status, _) = server.post_signed("/voice", &params).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn health_says_the_mode_and_whether_signatures_are_checked() {
    let server = TestServer::start().await;
    let (status, health) = server.get_json("/health", None).await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["mode"], "echo");
    assert_eq!(health["signature_checks"], true);
    assert_eq!(health["active_calls"], 0);
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    // What signatures are checked against, for `pronto check --online`.
    assert_eq!(health["public_base_url"], PUBLIC);

    // A password in the URL (Twilio accepts user:password@) is not shown.
    let basic = TestServer::with(
        &[("PUBLIC_BASE_URL", "https://twilio:hunter2@pronto.test")],
        None,
    )
    .await;
    let (_, health) = basic.get_json("/health", None).await;
    assert_eq!(health["public_base_url"], "https://twilio:***@pronto.test");
    assert!(!health.to_string().contains("hunter2"), "{health}");

    let dev = TestServer::with(&[("TWILIO_SKIP_SIGNATURE", "true")], None).await;
    let (_, health) = dev.get_json("/health", None).await;
    assert_eq!(health["signature_checks"], false);
    // With the checks off, an unsigned webhook is answered.
    let mut unsigned = dev.sim();
    unsigned.auth_token = None;
    assert!(
        post_voice(&unsigned)
            .await
            .expect("webhook")
            .stream_url()
            .is_some()
    );
}

#[tokio::test]
async fn the_api_needs_the_bearer_token() {
    let server = TestServer::start().await;
    for (token, what) in [
        (None, "no token"),
        (Some("wrong"), "wrong token"),
        (Some(""), "empty token"),
    ] {
        let (status, body) = server.get_json("/api/status", token).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert!(body["error"].is_string(), "{what}: {body}");
    }
    let (status, _) = server.get_json("/api/no-such-route", None).await;
    assert_eq!(status, 401, "unknown API routes are closed too");
    let (status, body) = server.get_json("/api/status", Some(API_TOKEN)).await;
    assert_eq!(
        (status, &body["active_calls"]),
        (200, &serde_json::json!(0))
    );

    let closed = TestServer::with(&[("API_TOKEN", "")], None).await;
    let (status, body) = closed.get_json("/api/status", Some(API_TOKEN)).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("API_TOKEN")),
        "{body}"
    );
}

/// A captured `/voice` request replayed (or Twilio's retry) takes no second
/// slot; a call whose stream never starts ends as `no_stream` when its
/// stream token lapses, and is refused from then on, so replaying the same
/// requests cannot keep the cap full.
#[tokio::test]
async fn replayed_webhooks_take_no_slot_and_an_unstarted_call_ends_as_no_stream() {
    let server = TestServer::with(
        &[
            ("PRONTO_SERVER_MAX_CONCURRENT_CALLS", "1"),
            ("PRONTO_TWILIO_STREAM_TOKEN_TTL_SECS", "5"),
        ],
        None,
    )
    .await;
    let first = post_voice(&server.sim()).await.expect("webhook");
    assert!(first.stream_url().is_some(), "{}", first.body);
    let mut replay = server.sim();
    replay.call_sid = Some(first.call_sid.clone());
    for _ in 0..5 {
        let again = post_voice(&replay).await.expect("webhook");
        assert!(again.stream_url().is_some(), "{}", again.body);
    }
    let other = post_voice(&server.sim()).await.expect("webhook");
    assert!(other.stream_url().is_none(), "one call, one slot");

    // Nobody connects the stream: at the token's lapse (5 s + 5 s) the
    // call ends, with why.
    let reason = server
        .end_reason(&first.call_sid, Duration::from_secs(25))
        .await;
    assert_eq!(reason, "no_stream");
    let late = post_voice(&replay).await.expect("webhook");
    let twiml = late.twiml.as_ref().expect("TwiML");
    assert!(
        twiml.reject && twiml.stream_url.is_none(),
        "an ended call is refused: {}",
        late.body
    );
    let next = post_voice(&server.sim()).await.expect("webhook");
    assert!(
        next.stream_url().is_some(),
        "the slot is free: {}",
        next.body
    );
}

/// A clean stop ends the calls whose stream had not started yet, so the
/// next start finds nothing open to call `abnormal`.
#[tokio::test]
async fn a_clean_stop_leaves_no_call_open() {
    let server = TestServer::start().await;
    let answer = post_voice(&server.sim()).await.expect("webhook");
    assert!(answer.stream_url().is_some());
    let url = server.state.config.deployment.database_url.clone();
    server.stop().await.expect("stops");
    let store = pronto::store::Store::open(&url).await.expect("store");
    let call = store
        .get_call(&answer.call_sid)
        .await
        .expect("store")
        .expect("recorded");
    assert_eq!(
        call.call.end_reason.map(|r| r.to_string()).as_deref(),
        Some("no_stream")
    );
    assert!(call.call.ended_at.is_some());
}

/// Media types are case-insensitive (RFC 9110, section 8.3.1): a form
/// webhook whose `Content-Type` is written in capitals is still a form.
#[tokio::test]
async fn the_content_type_is_matched_without_regard_to_case() {
    let server = TestServer::start().await;
    let params = voice_form();
    let sig = compute(AUTH_TOKEN, &format!("{PUBLIC}/voice"), &params);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish();
    let answer = server
        .http()
        .post(format!("{}/voice", server.url))
        .header(
            "Content-Type",
            "Application/X-WWW-Form-URLEncoded; Charset=UTF-8",
        )
        .header("X-Twilio-Signature", sig)
        .body(body)
        .send()
        .await
        .expect("POST");
    let status = answer.status();
    let text = answer.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("<Stream"), "{text}");
}
