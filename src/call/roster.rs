//! The roster: the agents (personas) this Pronto answers as, each ready to
//! take calls (its own configuration, engine and call settings), and the
//! routing that picks one for each call.
//!
//! A reload reads the agent files and `config/pronto.toml` again and builds
//! a whole new line-up beside the one in use; only if every agent builds is
//! it swapped in, so a file with a mistake leaves the agents as they were.
//! An agent whose files did not change is carried over as it is (its
//! engine, its synthesized lines). A call holds its agent (`Arc<Persona>`)
//! from the moment its stream connects to its end: a reload never changes
//! a call in progress, and the old agent goes away with its last call.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tracing::{info, warn};

use crate::call::machine::Settings;
use crate::config::agents::{AgentConfig, Agents};
use crate::config::routing::{Incoming, Routed, Routing};
use crate::config::{Config, ConfigError, Tunables};
use crate::engine::Engine;
use crate::model::Direction;
use crate::redact::Outside;

/// One agent, ready to take calls.
pub struct Persona {
    pub name: String,
    pub description: String,
    /// Its file; `None` for the default agent of `config/pronto.toml`.
    pub file: Option<PathBuf>,
    /// Its own configuration: the deployment's with its file on top.
    pub config: Config,
    pub engine: Arc<dyn Engine>,
    /// How its calls run (limits, keypad, the greeting).
    pub settings: Arc<Settings>,
    /// Caller memory on: how many summaries of earlier calls it gets.
    pub memory_summaries: Option<u32>,
    fingerprint: String,
}

impl Persona {
    /// The number its calls are transferred to, if it has one.
    pub fn transfer_number(&self) -> Option<&str> {
        Some(self.config.tunables.agent.transfer_number.as_str()).filter(|n| !n.is_empty())
    }
}

impl std::fmt::Debug for Persona {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persona")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Builds an agent's engine from its configuration (`server.rs` knows
/// every kind of engine; the calls know only the seam).
pub type EngineBuilder = Arc<dyn Fn(&Config) -> Result<Arc<dyn Engine>, ConfigError> + Send + Sync>;

/// The agents in use, and the routing between them: one generation.
pub struct Lineup {
    /// The deployment's configuration they were built from.
    pub base: Config,
    pub agents: BTreeMap<String, Arc<Persona>>,
    pub routing: Routing,
    /// Said at load (an agent nothing routes to, a rule that never applies).
    pub warnings: Vec<String>,
    /// The agent of `routing.default`, found once.
    default: Arc<Persona>,
}

impl Lineup {
    /// The agent nothing else routes to.
    pub fn default_agent(&self) -> &Arc<Persona> {
        &self.default
    }
}

pub struct Roster {
    current: RwLock<Arc<Lineup>>,
    build: EngineBuilder,
    /// One reload at a time: two at once would each build from the files.
    reloading: tokio::sync::Mutex<()>,
}

/// What a reload changed, by agent name.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Reloaded {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: Vec<String>,
    pub routing_changed: bool,
    /// Settings of `config/pronto.toml` that changed but apply only at
    /// restart (the server's, the store's, the limits...).
    pub needs_restart: Vec<String>,
}

impl Roster {
    /// The agents of `config`, each with the engine `build` makes of its
    /// configuration.
    pub fn load(config: &Config, build: EngineBuilder) -> Result<Roster, ConfigError> {
        let lineup = lineup(config.clone(), None, &build)?;
        for w in &lineup.warnings {
            warn!("{w}");
        }
        info!(
            agents = ?lineup.agents.keys().collect::<Vec<_>>(),
            default = %lineup.routing.default,
            rules = lineup.routing.rules.len(),
            "agents ready"
        );
        Ok(Roster {
            current: RwLock::new(Arc::new(lineup)),
            build,
            reloading: tokio::sync::Mutex::new(()),
        })
    }

