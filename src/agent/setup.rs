//! Builds the agent from the configuration: one provider per stage, the
//! prompt, the fixed lines (synthesized in the background right away) and the
//! tools this deployment can honour.

use std::sync::Arc;

use tracing::{Instrument, info, info_span};

use super::lines::SpokenLines;
use super::prompt::Prompt;
use super::tools::Tools;
use super::{Agent, AgentParts, Speculation};
use crate::config::agent::{AiStages, LlmProvider, SttProvider, TtsProvider};
use crate::config::{Config, ConfigError, Tunables};
use crate::engine::hearing::Ears;
use crate::engine::turn_model;
use crate::providers::anthropic::Anthropic;
use crate::providers::elevenlabs::ElevenLabs;
use crate::providers::http::Warmup;
use crate::providers::listen::assemblyai::AssemblyAi;
use crate::providers::listen::deepgram::Deepgram;
use crate::providers::listen::openai_realtime::OpenAiRealtime;
use crate::providers::listen::{StreamSettings, StreamingSpeechToText, TurnsBy};
use crate::providers::openai_chat::OpenAiChat;
use crate::providers::openai_stt::OpenAiStt;
use crate::providers::openai_tts::OpenAiTts;
use crate::providers::{LanguageModel, SpeechToText, TextToSpeech, http};

/// The agent for `config`, or `None` when the AI stages lack keys (echo mode).
/// Must run inside the tokio runtime: it starts synthesizing the fixed lines.
pub fn build(config: &Config) -> Result<Option<Agent>, ConfigError> {
    let Some(stages) = &config.ai else {
        return Ok(None);
    };
    let client = http::client().map_err(ConfigError)?;
    let t = &config.tunables;
    let prompt = Prompt::load(&t.agent)?;
    let (stt, llm, tts) = providers(stages, &client);
    let listen = streaming(stages, t);
    let model = turn_model::installed(t, listen.is_some());
    let lines = Arc::new(SpokenLines::new(t.lines(), Arc::clone(&tts)));
    let tools = Tools::for_deployment(config);
    info!(
        llm = ?stages.llm.provider,
        llm_model = %stages.llm.settings.model,
        stt = stages.stt.provider.as_str(),
        stt_model = %stages.stt.settings.model,
        tts = ?stages.tts.provider,
        tts_model = %stages.tts.settings.model,
        language = %t.agent.language,
        "agent ready"
    );
    let agent = Agent::new(AgentParts {
        stt,
        listen,
        llm,
        tts,
        prompt,
        lines: Arc::clone(&lines),
        tools,
        tts_lookahead: usize::try_from(t.agent.tts_lookahead).unwrap_or(1),
        ears: Ears::from_config(t, model),
        speculative: t.turn.speculative,
        max_history_turns: usize::try_from(t.agent.max_history_turns).unwrap_or(20),
        remembers: t.store.caller_memory,
        speculation: Speculation::default(),
        warmup: Some(Warmup::new(
            client.clone(),
            [&stages.llm.endpoint, &stages.tts.endpoint]
                .into_iter()
                .chain((!stages.stt.provider.streams()).then_some(&stages.stt.endpoint))
                .map(|e| e.base_url.clone())
                .collect(),
        )),
    })
    .map_err(|e| ConfigError(e.to_string()))?;
    tokio::spawn(async move { lines.warm_up().await }.instrument(info_span!("lines")));
    Ok(Some(agent))
}

/// The streaming speech-to-text provider, when `[stt]` names one.
fn streaming(stages: &AiStages, t: &Tunables) -> Option<Arc<dyn StreamingSpeechToText>> {
    let stage = &stages.stt;
    let settings = StreamSettings {
        endpoint: stage.endpoint.clone(),
        model: stage.settings.model.clone(),
        language: stage.settings.language.clone(),
        vocabulary: stage.settings.prompt.clone(),
        turns: match t.turn.detector.as_str() {
            "provider" => TurnsBy::Provider {
                eager: t.turn.speculative,
                semantic: t.stt.openai_turn_detection == "semantic_vad",
            },
            _ => TurnsBy::Pronto,
        },
    };
    Some(match stage.provider {
        SttProvider::OpenAi => return None,
        SttProvider::AssemblyAi => Arc::new(AssemblyAi::new(settings)),
        SttProvider::OpenAiRealtime => Arc::new(OpenAiRealtime::new(settings)),
        SttProvider::Deepgram => Arc::new(Deepgram::new(settings)),
    })
}

pub type Providers = (
    Option<Arc<dyn SpeechToText>>,
    Arc<dyn LanguageModel>,
    Arc<dyn TextToSpeech>,
);

/// The batch speech-to-text (`None` when it streams), the LLM and the
/// text-to-speech of `stages`.
pub fn providers(stages: &AiStages, client: &reqwest::Client) -> Providers {
    let stt = (!stages.stt.provider.streams()).then(|| {
        Arc::new(OpenAiStt::new(
            client.clone(),
            stages.stt.endpoint.clone(),
            stages.stt.settings.clone(),
        )) as Arc<dyn SpeechToText>
    });
    let (endpoint, settings) = (stages.llm.endpoint.clone(), stages.llm.settings.clone());
    let llm: Arc<dyn LanguageModel> = match stages.llm.provider {
        LlmProvider::Anthropic => Arc::new(Anthropic::new(client.clone(), endpoint, settings)),
        LlmProvider::OpenAi => Arc::new(OpenAiChat::new(client.clone(), endpoint, settings)),
    };
    let (endpoint, settings) = (stages.tts.endpoint.clone(), stages.tts.settings.clone());
    let tts: Arc<dyn TextToSpeech> = match stages.tts.provider {
        TtsProvider::OpenAi => Arc::new(OpenAiTts::new(client.clone(), endpoint, settings)),
        TtsProvider::ElevenLabs => Arc::new(ElevenLabs::new(client.clone(), endpoint, settings)),
    };
    (stt, llm, tts)
}
