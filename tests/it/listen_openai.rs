//! The OpenAI Realtime transcription dialect through the real streaming
//! driver, against the fake transcription server on loopback: voice
//! detection and the completed text; Pronto's commit; a dropped connection
//! made again with the turn's audio; a refused key; a session that is not
//! μ-law; the clean close at the end of the call; and the fake's own GA
//! checks (beta header, session shape).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use pronto::fakes::openai_realtime::{
    FakeOpenAiRealtime, OpenAiRealtimeConnection, OpenAiRealtimeFault,
};
use pronto::providers::ProviderError;
use pronto::providers::listen::openai_realtime::OpenAiRealtime;
use pronto::providers::listen::{Heard, Listener, TurnsBy};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::listen_common::{
    PROVIDER_TURNS, WAIT, assert_fails_with_status, assert_replayed, ended, fake_sees,
    hello_frames, send, settings, until_end,
};

const TEXT: &str = "hello how are you";
const SERVER_VAD: TurnsBy = PROVIDER_TURNS;

fn open(fake: &FakeOpenAiRealtime, turns: TurnsBy) -> Listener {
    crate::listen_common::open(OpenAiRealtime::new(settings(
        fake.base_url(),
        "sk-test",
        turns,
    )))
}

async fn fake() -> FakeOpenAiRealtime {
    let fake = FakeOpenAiRealtime::start().await;
    fake.set_script(&[TEXT]);
    fake
}

