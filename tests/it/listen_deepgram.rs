//! Deepgram streaming speech-to-text (Flux `/v2/listen` and Nova
//! `/v1/listen`) through the real listen driver against `FakeDeepgram` on
//! loopback: the caller's speech (tests/fixtures/hello.wav, μ-law, 20 ms
//! frames) → partials → the turn's final transcript; Pronto ending the
//! turn; a dropped connection replayed on a new one; refusals; the close.

use std::time::{Duration, Instant};

use pronto::fakes::deepgram::{DeepgramFault, FakeDeepgram};
use pronto::providers::ProviderError;
use pronto::providers::listen::deepgram::Deepgram;
use pronto::providers::listen::{Heard, Listener, StreamSettings, TurnsBy};

use crate::listen_common::{
    PROVIDER_TURNS, assert_fails_with_status, assert_nothing_heard, assert_replayed, fake_sees,
    hello, say, settings, until, until_end,
};

const TEXT: &str = "hello I would like to book a table";

const FLUX_TURNS: TurnsBy = PROVIDER_TURNS;
const EAGER_TURNS: TurnsBy = TurnsBy::Provider {
    eager: true,
    semantic: false,
};

async fn fake() -> FakeDeepgram {
    let fake = FakeDeepgram::start().await;
    fake.set_script(&[TEXT]);
    fake
}

fn open(fake: &FakeDeepgram, language: &str, turns: TurnsBy) -> Listener {
    crate::listen_common::open(Deepgram::new(StreamSettings {
        language: language.into(),
        vocabulary: "Pronto".into(),
        ..settings(&fake.ws_url(), "dg-test-key", turns)
    }))
}

fn ends(heard: &[Heard]) -> Vec<(String, bool)> {
    heard
        .iter()
        .filter_map(|h| match h {
            Heard::TurnEnded { text, forced } => Some((text.clone(), *forced)),
            _ => None,
        })
        .collect()
}

fn assert_partials_grow_into(heard: &[Heard], text: &str) {
    let partials: Vec<&String> = heard
        .iter()
        .filter_map(|h| match h {
            Heard::Partial(p) => Some(p),
            _ => None,
        })
        .collect();
    assert!(partials.len() >= 2, "partials as the words come: {heard:?}");
    for partial in partials {
        assert!(
            text.starts_with(partial.as_str()),
            "{partial:?} is not the turn so far"
        );
    }
}

#[tokio::test]
async fn flux_hears_partials_an_eager_end_and_the_final_turn() {
    let fake = fake().await;
    let mut listener = open(&fake, "en", EAGER_TURNS);
    let audio = hello();
    say(&mut listener, &audio);
    let heard = until_end(&mut listener).await;

    assert_eq!(heard.first(), Some(&Heard::SpeechStarted), "{heard:?}");
    assert_partials_grow_into(&heard, TEXT);
    let n = heard.len();
    assert_eq!(
        heard[n - 2..],
        [
            Heard::EagerEnd(TEXT.into()),
            Heard::TurnEnded {
                text: TEXT.into(),
                forced: false
            }
        ]
    );
    // hello.wav pauses ~200 ms between words: the eager end comes early and
    // the caller resumes.
    for (i, event) in heard.iter().enumerate() {
        if *event == Heard::Resumed {
            assert!(
                heard[..i].iter().any(|h| matches!(h, Heard::EagerEnd(_))),
                "a resume only after an eager end: {heard:?}"
            );
        }
    }

    let connections = fake.connections();
    assert_eq!(connections.len(), 1);
    let flux = &connections[0];
    assert_eq!(flux.path, "/v2/listen");
    assert_eq!(flux.auth_scheme.as_deref(), Some("Token"));
    assert_eq!(flux.param("model"), ["flux-general-en"]);
    assert_eq!(flux.param("eager_eot_threshold"), ["0.5"]);
    assert_eq!(flux.param("keyterm"), ["Pronto"]);
    assert!(flux.binary_sizes.iter().all(|&s| s == 640), "80 ms batches");
    assert_eq!(
        flux.audio[..],
        audio[..flux.audio.len()],
        "the audio in order"
    );
}

