//! `pronto check`: what a newcomer runs before the first call, to learn what
//! is wrong and how to fix it; and `pronto health` ([`health`]), the Docker
//! health check.
//!
//! `check` loads the configuration exactly as `pronto serve` does (config
//! file, `.env`, environment), then prints one line per problem with its fix
//! ([`offline`]), what to paste into the Twilio console and what answers calls
//! ([`report`]). Everything goes to stdout; the exit status says how bad it
//! is ([`finding::Level`]).
//!
//! Neither command starts logging, opens the database or prints a secret.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;
use finding::Finding;

pub mod finding;
pub mod health;
pub mod offline;
pub mod probe;
pub mod report;
pub mod url;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit status:\n  0  nothing to fix (notes are only worth knowing)\n  1  something would make calls fail\n  2  the configuration does not load (`pronto serve` would not start either, and exits 2 too)\n\nErrors: PUBLIC_BASE_URL unset, a placeholder, not https, with a port, or ending in /voice; TWILIO_AUTH_TOKEN unset; TWILIO_SKIP_SIGNATURE=true; a TWILIO_ACCOUNT_SID that is not one; some AI keys set but not all; a credential wrapped in quotes.\n\nNotes: API_TOKEN or TWILIO_ACCOUNT_SID unset, a PUBLIC_BASE_URL on this machine (fine for `pronto call`), a quick tunnel, ignored PRONTO_* variables."
)]
pub struct CheckArgs {}

/// The process environment as `serve` reads it (`.env` already applied by
/// `main`). A variable that is not UTF-8 is left out rather than panicking.
pub fn process_env() -> HashMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Runs `pronto check`; `dotenv` is what `main` got reading `.env`.
pub fn run_cli(_args: &CheckArgs, dotenv: &Result<PathBuf, dotenvy::Error>) -> ExitCode {
    let env = process_env();
    println!(
        "{}",
        report::sources(env.get("PRONTO_CONFIG").map(String::as_str), dotenv)
    );
    println!();
    let findings = match load(&env, dotenv) {
        Ok(config) => check(&config, &env),
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
fn check(config: &Config, env: &HashMap<String, String>) -> Vec<Finding> {
    let findings = offline::findings(config, env);
    if findings.is_empty() {
        println!("No problems in the configuration.");
    }
    for finding in &findings {
        println!("{finding}");
    }
    println!();
    for line in report::console(config)
        .into_iter()
        .chain([String::new()])
        .chain(report::mode(config))
    {
        println!("{line}");
    }
    println!();
    findings
}
