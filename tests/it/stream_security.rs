//! The Media Streams upgrade: signature over the `wss://` URL before upgrading,
//! per-call stream tokens that expire and work once, and a `start` that must
//! name the call the token was issued for.

use std::time::{Duration, SystemTime};

use crate::harness::{AUTH_TOKEN, PUBLIC, STREAM_SECRET, TestServer, expect_server_close};
use pronto::sim::{Call, SignatureHeader, SimError, StreamOptions, post_voice};
use pronto::twilio::signature::compute;
use pronto::twilio::stream_token::StreamTokens;

fn refused_with(result: Result<Call, SimError>) -> u16 {
    match result {
        Err(SimError::Handshake { status, .. }) => status,
        Err(e) => panic!("expected a refused handshake, got {e}"),
        Ok(_) => panic!("expected a refused handshake, the upgrade succeeded"),
    }
}

/// The webhook's answer and the options Twilio would use to connect its stream.
async fn answered(server: &TestServer) -> (String, StreamOptions) {
    let answer = post_voice(&server.sim()).await.expect("webhook");
    let url = answer.stream_url().expect("a stream").to_string();
    (url, StreamOptions::for_answer(&answer))
}

#[tokio::test]
async fn an_unsigned_or_wrongly_signed_upgrade_is_refused() {
    let server = TestServer::start().await;
    let (url, options) = answered(&server).await;
    let cases = [
        ("no signature", SignatureHeader::Omit),
        (
            "other token",
            SignatureHeader::Value(compute("other-token", &url, &[])),
        ),
        (
            "signed over the https URL of another path",
            SignatureHeader::Value(compute(AUTH_TOKEN, &format!("{PUBLIC}/stream/other"), &[])),
        ),
        ("garbage", SignatureHeader::Value("xyz".into())),
    ];
    for (what, signature) in cases {
        let opts = StreamOptions {
            signature,
            ..options.clone()
        };
        assert_eq!(
            refused_with(Call::connect_stream(&server.sim(), &url, opts).await),
            403,
            "{what}"
        );
    }
    // The token was not used up by the refused attempts: Twilio's own
    // (signed) connection still works.
    let call = Call::connect_stream(&server.sim(), &url, options)
        .await
        .expect("signed upgrade");
    call.hang_up().await.expect("report");
}

#[tokio::test]
async fn a_stream_token_works_once() {
    let server = TestServer::start().await;
    let (url, options) = answered(&server).await;
    let call = Call::connect_stream(&server.sim(), &url, options.clone())
        .await
        .expect("first use");
    call.hang_up().await.expect("report");
    assert_eq!(
        refused_with(Call::connect_stream(&server.sim(), &url, options).await),
        403
    );
}

#[tokio::test]
async fn expired_made_up_and_foreign_tokens_are_refused() {
    let server = TestServer::start().await;
    let sid = "CA0123456789abcdef0123456789abcdef";
    let expired = StreamTokens::new(STREAM_SECRET.as_bytes(), Duration::from_secs(60))
        .issue(sid, SystemTime::now() - Duration::from_secs(120));
    let foreign = StreamTokens::new(b"another deployment", Duration::from_secs(60))
        .issue(sid, SystemTime::now());
    let valid_shape = StreamTokens::new(STREAM_SECRET.as_bytes(), Duration::from_secs(60))
        .issue(sid, SystemTime::now());
    let options = StreamOptions {
        call_sid: Some(sid.into()),
        ..StreamOptions::default()
    };
    for (what, token) in [
        ("expired", expired),
        ("foreign", foreign),
        ("made up", "CA1.2.3.4".to_string()),
    ] {
        let url = format!("wss://pronto.test/stream/{token}");
        assert_eq!(
            refused_with(Call::connect_stream(&server.sim(), &url, options.clone()).await),
            403,
            "{what}"
        );
    }
    // A query string is refused even with a valid token and signature.
    let url = format!("wss://pronto.test/stream/{valid_shape}?x=1");
    assert_eq!(
        refused_with(Call::connect_stream(&server.sim(), &url, options.clone()).await),
        403,
        "query string"
    );
    // The same token without the query is fine (a token minted with the shared secret).
    let url = format!("wss://pronto.test/stream/{valid_shape}");
    let call = Call::connect_stream(&server.sim(), &url, options)
        .await
        .expect("valid token");
    call.hang_up().await.expect("report");
}

#[tokio::test]
async fn a_start_for_another_call_is_closed_with_1008() {
    let server = TestServer::start().await;
    let (url, options) = answered(&server).await;
    let opts = StreamOptions {
        start_call_sid: Some("CAffffffffffffffffffffffffffffffff".into()),
        ..options
    };
    let call = Call::connect_stream(&server.sim(), &url, opts)
        .await
        .expect("upgrade");
    expect_server_close(&call, 1008).await;
    assert_eq!(
        server.api_status().await["calls"].as_array().map(Vec::len),
        Some(1),
        "the real call is still pending"
    );
}

#[tokio::test]
async fn no_start_within_the_timeout_closes_the_socket() {
    let server = TestServer::with(&[("PRONTO_TWILIO_START_TIMEOUT_SECS", "1")], None).await;
    let (url, options) = answered(&server).await;
    let call = Call::connect_stream(
        &server.sim(),
        &url,
        StreamOptions {
            send_start: false,
            ..options
        },
    )
    .await
    .expect("upgrade");
    let closed = expect_server_close(&call, 1008).await;
    assert!(
        closed.at_ms >= 900 && closed.at_ms < 5000,
        "closed after {} ms",
        closed.at_ms
    );
}
