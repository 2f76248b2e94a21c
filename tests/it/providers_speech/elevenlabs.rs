//! ElevenLabs: μ-law passed through unchanged, the request, and faults.

use pronto::providers::TextToSpeech;
use pronto::providers::elevenlabs::ElevenLabs;
use serde_json::json;

use pronto::fakes::elevenlabs::FakeElevenLabs;

use super::*;

fn eleven(fake: &FakeElevenLabs, key: &str, first_byte_ms: u64) -> ElevenLabs {
    let mut settings = tts_settings("eleven_flash_v2_5", "", first_byte_ms);
    settings.voice = "21m00Tcm4TlvDq8ikWAM".into();
    ElevenLabs::new(client(), endpoint(fake.base_url(), key), settings)
}

#[tokio::test]
async fn forwards_the_mulaw_bytes_unchanged() {
    let fake = FakeElevenLabs::start().await;
    fake.set_latency(Duration::ZERO, Duration::from_millis(2));
    let (chunks, err) = drain(eleven(&fake, "xi-test", 2000).synthesize(TEXT.into())).await;
    assert_eq!(err, None);
    assert!(chunks.len() > 1, "forwarded in one piece");
    assert_eq!(chunks.concat(), fake.audio_for(TEXT));

    let r = &fake.requests()[0];
    assert_eq!(r.voice, "21m00Tcm4TlvDq8ikWAM");
    assert_eq!(r.text, TEXT);
    assert_eq!(r.model_id.as_deref(), Some("eleven_flash_v2_5"));
    assert_eq!(r.output_format.as_deref(), Some("ulaw_8000"));
    assert_eq!(r.accept.as_deref(), Some("audio/basic"));
    assert_eq!(
        r.voice_settings,
        json!({"stability": 0.5, "similarity_boost": 0.75})
    );
}

#[tokio::test]
async fn sends_speed_when_set_and_streams_before_the_end() {
    let fake = FakeElevenLabs::start().await;
    fake.set_latency(Duration::ZERO, Duration::from_millis(15));
    let mut settings = tts_settings("eleven_flash_v2_5", "", 2000);
    settings.voice = "voice1".into();
    settings.speed = 1.2;
    let tts = ElevenLabs::new(client(), endpoint(fake.base_url(), "xi-test"), settings);
    let mut stream = tts.synthesize(TEXT.into());
    stream.next().await.expect("an item").expect("audio");
    let total = fake.audio_for(TEXT).len();
    assert!(fake.bytes_sent() < total / 2, "first audio only at the end");
    drop(stream);
    let speed = fake.requests()[0].voice_settings["speed"].as_f64();
    assert!(speed.is_some_and(|s| (s - 1.2).abs() < 1e-6), "{speed:?}");
}

#[tokio::test]
async fn key_and_status_errors() {
    let fake = FakeElevenLabs::start().await;
    let err = error_of(eleven(&fake, "", 2000).synthesize(TEXT.into()), false).await;
    assert!(
        matches!(&err, ProviderError::Status { status: 401, message, .. } if message == "Invalid API key"),
        "{err}"
    );

    fake.push_fault(status(429, "Too many concurrent requests", Some("1")));
    assert_eq!(
        audio_of(eleven(&fake, "xi-test", 3000).synthesize(TEXT.into())).await,
        fake.audio_for(TEXT)
    );
    // The fake records only requests with a key; the 429 was retried.
    assert_eq!(fake.requests().len(), 2);

    fake.push_fault(status(500, "", None));
    fake.push_fault(status(500, "", None));
    let err = error_of(
        eleven(&fake, "xi-test", 2000).synthesize(TEXT.into()),
        false,
    )
    .await;
    assert!(
        matches!(err, ProviderError::Status { status: 500, .. }),
        "{err}"
    );
    assert_eq!(fake.requests().len(), 4);
}

#[tokio::test]
async fn hangs_cuts_and_empty_answers_are_errors() {
    let fake = FakeElevenLabs::start().await;
    fake.push_fault(Fault::Hang);
    let err = error_of(eleven(&fake, "xi-test", 300).synthesize(TEXT.into()), false).await;
    assert!(is_timeout(&err), "{err}");

    fake.push_fault(Fault::CutMidway);
    let err = error_of(eleven(&fake, "xi-test", 2000).synthesize(TEXT.into()), true).await;
    assert!(is_protocol(&err), "{err}");

    fake.push_fault(Fault::Malformed);
    let err = error_of(
        eleven(&fake, "xi-test", 2000).synthesize(TEXT.into()),
        false,
    )
    .await;
    assert!(is_protocol(&err), "{err}");

    fake.push_fault(Fault::Delay(Duration::from_millis(50)));
    assert_eq!(
        audio_of(eleven(&fake, "xi-test", 2000).synthesize(TEXT.into())).await,
        fake.audio_for(TEXT)
    );
}
