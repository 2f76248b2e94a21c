//! Speech providers against fake servers on loopback: OpenAI(-compatible)
//! transcription, OpenAI speech (24 kHz PCM → μ-law 8 kHz) and ElevenLabs
//! (μ-law passed through).

mod elevenlabs;
mod openai_tts;
mod stt;

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use pronto::providers::{BoxStream, Endpoint, ProviderError, TtsSettings, http};
use pronto::redact::Secret;

use pronto::fakes::Fault;

const TEXT: &str = "Thanks for calling, how can I help?";

fn endpoint(base_url: &str, key: &str) -> Endpoint {
    Endpoint {
        base_url: base_url.to_string(),
        api_key: Secret::new(key),
    }
}

fn client() -> reqwest::Client {
    http::client().expect("HTTP client")
}

fn tts_settings(model: &str, instructions: &str, first_byte_ms: u64) -> TtsSettings {
    TtsSettings {
        model: model.into(),
        voice: "coral".into(),
        instructions: instructions.into(),
        speed: 1.0,
        first_byte_timeout: Duration::from_millis(first_byte_ms),
    }
}

/// Every item of a TTS stream: the audio chunks and the error that ended it.
async fn drain(
    mut stream: BoxStream<Result<Bytes, ProviderError>>,
) -> (Vec<Bytes>, Option<ProviderError>) {
    let mut chunks = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => chunks.push(chunk),
            Err(e) => {
                assert!(
                    stream.next().await.is_none(),
                    "the stream must end after an error"
                );
                return (chunks, Some(e));
            }
        }
    }
    (chunks, None)
}

/// The error a TTS stream ends with; `audio_first` says whether audio must
/// have come before it (kept by the caller) or none at all.
async fn error_of(
    stream: BoxStream<Result<Bytes, ProviderError>>,
    audio_first: bool,
) -> ProviderError {
    let (chunks, error) = drain(stream).await;
    assert_eq!(!chunks.is_empty(), audio_first, "audio before the error");
    error.expect("the stream must end in an error")
}

async fn audio_of(stream: BoxStream<Result<Bytes, ProviderError>>) -> Vec<u8> {
    let (chunks, error) = drain(stream).await;
    assert_eq!(error, None);
    assert!(chunks.iter().all(|c| !c.is_empty()), "empty chunk yielded");
    chunks.concat()
}

fn status(status: u16, body: &str, retry_after: Option<&str>) -> Fault {
    Fault::Status {
        status,
        body: body.into(),
        retry_after: retry_after.map(str::to_string),
    }
}

fn is_timeout(e: &ProviderError) -> bool {
    matches!(e, ProviderError::Timeout { .. })
}

fn is_protocol(e: &ProviderError) -> bool {
    matches!(e, ProviderError::Protocol { .. })
}
