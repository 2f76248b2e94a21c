//! Text to speech through OpenAI's `POST /audio/speech`
//! (<https://platform.openai.com/docs/api-reference/audio/createSpeech>),
//! plus the streaming loop both TTS providers share ([`audio_stream`]).
//!
//! OpenAI has no telephone format: `pcm` (24 kHz s16le mono, headerless) is
//! the one that needs no container parsing and streams with the lowest
//! latency, so each body chunk goes through a [`TtsResampler`] (÷3 with an
//! anti-alias filter) and the μ-law encoder as soon as it arrives.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream;
use reqwest::RequestBuilder;
use reqwest::header::ACCEPT;
use serde_json::{Value, json};
use tokio::time::{Instant, timeout, timeout_at};

use super::{BoxStream, Endpoint, ProviderError, TextToSpeech, TtsSettings, http, outcome};
use crate::audio::mulaw;
use crate::audio::resample::TtsResampler;
use crate::metrics::ProviderKind;

const PROVIDER: &str = "openai-tts";

/// The API's `maxLength` for `input`, in characters. Longer text is cut to
/// this length (at a character boundary) rather than refused: a sentence that
/// long is a splitter bug, and most of it spoken beats the fallback line.
pub const MAX_INPUT_CHARS: usize = 4096;

/// OpenAI's speech endpoint (or a compatible one).
#[derive(Debug, Clone)]
pub struct OpenAiTts {
    client: reqwest::Client,
    endpoint: Endpoint,
    settings: TtsSettings,
}

impl OpenAiTts {
    pub fn new(client: reqwest::Client, endpoint: Endpoint, settings: TtsSettings) -> Self {
        Self {
            client,
            endpoint,
            settings,
        }
    }

    /// The JSON request. `speed` and `instructions` are left out at their
    /// defaults so that compatible servers without them still answer;
    /// `instructions` is never sent to `tts-1*`, which rejects it.
    fn body(&self, input: &str) -> Value {
        let s = &self.settings;
        let mut body = json!({
            "model": s.model,
            "input": input,
            "voice": s.voice,
            "response_format": "pcm",
        });
        if s.speed != 1.0 {
            body["speed"] = json!(s.speed);
        }
        if !s.instructions.is_empty() && !s.model.starts_with("tts-1") {
            body["instructions"] = json!(s.instructions);
        }
        body
    }
}

/// `text` cut to [`MAX_INPUT_CHARS`] characters.
fn clamp_input(text: &str) -> &str {
    match text.char_indices().nth(MAX_INPUT_CHARS) {
        Some((end, _)) => {
            tracing::warn!(
                provider = PROVIDER,
                chars = text.chars().count(),
                "TTS input over {MAX_INPUT_CHARS} characters, cut"
            );
            &text[..end]
        }
        None => text,
    }
}

impl TextToSpeech for OpenAiTts {
    fn synthesize(&self, text: String) -> BoxStream<Result<Bytes, ProviderError>> {
        if text.trim().is_empty() {
            return Box::pin(stream::empty());
        }
        let decoder = match TtsResampler::new() {
            Ok(resampler) => PcmToMulaw {
                resampler,
                pcm: Vec::new(),
            },
            Err(e) => {
                let error = ProviderError::protocol(PROVIDER, format!("no resampler: {e}"));
                return Box::pin(stream::iter([Err(error)]));
            }
        };
        let body = self.body(clamp_input(&text));
        let (client, endpoint) = (self.client.clone(), self.endpoint.clone());
        let url = endpoint.url("/audio/speech");
        let build = move || {
            client
                .post(&url)
                .bearer_auth(endpoint.api_key.expose())
                .header(ACCEPT, "application/octet-stream")
                .json(&body)
        };
        audio_stream(PROVIDER, build, self.settings.first_byte_timeout, decoder)
    }
}

