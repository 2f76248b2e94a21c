//! The AssemblyAI v3 dialect through the real streaming driver, against the
//! fake AssemblyAI server on loopback: the caller's words come back as
//! partials and a final transcript; Pronto can end a turn; a dropped
//! connection is made again with the turn's audio; a refused key fails at
//! once; the end of the call terminates the session.

use std::time::Duration;

use pronto::fakes::assemblyai::{AssemblyAiConnection, AssemblyAiFault, FakeAssemblyAi};
use pronto::providers::ProviderError;
use pronto::providers::listen::assemblyai::AssemblyAi;
use pronto::providers::listen::{Heard, Listener, StreamSettings, TurnsBy};

use crate::listen_common::{
    PROVIDER_TURNS, assert_fails_with_status, assert_nothing_heard, assert_replayed, ended,
    fake_sees, hello_frames, next, send, settings, until_end,
};

const TEXT: &str = "hello how are you";

fn open(fake: &FakeAssemblyAi, turns: TurnsBy) -> Listener {
    crate::listen_common::open(AssemblyAi::new(StreamSettings {
        vocabulary: "Pronto".into(),
        ..settings(fake.base_url(), "aai-test-key", turns)
    }))
}

async fn fake() -> FakeAssemblyAi {
    let fake = FakeAssemblyAi::start().await;
    fake.set_script(&[TEXT]);
    fake
}

fn sent_terminate(connection: &AssemblyAiConnection) -> bool {
    connection.control.iter().any(|c| c["type"] == "Terminate")
}

