//! Settings: `config/pronto.toml` for tunables, the environment (and `.env`) for
//! secrets and per-deployment values.
//!
//! Layers, each overriding the one before: the defaults (the committed
//! `config/pronto.toml`, built into the binary so it runs without the file), the
//! user's file, `PRONTO_<SECTION>_<KEY>` variables, then `PORT`/`BIND`. The
//! defaults file is also the schema: a key it does not have is a typo and stops
//! start-up, and each value must have the type of its default.
//!
//! Loading takes the environment as a map, so tests never touch the process
//! environment.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use toml::{Table, Value};

use crate::audio::vad::EndpointerConfig;
use crate::redact::Secret;
use agent::{AgentSettings, AiStages, Lines, LlmSection, SttSection, TtsSection};
use std::collections::BTreeMap;

pub mod agent;
pub mod agents;
mod deployment;
pub mod engine;
pub mod env_vars;
mod layers;
pub mod routing;
mod validate;

use deployment::deployment;
use layers::{one_line, overlay_env, overlay_file, parse_bool, set};
use validate::validate;

/// The defaults, and the list of valid keys.
pub const DEFAULT_TOML: &str = include_str!("../config/pronto.toml");
const DEFAULT_PATH: &str = "config/pronto.toml";

/// One line saying which setting is wrong and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: String,
    pub port: u16,
    pub max_concurrent_calls: usize,
    pub drain_timeout_secs: u64,
    pub max_connections: usize,
    pub header_timeout_secs: u64,
    pub body_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TwilioSettings {
    pub pre_stream_say: String,
    pub say_voice: String,
    pub say_language: String,
    pub busy_message: String,
    pub stream_token_ttl_secs: u64,
    pub start_timeout_secs: u64,
    pub max_message_bytes: usize,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CallSettings {
    pub barge_in_min_ms: u32,
    pub max_playback_lead_ms: u32,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub max_call_duration_secs: u64,
    pub idle_prompt_secs: u64,
    pub idle_hangup_secs: u64,
    pub allow_numbers: Vec<String>,
    pub deny_numbers: Vec<String>,
    pub calls_per_hour_per_number: u32,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    pub recordings: bool,
    pub recordings_dir: String,
    pub recordings_max_mb: u64,
    pub recordings_min_free_mb: u64,
    pub caller_memory: bool,
    pub caller_memory_summaries: u32,
}

/// `[metrics]`: `GET /metrics`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Served without the API token, for a scraper on the LAN.
    pub public: bool,
}

/// `[turn]`: who decides that the caller's turn is over.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TurnSection {
    pub detector: String,
    pub stop_ms: u32,
    pub max_wait_ms: u32,
    pub threshold: f64,
    pub final_wait_ms: u32,
    pub speculative: bool,
    pub models_dir: String,
}

/// The tunables of `config/pronto.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tunables {
    pub server: ServerSettings,
    pub twilio: TwilioSettings,
    pub vad: EndpointerConfig,
    pub turn: TurnSection,
    pub call: CallSettings,
    pub limits: LimitSettings,
    pub store: StoreSettings,
    pub metrics: MetricsSettings,
    pub agent: AgentSettings,
    pub stt: SttSection,
    pub llm: LlmSection,
    pub tts: TtsSection,
    /// Spoken lines per language code.
    pub lines: BTreeMap<String, Lines>,
    pub engine: engine::EngineSection,
    pub realtime: engine::RealtimeSection,
    pub moshi: engine::MoshiSection,
    pub dashboard: DashboardSettings,
    pub routing: routing::RoutingSection,
}

/// `[dashboard]`: the operator's page.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DashboardSettings {
    /// The voice-to-voice time a turn should stay under: the scale of the
    /// latency waterfall.
    pub latency_budget_ms: u32,
}

impl Tunables {
    /// The spoken lines of the agent's language (validated to exist).
    pub fn lines(&self) -> Lines {
        self.lines
            .get(&self.agent.language)
            .cloned()
            .unwrap_or_else(|| Lines {
                greeting: String::new(),
                fallback: "Sorry, could you say that again?".into(),
                goodbye: "Goodbye!".into(),
                transfer: "One moment please.".into(),
                still_there: "Are you still there?".into(),
                closing: "Goodbye!".into(),
            })
    }
}

