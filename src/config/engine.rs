//! `[engine]`, `[realtime]`, `[moshi]`: who converses with the caller. The
//! cascade (speech-to-text, an LLM, text-to-speech; `[stt]`, `[llm]`,
//! `[tts]`) is the default; a speech-to-speech model hears the caller's voice
//! and answers with its own, in one connection per call.

use std::collections::HashMap;

use serde::Deserialize;

use super::agent::{OPENAI_BASE, base_url, stream_base};
use super::{ConfigError, err, non_empty};
use crate::providers::Endpoint;
use crate::providers::socket::ws_scheme;
use crate::redact::Secret;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    pub kind: String,
}

/// `[realtime]`: OpenAI's Realtime API as the engine.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RealtimeSection {
    pub model: String,
    pub voice: String,
    pub turn_detection: String,
    pub eagerness: String,
    pub threshold: f64,
    pub silence_ms: u32,
    pub prefix_padding_ms: u32,
    pub transcription_model: String,
    pub noise_reduction: String,
    pub price_audio_in: f64,
    pub price_audio_in_cached: f64,
    pub price_audio_out: f64,
    pub price_text_in: f64,
    pub price_text_out: f64,
    pub prices_checked: String,
}

/// `[moshi]`: Kyutai's Moshi as the engine.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MoshiSection {
    pub playback_lead_ms: u32,
}

/// The engine `[engine] kind` names, resolved against the environment.
#[derive(Debug, Clone)]
pub enum SpeechToSpeech {
    /// OpenAI's Realtime API: `endpoint.base_url` is its `wss://…/v1`.
    OpenAiRealtime {
        endpoint: Endpoint,
        settings: Box<RealtimeSection>,
    },
    /// A `moshi-server` (or `moshi.server`) at `url` (`ws(s)://host:port`).
    Moshi { url: String, settings: MoshiSection },
}

impl SpeechToSpeech {
    /// Its name in `[engine] kind` and `/health`.
    pub fn kind(&self) -> &'static str {
        match self {
            SpeechToSpeech::OpenAiRealtime { .. } => "openai-realtime",
            SpeechToSpeech::Moshi { .. } => "moshi",
        }
    }
}

/// Where `moshi.server` listens by default.
pub const MOSHI_URL: &str = "ws://localhost:8998";

/// The speech-to-speech engine `[engine] kind` asks for: `Ok(None)` for the
/// cascade; `Err(missing)` with the variables it lacks.
pub(super) fn resolve(
    engine: &EngineSection,
    realtime: &RealtimeSection,
    moshi: &MoshiSection,
    env: &HashMap<String, String>,
) -> Result<Result<Option<SpeechToSpeech>, Vec<String>>, ConfigError> {
    Ok(Ok(Some(match engine.kind.as_str() {
        "cascade" => return Ok(Ok(None)),
        "openai-realtime" => {
            let Some(key) = non_empty(env, "OPENAI_API_KEY") else {
                return Ok(Err(vec!["OPENAI_API_KEY".into()]));
            };
            let base = non_empty(env, "OPENAI_BASE_URL").unwrap_or(OPENAI_BASE);
            SpeechToSpeech::OpenAiRealtime {
                endpoint: Endpoint {
                    base_url: ws_scheme(&base_url(base, "OPENAI_BASE_URL")?),
                    api_key: Secret::new(key),
                },
                settings: Box::new(realtime.clone()),
            }
        }
        "moshi" => SpeechToSpeech::Moshi {
            url: stream_base("", "MOSHI_URL", MOSHI_URL, env)?,
            settings: moshi.clone(),
        },
        other => {
            return err(format!(
                "engine.kind = {other:?}: must be cascade, openai-realtime or moshi"
            ));
        }
    })))
}

/// Range checks of `[realtime]` and `[moshi]`.
pub(super) fn validate(
    realtime: &RealtimeSection,
    moshi: &MoshiSection,
) -> Result<(), ConfigError> {
    let r = realtime;
    if r.model.trim().is_empty() {
        return err("realtime.model must name a model, e.g. gpt-realtime");
    }
    if !["server_vad", "semantic_vad"].contains(&r.turn_detection.as_str()) {
        return err(format!(
            "realtime.turn_detection = {:?}: must be server_vad or semantic_vad",
            r.turn_detection
        ));
    }
    if !["low", "medium", "high", "auto"].contains(&r.eagerness.as_str()) {
        return err(format!(
            "realtime.eagerness = {:?}: must be low, medium, high or auto",
            r.eagerness
        ));
    }
    if !["near_field", "far_field", ""].contains(&r.noise_reduction.as_str()) {
        return err(format!(
            "realtime.noise_reduction = {:?}: must be near_field, far_field or empty",
            r.noise_reduction
        ));
    }
    if !(0.0..=1.0).contains(&r.threshold) {
        return err(format!(
            "realtime.threshold must be between 0 and 1 (it is {})",
            r.threshold
        ));
    }
    if !(100..=5000).contains(&r.silence_ms) || r.prefix_padding_ms > 2000 {
        return err(
            "realtime.silence_ms must be between 100 and 5000, realtime.prefix_padding_ms at most 2000",
        );
    }
    let prices = [
        r.price_audio_in,
        r.price_audio_in_cached,
        r.price_audio_out,
        r.price_text_in,
        r.price_text_out,
    ];
    if prices.iter().any(|p| !p.is_finite() || *p < 0.0) {
        return err("realtime.price_* must be zero or more (USD per million tokens)");
    }
    if !(40..=2000).contains(&moshi.playback_lead_ms) {
        return err(format!(
            "moshi.playback_lead_ms must be between 40 and 2000 (it is {})",
            moshi.playback_lead_ms
        ));
    }
    Ok(())
}
