//! OpenAI's Realtime API as the engine (being built: only its wire format
//! so far).

use std::sync::Arc;

use crate::config::engine::RealtimeSection;
use crate::config::{Config, ConfigError};
use crate::engine::{Conversation, Engine, EngineStatus};
use crate::model::CallBrief;
use crate::providers::Endpoint;

pub mod protocol;

/// The Realtime engine.
pub struct Realtime;

impl Realtime {
    pub fn build(
        _config: &Config,
        _endpoint: Endpoint,
        _settings: RealtimeSection,
    ) -> Result<Realtime, ConfigError> {
        Err(ConfigError(
            "engine.kind = \"openai-realtime\": not available in this build yet".into(),
        ))
    }
}

impl Engine for Realtime {
    fn mode(&self) -> &'static str {
        "openai-realtime"
    }

    fn status(&self) -> EngineStatus {
        EngineStatus {
            turn_detector: "openai-realtime",
            speech_to_text: "none",
            speculative_answers: 0,
            speculative_wasted: 0,
        }
    }

    fn open(&self, _brief: Arc<CallBrief>) -> Box<dyn Conversation> {
        unreachable!("never built")
    }
}