/// Turns the body chunks of a TTS answer into μ-law 8 kHz.
pub(crate) trait AudioDecoder: Send + 'static {
    /// One chunk as received (any length); returns the audio it completes,
    /// possibly none yet.
    fn push(&mut self, chunk: Bytes) -> Bytes;
    /// The body has ended: whatever is still held back.
    fn finish(&mut self) -> Bytes;
}

/// OpenAI `pcm` → μ-law 8 kHz. The resampler carries odd bytes and partial
/// blocks across chunks, so chunk boundaries can fall anywhere.
struct PcmToMulaw {
    resampler: TtsResampler,
    /// Reused between chunks.
    pcm: Vec<i16>,
}

impl PcmToMulaw {
    fn encode(&mut self) -> Bytes {
        let out = mulaw::encode(&self.pcm);
        self.pcm.clear();
        Bytes::from(out)
    }
}

impl AudioDecoder for PcmToMulaw {
    fn push(&mut self, chunk: Bytes) -> Bytes {
        self.resampler.push_bytes(&chunk, &mut self.pcm);
        self.encode()
    }

    fn finish(&mut self) -> Bytes {
        self.resampler.flush(&mut self.pcm);
        self.encode()
    }
}

/// Sends the request built by `build` (with [`http::send`]'s single retry)
/// and streams the decoded body, one item per received chunk that yields
/// audio, so playback starts while the provider is still synthesising.
///
/// Timing: `first_byte` bounds everything from the first poll to the first
/// body byte, retry included; after that, a silence of `first_byte` between
/// two chunks is also a timeout (a stalled server must not hold the caller in
/// silence). A body without audio, or one that breaks off, is an error item,
/// after which the stream ends. Everything lives inside the stream, nothing is
/// spawned: dropping it (barge-in) drops the connection at once.
pub(crate) fn audio_stream<B, D>(
    provider: &'static str,
    build: B,
    first_byte: Duration,
    decoder: D,
) -> BoxStream<Result<Bytes, ProviderError>>
where
    B: Fn() -> RequestBuilder + Send + Sync + 'static,
    D: AudioDecoder,
{
    let start = Start {
        provider,
        build,
        first_byte,
        decoder,
    };
    outcome::counted_stream(
        provider,
        ProviderKind::Tts,
        Box::pin(stream::unfold(State::Start(start), next_audio)),
    )
}

struct Start<B, D> {
    provider: &'static str,
    build: B,
    first_byte: Duration,
    decoder: D,
}

struct Body<D> {
    provider: &'static str,
    chunks: BoxStream<reqwest::Result<Bytes>>,
    /// Set until the first body byte has arrived.
    first_byte_deadline: Option<Instant>,
    /// The timeout, reported in errors and used between chunks.
    limit: Duration,
    decoder: D,
    any_audio: bool,
}

enum State<B, D> {
    Start(Start<B, D>),
    Body(Body<D>),
    Done,
}

type Step<B, D> = Option<(Result<Bytes, ProviderError>, State<B, D>)>;

async fn next_audio<B, D>(state: State<B, D>) -> Step<B, D>
where
    B: Fn() -> RequestBuilder + Send + Sync + 'static,
    D: AudioDecoder,
{
    let mut body = match state {
        State::Done => return None,
        State::Body(body) => body,
        State::Start(start) => {
            let deadline = Instant::now() + start.first_byte;
            let (provider, kind) = (start.provider, ProviderKind::Tts);
            match http::send(provider, kind, &start.build, deadline, start.first_byte).await {
                Ok(response) => Body {
                    provider: start.provider,
                    chunks: Box::pin(response.bytes_stream()),
                    first_byte_deadline: Some(deadline),
                    limit: start.first_byte,
                    decoder: start.decoder,
                    any_audio: false,
                },
                Err(e) => return Some((Err(e), State::Done)),
            }
        }
    };
    loop {
        match body.next_chunk().await {
            Ok(Some(chunk)) => {
                let audio = body.decoder.push(chunk);
                if !audio.is_empty() {
                    body.any_audio = true;
                    return Some((Ok(audio), State::Body(body)));
                }
            }
            Ok(None) => {
                let tail = body.decoder.finish();
                if !tail.is_empty() {
                    return Some((Ok(tail), State::Done));
                }
                if body.any_audio {
                    return None;
                }
                let error = ProviderError::protocol(body.provider, "answer ended without audio");
                return Some((Err(error), State::Done));
            }
            Err(e) => return Some((Err(e), State::Done)),
        }
    }
}

