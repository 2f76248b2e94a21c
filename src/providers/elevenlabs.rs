//! Text to speech through ElevenLabs' streaming endpoint
//! (<https://elevenlabs.io/docs/api-reference/text-to-speech/stream>).
//!
//! ElevenLabs can answer in the telephone format itself (`ulaw_8000`), so the
//! body is forwarded chunk by chunk as it arrives: no resampling, no
//! re-encoding, and no added latency.

use bytes::Bytes;
use futures_util::stream;
use reqwest::Url;
use reqwest::header::ACCEPT;
use serde_json::{Value, json};

use super::openai_tts::{AudioDecoder, audio_stream};
use super::{BoxStream, Endpoint, ProviderError, TextToSpeech, TtsSettings};

const PROVIDER: &str = "elevenlabs";

/// G.711 μ-law, 8 kHz mono, headerless: what Twilio Media Streams carry.
const OUTPUT_FORMAT: &str = "ulaw_8000";

/// ElevenLabs' HTTP streaming text-to-speech.
#[derive(Debug, Clone)]
pub struct ElevenLabs {
    client: reqwest::Client,
    endpoint: Endpoint,
    settings: TtsSettings,
}

impl ElevenLabs {
    /// `endpoint.base_url` is the host without `/v1`, e.g.
    /// `https://api.elevenlabs.io`; `settings.voice` is a voice id.
    pub fn new(client: reqwest::Client, endpoint: Endpoint, settings: TtsSettings) -> Self {
        Self {
            client,
            endpoint,
            settings,
        }
    }

    /// `{base}/v1/text-to-speech/{voice}/stream?output_format=ulaw_8000`, with
    /// the voice id escaped as one path segment (it comes from configuration).
    fn url(&self) -> Result<Url, ProviderError> {
        let bad_url = |detail: String| ProviderError::protocol(PROVIDER, detail);
        let mut url = Url::parse(&self.endpoint.url("/v1/text-to-speech"))
            .map_err(|e| bad_url(format!("bad base URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| bad_url("base URL cannot take a path".into()))?
            .push(&self.settings.voice)
            .push("stream");
        url.query_pairs_mut()
            .append_pair("output_format", OUTPUT_FORMAT);
        Ok(url)
    }

    /// The JSON request. The voice settings are ElevenLabs' own defaults,
    /// sent explicitly so a voice edited in their dashboard cannot make the
    /// phone voice drift; `speed` only when it is not the default.
    fn body(&self, text: &str) -> Value {
        let mut voice_settings = json!({"stability": 0.5, "similarity_boost": 0.75});
        if self.settings.speed != 1.0 {
            voice_settings["speed"] = json!(self.settings.speed);
        }
        json!({
            "text": text,
            "model_id": self.settings.model,
            "voice_settings": voice_settings,
        })
    }
}

/// The body already is μ-law 8 kHz: each chunk is passed on untouched.
struct Passthrough;

impl AudioDecoder for Passthrough {
    fn push(&mut self, chunk: Bytes) -> Bytes {
        chunk
    }

    fn finish(&mut self) -> Bytes {
        Bytes::new()
    }
}

impl TextToSpeech for ElevenLabs {
    fn synthesize(&self, text: String) -> BoxStream<Result<Bytes, ProviderError>> {
        if text.trim().is_empty() {
            return Box::pin(stream::empty());
        }
        let url = match self.url() {
            Ok(url) => url,
            Err(e) => return Box::pin(stream::iter([Err(e)])),
        };
        let body = self.body(&text);
        let (client, endpoint) = (self.client.clone(), self.endpoint.clone());
        let build = move || {
            client
                .post(url.clone())
                .header("xi-api-key", endpoint.api_key.expose())
                .header(ACCEPT, "audio/basic")
                .json(&body)
        };
        audio_stream(
            PROVIDER,
            build,
            self.settings.first_byte_timeout,
            Passthrough,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::redact::Secret;

    fn eleven(base_url: &str, voice: &str, speed: f32) -> ElevenLabs {
        let endpoint = Endpoint {
            base_url: base_url.into(),
            api_key: Secret::new("xi-test"),
        };
        let settings = TtsSettings {
            model: "eleven_flash_v2_5".into(),
            voice: voice.into(),
            instructions: String::new(),
            speed,
            first_byte_timeout: Duration::from_secs(1),
        };
        ElevenLabs::new(reqwest::Client::new(), endpoint, settings)
    }

    #[test]
    fn url_escapes_the_voice_and_asks_for_ulaw() {
        let url = eleven("https://api.elevenlabs.io/", "abc 1/2", 1.0)
            .url()
            .expect("url");
        assert_eq!(
            url.as_str(),
            "https://api.elevenlabs.io/v1/text-to-speech/abc%201%2F2/stream?output_format=ulaw_8000"
        );
        let err = eleven("not a url", "v", 1.0).url().expect_err("bad base");
        assert!(matches!(err, ProviderError::Protocol { .. }), "{err}");
    }

    #[test]
    fn speed_is_sent_only_when_changed() {
        let body = eleven("http://x", "v", 1.0).body("Hi");
        assert_eq!(
            body,
            json!({"text":"Hi","model_id":"eleven_flash_v2_5","voice_settings":{"stability":0.5,"similarity_boost":0.75}})
        );
        let body = eleven("http://x", "v", 1.1).body("Hi");
        assert!(body["voice_settings"]["speed"].is_number());
    }
}
