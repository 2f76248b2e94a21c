//! The parts of `pronto check`'s report that are not findings: where the
//! configuration came from, what to paste into the Twilio console, and what
//! answers the calls.

use std::path::PathBuf;

use crate::config::Config;
use crate::config::agent::{AiStages, LlmProvider, OPENAI_BASE, SttProvider, TtsProvider};
use crate::config::agents::Agents;
use crate::config::engine::SpeechToSpeech;
use crate::config::routing::{Condition, DEFAULT_AGENT};
use crate::engine::hearing::{Detector, Ears};
use crate::engine::turn_model;
use crate::redact::redact_userinfo;

/// Where the configuration was read from, the way `Config::load` and
/// `main`'s `.env` reading find it.
pub fn sources(config_var: Option<&str>, dotenv: &Result<PathBuf, dotenvy::Error>) -> String {
    let file = match config_var {
        Some(path) => format!("{path} (PRONTO_CONFIG)"),
        None if std::path::Path::new("config/pronto.toml").is_file() => {
            "config/pronto.toml".to_string()
        }
        None => "the built-in defaults (no config/pronto.toml here)".to_string(),
    };
    let dotenv = match dotenv {
        Ok(path) => path.display().to_string(),
        Err(e) if e.not_found() => "no .env".to_string(),
        Err(_) => ".env (unreadable)".to_string(),
    };
    format!("Configuration: {file}, {dotenv}, and the environment")
}

/// `PUBLIC_BASE_URL` as the console lines show it.
fn public_base(config: &Config) -> String {
    let d = &config.deployment;
    if d.public_base_url_is_default {
        "<PUBLIC_BASE_URL>".to_string()
    } else {
        redact_userinfo(&d.public_base_url)
    }
}

/// What goes into the Twilio console, ready to paste.
pub fn console(config: &Config) -> Vec<String> {
    let base = public_base(config);
    vec![
        "Twilio console → Phone Numbers → Manage → Active numbers → your number → Voice configuration:".to_string(),
        format!("  A call comes in: Webhook, {base}/voice, HTTP POST"),
        format!("  Call status changes: {base}/voice/status, HTTP POST"),
    ]
}

/// With agent files or routing rules: each agent, the URL to paste as the
/// "A call comes in" webhook of a number that should reach it, and what
/// else routes calls to it. Nothing for the single agent of
/// `config/pronto.toml` (the console lines above say it all).
pub fn agents(config: &Config, agents: &Agents) -> Vec<String> {
    let files = agents.agents.values().any(|a| a.file.is_some());
    if !files && agents.routing.rules.is_empty() {
        return Vec::new();
    }
    let base = public_base(config);
    let routing = &agents.routing;
    let mut lines = vec![
        "Agents: paste an agent's URL as the \"A call comes in\" webhook (HTTP POST) of a number that should reach it:".to_string(),
    ];
    for agent in agents.agents.values() {
        let name = &agent.name;
        let is_default = routing.default == *name;
        let url = format!("{base}{}", routing.webhook_path(name));
        let file = agent.file.as_ref().map_or_else(
            || "config/pronto.toml".to_string(),
            |f| f.display().to_string(),
        );
        lines.push(format!(
            "  {name} ({file}, language {}): {url}",
            agent.config.tunables.agent.language
        ));
        // A rule after one with the same condition never applies.
        let mut routes: Vec<String> = routing
            .rules
            .iter()
            .enumerate()
            .filter(|(i, r)| {
                r.agent == *name
                    && !routing.rules[..*i]
                        .iter()
                        .any(|earlier| earlier.condition == r.condition)
            })
            .map(|(_, r)| match &r.condition {
                Condition::To(number) => format!("calls to {number}"),
                Condition::FromPrefix(prefix) => format!("callers from {prefix}…"),
                Condition::Path(path) => format!("{base}/voice/{path}"),
            })
            .collect();
        if is_default {
            routes.push("every call no rule routes elsewhere (the default)".to_string());
        }
        if routes.is_empty() {
            let why = if name == DEFAULT_AGENT {
                "the routing's default is another agent"
            } else {
                "no rule names it"
            };
            routes.push(format!("only calls to its URL ({why})"));
        }
        lines.push(format!("    routed to it: {}", routes.join(", ")));
    }
    lines
}

/// Echo or agent, and for the agent each stage's provider, model and key;
/// then who ends the caller's turns.
pub fn mode(config: &Config) -> Vec<String> {
    if let Some(s2s) = &config.speech_to_speech {
        return speech_to_speech(config, s2s);
    }
    let mut lines = engine(config);
    lines.push(turns(config));
    lines
}

