//! Agent files: `agents/<name>.toml`, one persona each. A file holds a
//! top-level `description` and the sections of `config/pronto.toml` an
//! agent may change, with the same keys; what it leaves out comes from
//! `config/pronto.toml`. The agent named `default` is `config/pronto.toml`
//! itself (changed by `agents/default.toml` if there is one), so a Pronto
//! without agent files answers every call as before.
//!
//! Loading is all or nothing: one file with a mistake refuses the whole set,
//! with one line naming the file, so a reload never leaves half the agents
//! changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::layers::{one_line, overlay_file};
use super::routing::{Condition, DEFAULT_AGENT, NAME_RULE, Routing, is_name};
use super::{Config, ConfigError, err};

/// The sections an agent file may hold, and for the sections that are
/// mostly the deployment's, the keys it may change. `None`: every key.
const AGENT_SECTIONS: &[(&str, Option<&[&str]>)] = &[
    ("agent", None),
    ("stt", None),
    ("llm", None),
    ("tts", None),
    ("lines", None),
    ("engine", None),
    ("realtime", None),
    ("moshi", None),
    ("store", Some(&["caller_memory", "caller_memory_summaries"])),
    (
        "twilio",
        Some(&[
            "pre_stream_say",
            "say_voice",
            "say_language",
            "busy_message",
        ]),
    ),
];

/// Longest `description`: it is shown in lists.
const MAX_DESCRIPTION: usize = 500;

/// One agent's configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub name: String,
    pub description: String,
    /// Its file; `None` for the default agent without `default.toml`.
    pub file: Option<PathBuf>,
    pub config: Config,
    /// Everything the agent is made of, as text: its merged settings, its
    /// prompt and knowledge files. Equal fingerprints: nothing changed, so a
    /// reload keeps the agent as it is.
    pub fingerprint: String,
}

/// Every agent and the routing between them, checked together.
#[derive(Debug, Clone)]
pub struct Agents {
    /// By name; `default` always among them.
    pub agents: BTreeMap<String, AgentConfig>,
    pub routing: Routing,
    /// Things worth a warning (an agent nothing routes to), never fatal.
    pub warnings: Vec<String>,
}

impl Agents {
    /// The agents of `base` (its `[routing] agents_dir`, read now) and its
    /// routing. A missing folder is no agent files.
    pub fn load(base: &Config) -> Result<Agents, ConfigError> {
        let routing = Routing::from_section(&base.tunables.routing)?;
        let dir = Path::new(&base.tunables.routing.agents_dir);
        let mut agents = BTreeMap::new();
        for path in agent_files(dir)? {
            let shown = path.display().to_string();
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                return err(format!("{shown}: the file name is not UTF-8"));
            };
            if !is_name(name) {
                return err(format!(
                    "{shown}: an agent's name (its file's name) must be {NAME_RULE}"
                ));
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError(format!("{shown}: cannot read it: {e}")))?;
            let (description, config) = base.with_agent_file(&shown, &text)?;
            let fingerprint = fingerprint(&config);
            agents.insert(
                name.to_string(),
                AgentConfig {
                    name: name.to_string(),
                    description,
                    file: Some(path.clone()),
                    config,
                    fingerprint,
                },
            );
        }
        if !agents.contains_key(DEFAULT_AGENT) {
            agents.insert(
                DEFAULT_AGENT.to_string(),
                AgentConfig {
                    name: DEFAULT_AGENT.to_string(),
                    description: "The agent of config/pronto.toml".to_string(),
                    file: None,
                    fingerprint: fingerprint(base),
                    config: base.clone(),
                },
            );
        }
        let mut warnings = Vec::new();
        for (i, rule) in routing.rules.iter().enumerate() {
            if !agents.contains_key(&rule.agent) {
                return err(format!(
                    "routing.rules[{}]: agent = {:?} has no file {}/{}.toml",
                    i + 1,
                    rule.agent,
                    dir.display(),
                    rule.agent
                ));
            }
        }
        if !agents.contains_key(&routing.default) {
            return err(format!(
                "routing.default = {:?} has no file {}/{}.toml",
                routing.default,
                dir.display(),
                routing.default
            ));
        }
        for (i, a) in routing.rules.iter().enumerate() {
            for b in &routing.rules[..i] {
                if a.condition == b.condition && a.agent != b.agent {
                    warnings.push(format!(
                        "routing.rules[{}]: {} is already routed to {:?} by an earlier rule; this rule never applies",
                        i + 1,
                        a.condition,
                        b.agent
                    ));
                }
            }
        }
        for agent in agents.values() {
            let (name, Some(file)) = (&agent.name, &agent.file) else {
                continue;
            };
            if !routing.named_agents().any(|n| n == name) {
                warnings.push(format!(
                    "agent {name:?} ({}): no routing rule names it and it is not the default, so it is reachable only at /voice/{name} (and by outbound calls that name it); if calls to a number should reach it, add a [[routing.rules]] entry for it in config/pronto.toml",
                    file.display()
                ));
            }
        }
        for (i, rule) in routing.rules.iter().enumerate() {
            if let Condition::Path(path) = &rule.condition
                && *path != rule.agent
                && agents.contains_key(path)
            {
                warnings.push(format!(
                    "routing.rules[{}]: path = {path:?} is also an agent's name: /voice/{path} reaches {:?}, not the agent {path:?}",
                    i + 1,
                    rule.agent
                ));
            }
        }
        Ok(Agents {
            agents,
            routing,
            warnings,
        })
    }
}

