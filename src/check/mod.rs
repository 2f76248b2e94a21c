//! `pronto check`: what a newcomer runs before the first call, to learn what
//! is wrong and how to fix it; and `pronto health` ([`health`]), the Docker
//! health check.
//!
//! `check` loads the configuration exactly as `pronto serve` does (config
//! file, `.env`, environment, the agent files of `[routing] agents_dir`),
//! then prints one line per problem with its fix ([`offline`], and for
//! several agents [`agents`]), what to paste into the Twilio console (per
//! agent) and what answers calls ([`report`]). With `--online` it also tries
//! each AI key (once, however many agents use it), the tunnel and the Twilio
//! credentials ([`online`]). Everything goes to stdout; the exit status says
//! how bad it is ([`finding::Level`]).
//!
//! Neither command starts logging, opens the database or prints a secret.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::Config;
use crate::config::agents::Agents;
use finding::Finding;

pub mod agents;
pub mod finding;
pub mod health;
mod keys;
pub mod offline;
pub mod online;
mod probe;
pub mod report;
mod tunnel;
mod twilio;
pub mod url;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit status:\n  0  nothing to fix (notes are only worth knowing)\n  1  something would make calls fail\n  2  the configuration does not load (`pronto serve` would not start either, and exits 2 too)\n\nErrors: PUBLIC_BASE_URL unset, a placeholder, not https, with a port, or ending in /voice; TWILIO_AUTH_TOKEN unset; TWILIO_SKIP_SIGNATURE=true; a TWILIO_ACCOUNT_SID that is not one; some AI keys set but not all; a credential wrapped in quotes; an agent missing keys, its prompt or knowledge files; two routing rules giving one number to two agents (an agent file with a mistake, a rule to an agent with no file: exit 2). With --online: a refused or out-of-credit key, an unreachable provider, tunnel or Twilio, a tunnel that does not reach Pronto or its /stream WebSocket, a running Pronto with another PUBLIC_BASE_URL, Twilio credentials that are not the account's.\n\nNotes: API_TOKEN or TWILIO_ACCOUNT_SID unset, a PUBLIC_BASE_URL on this machine (fine for `pronto call`), a quick tunnel, ignored PRONTO_* variables, an agent no routing rule names (reachable only at /voice/<name>); with --online, rate limits and outages at a provider, a running Pronto in another mode."
)]
pub struct CheckArgs {
    /// Also try each AI key, PUBLIC_BASE_URL (its /health and the /stream
    /// WebSocket) and the Twilio credentials: a few small, free requests.
    #[arg(long)]
    pub online: bool,
    /// Seconds each online request may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=120))]
    pub timeout: u64,
}

/// The process environment as `serve` reads it (`.env` already applied by
/// `main`). A variable that is not UTF-8 is left out rather than panicking.
pub fn process_env() -> HashMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Runs `pronto check`; `dotenv` is what `main` got reading `.env`.
pub fn run_cli(args: &CheckArgs, dotenv: &Result<PathBuf, dotenvy::Error>) -> ExitCode {
    let env = process_env();
    println!(
        "{}",
        report::sources(env.get("PRONTO_CONFIG").map(String::as_str), dotenv)
    );
    println!();
    let findings = match load(&env, dotenv) {
        Ok(config) => check(args, &config, &env),
        Err(fatal) => {
            println!("{fatal}");
            vec![fatal]
        }
    };
    println!();
    println!("{}", finding::summary(&findings));
    ExitCode::from(finding::exit_status(&findings))
}

/// The configuration, or the one line that stops `serve` too.
fn load(
    env: &HashMap<String, String>,
    dotenv: &Result<PathBuf, dotenvy::Error>,
) -> Result<Config, Finding> {
    if let Err(e) = dotenv
        && !e.not_found()
    {
        return Err(Finding::fatal(format!(
            "cannot read .env: {e}: each line must be NAME=value (or a # comment)"
        )));
    }
    Config::load(env).map_err(|e| {
        Finding::fatal(format!(
            "{e}: fix this setting; `pronto serve` would not start with it"
        ))
    })
}

/// Prints the report of a configuration that loads; returns every finding.
fn check(args: &CheckArgs, config: &Config, env: &HashMap<String, String>) -> Vec<Finding> {
    let mut findings = offline::findings(config, env);
    // The agent files are read as `serve` reads them at start (and a reload
    // later): one mistake refuses them all, in one line naming the file.
    let agents = Agents::load(config);
    match &agents {
        Ok(agents) => findings.extend(agents::findings(agents, config, env)),
        Err(e) => findings.push(Finding::fatal(format!(
            "{e}: fix it; `pronto serve` would not start with it (and a reload would refuse it)"
        ))),
    }
    let agents = agents.ok();
    // Errors first: they are what to fix before calling.
    findings.sort_by_key(|f| std::cmp::Reverse(f.level));
    if findings.is_empty() {
        println!("No problems in the configuration.");
    }
    for finding in &findings {
        println!("{finding}");
    }
    println!();
    let per_agent = agents
        .as_ref()
        .map(|a| report::agents(config, a))
        .unwrap_or_default();
    let per_agent = if per_agent.is_empty() {
        per_agent
    } else {
        std::iter::once(String::new()).chain(per_agent).collect()
    };
    for line in report::console(config)
        .into_iter()
        .chain(per_agent)
        .chain([String::new()])
        .chain(report::mode(config))
    {
        println!("{line}");
    }
    println!();
    if !args.online {
        println!(
            "Run `pronto check --online` to also try the keys, the tunnel and the Twilio credentials."
        );
        return findings;
    }
    println!("Online checks:");
    let timeout = Duration::from_secs(args.timeout);
    let online = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(|runtime| runtime.block_on(online::run(config, agents.as_ref(), timeout)))
        .unwrap_or_else(|e| {
            vec![Finding::error(format!(
                "cannot start the async runtime: {e}"
            ))]
        });
    for finding in &online {
        println!("{finding}");
    }
    findings.extend(online);
    findings
}
