//! OpenAI speech: 24 kHz PCM in, μ-law 8 kHz out, streamed, with faults.

use pronto::audio::mulaw;
use pronto::providers::TextToSpeech;
use pronto::providers::openai_tts::OpenAiTts;
use tokio::time::sleep;

use pronto::fakes::openai_audio::FakeOpenAiAudio;

use super::*;

fn openai_tts(fake: &FakeOpenAiAudio, first_byte_ms: u64) -> OpenAiTts {
    let settings = tts_settings("gpt-4o-mini-tts", "Warm and calm.", first_byte_ms);
    OpenAiTts::new(client(), endpoint(fake.base_url(), "sk-test"), settings)
}

fn rms(samples: &[i16]) -> f64 {
    let energy: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
    (energy / samples.len() as f64).sqrt()
}

#[tokio::test]
async fn turns_the_pcm_into_mulaw_of_the_same_length_and_loudness() {
    let fake = FakeOpenAiAudio::start().await;
    let audio = audio_of(openai_tts(&fake, 2000).synthesize(TEXT.into())).await;
    // 60 ms per character at 8 kHz; the resampler's output is exactly a third of its input.
    let expected = TEXT.chars().count() * 60 * 8;
    assert_eq!(audio.len(), expected);
    let pcm = mulaw::decode(&audio);
    // The fake's tone is a 440 Hz sine at -12 dBFS: RMS 32767 · 10^(-12/20) / √2.
    let tone_rms = 32767.0 * 10f64.powf(-12.0 / 20.0) / 2f64.sqrt();
    let level_db = 20.0 * (rms(&pcm) / tone_rms).log10();
    assert!(level_db.abs() < 0.5, "level off by {level_db:.2} dB");

    let r = &fake.tts_requests()[0];
    assert_eq!(
        (r.model.as_str(), r.voice.as_str(), r.input.as_str()),
        ("gpt-4o-mini-tts", "coral", TEXT)
    );
    assert_eq!(r.response_format.as_deref(), Some("pcm"));
    assert_eq!(r.instructions.as_deref(), Some("Warm and calm."));
    assert_eq!(r.speed, None);
    assert_eq!(r.accept.as_deref(), Some("application/octet-stream"));
}

#[tokio::test]
async fn yields_audio_while_the_server_is_still_sending() {
    let fake = FakeOpenAiAudio::start().await;
    fake.set_latency(Duration::ZERO, Duration::from_millis(15));
    let mut stream = openai_tts(&fake, 2000).synthesize(TEXT.into());
    let first = stream.next().await.expect("an item").expect("audio");
    assert!(!first.is_empty());
    let body = fake.pcm_for(TEXT).len();
    let sent = fake.tts_bytes_sent();
    assert!(
        sent < body / 2,
        "first audio only after {sent} of {body} bytes"
    );
    let rest = audio_of(stream).await;
    assert_eq!(first.len() + rest.len(), body / 6);
}

#[tokio::test]
async fn output_does_not_depend_on_where_chunks_end() {
    let fake = FakeOpenAiAudio::start().await;
    let whole = audio_of(openai_tts(&fake, 2000).synthesize(TEXT.into())).await;
    // Odd-length chunks, each its own read: every boundary falls mid-sample.
    fake.set_chunk_bytes(333);
    fake.set_latency(Duration::ZERO, Duration::from_millis(1));
    let mut stream = openai_tts(&fake, 2000).synthesize(TEXT.into());
    let mut odd = Vec::new();
    let mut items = 0;
    while let Some(item) = stream.next().await {
        odd.extend_from_slice(&item.expect("audio"));
        items += 1;
    }
    assert!(items > 10, "only {items} chunks");
    assert_eq!(odd, whole);
}

#[tokio::test]
async fn sends_no_instructions_to_tts_1_and_speed_when_set() {
    let fake = FakeOpenAiAudio::start().await;
    let mut settings = tts_settings("tts-1", "Warm and calm.", 2000);
    settings.speed = 1.25;
    let tts = OpenAiTts::new(client(), endpoint(fake.base_url(), "sk-test"), settings);
    audio_of(tts.synthesize("Hi there.".into())).await;
    let r = &fake.tts_requests()[0];
    assert_eq!(r.instructions, None);
    assert_eq!(r.speed, Some(1.25));
}

