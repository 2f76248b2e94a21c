//! The fake's wire behaviour, with a bare WebSocket client (no dialect): so
//! that a dialect test that passes is passing against Deepgram's format,
//! not against the fake agreeing with the dialect by mistake.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::*;
use crate::fakes::hearing::test_audio::{silence, tone};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

const FLUX: &str = "/v2/listen?model=flux-general-en&encoding=mulaw&sample_rate=8000";
const NOVA: &str = "/v1/listen?model=nova-3&language=it&encoding=mulaw&sample_rate=8000\
                    &interim_results=true&endpointing=300&utterance_end_ms=1000&vad_events=true";

async fn connect(
    fake: &FakeDeepgram,
    path: &str,
    auth: &str,
) -> Result<Client, tungstenite::Error> {
    let mut request = format!("{}{path}", fake.ws_url())
        .into_client_request()
        .expect("a request");
    if let Ok(value) = auth.parse() {
        request.headers_mut().insert("authorization", value);
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

async fn refused(fake: &FakeDeepgram, path: &str, auth: &str) -> u16 {
    match connect(fake, path, auth).await {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        other => panic!("not refused: {:?}", other.map(|_| ())),
    }
}

async fn send_audio(client: &mut Client, audio: &[u8]) {
    for chunk in audio.chunks(640) {
        client
            .send(Message::Binary(chunk.to_vec().into()))
            .await
            .expect("sent");
    }
}

/// The next message: JSON text, or the close code (0: a close without one).
async fn next(client: &mut Client) -> Result<Value, Option<u16>> {
    let message = tokio::time::timeout(Duration::from_secs(5), client.next())
        .await
        .expect("an answer in time");
    match message {
        Some(Ok(Message::Text(text))) => Ok(serde_json::from_str(text.as_str()).expect("JSON")),
        Some(Ok(Message::Close(frame))) => Err(Some(frame.map_or(0, |f| u16::from(f.code)))),
        other => panic!("{other:?}"),
    }
}

/// The `type` (and `event`) of every message up to the close.
async fn until_close(client: &mut Client) -> (Vec<Value>, Option<u16>) {
    let mut messages = Vec::new();
    loop {
        match next(client).await {
            Ok(message) => messages.push(message),
            Err(code) => return (messages, code),
        }
    }
}

fn kinds(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| match m["event"].as_str() {
            Some(event) => event.to_string(),
            None => m["type"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

#[tokio::test]
async fn the_handshake_checks_key_scheme_and_format() {
    let fake = FakeDeepgram::start_with_key("k").await;
    assert_eq!(
        refused(&fake, FLUX, "Bearer k").await,
        401,
        "Token, not Bearer"
    );
    assert_eq!(refused(&fake, FLUX, "Token other").await, 401);
    let linear = FLUX.replace("mulaw", "linear16");
    assert_eq!(refused(&fake, &linear, "Token k").await, 400);
    let nova_on_v2 = FLUX.replace("flux-general-en", "nova-3");
    assert_eq!(refused(&fake, &nova_on_v2, "Token k").await, 400);
    let too_eager = format!("{FLUX}&eot_threshold=0.6&eager_eot_threshold=0.8");
    assert_eq!(refused(&fake, &too_eager, "Token k").await, 400);
    let connections = fake.connections();
    assert_eq!(connections.len(), 5);
    assert_eq!(connections[0].auth_scheme.as_deref(), Some("Bearer"));
    assert!(
        !format!("{connections:?}").contains("other"),
        "the key is never recorded"
    );
}

#[tokio::test]
async fn flux_speaks_the_turn_state_machine() {
    let fake = FakeDeepgram::start().await;
    fake.set_script(&["one two three"]);
    let mut client = connect(&fake, &format!("{FLUX}&eager_eot_threshold=0.5"), "Token k")
        .await
        .expect("connected");
    assert_eq!(
        next(&mut client).await.expect("Connected")["type"],
        "Connected"
    );
    // Speech, a 220 ms pause (eager end, then resumed), speech, silence.
    send_audio(&mut client, &tone(600)).await;
    send_audio(&mut client, &silence(220)).await;
    send_audio(&mut client, &tone(200)).await;
    send_audio(&mut client, &silence(400)).await;
    let mut seen = Vec::new();
    loop {
        let message = next(&mut client).await.expect("a message");
        let end = message["event"] == "EndOfTurn";
        seen.push(message);
        if end {
            break;
        }
    }
    let events = kinds(&seen);
    assert_eq!(events[0], "StartOfTurn");
    assert!(events.contains(&"Update".to_string()));
    let eager = events
        .iter()
        .position(|e| e == "EagerEndOfTurn")
        .expect("eager");
    assert_eq!(events[eager + 1], "TurnResumed", "{events:?}");
    let n = seen.len();
    assert_eq!(events[n - 2..], ["EagerEndOfTurn", "EndOfTurn"]);
    assert_eq!(seen[n - 1]["transcript"], seen[n - 2]["transcript"]);
    assert_eq!(seen[n - 1]["transcript"], "one two three");
    assert_eq!(seen[n - 1]["trigger"], "model");
    let sequence: Vec<u64> = seen
        .iter()
        .filter_map(|m| m["sequence_id"].as_u64())
        .collect();
    assert!(
        sequence.windows(2).all(|w| w[1] == w[0] + 1),
        "{sequence:?}"
    );
}

#[tokio::test]
async fn flux_force_end_turn_configure_and_close_stream() {
    let fake = FakeDeepgram::start().await;
    let mut client = connect(&fake, &format!("{FLUX}&eot_threshold=1.0"), "Token k")
        .await
        .expect("connected");
    next(&mut client).await.expect("Connected");
    // No turn open: ignored, nothing comes.
    client
        .send(Message::text(r#"{"type":"ForceEndTurn"}"#))
        .await
        .expect("sent");
    let configure = json!({"type": "Configure", "thresholds": {"eot_threshold": 0.8}});
    client
        .send(Message::text(configure.to_string()))
        .await
        .expect("sent");
    let answer = next(&mut client).await.expect("an answer");
    assert_eq!(
        answer["type"], "ConfigureSuccess",
        "the ForceEndTurn got nothing"
    );
    assert_eq!(answer["thresholds"]["eot_threshold"], 0.8);
    let bad = json!({"type": "Configure", "thresholds": {"eot_threshold": 0.2}});
    client
        .send(Message::text(bad.to_string()))
        .await
        .expect("sent");
    assert_eq!(
        next(&mut client).await.expect("an answer")["type"],
        "ConfigureFailure"
    );

    send_audio(&mut client, &tone(300)).await;
    send_audio(&mut client, &silence(100)).await;
    client
        .send(Message::text(r#"{"type":"ForceEndTurn"}"#))
        .await
        .expect("sent");
    let mut last = Value::Null;
    while last["event"] != "EndOfTurn" {
        last = next(&mut client).await.expect("a message");
    }
    assert_eq!(last["trigger"], "manual");
    assert_eq!(last["transcript"], "hello");

    send_audio(&mut client, &tone(300)).await;
    client
        .send(Message::text(r#"{"type":"CloseStream"}"#))
        .await
        .expect("sent");
    let (messages, code) = until_close(&mut client).await;
    assert_eq!(code, Some(0), "Flux closes with no status code");
    assert!(!kinds(&messages).contains(&"EndOfTurn".to_string()));
    assert_eq!(kinds(&messages).last().map(String::as_str), Some("Update"));
}

#[tokio::test]
async fn flux_stream_error_is_an_error_message_then_the_close_code() {
    let fake = FakeDeepgram::start().await;
    fake.push_fault(DeepgramFault::StreamError {
        after_ms: 100,
        code: 1008,
    });
    let mut client = connect(&fake, FLUX, "Token k").await.expect("connected");
    send_audio(&mut client, &silence(200)).await;
    let (messages, code) = until_close(&mut client).await;
    assert_eq!(kinds(&messages), ["Connected", "Error"]);
    assert!(
        messages[1].get("request_id").is_none(),
        "Error has no request_id"
    );
    assert_eq!(code, Some(1008));
}

#[tokio::test]
async fn nova_results_endpoint_utterance_end_and_close_stream() {
    let fake = FakeDeepgram::start().await;
    fake.set_script(&["ciao a tutti"]);
    let mut client = connect(&fake, NOVA, "Token k").await.expect("connected");
    send_audio(&mut client, &tone(800)).await;
    send_audio(&mut client, &silence(1200)).await;
    let mut seen = Vec::new();
    while kinds(&seen).last().map(String::as_str) != Some("UtteranceEnd") {
        seen.push(next(&mut client).await.expect("a message"));
    }
    assert_eq!(seen[0]["type"], "SpeechStarted");
    let finals: Vec<&Value> = seen.iter().filter(|m| m["is_final"] == true).collect();
    assert_eq!(finals.len(), 1);
    assert_eq!(finals[0]["speech_final"], true);
    assert_eq!(
        finals[0]["channel"]["alternatives"][0]["transcript"],
        "ciao a tutti"
    );
    assert!(
        seen.iter().any(|m| m["is_final"] == false),
        "interim results"
    );

    // Finalize flushes a turn in progress.
    send_audio(&mut client, &tone(300)).await;
    client
        .send(Message::text(r#"{"type":"Finalize"}"#))
        .await
        .expect("sent");
    let mut flushed = Value::Null;
    while flushed["from_finalize"] != true {
        flushed = next(&mut client).await.expect("a message");
    }
    assert_eq!(flushed["is_final"], true);

    client
        .send(Message::text(r#"{"type":"CloseStream"}"#))
        .await
        .expect("sent");
    let (messages, code) = until_close(&mut client).await;
    assert_eq!(kinds(&messages), ["Metadata"]);
    assert_eq!(code, Some(1000));
}

#[tokio::test]
async fn nova_keep_alive_holds_off_the_idle_close() {
    let fake = FakeDeepgram::start().await;
    fake.set_idle_timeout(Duration::from_millis(300));
    let mut client = connect(&fake, NOVA, "Token k").await.expect("connected");
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        client
            .send(Message::text(r#"{"type":"KeepAlive"}"#))
            .await
            .expect("still open");
    }
    let (_, code) = until_close(&mut client).await;
    assert_eq!(code, Some(1011), "closed once the KeepAlives stop");
    assert_eq!(fake.connections()[0].control_types(), ["KeepAlive"; 4]);
}
