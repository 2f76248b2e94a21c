//! The checks of several agents (`[routing] agents_dir`): what each agent
//! file adds to the problems of `config/pronto.toml`, and the routing
//! between them. An agent gets the same checks as the agent of
//! `config/pronto.toml` ([`offline::agent`]); what they find that the
//! deployment's own configuration already has is said once, not once per
//! agent. A setup without agent files gets nothing from here.

use std::collections::HashMap;

use super::finding::Finding;
use super::offline;
use crate::config::Config;
use crate::config::agents::{AgentConfig, Agents};
use crate::config::routing::Condition;

/// Everything worth saying about the agents of `base`.
pub fn findings(agents: &Agents, base: &Config, env: &HashMap<String, String>) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut known = Vec::new();
    offline::agent(base, &mut known);
    known.extend(offline::unexplained(base).map(Finding::note));
    let base_vars = offline::key_vars(base);
    for agent in agents.agents.values() {
        if let Some(file) = &agent.file {
            own(
                agent,
                &file.display().to_string(),
                &known,
                &base_vars,
                env,
                &mut out,
            );
        }
    }
    routing(agents, &mut out);
    out
}

/// What one agent's file brings: its keys, its prompt and knowledge files,
/// its own warnings, each line starting with the file's name.
fn own(
    agent: &AgentConfig,
    file: &str,
    known: &[Finding],
    base_vars: &[String],
    env: &HashMap<String, String>,
    out: &mut Vec<Finding>,
) {
    let config = &agent.config;
    let mut found = Vec::new();
    offline::agent(config, &mut found);
    found.extend(offline::unexplained(config).map(Finding::note));
    for var in offline::key_vars(config) {
        if !base_vars.contains(&var) {
            found.extend(offline::quoted(&var, env));
        }
    }
    // In echo mode nothing reads the prompt yet; the file still names it,
    // and the agent would not start without it once its keys are set.
    if config.ai.is_none()
        && config.speech_to_speech.is_none()
        && let Err(e) = crate::agent::prompt::Prompt::load(&config.tunables.agent)
    {
        found.push(Finding::note(format!(
            "{e}: fine in echo mode, but the agent would not start once its keys are set"
        )));
    }
    out.extend(
        found
            .into_iter()
            .filter(|f| !known.contains(f))
            .map(|f| Finding {
                level: f.level,
                text: format!("{file}: {}", f.text),
            }),
    );
}

/// Two agents claiming one number (an error: the second never gets its
/// calls), and what else the loader warned of (agents nothing routes to).
fn routing(agents: &Agents, out: &mut Vec<Finding>) {
    let rules = &agents.routing.rules;
    // The rules this says better than the loader's warning does.
    let mut explained = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let Condition::To(number) = &rule.condition else {
            continue;
        };
        let first = rules[..i]
            .iter()
            .position(|r| r.condition == rule.condition && r.agent != rule.agent);
        if let Some(j) = first {
            out.push(Finding::error(format!(
                "routing.rules[{}]: to = {number:?} is already routed to {:?} by routing.rules[{}], so calls to {number} never reach {:?}: give each agent its own number, or remove one of the rules",
                i + 1,
                rules[j].agent,
                j + 1,
                rule.agent
            )));
            explained.push(format!("routing.rules[{}]: ", i + 1));
        }
    }
    for warning in &agents.warnings {
        if !explained.iter().any(|prefix| warning.starts_with(prefix)) {
            out.push(Finding::note(warning.clone()));
        }
    }
}

#[cfg(test)]
mod tests;