fn kinds(connection: &OpenAiRealtimeConnection) -> Vec<String> {
    connection
        .events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn voice_detection_ends_the_turn_with_the_completed_text() {
    for turns in [
        SERVER_VAD,
        TurnsBy::Provider {
            eager: false,
            semantic: true,
        },
    ] {
        let fake = fake().await;
        fake.set_final_delay(Duration::from_millis(30));
        let mut listener = open(&fake, turns);
        send(&mut listener, &hello_frames());
        let heard = until_end(&mut listener).await;
        assert_eq!(
            heard.first(),
            Some(&Heard::SpeechStarted),
            "{turns:?}: {heard:?}"
        );
        assert!(heard.contains(&Heard::SpeechStopped), "{heard:?}");
        assert!(
            heard.contains(&Heard::Partial("hello how".into())),
            "{heard:?}"
        );
        assert_eq!(ended(&heard), Some((TEXT, false)), "{heard:?}");

        let connection = &fake.connections()[0];
        assert_eq!(
            connection.query.get("intent").map(String::as_str),
            Some("transcription")
        );
        assert!(!connection.query.contains_key("model"));
        assert!(connection.authorization && !connection.beta_header);
        let update = &connection.events[0];
        assert_eq!(update["type"], "session.update");
        assert_eq!(
            update["session"]["audio"]["input"]["format"],
            json!({"type": "audio/pcmu"})
        );
        let frames: Vec<usize> = hello_frames().iter().map(Vec::len).collect();
        assert_eq!(
            connection.append_sizes, frames,
            "one append per Twilio frame"
        );
    }
}

#[tokio::test]
async fn pronto_ends_the_turn_with_a_commit() {
    let fake = fake().await;
    let mut listener = open(&fake, TurnsBy::Pronto);
    let frames = hello_frames();
    // The speech and 300 ms of its silence: Pronto's own end of turn.
    send(&mut listener, &frames[..120]);
    let connections = fake_sees(
        || fake.connections(),
        |c| c.first().is_some_and(|c| c.audio.len() >= 120 * 160),
    )
    .await;
    assert_eq!(connections[0].audio.len(), 120 * 160);
    assert!(
        !kinds(&connections[0]).contains(&"input_audio_buffer.commit".to_string()),
        "nothing ends a turn before Pronto does"
    );
    listener.force_end();
    let heard = until_end(&mut listener).await;
    assert!(!heard.contains(&Heard::SpeechStopped), "{heard:?}");
    assert_eq!(ended(&heard), Some((TEXT, true)), "{heard:?}");
    let connection = &fake.connections()[0];
    assert!(connection.events[0]["session"]["audio"]["input"]["turn_detection"].is_null());
    assert!(kinds(connection).contains(&"input_audio_buffer.commit".to_string()));

    // Nothing since the last turn: answered at once, without a commit.
    listener.force_end();
    assert_eq!(ended(&until_end(&mut listener).await), Some(("", true)));
    // 40 ms is less than a commit takes: the server refuses it as empty.
    send(&mut listener, &frames[120..122]);
    listener.force_end();
    let heard = until_end(&mut listener).await;
    assert_eq!(ended(&heard), Some(("", true)), "{heard:?}");
    let commits = kinds(&fake.connections()[0])
        .iter()
        .filter(|k| *k == "input_audio_buffer.commit")
        .count();
    assert_eq!(commits, 2);
}

#[tokio::test]
async fn a_dropped_connection_is_made_again_and_the_turn_arrives_whole() {
    let fake = fake().await;
    fake.push_fault(OpenAiRealtimeFault::Drop {
        after_audio_ms: 1000,
    });
    let mut listener = open(&fake, SERVER_VAD);
    send(&mut listener, &hello_frames());
    let heard = until_end(&mut listener).await;
    assert_eq!(ended(&heard), Some((TEXT, false)), "{heard:?}");
    let connections = fake.connections();
    assert_eq!(connections.len(), 2);
    let (first, second) = (&connections[0], &connections[1]);
    assert_replayed(&first.audio, &second.audio);
    assert_eq!(
        kinds(second)[0],
        "session.update",
        "the session is set up again"
    );
    assert!(second.append_sizes.iter().all(|&s| s <= 8000));
}

#[tokio::test]
async fn a_refused_key_fails_without_a_reconnect() {
    let fake = fake().await;
    fake.push_fault(OpenAiRealtimeFault::RefuseKey);
    let mut listener = open(&fake, SERVER_VAD);
    send(&mut listener, &hello_frames()[..10]);
    assert_fails_with_status(&mut listener, 401).await;
    assert_eq!(fake.connections().len(), 1);
}

#[tokio::test]
async fn a_session_that_stays_pcm_gets_no_mulaw() {
    let fake = fake().await;
    fake.push_fault(OpenAiRealtimeFault::KeepPcm);
    let mut listener = open(&fake, SERVER_VAD);
    send(&mut listener, &hello_frames()[..50]);
    let heard = until_end(&mut listener).await;
    assert!(
        matches!(
            heard.last(),
            Some(Heard::Failed(ProviderError::Protocol { .. }))
        ),
        "{heard:?}"
    );
    let connections = fake.connections();
    assert_eq!(connections.len(), 1, "fatal: no second attempt");
    assert!(
        connections[0].audio.is_empty(),
        "no μ-law into a PCM session"
    );
}

#[tokio::test]
async fn a_server_error_close_is_retried_once() {
    let fake = fake().await;
    fake.push_fault(OpenAiRealtimeFault::CloseWith {
        close_code: 1011,
        code: "server_error".into(),
        after_audio_ms: 500,
    });
    let mut listener = open(&fake, SERVER_VAD);
    send(&mut listener, &hello_frames());
    let heard = until_end(&mut listener).await;
    assert_eq!(ended(&heard), Some((TEXT, false)), "{heard:?}");
    assert_eq!(fake.connections().len(), 2);
    assert_eq!(fake.connections()[0].closed_with, Some(1011));
}

#[tokio::test]
async fn dropping_the_listener_closes_normally() {
    let fake = fake().await;
    let mut listener = open(&fake, SERVER_VAD);
    send(&mut listener, &hello_frames());
    let _ = until_end(&mut listener).await;
    drop(listener);
    let connections = fake_sees(
        || fake.connections(),
        |c| c.first().is_some_and(|c| c.client_close.is_some()),
    )
    .await;
    assert_eq!(connections[0].client_close, Some(1000));
    assert_eq!(connections.len(), 1);
}

/// A raw client of the fake, with extra headers.
async fn raw(
    fake: &FakeOpenAiRealtime,
    beta: bool,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = format!(
        "{}/realtime?intent=transcription",
        fake.base_url().replacen("http", "ws", 1)
    );
    let mut request = url.into_client_request().expect("a request");
    request
        .headers_mut()
        .insert("authorization", "Bearer sk-test".parse().expect("a header"));
    if beta {
        request
            .headers_mut()
            .insert("openai-beta", "realtime=v1".parse().expect("a header"));
    }
    tokio_tungstenite::connect_async(request)
        .await
        .expect("the fake upgrades")
        .0
}

async fn event(
    socket: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
) -> Value {
    loop {
        match tokio::time::timeout(WAIT, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                return serde_json::from_str(text.as_str()).expect("JSON");
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                return json!({"close": frame.map(|f| u16::from(f.code))});
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("no event: {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_fake_refuses_beta_shapes_like_the_ga_endpoint() {
    let fake = fake().await;
    let mut beta = raw(&fake, true).await;
    assert_eq!(
        event(&mut beta).await["error"]["code"],
        "beta_api_shape_disabled"
    );
    assert_eq!(event(&mut beta).await["close"], 4000);

    let mut ga = raw(&fake, false).await;
    assert_eq!(event(&mut ga).await["type"], "session.created");
    let no_type = json!({"type": "session.update", "session": {"audio": {}}});
    ga.send(Message::Text(no_type.to_string().into()))
        .await
        .expect("sent");
    let error = event(&mut ga).await;
    assert_eq!(error["error"]["code"], "missing_required_parameter");
    assert_eq!(error["error"]["param"], "session.type");
    let beta_key = json!({"type": "session.update", "session": {"type": "transcription", "input_audio_format": "g711_ulaw"}});
    ga.send(Message::Text(beta_key.to_string().into()))
        .await
        .expect("sent");
    assert_eq!(event(&mut ga).await["error"]["code"], "unknown_parameter");
    let good = json!({"type": "session.update", "session": {"type": "transcription",
        "audio": {"input": {"format": {"type": "audio/pcmu"}, "turn_detection": null}}}});
    ga.send(Message::Text(good.to_string().into()))
        .await
        .expect("sent");
    let updated = event(&mut ga).await;
    assert_eq!(updated["type"], "session.updated");
    assert_eq!(
        updated["session"]["audio"]["input"]["format"]["type"],
        "audio/pcmu"
    );
    assert!(updated["session"]["audio"]["input"]["turn_detection"].is_null());
}
