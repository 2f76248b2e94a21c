//! `pronto check --online`: the checks that talk to the outside, all at once,
//! each with its own timeout, reported in a fixed order (keys, tunnel,
//! Twilio) whatever order they finish in.
//!
//! The AI keys are tried with the client the agent itself uses
//! ([`crate::providers::http::client`]: same proxy and TLS settings); the
//! tunnel and Twilio with one that does not follow redirects, because a
//! redirect is itself the problem to report.

use std::time::Duration;

use super::finding::Finding;
use super::{keys, probe, tunnel, twilio};
use crate::config::Config;
use crate::config::agent::AiStages;
use crate::config::agents::Agents;
use crate::config::routing::DEFAULT_AGENT;

/// The online checks of `config`, its AI keys those of every agent in
/// `agents` (each distinct key at each server tried once), or of `config`
/// alone when the agents did not load.
pub async fn run(config: &Config, agents: Option<&Agents>, timeout: Duration) -> Vec<Finding> {
    let clients = crate::providers::http::client()
        .and_then(|providers| probe::direct_client(timeout).map(|direct| (providers, direct)));
    let (providers, direct) = match clients {
        Ok(clients) => clients,
        Err(e) => return vec![Finding::error(e)],
    };
    let stages: Vec<(&str, &AiStages)> = match agents {
        Some(agents) => agents
            .agents
            .values()
            .filter_map(|a| Some((a.name.as_str(), a.config.ai.as_ref()?)))
            .collect(),
        None => config.ai.iter().map(|ai| (DEFAULT_AGENT, ai)).collect(),
    };
    let keys = keys::check(&providers, &stages, timeout);
    let tunnel = tunnel::check(&direct, config, timeout);
    let twilio = twilio::check(&direct, &config.deployment, timeout);
    let (keys, tunnel, twilio) = tokio::join!(keys, tunnel, twilio);
    keys.into_iter().chain(tunnel).chain(twilio).collect()
}
