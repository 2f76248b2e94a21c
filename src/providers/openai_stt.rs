//! Speech to text through OpenAI's `POST /audio/transcriptions`
//! (<https://platform.openai.com/docs/api-reference/audio/createTranscription>),
//! which Groq, vLLM and local Whisper servers also speak: only the
//! endpoint's base URL changes.
//!
//! The utterance goes up as an 8 kHz mono 16-bit WAV: the API takes no raw
//! μ-law, and Whisper-family models accept 8 kHz directly, so there is no
//! upsampling step. The answer is asked for as `json`; a plain-text body is
//! accepted too because some compatible servers send one whatever was asked.

use bytes::Bytes;
use reqwest::header::CONTENT_TYPE;
use reqwest::multipart::{Form, Part};
use serde::Deserialize;
use tokio::time::{Instant, timeout_at};

use super::{BoxFuture, Endpoint, ProviderError, SpeechToText, SttSettings, http, outcome};
use crate::audio::wav::encode_wav_8k;
use crate::metrics::ProviderKind;

const PROVIDER: &str = "openai-stt";

/// OpenAI rejects audio shorter than 0.1 s with a 400 ("Audio file is too
/// short"); nothing intelligible fits in it, so such a clip is answered with
/// an empty transcript without a request.
const MIN_SAMPLES: usize = 800;

/// An OpenAI-compatible transcription endpoint.
#[derive(Debug, Clone)]
pub struct OpenAiStt {
    client: reqwest::Client,
    endpoint: Endpoint,
    settings: SttSettings,
}

/// The `json` answer. Only `text` matters; `usage`, `x_groq`, `logprobs` and
/// anything else a server adds are ignored.
#[derive(Deserialize)]
struct Transcription {
    text: String,
}

impl OpenAiStt {
    pub fn new(client: reqwest::Client, endpoint: Endpoint, settings: SttSettings) -> Self {
        Self {
            client,
            endpoint,
            settings,
        }
    }

    /// The multipart body. Built anew for each attempt because a `Form` is
    /// consumed by sending it; the WAV itself is shared, not copied.
    fn form(&self, wav: &Bytes) -> Form {
        let file = || Part::stream_with_length(wav.clone(), wav.len() as u64).file_name("turn.wav");
        // A constant that always parses; the fallback (no part Content-Type,
        // the server goes by the `.wav` name) only exists to avoid a panic path.
        let file = file().mime_str("audio/wav").unwrap_or_else(|_| file());
        let mut form = Form::new()
            .part("file", file)
            .text("model", self.settings.model.clone())
            .text("response_format", "json");
        if !self.settings.language.is_empty() {
            form = form.text("language", self.settings.language.clone());
        }
        if !self.settings.prompt.is_empty() {
            form = form.text("prompt", self.settings.prompt.clone());
        }
        form
    }

    async fn transcribe_wav(self, wav: Bytes) -> Result<String, ProviderError> {
        let timeout = self.settings.timeout;
        let deadline = Instant::now() + timeout;
        let url = self.endpoint.url("/audio/transcriptions");
        let build = || {
            self.client
                .post(&url)
                .bearer_auth(self.endpoint.api_key.expose())
                .multipart(self.form(&wav))
        };
        let response = http::send(PROVIDER, ProviderKind::Stt, build, deadline, timeout).await?;
        let plain_text = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/plain"));
        let body = match timeout_at(deadline, response.bytes()).await {
            Err(_) => {
                return Err(ProviderError::Timeout {
                    provider: PROVIDER,
                    after: timeout,
                });
            }
            Ok(Err(e)) => {
                let detail = format!("transcript cut off: {}", e.without_url());
                return Err(ProviderError::protocol(PROVIDER, detail));
            }
            Ok(Ok(body)) => body,
        };
        parse_transcript(&body, plain_text)
    }
}

/// The transcript from a response body: `{"text": …}`, or the body itself
/// when the server labelled it `text/plain`. Always trimmed (Whisper starts
/// segments with a space and plain-text answers end with a newline).
fn parse_transcript(body: &[u8], plain_text: bool) -> Result<String, ProviderError> {
    if plain_text {
        return std::str::from_utf8(body)
            .map(|text| text.trim().to_string())
            .map_err(|_| ProviderError::protocol(PROVIDER, "plain-text transcript is not UTF-8"));
    }
    serde_json::from_slice::<Transcription>(body)
        .map(|t| t.text.trim().to_string())
        .map_err(|e| ProviderError::protocol(PROVIDER, format!("bad transcription JSON: {e}")))
}

impl SpeechToText for OpenAiStt {
    fn transcribe(&self, audio: Vec<i16>) -> BoxFuture<Result<String, ProviderError>> {
        let this = self.clone();
        Box::pin(async move {
            if audio.len() < MIN_SAMPLES {
                return Ok(String::new());
            }
            let wav = encode_wav_8k(&audio)
                .map_err(|e| ProviderError::protocol(PROVIDER, format!("cannot build WAV: {e}")))?;
            outcome::counted(
                PROVIDER,
                ProviderKind::Stt,
                this.transcribe_wav(Bytes::from(wav)).await,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_transcripts_are_trimmed_and_extra_fields_ignored() {
        let body = br#"{"text":"  Hello there. ","usage":{"type":"duration","seconds":2},"x_groq":{"id":"req_1"}}"#;
        assert_eq!(parse_transcript(body, false), Ok("Hello there.".into()));
        let tokens = br#"{"text":"Hi","usage":{"type":"tokens","input_tokens":14,"output_tokens":2,"total_tokens":16}}"#;
        assert_eq!(parse_transcript(tokens, false), Ok("Hi".into()));
    }

    #[test]
    fn plain_text_bodies_are_taken_as_the_transcript() {
        assert_eq!(parse_transcript(b" Hello.\n", true), Ok("Hello.".into()));
    }

    #[test]
    fn broken_bodies_are_protocol_errors() {
        for (body, plain) in [(&b"{\"tex"[..], false), (b"[]", false), (b"\xff\xfe", true)] {
            let err = parse_transcript(body, plain).expect_err("must be rejected");
            assert!(matches!(err, ProviderError::Protocol { .. }), "{err}");
        }
    }

    #[test]
    fn the_wav_part_type_parses() {
        assert!(Part::bytes(&b""[..]).mime_str("audio/wav").is_ok());
    }
}
