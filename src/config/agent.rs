//! The agent's settings (`[agent]`, `[stt]`, `[llm]`, `[tts]`, `[lines.*]`) and
//! their resolution against the environment: which provider each stage uses,
//! at which base URL, with which key. A stage without its key leaves Pronto in
//! echo mode, with a start-up warning naming the missing variable.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, err, non_empty};
use crate::providers::socket::ws_scheme;
use crate::providers::{Endpoint, LlmSettings, SttSettings, TtsSettings};
use crate::redact::Secret;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    pub language: String,
    pub prompt_file: String,
    pub knowledge_files: Vec<String>,
    pub max_history_turns: u32,
    pub greeting_interruptible: bool,
    pub end_call: bool,
    pub transfer_number: String,
    pub dtmf_timeout_ms: u32,
    pub tts_lookahead: u32,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SttSection {
    pub provider: String,
    pub model: String,
    pub base_url: String,
    pub api_key_env: String,
    pub prompt: String,
    pub timeout_ms: u64,
    pub openai_turn_detection: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LlmSection {
    pub provider: String,
    pub model: String,
    pub base_url: String,
    pub api_key_env: String,
    pub max_tokens: u32,
    pub temperature: f64,
    pub first_token_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TtsSection {
    pub provider: String,
    pub model: String,
    pub voice: String,
    pub instructions: String,
    pub speed: f64,
    pub base_url: String,
    pub api_key_env: String,
    pub first_byte_timeout_ms: u64,
}

/// What the agent says in fixed situations, in one language.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Lines {
    pub greeting: String,
    pub fallback: String,
    pub goodbye: String,
    pub transfer: String,
    pub still_there: String,
    pub closing: String,
}

/// Who transcribes the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SttProvider {
    /// One request per utterance: OpenAI's `/audio/transcriptions` or any
    /// compatible server (Groq, a local Whisper).
    OpenAi,
    /// Streaming: Deepgram (Flux for English, Nova-3 otherwise).
    Deepgram,
    /// Streaming: AssemblyAI Universal-Streaming v3.
    AssemblyAi,
    /// Streaming: an OpenAI Realtime transcription session.
    OpenAiRealtime,
}