impl<D> Body<D> {
    /// The next body chunk, `None` at the end of the body.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, ProviderError> {
        let next = match self.first_byte_deadline {
            Some(deadline) => timeout_at(deadline, self.chunks.next()).await,
            None => timeout(self.limit, self.chunks.next()).await,
        };
        match next {
            Err(_) => Err(ProviderError::Timeout {
                provider: self.provider,
                after: self.limit,
            }),
            Ok(None) => Ok(None),
            Ok(Some(Err(e))) => {
                let detail = format!("audio stream broke off: {}", e.without_url());
                Err(ProviderError::protocol(self.provider, detail))
            }
            Ok(Some(Ok(chunk))) => {
                if !chunk.is_empty() {
                    self.first_byte_deadline = None;
                }
                Ok(Some(chunk))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::Secret;

    fn tts(model: &str, instructions: &str, speed: f32) -> OpenAiTts {
        let endpoint = Endpoint {
            base_url: "http://127.0.0.1:9/v1".into(),
            api_key: Secret::new("sk-test"),
        };
        let settings = TtsSettings {
            model: model.into(),
            voice: "coral".into(),
            instructions: instructions.into(),
            speed,
            first_byte_timeout: Duration::from_secs(1),
        };
        OpenAiTts::new(reqwest::Client::new(), endpoint, settings)
    }

    #[test]
    fn body_leaves_out_defaults_and_instructions_for_tts_1() {
        let body = tts("gpt-4o-mini-tts", "Warm.", 1.0).body("Hi");
        assert_eq!(
            body,
            json!({"model":"gpt-4o-mini-tts","input":"Hi","voice":"coral","response_format":"pcm","instructions":"Warm."})
        );
        let body = tts("tts-1-hd", "Warm.", 1.25).body("Hi");
        assert_eq!(body.get("instructions"), None);
        assert_eq!(body["speed"], json!(1.25));
        assert_eq!(
            tts("gpt-4o-mini-tts", "", 1.0)
                .body("Hi")
                .get("instructions"),
            None
        );
    }

    #[test]
    fn long_input_is_cut_at_a_char_boundary() {
        let text = "é".repeat(MAX_INPUT_CHARS + 10);
        let cut = clamp_input(&text);
        assert_eq!(cut.chars().count(), MAX_INPUT_CHARS);
        assert_eq!(clamp_input("short"), "short");
    }

    #[test]
    fn odd_chunks_decode_like_one_chunk() {
        let pcm: Vec<u8> = (0..4800i32)
            .flat_map(|i| (((i * 37) % 2000 - 1000) as i16).to_le_bytes())
            .collect();
        let decode = |sizes: &[usize]| {
            let mut d = PcmToMulaw {
                resampler: TtsResampler::new().expect("resampler"),
                pcm: Vec::new(),
            };
            let mut out = Vec::new();
            let mut rest = &pcm[..];
            for &size in sizes.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (chunk, tail) = rest.split_at(size.min(rest.len()));
                out.extend_from_slice(&d.push(Bytes::copy_from_slice(chunk)));
                rest = tail;
            }
            out.extend_from_slice(&d.finish());
            out
        };
        let whole = decode(&[pcm.len()]);
        assert_eq!(whole.len(), 1600);
        assert_eq!(decode(&[1, 3, 961, 7, 333]), whole);
    }
}
