//! OpenAI-compatible transcription: the upload, the answer, retries and faults.

use std::f64::consts::PI;

use pronto::providers::openai_stt::OpenAiStt;
use pronto::providers::{SpeechToText, SttSettings};
use tokio::time::Instant;

use pronto::fakes::openai_audio::{FakeOpenAiAudio, openai_error};

use super::*;

fn stt_with(fake: &FakeOpenAiAudio, language: &str, prompt: &str, timeout_ms: u64) -> OpenAiStt {
    let settings = SttSettings {
        model: "gpt-4o-mini-transcribe".into(),
        language: language.into(),
        prompt: prompt.into(),
        timeout: Duration::from_millis(timeout_ms),
    };
    OpenAiStt::new(client(), endpoint(fake.base_url(), "sk-test"), settings)
}

fn stt(fake: &FakeOpenAiAudio) -> OpenAiStt {
    stt_with(fake, "en", "", 5000)
}

/// One second of a 300 Hz tone at 8 kHz: an utterance to transcribe.
fn utterance() -> Vec<i16> {
    (0..8000)
        .map(|i| (6000.0 * (2.0 * PI * 300.0 * f64::from(i) / 8000.0).sin()) as i16)
        .collect()
}

#[tokio::test]
async fn uploads_an_8k_mono_wav_with_the_settings_and_trims_the_text() {
    let fake = FakeOpenAiAudio::start().await;
    fake.push_transcript("  Hello there.\n");
    let text = stt_with(&fake, "en", "Pronto, Twilio", 5000)
        .transcribe(utterance())
        .await;
    assert_eq!(text, Ok("Hello there.".to_string()));
    let requests = fake.stt_requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.model, "gpt-4o-mini-transcribe");
    assert_eq!(r.language.as_deref(), Some("en"));
    assert_eq!(r.prompt.as_deref(), Some("Pronto, Twilio"));
    assert_eq!(r.response_format.as_deref(), Some("json"));
    assert_eq!(r.filename.as_deref(), Some("turn.wav"));
    assert_eq!(r.content_type.as_deref(), Some("audio/wav"));
    assert_eq!(
        (r.sample_rate, r.channels, r.bits, r.samples),
        (8000, 1, 16, 8000)
    );
}

#[tokio::test]
async fn leaves_out_an_empty_language_and_prompt() {
    let fake = FakeOpenAiAudio::start().await;
    let text = stt_with(&fake, "", "", 5000).transcribe(utterance()).await;
    assert_eq!(text, Ok("hello".to_string()));
    let r = &fake.stt_requests()[0];
    assert_eq!((r.language.as_deref(), r.prompt.as_deref()), (None, None));
}

#[tokio::test]
async fn accepts_a_plain_text_answer() {
    let fake = FakeOpenAiAudio::start().await;
    fake.set_stt_text_plain(true);
    fake.push_transcript(" Book a table for two. ");
    let text = stt(&fake).transcribe(utterance()).await;
    assert_eq!(text, Ok("Book a table for two.".to_string()));
}

#[tokio::test]
async fn too_short_to_hold_speech_is_empty_without_a_request() {
    let fake = FakeOpenAiAudio::start().await;
    assert_eq!(
        stt(&fake).transcribe(vec![100; 400]).await,
        Ok(String::new())
    );
    assert!(fake.stt_requests().is_empty());
}

#[tokio::test]
async fn waits_out_a_rate_limit_and_retries_once() {
    let fake = FakeOpenAiAudio::start().await;
    fake.push_stt_fault(status(429, "Rate limit reached", Some("1")));
    fake.push_transcript("after the wait");
    let started = Instant::now();
    let text = stt(&fake).transcribe(utterance()).await;
    assert_eq!(text, Ok("after the wait".to_string()));
    assert_eq!(fake.stt_requests().len(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "retry-after not honoured"
    );
}

#[tokio::test]
async fn gives_up_after_two_server_errors() {
    let fake = FakeOpenAiAudio::start().await;
    fake.push_stt_fault(status(500, "The server had an error", None));
    fake.push_stt_fault(status(500, "The server had an error", None));
    let err = stt(&fake)
        .transcribe(utterance())
        .await
        .expect_err("two 500s");
    assert!(
        matches!(&err, ProviderError::Status { status: 500, message, .. } if message == "The server had an error"),
        "{err}"
    );
    assert_eq!(fake.stt_requests().len(), 2);
}

#[tokio::test]
async fn does_not_retry_an_exhausted_quota() {
    let fake = FakeOpenAiAudio::start().await;
    let quota = openai_error(
        "You exceeded your current quota",
        "insufficient_quota",
        Some("insufficient_quota"),
    );
    fake.push_stt_fault(status(429, &quota, Some("1")));
    let err = stt(&fake).transcribe(utterance()).await.expect_err("quota");
    assert!(
        matches!(err, ProviderError::Status { status: 429, .. }),
        "{err}"
    );
    assert_eq!(fake.stt_requests().len(), 1);
}

#[tokio::test]
async fn rejects_a_missing_key() {
    let fake = FakeOpenAiAudio::start().await;
    let settings = SttSettings {
        model: "whisper-1".into(),
        language: String::new(),
        prompt: String::new(),
        timeout: Duration::from_secs(5),
    };
    let stt = OpenAiStt::new(client(), endpoint(fake.base_url(), ""), settings);
    let err = stt.transcribe(utterance()).await.expect_err("no key");
    assert!(
        matches!(err, ProviderError::Status { status: 401, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn that_hangs_times_out_within_the_settings_timeout() {
    let fake = FakeOpenAiAudio::start().await;
    fake.push_stt_fault(Fault::Hang);
    let started = Instant::now();
    let err = stt_with(&fake, "en", "", 300)
        .transcribe(utterance())
        .await
        .expect_err("hang");
    assert!(is_timeout(&err), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn slower_than_the_timeout_times_out() {
    let fake = FakeOpenAiAudio::start().await;
    fake.set_stt_latency(Duration::from_millis(600));
    let err = stt_with(&fake, "en", "", 200)
        .transcribe(utterance())
        .await
        .expect_err("too slow");
    assert!(is_timeout(&err), "{err}");
}

#[tokio::test]
async fn broken_answers_are_errors() {
    let fake = FakeOpenAiAudio::start().await;
    fake.push_stt_fault(Fault::Malformed);
    let err = stt(&fake)
        .transcribe(utterance())
        .await
        .expect_err("garbage");
    assert!(is_protocol(&err), "{err}");
    // A dropped connection is retried once, like any connection error.
    fake.push_stt_fault(Fault::CutMidway);
    assert_eq!(stt(&fake).transcribe(utterance()).await, Ok("hello".into()));
    assert_eq!(fake.stt_requests().len(), 3);
    fake.push_stt_fault(Fault::CutMidway);
    fake.push_stt_fault(Fault::CutMidway);
    let err = stt(&fake)
        .transcribe(utterance())
        .await
        .expect_err("cut twice");
    assert!(matches!(err, ProviderError::Connect { .. }), "{err}");
    assert_eq!(fake.stt_requests().len(), 5);
    // A delayed answer within the timeout is fine.
    fake.push_stt_fault(Fault::Delay(Duration::from_millis(50)));
    assert_eq!(stt(&fake).transcribe(utterance()).await, Ok("hello".into()));
}