/// A speech-to-speech engine: what it is, where, and what it cannot do.
fn speech_to_speech(config: &Config, s2s: &SpeechToSpeech) -> Vec<String> {
    let t = &config.tunables;
    match s2s {
        SpeechToSpeech::OpenAiRealtime { endpoint, settings } => {
            let turns = match settings.turn_detection.as_str() {
                "semantic_vad" => format!("semantic_vad, eagerness {}", settings.eagerness),
                _ => format!("server_vad, {} ms of silence", settings.silence_ms),
            };
            vec![
                format!(
                    "Mode: speech-to-speech, OpenAI Realtime {} at {}, key OPENAI_API_KEY, voice {}, language {}",
                    settings.model,
                    redact_userinfo(&endpoint.base_url),
                    settings.voice,
                    t.agent.language
                ),
                format!("  the caller's turns: the model's own voice detection ({turns})"),
                format!(
                    "  the caller's words: {}",
                    if settings.transcription_model.is_empty() {
                        "not transcribed (realtime.transcription_model is empty)".to_string()
                    } else {
                        format!("transcribed by {}", settings.transcription_model)
                    }
                ),
                format!(
                    "  fixed lines when the model cannot speak: {}",
                    if config.ai.is_some() {
                        "the cascade's text-to-speech"
                    } else {
                        "none (the call just ends)"
                    }
                ),
                format!(
                    "  cost estimate: prices of {} (realtime.price_*)",
                    settings.prices_checked
                ),
            ]
        }
        SpeechToSpeech::Moshi { url, .. } => {
            let mut lines = vec![
                format!("Mode: speech-to-speech, Kyutai Moshi at {}/api/chat", redact_userinfo(url)),
                "  English only; no prompt, knowledge or tools (it cannot end or transfer calls); sessions end after about five minutes, and the call with them".to_string(),
            ];
            if !cfg!(feature = "moshi") {
                lines.push("  this build has no Moshi support: build with the `moshi` Cargo feature (it needs cmake)".to_string());
            }
            lines
        }
    }
}

/// Who ends the caller's turns, as calls will get it (the configured
/// detector, or what it falls back to and why).
fn turns(config: &Config) -> String {
    let t = &config.tunables;
    let streaming = config
        .ai
        .as_ref()
        .is_some_and(|ai| ai.stt.provider.streams());
    let installed = || turn_model::load(std::path::Path::new(&t.turn.models_dir)).is_ok();
    let model = turn_model::installed(t, streaming);
    let active = Ears::from_config(t, model).detector(streaming);
    let asked = t.turn.detector.as_str();
    let why = match (asked, active) {
        (a, d) if a == d.as_str() => String::new(),
        ("provider", _) if !streaming => {
            " (detector = \"provider\" needs a streaming [stt] provider".to_string()
                + if installed() {
                    ")"
                } else {
                    "; the model is not installed either: run scripts/fetch-models.sh)"
                }
        }
        _ if !installed() => format!(
            " (detector = {asked:?}: the end-of-turn model is not in {}/; run scripts/fetch-models.sh)",
            t.turn.models_dir
        ),
        _ => String::new(),
    };
    let what = match active {
        Detector::Provider => "the speech-to-text provider's end of turn".to_string(),
        Detector::Model => format!(
            "the end-of-turn model after a {} ms pause, at most {} ms",
            t.turn.stop_ms, t.turn.max_wait_ms
        ),
        Detector::Silence => format!("{} ms of silence", t.vad.hangover_ms),
    };
    format!("Turn detector: {} ({what}){why}", active.as_str())
}

fn engine(config: &Config) -> Vec<String> {
    match &config.ai {
        None => vec![
            "Mode: echo (after each pause the caller hears their own words back; set OPENAI_API_KEY, and ANTHROPIC_API_KEY for Claude, to run the agent)".to_string(),
        ],
        Some(ai) => stages(config, ai),
    }
}

fn stages(config: &Config, ai: &AiStages) -> Vec<String> {
    let at = |base: &str, key_var: &str| format!("at {}, key {key_var}", redact_userinfo(base));
    let openai = |base: &str| {
        if base == OPENAI_BASE {
            "OpenAI"
        } else {
            "OpenAI-compatible"
        }
    };
    let (stt, llm, tts) = (&ai.stt, &ai.llm, &ai.tts);
    let llm_provider = match llm.provider {
        LlmProvider::Anthropic => "Anthropic",
        LlmProvider::OpenAi => openai(&llm.endpoint.base_url),
    };
    let tts_provider = match tts.provider {
        TtsProvider::ElevenLabs => "ElevenLabs",
        TtsProvider::OpenAi => openai(&tts.endpoint.base_url),
    };
    vec![
        format!("Mode: agent, language {}", config.tunables.agent.language),
        format!(
            "  speech-to-text: {} {}, {}",
            match stt.provider {
                SttProvider::OpenAi => openai(&stt.endpoint.base_url),
                SttProvider::OpenAiRealtime => "OpenAI Realtime (streaming)",
                SttProvider::Deepgram => "Deepgram (streaming)",
                SttProvider::AssemblyAi => "AssemblyAI (streaming)",
            },
            if stt.settings.model.is_empty() {
                "(default model)"
            } else {
                &stt.settings.model
            },
            at(&stt.endpoint.base_url, &stt.key_var)
        ),
        format!(
            "  LLM: {llm_provider} {}, {}",
            llm.settings.model,
            at(&llm.endpoint.base_url, &llm.key_var)
        ),
        format!(
            "  text-to-speech: {tts_provider} {}, voice {}, {}",
            tts.settings.model,
            tts.settings.voice,
            at(&tts.endpoint.base_url, &tts.key_var)
        ),
    ]
}