/// Per-deployment values from the environment (every name is in `.env.example`).
#[derive(Debug, Clone)]
pub struct Deployment {
    /// `PUBLIC_BASE_URL` without a trailing slash: the URL Twilio calls, exactly
    /// as typed in the Twilio console. Every signature is checked against it.
    pub public_base_url: String,
    pub public_base_url_is_default: bool,
    pub twilio_auth_token: Option<Secret>,
    pub api_token: Option<Secret>,
    /// `TWILIO_SKIP_SIGNATURE=true`: development only.
    pub skip_signature: bool,
    /// `STREAM_TOKEN_SECRET`; when unset the stream-token key is derived from the
    /// auth token, so replicas sharing an account accept each other's tokens.
    pub stream_token_secret: Option<Secret>,
    /// `TWILIO_ACCOUNT_SID`: needed for the REST calls that end and transfer
    /// calls.
    pub twilio_account_sid: Option<String>,
    /// `TWILIO_API_BASE_URL`, default `https://api.twilio.com`.
    pub twilio_api_base_url: String,
    /// `TWILIO_API_KEY_SID` + `TWILIO_API_KEY_SECRET` (recommended for REST);
    /// without them REST calls authenticate with the account SID and auth token.
    pub twilio_api_key: Option<(String, Secret)>,
    /// `TWILIO_PHONE_NUMBER`: the default `From` of outbound calls.
    pub twilio_phone_number: Option<String>,
    /// `DATABASE_URL`, default `sqlite://data/pronto.db`.
    pub database_url: String,
    /// `PRONTO_REPLICA_ID`, else the host name and port: stable across
    /// restarts, so a restarted replica can close its own dead calls.
    pub replica_id: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub tunables: Tunables,
    pub deployment: Deployment,
    /// The AI stages with their keys, or `None`: echo mode.
    pub ai: Option<AiStages>,
    /// The speech-to-speech engine `[engine] kind` names, with its keys;
    /// `None`: the cascade (the agent of `ai`, or echo mode).
    pub speech_to_speech: Option<engine::SpeechToSpeech>,
    /// Things worth a warning at start-up (never fatal). Each starts with the
    /// name of the setting it is about, except the echo-mode one below.
    pub warnings: Vec<String>,
    /// When some AI key is set but the agent still lacks others (Pronto then
    /// answers in echo mode): the variables it needs. Empty otherwise.
    pub agent_missing_keys: Vec<String>,
    /// What it was built from: for an agent file to change, and for a
    /// reload to read again.
    pub sources: Sources,
}

/// What a [`Config`] was built from.
#[derive(Clone)]
pub struct Sources {
    file: FileSource,
    /// The environment it was read with (secrets: never printed).
    env: Arc<HashMap<String, String>>,
    /// Every layer merged (defaults, file, environment): where an agent
    /// file's sections go on top.
    merged: Arc<Table>,
}

#[derive(Clone)]
enum FileSource {
    /// `PRONTO_CONFIG` or `config/pronto.toml`, read from disk each time.
    Disk,
    /// Given as text (tests, `pronto check` on a file's content).
    Given(Option<(String, String)>),
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources").finish_non_exhaustive()
    }
}