#[tokio::test]
async fn flux_ends_the_turn_when_pronto_says_so() {
    let fake = fake().await;
    fake.set_final_delay(Duration::from_millis(150));
    let mut listener = open(&fake, "en", TurnsBy::Pronto);
    let audio = hello();
    say(&mut listener, &audio);
    until(&mut listener, |h| *h == Heard::SpeechStarted).await;
    // All the audio there (but the batch not yet full): Flux's own end of
    // turn is off, so nothing ends the turn but Pronto.
    fake_sees(
        || fake.connections(),
        |c| c[0].audio.len() + 640 > audio.len(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let asked = Instant::now();
    listener.force_end();
    let heard = until_end(&mut listener).await;
    assert!(
        asked.elapsed() >= Duration::from_millis(150),
        "the fake's final delay"
    );
    assert_eq!(
        ends(&heard),
        [(TEXT.to_string(), true)],
        "the manual end, and no model end before it: {heard:?}"
    );
    let flux = &fake.connections()[0];
    assert_eq!(flux.param("eot_threshold"), ["1.0"]);
    assert!(flux.param("eager_eot_threshold").is_empty());
    assert_eq!(flux.control_types(), ["ForceEndTurn"]);
    assert_eq!(
        flux.audio, audio,
        "the batch is flushed before ForceEndTurn"
    );
}

#[tokio::test]
async fn flux_force_end_with_nothing_said_invents_no_turn_and_sends_nothing() {
    let fake = fake().await;
    let mut listener = open(&fake, "en", TurnsBy::Pronto);
    say(&mut listener, &[0xFF; 8 * 500]);
    fake_sees(
        || fake.connections(),
        |c| c.first().is_some_and(|c| c.audio.len() >= 8 * 480),
    )
    .await;
    listener.force_end();
    // Nothing to answer: Pronto's own wait for the final runs out instead.
    assert_nothing_heard(&mut listener, Duration::from_millis(500)).await;
    assert!(
        fake.connections()[0].control_types().is_empty(),
        "no ForceEndTurn: Flux would not answer it"
    );
}

#[tokio::test]
async fn a_dropped_connection_is_replayed_and_the_turn_arrives_whole() {
    let fake = fake().await;
    fake.push_fault(DeepgramFault::Drop { after_ms: 1000 });
    let mut listener = open(&fake, "en", FLUX_TURNS);
    let audio = hello();
    say(&mut listener, &audio);
    let heard = until_end(&mut listener).await;
    assert_eq!(ends(&heard), [(TEXT.to_string(), false)], "{heard:?}");

    let connections = fake.connections();
    assert_eq!(connections.len(), 2, "one reconnect");
    let (first, second) = (&connections[0], &connections[1]);
    assert_replayed(&first.audio, &second.audio);
    assert!(first.audio.len() < audio.len(), "dropped mid-stream");
    assert!(
        second.audio.len() > first.audio.len(),
        "the second connection heard the replay and the rest"
    );
    assert_eq!(
        second.audio[..],
        audio[..second.audio.len()],
        "the turn replayed from its start, in order"
    );
}

#[tokio::test]
async fn a_refused_key_fails_the_stream_without_a_retry() {
    let fake = FakeDeepgram::start_with_key("the-right-key").await;
    let mut listener = crate::listen_common::open(Deepgram::new(StreamSettings {
        vocabulary: "Pronto".into(),
        ..settings(fake.base_url(), "a-wrong-key", FLUX_TURNS)
    }));
    say(&mut listener, &hello());
    assert_fails_with_status(&mut listener, 401).await;
    let connections = fake.connections();
    assert_eq!(connections.len(), 1, "no reconnect");
    assert_eq!(connections[0].refused, Some(401));
}

#[tokio::test]
async fn a_rate_limit_at_the_handshake_fails_the_stream() {
    let fake = fake().await;
    fake.push_fault(DeepgramFault::RateLimit);
    let mut listener = open(&fake, "en", FLUX_TURNS);
    let heard = until_end(&mut listener).await;
    assert!(
        matches!(
            heard.last(),
            Some(Heard::Failed(ProviderError::Status { status: 429, .. }))
        ),
        "{heard:?}"
    );
    assert_eq!(fake.connections().len(), 1);
}

#[tokio::test]
async fn a_flux_error_mid_stream_is_fatal() {
    let fake = fake().await;
    fake.push_fault(DeepgramFault::StreamError {
        after_ms: 500,
        code: 1011,
    });
    let mut listener = open(&fake, "en", FLUX_TURNS);
    say(&mut listener, &hello());
    let heard = until_end(&mut listener).await;
    let Some(Heard::Failed(ProviderError::Protocol { detail, .. })) = heard.last() else {
        panic!("{heard:?}");
    };
    assert!(detail.contains("INTERNAL_SERVER_ERROR"), "{detail}");
    assert_eq!(
        fake.connections().len(),
        1,
        "an Error message is not retried"
    );
}

#[tokio::test]
async fn messages_to_ignore_and_no_request_id_leave_the_turn_whole() {
    let fake = fake().await;
    fake.push_fault(DeepgramFault::Unknowns);
    let mut listener = open(&fake, "en", FLUX_TURNS);
    say(&mut listener, &hello());
    let heard = until_end(&mut listener).await;
    assert_eq!(ends(&heard), [(TEXT.to_string(), false)], "{heard:?}");
    assert_partials_grow_into(&heard, TEXT);

    fake.push_fault(DeepgramFault::NoRequestId);
    let mut listener = open(&fake, "en", FLUX_TURNS);
    say(&mut listener, &hello());
    let heard = until_end(&mut listener).await;
    assert_eq!(ends(&heard), [(TEXT.to_string(), false)], "{heard:?}");
}

#[tokio::test]
async fn dropping_the_listener_flushes_the_audio_and_closes_the_stream() {
    let fake = fake().await;
    let mut listener = open(&fake, "en", TurnsBy::Pronto);
    let audio = hello();
    // Not a whole number of batches: the tail goes out with the close.
    let audio = &audio[..audio.len() - 100];
    say(&mut listener, audio);
    until(&mut listener, |h| *h == Heard::SpeechStarted).await;
    drop(listener);
    let connections = fake_sees(|| fake.connections(), |c| c[0].client_closed).await;
    assert_eq!(connections.len(), 1);
    let flux = &connections[0];
    assert_eq!(flux.control_types(), ["CloseStream"]);
    assert_eq!(
        flux.audio, audio,
        "every byte, the last short batch included"
    );
    assert_eq!(flux.binary_sizes.last(), Some(&(audio.len() % 640)));
}

#[tokio::test]
async fn nova_hears_other_languages_and_ends_the_turn_on_speech_final() {
    let fake = FakeDeepgram::start().await;
    fake.set_script(&["vorrei prenotare un tavolo"]);
    let mut listener = open(&fake, "it", FLUX_TURNS);
    say(&mut listener, &hello());
    let heard = until_end(&mut listener).await;
    assert_eq!(heard.first(), Some(&Heard::SpeechStarted), "{heard:?}");
    assert_partials_grow_into(&heard, "vorrei prenotare un tavolo");
    assert_eq!(
        ends(&heard),
        [("vorrei prenotare un tavolo".to_string(), false)]
    );
    let nova = &fake.connections()[0];
    assert_eq!(nova.path, "/v1/listen");
    assert_eq!(nova.auth_scheme.as_deref(), Some("Token"));
    assert_eq!(nova.param("model"), ["nova-3"]);
    assert_eq!(nova.param("language"), ["it"]);
    assert_eq!(nova.param("endpointing"), ["300"]);
    assert!(nova.binary_sizes.iter().all(|&s| s == 160));
}

#[tokio::test]
async fn nova_finalizes_when_pronto_ends_the_turn_mid_speech() {
    let fake = FakeDeepgram::start().await;
    fake.set_script(&["vorrei prenotare un tavolo"]);
    let mut listener = open(&fake, "it", TurnsBy::Pronto);
    let audio = hello();
    // Up to the middle of the first word run: no endpoint yet.
    say(&mut listener, &audio[..8 * 600]);
    until(&mut listener, |h| matches!(h, Heard::Partial(_))).await;
    listener.force_end();
    let heard = until_end(&mut listener).await;
    assert_eq!(
        ends(&heard),
        [("vorrei prenotare un tavolo".to_string(), true)],
        "{heard:?}"
    );
    assert_eq!(fake.connections()[0].control_types(), ["Finalize"]);
}

#[tokio::test]
async fn nova_closed_for_idling_is_retried_once_then_fails() {
    let fake = fake().await;
    fake.set_idle_timeout(Duration::from_millis(200));
    let mut listener = open(&fake, "it", FLUX_TURNS);
    let heard = until_end(&mut listener).await;
    let Some(Heard::Failed(error)) = heard.last() else {
        panic!("{heard:?}");
    };
    assert!(error.to_string().contains("NET-0001"), "{error}");
    assert_eq!(
        fake.connections().len(),
        2,
        "the idle close is worth one retry"
    );
}

#[tokio::test]
async fn nova_keeps_a_quiet_stream_alive() {
    let fake = fake().await;
    // Longer than the dialect's 5 s, shorter than two of them.
    fake.set_idle_timeout(Duration::from_secs(6));
    let listener = open(&fake, "it", FLUX_TURNS);
    tokio::time::sleep(Duration::from_millis(7500)).await;
    let connections = fake.connections();
    assert_eq!(connections.len(), 1, "never closed for idling");
    assert_eq!(connections[0].control_types(), ["KeepAlive"]);
    drop(listener);
}
