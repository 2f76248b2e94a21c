//! What the streaming speech-to-text tests (`listen_assemblyai`,
//! `listen_deepgram`, `listen_openai`) share: the caller's speech
//! (tests/fixtures/hello.wav as the phone sends it), the settings of a
//! listener against a fake, and the waits for what is heard or what the fake
//! has seen. Each test file keeps its provider's own fake and checks.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use pronto::audio::mulaw;
use pronto::providers::listen::{
    Heard, Listener, StreamSettings, StreamingSpeechToText, TurnsBy, driver,
};
use pronto::providers::{Endpoint, ProviderError};
use pronto::redact::Secret;
use tokio::time::Instant;

/// The longest any wait here takes before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);
/// μ-law bytes in one 20 ms Twilio frame.
pub const FRAME: usize = 160;

/// The provider ends turns, without its early signal.
pub const PROVIDER_TURNS: TurnsBy = TurnsBy::Provider {
    eager: false,
    semantic: false,
};

/// Settings for a listener against a fake at `base_url`: English, no
/// vocabulary, the provider's default model.
pub fn settings(base_url: &str, key: &str, turns: TurnsBy) -> StreamSettings {
    StreamSettings {
        endpoint: Endpoint {
            base_url: base_url.to_string(),
            api_key: Secret::new(key),
        },
        model: String::new(),
        language: "en".into(),
        vocabulary: String::new(),
        turns,
    }
}

/// A listener on `stt` through the real driver.
pub fn open(stt: impl StreamingSpeechToText + 'static) -> Listener {
    let stt: Arc<dyn StreamingSpeechToText> = Arc::new(stt);
    Listener::open(&stt, driver::Settings::default())
}

/// hello.wav as the phone sends it (μ-law): 0.3–2.1 s speech, then its
/// trailing second of silence.
pub fn hello() -> Vec<u8> {
    mulaw::encode(&crate::common::load("hello.wav"))
}

/// [`hello`] in 20 ms Twilio frames.
pub fn hello_frames() -> Vec<Vec<u8>> {
    hello().chunks(FRAME).map(<[u8]>::to_vec).collect()
}

/// Sends the frames in order (the fakes count audio time, so no real-time
/// pacing).
pub fn send(listener: &mut Listener, frames: &[Vec<u8>]) {
    for frame in frames {
        assert!(listener.send_audio(frame), "the stream is gone");
    }
}

/// Sends μ-law audio in 20 ms frames.
pub fn say(listener: &mut Listener, mulaw: &[u8]) {
    for frame in mulaw.chunks(FRAME) {
        assert!(listener.send_audio(frame), "the stream is gone");
    }
}

/// The next thing heard; `None`: the stream is over. Fails the test when
/// nothing comes within [`WAIT`].
pub async fn next(listener: &mut Listener) -> Option<Heard> {
    tokio::time::timeout(WAIT, poll_fn(|cx| listener.poll_heard(cx)))
        .await
        .expect("something heard in time")
}

/// Everything heard up to and including the first event `what` picks.
pub async fn until(listener: &mut Listener, what: impl Fn(&Heard) -> bool) -> Vec<Heard> {
    let mut heard = Vec::new();
    while let Some(event) = next(listener).await {
        let done = what(&event);
        heard.push(event);
        if done {
            return heard;
        }
    }
    panic!("the stream ended first: {heard:?}");
}

/// Everything heard up to and including the turn's end (or the failure).
pub async fn until_end(listener: &mut Listener) -> Vec<Heard> {
    until(listener, |event| {
        matches!(event, Heard::TurnEnded { .. } | Heard::Failed(_))
    })
    .await
}

/// The first turn's end: its text and whether Pronto forced it.
pub fn ended(heard: &[Heard]) -> Option<(&str, bool)> {
    heard.iter().find_map(|h| match h {
        Heard::TurnEnded { text, forced } => Some((text.as_str(), *forced)),
        _ => None,
    })
}

/// The stream fails with the provider's HTTP `status` and nothing comes
/// after the failure.
pub async fn assert_fails_with_status(listener: &mut Listener, status: u16) {
    let heard = until_end(listener).await;
    assert!(
        matches!(
            heard.last(),
            Some(Heard::Failed(ProviderError::Status { status: s, .. })) if *s == status
        ),
        "failed with {status}: {heard:?}"
    );
    assert_eq!(next(listener).await, None, "nothing after Failed");
}

/// Nothing is heard for `quiet`.
pub async fn assert_nothing_heard(listener: &mut Listener, quiet: Duration) {
    let waited = tokio::time::timeout(quiet, poll_fn(|cx| listener.poll_heard(cx))).await;
    assert!(waited.is_err(), "nothing heard: {waited:?}");
}

/// What two connections heard when the first was dropped after 1 s of
/// audio: the second heard the turn again from its start.
pub fn assert_replayed(first: &[u8], second: &[u8]) {
    assert!(first.len() >= 8 * 1000, "dropped after a second of audio");
    assert!(
        second.starts_with(first),
        "the second connection heard the turn from its start"
    );
}

/// The fake's `connections()` once `ready` holds of them (a fake records
/// as it receives); fails the test when they never do within [`WAIT`].
pub async fn fake_sees<C: std::fmt::Debug>(
    connections: impl Fn() -> Vec<C>,
    ready: impl Fn(&[C]) -> bool,
) -> Vec<C> {
    let deadline = Instant::now() + WAIT;
    loop {
        let connections = connections();
        if ready(&connections) {
            return connections;
        }
        assert!(
            Instant::now() < deadline,
            "the fake never saw it: {connections:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