impl Config {
    /// Reads the config file (`PRONTO_CONFIG` or `config/pronto.toml`, optional)
    /// and the environment map.
    pub fn load(env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let (path, required) = match env.get("PRONTO_CONFIG") {
            Some(p) => (p.as_str(), true),
            None => (DEFAULT_PATH, false),
        };
        let text = match std::fs::read_to_string(Path::new(path)) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => None,
            Err(e) => return err(format!("{path}: cannot read the config file: {e}")),
        };
        let mut config = Config::from_sources(text.as_deref().map(|t| (path, t)), env)?;
        config.sources.file = FileSource::Disk;
        Ok(config)
    }

    /// The configuration read again from where this one came from (the
    /// file on disk, with the same environment): what a reload applies.
    pub fn reread(&self) -> Result<Config, ConfigError> {
        let env = &self.sources.env;
        match &self.sources.file {
            FileSource::Disk => Config::load(env),
            FileSource::Given(file) => Config::from_sources(
                file.as_ref()
                    .map(|(path, text)| (path.as_str(), text.as_str())),
                env,
            ),
        }
    }

    /// This configuration with an agent file's sections on top (`path` names
    /// the file in errors): the agent's own configuration, and the file's
    /// `description`.
    pub fn with_agent_file(&self, path: &str, text: &str) -> Result<(String, Config), ConfigError> {
        let mut table = (*self.sources.merged).clone();
        let description = agents::overlay(&mut table, path, text)?;
        let env = Arc::clone(&self.sources.env);
        let mut config = Config::from_table(table, env, self.sources.file.clone())
            .map_err(|e| ConfigError(format!("{path}: {e}")))?;
        // What the deployment's own configuration already warns about is
        // not the agent's.
        config.warnings.retain(|w| !self.warnings.contains(w));
        Ok((description, config))
    }

    /// Builds the configuration from an optional `(path, text)` file and an
    /// environment map.
    pub fn from_sources(
        file: Option<(&str, &str)>,
        env: &HashMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let mut table: Table = DEFAULT_TOML
            .parse()
            .map_err(|e| ConfigError(format!("built-in defaults do not parse: {e}")))?;
        if let Some((path, text)) = file {
            let user: Table = text.parse().map_err(|e: toml::de::Error| {
                ConfigError(format!("{path}: {}", one_line(&e.to_string())))
            })?;
            overlay_file(&mut table, user, path)?;
        }
        let mut warnings = Vec::new();
        overlay_env(&mut table, env, &mut warnings)?;
        if let Some(port) = env.get("PORT") {
            let port: u16 = port
                .trim()
                .parse()
                .or_else(|_| err(format!("PORT={port}: not a port number")))?;
            set(
                &mut table,
                "server",
                "port",
                Value::Integer(i64::from(port)),
            );
        }
        if let Some(bind) = env.get("BIND") {
            set(
                &mut table,
                "server",
                "bind",
                Value::String(bind.trim().to_string()),
            );
        }
        let given = FileSource::Given(file.map(|(p, t)| (p.to_string(), t.to_string())));
        let mut config = Config::from_table(table, Arc::new(env.clone()), given)?;
        warnings.append(&mut config.warnings);
        config.warnings = warnings;
        Ok(config)
    }

    /// The configuration of merged layers `table`.
    fn from_table(
        table: Table,
        env: Arc<HashMap<String, String>>,
        file: FileSource,
    ) -> Result<Config, ConfigError> {
        let mut warnings = Vec::new();
        let tunables = Tunables::deserialize(Value::Table(table.clone()))
            .map_err(|e| ConfigError(one_line(&e.to_string())))?;
        validate(&tunables)?;
        engine::validate(&tunables.realtime, &tunables.moshi)?;
        let deployment = deployment(&env, tunables.server.port, &mut warnings)?;
        let mut agent_missing_keys = Vec::new();
        let ai = ai_stages(&tunables, &env, &mut warnings, &mut agent_missing_keys)?;
        let t = &tunables;
        let speech_to_speech = match engine::resolve(&t.engine, &t.realtime, &t.moshi, &env)? {
            Ok(engine) => engine,
            Err(missing) => {
                warnings.push(format!(
                    "engine.kind = {:?} needs {}: answering with the cascade (or in echo mode)",
                    t.engine.kind,
                    missing.join(", ")
                ));
                None
            }
        };
        Ok(Config {
            tunables,
            deployment,
            ai,
            speech_to_speech,
            warnings,
            agent_missing_keys,
            sources: Sources {
                file,
                env,
                merged: Arc::new(table),
            },
        })
    }

    pub fn listen_addr(&self) -> SocketAddr {
        // validate() has checked that bind parses.
        let ip: IpAddr = self
            .tunables
            .server
            .bind
            .parse()
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        SocketAddr::new(ip, self.tunables.server.port)
    }
}

/// The AI stages, or `None` (echo mode) with a warning when the setup is
/// half done: some keys present, others missing.
fn ai_stages(
    t: &Tunables,
    env: &HashMap<String, String>,
    warnings: &mut Vec<String>,
    agent_missing_keys: &mut Vec<String>,
) -> Result<Option<AiStages>, ConfigError> {
    match agent::resolve(&t.agent, &t.stt, &t.llm, &t.tts, env)? {
        Ok(stages) => Ok(Some(stages)),
        Err(missing) => {
            let any_key = ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "ELEVENLABS_API_KEY"]
                .iter()
                .any(|k| non_empty(env, k).is_some());
            if any_key {
                warnings.push(format!(
                    "answering in echo mode: the agent also needs {}",
                    missing.join(", ")
                ));
                *agent_missing_keys = missing;
            }
            Ok(None)
        }
    }
}

fn non_empty<'a>(env: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests;
