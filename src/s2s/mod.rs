//! Speech-to-speech engines: a model hears the caller's voice and answers
//! with its own, over one WebSocket per call, in place of the cascade of
//! speech-to-text, LLM and text-to-speech (`agent/`).
//!
//! - [`realtime`]: OpenAI's Realtime API. Twilio's μ-law goes to it and
//!   comes back untouched; it detects the turns, Pronto decides barge-in
//!   and truncates the model's item at what the caller heard.
//! - `moshi` (the `moshi` Cargo feature): Kyutai's Moshi on the user's own
//!   server: full duplex, Ogg/Opus at 24 kHz both ways, no prompt, no
//!   tools.
//!
//! Both implement the engine seam (`engine::Conversation`) like the
//! cascade, so the call around them (greeting, barge-in, marks, keypad,
//! limits, the record, recordings, the live view) is the same code.

use std::sync::Arc;

use crate::config::engine::SpeechToSpeech;
use crate::config::{Config, ConfigError};
use crate::engine::Engine;

#[cfg(feature = "moshi")]
pub mod moshi;
pub mod realtime;

/// The engine `[engine] kind` names, built from `config`.
pub fn build(config: &Config, s2s: &SpeechToSpeech) -> Result<Arc<dyn Engine>, ConfigError> {
    match s2s {
        SpeechToSpeech::OpenAiRealtime { endpoint, settings } => Ok(Arc::new(
            realtime::Realtime::build(config, endpoint.clone(), (**settings).clone())?,
        )),
        #[cfg(feature = "moshi")]
        SpeechToSpeech::Moshi { url, settings } => Ok(Arc::new(moshi::Moshi::build(
            url.clone(),
            settings.clone(),
        )?)),
        #[cfg(not(feature = "moshi"))]
        SpeechToSpeech::Moshi { .. } => Err(ConfigError(
            "engine.kind = \"moshi\": this build has no Moshi support".into(),
        )),
    }
}