#[tokio::test]
async fn speech_gives_partials_then_the_final_transcript() {
    let fake = fake().await;
    let mut listener = open(&fake, PROVIDER_TURNS);
    send(&mut listener, &hello_frames());
    let heard = until_end(&mut listener).await;
    assert_eq!(heard.first(), Some(&Heard::SpeechStarted), "{heard:?}");
    let partials: Vec<&str> = heard
        .iter()
        .filter_map(|h| match h {
            Heard::Partial(text) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(partials.first(), Some(&"hello"), "{heard:?}");
    assert!(partials.len() >= 2, "growing partials: {heard:?}");
    assert_eq!(ended(&heard), Some((TEXT, false)), "{heard:?}");

    let connection = &fake.connections()[0];
    assert!(connection.authorization);
    assert_eq!(connection.query["sample_rate"], "8000");
    assert_eq!(connection.query["encoding"], "pcm_mulaw");
    assert_eq!(
        connection.query["speech_model"],
        "universal-streaming-english"
    );
    assert_eq!(connection.query["keyterms_prompt"], r#"["Pronto"]"#);
    assert!(
        connection.binary_sizes.iter().all(|&s| s == 800),
        "100 ms messages: {:?}",
        connection.binary_sizes
    );
    assert_eq!(connection.closed_with, None);
}

#[tokio::test]
async fn eager_mode_reports_the_pause_before_the_end() {
    let fake = fake().await;
    // The utterance at 400 ms of silence, the turn's end at 800 ms.
    fake.set_turn_silence(Some(800));
    let mut listener = open(
        &fake,
        TurnsBy::Provider {
            eager: true,
            semantic: false,
        },
    );
    send(&mut listener, &hello_frames());
    let heard = until_end(&mut listener).await;
    let eager = heard
        .iter()
        .position(|h| *h == Heard::EagerEnd(TEXT.into()));
    let end = heard
        .iter()
        .position(|h| matches!(h, Heard::TurnEnded { .. }));
    assert!(eager.is_some() && eager < end, "{heard:?}");
    assert!(!heard.contains(&Heard::Resumed), "{heard:?}");
    assert_eq!(ended(&heard), Some((TEXT, false)));
}

#[tokio::test]
async fn pronto_ends_the_turn_with_force_endpoint() {
    let fake = fake().await;
    fake.set_final_delay(Duration::from_millis(50));
    let mut listener = open(&fake, TurnsBy::Pronto);
    let frames = hello_frames();
    // The speech and 300 ms of its silence: Pronto's own end of turn.
    send(&mut listener, &frames[..120]);
    let mut heard = Vec::new();
    while let Some(event) = next(&mut listener).await {
        let all_words = event == Heard::Partial(TEXT.into());
        heard.push(event);
        if all_words {
            break;
        }
    }
    listener.force_end();
    let heard = until_end(&mut listener).await;
    assert_eq!(ended(&heard), Some((TEXT, true)), "{heard:?}");
    let connection = &fake.connections()[0];
    assert_eq!(connection.query["end_of_turn_confidence_threshold"], "1.0");
    assert!(
        connection
            .control
            .iter()
            .any(|c| c["type"] == "ForceEndpoint"),
        "{:?}",
        connection.control
    );
    // Nothing said since: the endpoint is still asked for (words may be on
    // their way), and no turn is invented; Pronto's own wait ends it.
    send(&mut listener, &frames[120..130]);
    listener.force_end();
    assert_nothing_heard(&mut listener, Duration::from_millis(500)).await;
}

#[tokio::test]
async fn a_dropped_connection_is_made_again_and_the_turn_arrives_whole() {
    let fake = fake().await;
    fake.push_fault(AssemblyAiFault::Drop {
        after_audio_ms: 1000,
    });
    let mut listener = open(&fake, PROVIDER_TURNS);
    let frames = hello_frames();
    send(&mut listener, &frames);
    let heard = until_end(&mut listener).await;
    assert_eq!(ended(&heard), Some((TEXT, false)), "{heard:?}");
    let connections = fake.connections();
    assert_eq!(connections.len(), 2);
    let (first, second) = (&connections[0], &connections[1]);
    assert_replayed(&first.audio, &second.audio);
    assert!(second.binary_sizes.iter().all(|s| (400..=8000).contains(s)));
}

#[tokio::test]
async fn a_refused_key_fails_without_a_reconnect() {
    for fault in [
        AssemblyAiFault::RefuseKey,
        AssemblyAiFault::RefuseKeyInStream,
    ] {
        let fake = fake().await;
        fake.push_fault(fault.clone());
        let mut listener = open(&fake, TurnsBy::Pronto);
        send(&mut listener, &hello_frames()[..10]);
        assert_fails_with_status(&mut listener, 401).await;
        assert_eq!(fake.connections().len(), 1, "{fault:?}: no second attempt");
    }
}

#[tokio::test]
async fn a_server_error_is_retried_once_and_a_refusal_is_not() {
    let fake = fake().await;
    fake.push_fault(AssemblyAiFault::CloseWith {
        code: 3005,
        after_audio_ms: 500,
    });
    let mut listener = open(&fake, PROVIDER_TURNS);
    send(&mut listener, &hello_frames());
    let heard = until_end(&mut listener).await;
    assert_eq!(ended(&heard), Some((TEXT, false)), "{heard:?}");
    assert_eq!(fake.connections().len(), 2);

    let fake = fake_with(AssemblyAiFault::CloseWith {
        code: 4002,
        after_audio_ms: 500,
    })
    .await;
    let mut listener = open(&fake, PROVIDER_TURNS);
    send(&mut listener, &hello_frames());
    let heard = until_end(&mut listener).await;
    assert!(
        matches!(
            heard.last(),
            Some(Heard::Failed(ProviderError::Status { status: 402, .. }))
        ),
        "{heard:?}"
    );
    assert_eq!(fake.connections().len(), 1);
}

async fn fake_with(fault: AssemblyAiFault) -> FakeAssemblyAi {
    let fake = fake().await;
    fake.push_fault(fault);
    fake
}

#[tokio::test]
async fn dropping_the_listener_terminates_the_session() {
    let fake = fake().await;
    let mut listener = open(&fake, PROVIDER_TURNS);
    let frames = hello_frames();
    // 3.1 s: the last 18 ms are not a whole batch.
    send(&mut listener, &frames);
    let _ = until_end(&mut listener).await;
    drop(listener);
    let connections = fake_sees(
        || fake.connections(),
        |c| c.first().is_some_and(sent_terminate),
    )
    .await;
    let connection = &connections[0];
    assert!(sent_terminate(connection), "{:?}", connection.control);
    let total: usize = frames.iter().map(Vec::len).sum();
    assert!(connection.audio.len() >= total, "the batched tail was sent");
    assert!(
        connection
            .binary_sizes
            .iter()
            .all(|s| (400..=8000).contains(s))
    );
    assert_eq!(connection.closed_with, Some(1000));
    assert_eq!(connections.len(), 1);
}

#[tokio::test]
async fn an_idle_close_is_retried() {
    let fake = fake_with(AssemblyAiFault::Idle(Duration::from_millis(200))).await;
    let mut listener = open(&fake, TurnsBy::Pronto);
    send(&mut listener, &hello_frames()[..10]);
    let connections = fake_sees(|| fake.connections(), |c| c.len() == 2).await;
    assert_eq!(connections.len(), 2, "made again after 4031");
    assert_eq!(connections[0].closed_with, Some(4031));
    // The second connection is up: nothing failed.
    assert_nothing_heard(&mut listener, Duration::from_millis(300)).await;
}