    /// The agents in use now.
    pub fn lineup(&self) -> Arc<Lineup> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The agent named `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<Arc<Persona>> {
        self.lineup().agents.get(name).cloned()
    }

    /// The agent for an incoming call: an outbound call's is the one its
    /// webhook path names (`To` and `From` are then the callee and this
    /// account's number, which the rules are not about); any other call's
    /// is the routing's choice.
    pub fn route(
        &self,
        direction: &Direction,
        to: &str,
        from: &str,
        path: Option<&str>,
    ) -> Arc<Persona> {
        let lineup = self.lineup();
        let known = |name: &str| lineup.agents.contains_key(name);
        let (name, why) = if direction.is_outbound() {
            match path {
                Some(name) if known(name) => (name, Routed::Named),
                _ => (lineup.routing.default.as_str(), Routed::Default),
            }
        } else {
            lineup.routing.route(Incoming { to, from, path }, known)
        };
        if let Routed::UnknownPath(path) = why {
            warn!(
                path = %Outside(path),
                agent = name,
                "a webhook for /voice/<name> with no agent or rule of that name: the default agent answers (check the URL in the Twilio console)"
            );
        }
        Arc::clone(lineup.agents.get(name).unwrap_or(&lineup.default))
    }

    /// Reads `config/pronto.toml` and the agent files again, and if they
    /// are all good, makes them the agents of new calls. A mistake refuses
    /// the whole reload (the error names the file) and nothing changes.
    pub async fn reload(&self) -> Result<Reloaded, ConfigError> {
        let _one = self.reloading.lock().await;
        let old = self.lineup();
        let build = Arc::clone(&self.build);
        let previous = Arc::clone(&old);
        // Building reads files and may load a model: off the call tasks' threads.
        let built = tokio::task::spawn_blocking(move || {
            let base = previous.base.reread()?;
            lineup(base, Some(&previous), &build)
        })
        .await
        .map_err(|e| ConfigError(format!("the reload stopped: {e}")))?;
        let new = match built {
            Ok(new) => new,
            Err(e) => {
                warn!(error = %e, "reload refused: the agents in use stay");
                return Err(e);
            }
        };
        let report = compare(&old, &new);
        for w in &new.warnings {
            warn!("{w}");
        }
        for setting in &report.needs_restart {
            warn!("config/pronto.toml: [{setting}] changed; it applies at the next restart");
        }
        info!(
            added = ?report.added,
            changed = ?report.changed,
            removed = ?report.removed,
            unchanged = report.unchanged.len(),
            routing_changed = report.routing_changed,
            "agents reloaded: new calls get them, calls in progress keep theirs"
        );
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(new);
        Ok(report)
    }
}

/// The agents of `base`, reusing from `previous` each whose fingerprint is
/// the same.
fn lineup(
    base: Config,
    previous: Option<&Lineup>,
    build: &EngineBuilder,
) -> Result<Lineup, ConfigError> {
    let Agents {
        agents,
        routing,
        warnings,
    } = Agents::load(&base)?;
    let mut built = BTreeMap::new();
    for (name, agent) in agents {
        let same = previous
            .and_then(|p| p.agents.get(&name))
            .filter(|p| p.fingerprint == agent.fingerprint && p.description == agent.description);
        let persona = match same {
            Some(persona) => Arc::clone(persona),
            None => Arc::new(persona(agent, build)?),
        };
        built.insert(name, persona);
    }
    // `Agents::load` refuses a routing whose default has no agent; said
    // again here as an error rather than assumed.
    let default = built.get(&routing.default).cloned().ok_or_else(|| {
        ConfigError(format!(
            "routing.default = {:?}: no such agent",
            routing.default
        ))
    })?;
    Ok(Lineup {
        base,
        agents: built,
        routing,
        warnings,
        default,
    })
}

fn persona(agent: AgentConfig, build: &EngineBuilder) -> Result<Persona, ConfigError> {
    let where_ = agent.file.as_ref().map_or_else(
        || "config/pronto.toml".to_string(),
        |f| f.display().to_string(),
    );
    let engine = build(&agent.config).map_err(|e| ConfigError(format!("{where_}: {e}")))?;
    let t = &agent.config.tunables;
    for w in &agent.config.warnings {
        warn!(agent = %agent.name, "{w}");
    }
    Ok(Persona {
        settings: Arc::new(call_settings(t)),
        memory_summaries: t
            .store
            .caller_memory
            .then_some(t.store.caller_memory_summaries),
        engine,
        name: agent.name,
        description: agent.description,
        file: agent.file,
        config: agent.config,
        fingerprint: agent.fingerprint,
    })
}

/// How a call of an agent with tunables `t` runs.
fn call_settings(t: &Tunables) -> Settings {
    Settings {
        max_playback_lead: Duration::from_millis(u64::from(t.call.max_playback_lead_ms)),
        start_timeout: Duration::from_secs(t.twilio.start_timeout_secs),
        greeting_interruptible: t.agent.greeting_interruptible,
        dtmf_timeout: Duration::from_millis(u64::from(t.agent.dtmf_timeout_ms)),
        max_duration: secs(t.limits.max_call_duration_secs),
        idle_prompt: secs(t.limits.idle_prompt_secs),
        idle_hangup: secs(t.limits.idle_hangup_secs),
    }
}

/// A duration of whole seconds where 0 means "never".
fn secs(n: u64) -> Option<Duration> {
    (n > 0).then(|| Duration::from_secs(n))
}

/// What changed from `old` to `new`.
fn compare(old: &Lineup, new: &Lineup) -> Reloaded {
    let mut report = Reloaded::default();
    for (name, persona) in &new.agents {
        match old.agents.get(name) {
            None => report.added.push(name.clone()),
            Some(before) if Arc::ptr_eq(before, persona) => report.unchanged.push(name.clone()),
            Some(_) => report.changed.push(name.clone()),
        }
    }
    report.removed = old
        .agents
        .keys()
        .filter(|name| !new.agents.contains_key(*name))
        .cloned()
        .collect();
    report.routing_changed = old.routing != new.routing;
    let (a, b) = (&old.base.tunables, &new.base.tunables);
    let sections = [
        ("server", a.server != b.server),
        ("store", a.store != b.store),
        ("limits", a.limits != b.limits),
        ("metrics", a.metrics != b.metrics),
        ("dashboard", a.dashboard != b.dashboard),
        (
            "twilio",
            (a.twilio.stream_token_ttl_secs, a.twilio.max_message_bytes)
                != (b.twilio.stream_token_ttl_secs, b.twilio.max_message_bytes),
        ),
    ];
    report.needs_restart = sections
        .iter()
        .filter(|(_, changed)| *changed)
        .map(|(name, _)| name.to_string())
        .collect();
    report
}
