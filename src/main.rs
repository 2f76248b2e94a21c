//! The `pronto` binary: `pronto` (or `pronto serve`) runs the server; `pronto
//! call` plays Twilio's part of a call against a running server; `pronto
//! check` and `pronto health` say what is wrong (`pronto::check`).

use std::collections::HashMap;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pronto::config::Config;
use pronto::server;
use tracing::{error, info, warn};

#[derive(Parser)]
#[command(
    name = "pronto",
    version,
    about = "A self-hosted phone agent for Twilio"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Try a call without a phone: play Twilio against a running Pronto.
    Call(Box<pronto::sim::cli::CallArgs>),
    /// Measure: N concurrent simulated calls against a Pronto server in its
    /// own process, with fake providers of fixed latency.
    Bench(Box<pronto::bench::BenchArgs>),
    /// Check the configuration and say how to fix what would make calls
    /// fail; --online also tries the keys, the tunnel and Twilio.
    Check(pronto::check::CheckArgs),
    /// Ask the Pronto on this machine whether it is up (a Docker HEALTHCHECK).
    Health(pronto::check::health::HealthArgs),
    SelfTest(pronto::selftest::SelfTestArgs),
}

/// Exit code for a configuration error.
const BAD_CONFIG: u8 = 2;

fn main() -> ExitCode {
    // Read .env before any thread starts: it sets variables that are not set
    // already, so the real environment wins.
    let dotenv = dotenvy::dotenv();
    let cli = Cli::parse();
    // No tracing for these two: their output is the report.
    match &cli.command {
        Some(Command::Check(args)) => return pronto::check::run_cli(args, &dotenv),
        Some(Command::Health(args)) => return pronto::check::health::run_cli(args, &dotenv),
        _ => {}
    }
    // The self-test prints its own lines; the server's log only on request.
    if !matches!(&cli.command, Some(Command::SelfTest(a)) if !a.verbose) {
        init_tracing();
    }
    if let Err(e) = &dotenv
        && !e.not_found()
    {
        eprintln!("pronto: configuration error: cannot read .env: {e}");
        return ExitCode::from(BAD_CONFIG);
    }
    if let Some(Command::Bench(args)) = &cli.command
        && let Err(e) = pronto::bench::pin_client(args)
    {
        eprintln!("pronto bench: {e:#}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => runtime.block_on(serve()),
        Command::Bench(args) => match runtime.block_on(pronto::bench::run_cli(*args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                error!("bench failed: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::SelfTest(args) => runtime.block_on(pronto::selftest::run(args)),
        Command::Call(args) => match runtime.block_on(pronto::sim::cli::run_cli(*args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                error!("call failed: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Check(_) | Command::Health(_) => unreachable!("handled before tracing"),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

async fn serve() -> ExitCode {
    let env: HashMap<String, String> = std::env::vars().collect();
    let config = match Config::load(&env) {
        Ok(c) => c,
        Err(e) => {
            // One plain line on stderr, whatever the log settings.
            eprintln!("pronto: configuration error: {e}");
            return ExitCode::from(BAD_CONFIG);
        }
    };
    for w in &config.warnings {
        warn!("{w}");
    }
    if config.deployment.skip_signature {
        warn!(
            "!!! TWILIO_SKIP_SIGNATURE=true: Twilio signatures are NOT checked. Anyone who finds this server can place calls into it. Development only. !!!"
        );
    }
    let addr = config.listen_addr();
    let public = config.deployment.public_base_url.clone();
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("pronto: cannot listen on {addr}: {e} (set PORT or BIND)");
            return ExitCode::from(BAD_CONFIG);
        }
    };
    let mut server = match server::start(config, listener, None).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("pronto: configuration error: {e}");
            return ExitCode::from(BAD_CONFIG);
        }
    };
    let lineup = server.state().switchboard.roster().lineup();
    let mode = lineup.default_agent().engine.mode();
    let agents: Vec<&String> = lineup.agents.keys().collect();
    info!(%addr, mode, ?agents, voice_url = %format!("{public}/voice"), "Pronto is listening");
    drop(lineup);
    server::shutdown_signal().await;
    server.shutdown();
    match server.stopped().await {
        Ok(()) => {
            info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!("server failed: {e}");
            ExitCode::FAILURE
        }
    }
}