/// The `*.toml` files of `dir`, in name order; none without the folder.
fn agent_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return err(format!(
                "routing.agents_dir = {:?}: cannot read the folder: {e}",
                dir.display().to_string()
            ));
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ConfigError(format!("{}: {e}", dir.display())))?;
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Puts an agent file's sections on `table` (the deployment's merged
/// settings), refusing anything an agent may not change; returns its
/// `description`.
pub(super) fn overlay(table: &mut Table, path: &str, text: &str) -> Result<String, ConfigError> {
    let mut file: Table = text.parse().map_err(|e: toml::de::Error| {
        ConfigError(format!("{path}: {}", one_line(&e.to_string())))
    })?;
    let description = match file.remove("description") {
        Some(Value::String(d)) if d.chars().count() <= MAX_DESCRIPTION => d.trim().to_string(),
        Some(Value::String(_)) => {
            return err(format!(
                "{path}: description is longer than {MAX_DESCRIPTION} characters"
            ));
        }
        Some(_) => return err(format!("{path}: description must be a string")),
        None => String::new(),
    };
    for (section, value) in &file {
        let Some((_, keys)) = AGENT_SECTIONS.iter().find(|(s, _)| s == section) else {
            let allowed: Vec<&str> = AGENT_SECTIONS.iter().map(|(s, _)| *s).collect();
            return err(format!(
                "{path}: [{section}] is not the agent's to change (an agent file has description and [{}]); set it in config/pronto.toml",
                allowed.join("], [")
            ));
        };
        if let (Some(keys), Value::Table(values)) = (keys, value)
            && let Some(key) = values.keys().find(|k| !keys.contains(&k.as_str()))
        {
            return err(format!(
                "{path}: {section}.{key} is not the agent's to change (of [{section}] an agent has {}); set it in config/pronto.toml",
                keys.join(", ")
            ));
        }
    }
    overlay_file(table, file, path)?;
    Ok(description)
}

/// What an agent is made of, as text (see [`AgentConfig::fingerprint`]):
/// every setting but the routing between agents, and its files.
fn fingerprint(config: &Config) -> String {
    let mut settings = (*config.sources.merged).clone();
    settings.remove("routing");
    let mut text = toml::to_string(&settings).unwrap_or_default();
    let agent = &config.tunables.agent;
    for file in std::iter::once(&agent.prompt_file).chain(&agent.knowledge_files) {
        text.push_str("\n# ");
        text.push_str(file);
        text.push('\n');
        match std::fs::read_to_string(file) {
            Ok(content) => text.push_str(&content),
            Err(e) => text.push_str(&e.to_string()),
        }
    }
    text
}

/// A folder of agent files for tests, removed on drop.
#[cfg(test)]
pub(crate) struct TestAgentsDir(pub PathBuf);

#[cfg(test)]
impl TestAgentsDir {
    /// A fresh folder holding `files` (name, content).
    pub fn new(files: &[(&str, &str)]) -> TestAgentsDir {
        let dir = std::env::temp_dir().join(format!(
            "pronto-agents-{}",
            hex::encode(rand::random::<[u8; 8]>())
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for (name, text) in files {
            std::fs::write(dir.join(name), text).expect("agent file");
        }
        TestAgentsDir(dir)
    }

    /// The configuration whose `[routing]` reads this folder, with the
    /// rest of `routing` (TOML) and `env`.
    pub fn config(&self, routing: &str, env: &std::collections::HashMap<String, String>) -> Config {
        let toml = format!(
            "[routing]\nagents_dir = {:?}\n{routing}",
            self.0.display().to_string()
        );
        Config::from_sources(Some(("pronto.toml", &toml)), env).expect("base configuration")
    }
}

#[cfg(test)]
impl Drop for TestAgentsDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests;
