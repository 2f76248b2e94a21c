//! The Media Streams upgrade: signature over the `wss://` URL before upgrading,
//! per-call stream tokens that expire and work once, and a `start` that must
//! name the call the token was issued for.

use std::time::{Duration, SystemTime};

use crate::harness::{AUTH_TOKEN, PUBLIC, STREAM_SECRET, TestServer, expect_server_close};
use pronto::sim::protocol::TwilioWriter;
use pronto::sim::{Call, SignatureHeader, SimError, StreamOptions, post_voice};
use pronto::twilio::signature::{compute, websocket_url};
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
    let expired = StreamTokens::new(STREAM_SECRET.as_bytes(), Duration::from_secs(60)).issue(
        sid,
        "default",
        SystemTime::now() - Duration::from_secs(120),
    );
    let foreign = StreamTokens::new(b"another deployment", Duration::from_secs(60)).issue(
        sid,
        "default",
        SystemTime::now(),
    );
    let valid_shape = StreamTokens::new(STREAM_SECRET.as_bytes(), Duration::from_secs(60)).issue(
        sid,
        "default",
        SystemTime::now(),
    );
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

/// A peer with a valid stream that floods pings and never reads the pongs
/// cannot make the server queue without limit: past its write-buffer bound
/// the server stops queueing pongs (only the latest waits), so far fewer
/// come back than pings were sent. Unbounded, every one of them is queued
/// in the server's memory and comes back.
#[tokio::test]
async fn a_peer_that_never_reads_cannot_grow_the_servers_memory() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    const PINGS: usize = 300_000;
    let server = TestServer::start().await;
    let answer = post_voice(&server.sim()).await.expect("webhook");
    let url = answer.stream_url().expect("a stream").to_string();
    let path = url
        .strip_prefix(&websocket_url(PUBLIC))
        .expect("on the public URL");
    let target = format!("{}{path}", server.url.replacen("http://", "ws://", 1));
    let mut request = target.into_client_request().expect("request");
    let signature = compute(AUTH_TOKEN, &url, &[]);
    request.headers_mut().insert(
        "X-Twilio-Signature",
        signature.parse().expect("header value"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");
    let mut twilio = TwilioWriter::new(
        "AC0123456789abcdef0123456789abcdef",
        &answer.call_sid,
        "MZ0123456789abcdef0123456789abcdef",
    );
    ws.send(Message::text(twilio.connected()))
        .await
        .expect("send");
    ws.send(Message::text(twilio.start(None, &[])))
        .await
        .expect("send");
    // 125-byte pings (the most a control frame holds): 37 MB of pongs.
    let ping = bytes::Bytes::from(vec![7u8; 125]);
    for _ in 0..PINGS {
        ws.feed(Message::Ping(ping.clone())).await.expect("send");
    }
    ws.flush().await.expect("send");
    // Now read what the server had queued, until it has nothing more.
    let mut pongs = 0;
    while let Ok(Some(Ok(message))) = tokio::time::timeout(Duration::from_secs(2), ws.next()).await
    {
        if matches!(message, Message::Pong(_)) {
            pongs += 1;
        }
    }
    assert!(
        pongs < PINGS / 2,
        "{pongs} of {PINGS} pongs were queued for a peer that did not read"
    );
    assert!(pongs > 0, "pings are still answered");
}