#[tokio::test]
async fn cuts_input_over_4096_characters() {
    let fake = FakeOpenAiAudio::start().await;
    fake.set_ms_per_char(1);
    let long = "ab ".repeat(2000);
    audio_of(openai_tts(&fake, 2000).synthesize(long.clone())).await;
    let sent = &fake.tts_requests()[0].input;
    assert_eq!(sent.chars().count(), 4096);
    assert!(long.starts_with(sent.as_str()));
}

#[tokio::test]
async fn empty_text_is_no_audio_and_no_request() {
    let fake = FakeOpenAiAudio::start().await;
    assert_eq!(
        drain(openai_tts(&fake, 2000).synthesize("  ".into())).await,
        (vec![], None)
    );
    assert!(fake.tts_requests().is_empty());
}

#[tokio::test]
async fn status_errors_retry_once_or_end_the_stream() {
    let fake = FakeOpenAiAudio::start().await;
    fake.push_tts_fault(status(503, "", None));
    assert!(
        !audio_of(openai_tts(&fake, 2000).synthesize(TEXT.into()))
            .await
            .is_empty()
    );
    assert_eq!(fake.tts_requests().len(), 2);

    fake.push_tts_fault(status(400, "Invalid voice", None));
    let err = error_of(openai_tts(&fake, 2000).synthesize(TEXT.into()), false).await;
    assert!(
        matches!(&err, ProviderError::Status { status: 400, message, .. } if message == "Invalid voice"),
        "{err}"
    );
    assert_eq!(fake.tts_requests().len(), 3);
}

#[tokio::test]
async fn without_a_first_byte_in_time_times_out() {
    let fake = FakeOpenAiAudio::start().await;
    // No headers at all.
    fake.push_tts_fault(Fault::Hang);
    let err = error_of(openai_tts(&fake, 300).synthesize(TEXT.into()), false).await;
    assert!(is_timeout(&err), "{err}");
    // Headers at once, but the first body byte too late.
    fake.set_latency(Duration::from_millis(800), Duration::ZERO);
    let err = error_of(openai_tts(&fake, 300).synthesize(TEXT.into()), false).await;
    assert!(is_timeout(&err), "{err}");
}

#[tokio::test]
async fn silence_between_chunks_times_out() {
    let fake = FakeOpenAiAudio::start().await;
    fake.set_latency(Duration::ZERO, Duration::from_millis(800));
    // The first chunk comes in time, the second does not.
    let err = error_of(openai_tts(&fake, 300).synthesize(TEXT.into()), true).await;
    assert!(is_timeout(&err), "{err}");
}

#[tokio::test]
async fn cut_or_empty_answers_are_errors() {
    let fake = FakeOpenAiAudio::start().await;
    fake.push_tts_fault(Fault::CutMidway);
    let err = error_of(openai_tts(&fake, 2000).synthesize(TEXT.into()), true).await;
    assert!(is_protocol(&err), "{err}");

    fake.push_tts_fault(Fault::Malformed);
    let err = error_of(openai_tts(&fake, 2000).synthesize(TEXT.into()), false).await;
    assert!(is_protocol(&err), "{err}");
}

#[tokio::test]
async fn dropping_the_stream_stops_the_download() {
    let fake = FakeOpenAiAudio::start().await;
    fake.set_latency(Duration::ZERO, Duration::from_millis(10));
    let mut stream = openai_tts(&fake, 2000).synthesize(TEXT.into());
    stream.next().await.expect("an item").expect("audio");
    drop(stream);
    sleep(Duration::from_millis(100)).await;
    let after_drop = fake.tts_bytes_sent();
    sleep(Duration::from_millis(200)).await;
    assert_eq!(fake.tts_bytes_sent(), after_drop, "the server kept sending");
    assert!(after_drop < fake.pcm_for(TEXT).len());
}