impl SttProvider {
    pub fn streams(self) -> bool {
        self != SttProvider::OpenAi
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SttProvider::OpenAi => "openai",
            SttProvider::Deepgram => "deepgram",
            SttProvider::AssemblyAi => "assemblyai",
            SttProvider::OpenAiRealtime => "openai-realtime",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlmProvider {
    Anthropic,
    OpenAi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtsProvider {
    OpenAi,
    ElevenLabs,
}

/// One stage, resolved: where it is and how it is set up.
#[derive(Debug, Clone)]
pub struct Stage<P, S> {
    pub provider: P,
    pub endpoint: Endpoint,
    /// The variable the key was read from (e.g. `OPENAI_API_KEY`), so that a
    /// message about a refused key can name what to change.
    pub key_var: String,
    pub settings: S,
}

/// The three stages, each with its key: the agent can run.
#[derive(Debug, Clone)]
pub struct AiStages {
    pub stt: Stage<SttProvider, SttSettings>,
    pub llm: Stage<LlmProvider, LlmSettings>,
    pub tts: Stage<TtsProvider, TtsSettings>,
}

pub const OPENAI_BASE: &str = "https://api.openai.com/v1";
pub const ANTHROPIC_BASE: &str = "https://api.anthropic.com";
pub const ELEVENLABS_BASE: &str = "https://api.elevenlabs.io";
pub const DEEPGRAM_BASE: &str = "wss://api.deepgram.com";
pub const ASSEMBLYAI_BASE: &str = "wss://streaming.assemblyai.com";

/// The stages if every key is present; otherwise the variables that are missing.
pub(super) fn resolve(
    agent: &AgentSettings,
    stt: &SttSection,
    llm: &LlmSection,
    tts: &TtsSection,
    env: &HashMap<String, String>,
) -> Result<Result<AiStages, Vec<String>>, ConfigError> {
    let mut missing = Vec::new();
    let mut key = |var: &str| match non_empty(env, var) {
        Some(k) => Secret::new(k),
        None => {
            missing.push(var.to_string());
            Secret::new("")
        }
    };
    let base = |configured: &str, var: &str, default: &str| -> Result<String, ConfigError> {
        let url = if configured.is_empty() {
            non_empty(env, var).unwrap_or(default)
        } else {
            configured
        };
        base_url(url, var)
    };

    let (stt_provider, stt_base, stt_key) = match stt.provider.as_str() {
        "openai" => (
            SttProvider::OpenAi,
            base(&stt.base_url, "OPENAI_BASE_URL", OPENAI_BASE)?,
            "OPENAI_API_KEY",
        ),
        "openai-realtime" => (
            SttProvider::OpenAiRealtime,
            ws_scheme(&base(&stt.base_url, "OPENAI_BASE_URL", OPENAI_BASE)?),
            "OPENAI_API_KEY",
        ),
        "deepgram" => (
            SttProvider::Deepgram,
            stream_base(&stt.base_url, "DEEPGRAM_BASE_URL", DEEPGRAM_BASE, env)?,
            "DEEPGRAM_API_KEY",
        ),
        "assemblyai" => (
            SttProvider::AssemblyAi,
            stream_base(&stt.base_url, "ASSEMBLYAI_BASE_URL", ASSEMBLYAI_BASE, env)?,
            "ASSEMBLYAI_API_KEY",
        ),
        other => {
            return err(format!(
                "stt.provider = {other:?}: must be openai, deepgram, assemblyai or openai-realtime"
            ));
        }
    };
    let stt_stage = Stage {
        provider: stt_provider,
        endpoint: Endpoint {
            base_url: stt_base,
            api_key: key(or(&stt.api_key_env, stt_key)),
        },
        key_var: or(&stt.api_key_env, stt_key).to_string(),
        settings: SttSettings {
            // Empty: the provider's own default (batch: a fast OpenAI model).
            model: match (stt_provider, stt.model.as_str()) {
                (SttProvider::OpenAi, "") => "gpt-4o-mini-transcribe".to_string(),
                (_, model) => model.to_string(),
            },
            language: agent.language.clone(),
            prompt: stt.prompt.clone(),
            timeout: Duration::from_millis(stt.timeout_ms),
        },
    };

    let chosen = match llm.provider.as_str() {
        "" => non_empty(env, "LLM_PROVIDER").unwrap_or(""),
        p => p,
    };
    let llm_provider = match chosen {
        "anthropic" => LlmProvider::Anthropic,
        "openai" => LlmProvider::OpenAi,
        "" if non_empty(env, "ANTHROPIC_API_KEY").is_some() => LlmProvider::Anthropic,
        "" if non_empty(env, "OPENAI_API_KEY").is_some() => LlmProvider::OpenAi,
        "" => LlmProvider::Anthropic,
        other => {
            return err(format!("LLM_PROVIDER={other}: must be anthropic or openai"));
        }
    };
    let (llm_base, llm_key, llm_model) = match llm_provider {
        LlmProvider::Anthropic => (
            base(&llm.base_url, "ANTHROPIC_BASE_URL", ANTHROPIC_BASE)?,
            "ANTHROPIC_API_KEY",
            "claude-haiku-4-5",
        ),
        LlmProvider::OpenAi => (
            base(&llm.base_url, "OPENAI_BASE_URL", OPENAI_BASE)?,
            "OPENAI_API_KEY",
            "gpt-4o-mini",
        ),
    };
    let llm_stage = Stage {
        provider: llm_provider,
        endpoint: Endpoint {
            base_url: llm_base,
            api_key: key(or(&llm.api_key_env, llm_key)),
        },
        key_var: or(&llm.api_key_env, llm_key).to_string(),
        settings: LlmSettings {
            model: or(&llm.model, llm_model).to_string(),
            max_tokens: llm.max_tokens,
            temperature: (llm.temperature >= 0.0).then_some(llm.temperature as f32),
            first_token_timeout: Duration::from_millis(llm.first_token_timeout_ms),
        },
    };

    let (tts_provider, tts_base, tts_key, tts_model, tts_voice) = match tts.provider.as_str() {
        "elevenlabs" => (
            TtsProvider::ElevenLabs,
            base(&tts.base_url, "ELEVENLABS_BASE_URL", ELEVENLABS_BASE)?,
            "ELEVENLABS_API_KEY",
            "eleven_flash_v2_5",
            "21m00Tcm4TlvDq8ikWAM",
        ),
        _ => (
            TtsProvider::OpenAi,
            base(&tts.base_url, "OPENAI_BASE_URL", OPENAI_BASE)?,
            "OPENAI_API_KEY",
            "gpt-4o-mini-tts",
            "coral",
        ),
    };
    let tts_stage = Stage {
        provider: tts_provider,
        endpoint: Endpoint {
            base_url: tts_base,
            api_key: key(or(&tts.api_key_env, tts_key)),
        },
        key_var: or(&tts.api_key_env, tts_key).to_string(),
        settings: TtsSettings {
            model: or(&tts.model, tts_model).to_string(),
            voice: or(&tts.voice, tts_voice).to_string(),
            instructions: tts.instructions.clone(),
            speed: tts.speed as f32,
            first_byte_timeout: Duration::from_millis(tts.first_byte_timeout_ms),
        },
    };
    // Each variable once, in order: STT and TTS often share one key.
    let mut seen = Vec::new();
    missing.retain(|var| {
        let first = !seen.contains(var);
        seen.push(var.clone());
        first
    });
    if !missing.is_empty() {
        return Ok(Err(missing));
    }
    Ok(Ok(AiStages {
        stt: stt_stage,
        llm: llm_stage,
        tts: tts_stage,
    }))
}

fn or<'a>(value: &'a str, default: &'a str) -> &'a str {
    if value.is_empty() { default } else { value }
}

/// A streaming provider's base URL: ws(s) (or http(s), taken as ws(s)), no
/// trailing slash.
pub(super) fn stream_base(
    configured: &str,
    var: &str,
    default: &str,
    env: &HashMap<String, String>,
) -> Result<String, ConfigError> {
    let url = if configured.is_empty() {
        non_empty(env, var).unwrap_or(default)
    } else {
        configured
    };
    let as_http = url
        .trim()
        .replacen("wss://", "https://", 1)
        .replacen("ws://", "http://", 1);
    Ok(ws_scheme(&base_url(&as_http, var).map_err(|_| {
        ConfigError(format!(
            "{var}={url}: must be a ws(s) URL such as wss://api.example.com"
        ))
    })?))
}

/// A provider base URL: http(s), no trailing slash.
pub(super) fn base_url(url: &str, name: &str) -> Result<String, ConfigError> {
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !trimmed.contains(char::is_whitespace) => {
            Ok(trimmed.to_string())
        }
        _ => err(format!(
            "{name}={url}: must be an http(s) URL such as https://api.example.com"
        )),
    }
}
