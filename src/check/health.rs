//! `pronto health`: is the Pronto on this machine up? For a Docker
//! `HEALTHCHECK` in an image without curl.
//!
//! It reads the configuration exactly as `pronto serve` does (so `PORT`,
//! `BIND` and `[server] port` agree), asks `/health` on the loopback address
//! of that port (or on the bound address, when `BIND` names one), and exits 0
//! if Pronto says `"status": "ok"`, else 1 with one line on stderr saying what
//! failed. Never 2: Docker reserves that exit code. It opens no database,
//! starts no logging and reaches nothing beyond this machine; a success prints
//! one short line, which `docker inspect` keeps with the health log.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

use super::probe::{self, Failure};
use crate::config::Config;

/// Docker's default interval is 30 s; an answer takes milliseconds.
const TIMEOUT: Duration = Duration::from_secs(3);

/// No options: everything comes from the configuration `serve` reads.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Asks http://127.0.0.1:<port>/health, where <port> is what `pronto serve` listens on (PORT, [server] port; BIND when it names an address), with a 3 s timeout.\n\nExit status: 0 when Pronto answers {\"status\":\"ok\"}; 1 otherwise (not running, not answering, draining, a bad configuration), with one line on stderr saying what failed. Never 2, which Docker reserves.\n\nDockerfile: HEALTHCHECK CMD [\"pronto\", \"health\"]"
)]
pub struct HealthArgs {}

/// Runs `pronto health`; `dotenv` is what `main` got reading `.env`.
pub fn run_cli(_args: &HealthArgs, dotenv: &Result<PathBuf, dotenvy::Error>) -> ExitCode {
    match check(dotenv) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(line) => {
            eprintln!("pronto health: {line}");
            ExitCode::FAILURE
        }
    }
}

fn check(dotenv: &Result<PathBuf, dotenvy::Error>) -> Result<String, String> {
    if let Err(e) = dotenv
        && !e.not_found()
    {
        return Err(format!("cannot read .env: {e}"));
    }
    let env: HashMap<String, String> = super::process_env();
    let config = Config::load(&env).map_err(|e| format!("configuration error: {e}"))?;
    let addr = target(config.listen_addr());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(ask(addr))
}

/// Where to ask: the listening address, or loopback when Pronto listens on
/// every address.
pub fn target(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

async fn ask(addr: SocketAddr) -> Result<String, String> {
    let url = format!("http://{addr}/health");
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {}", probe::innermost(&e)))?;
    let answer = match probe::fetch(client.get(&url), TIMEOUT).await {
        Ok(answer) => answer,
        Err(Failure::Timeout(_)) => {
            return Err(format!(
                "{url} did not answer within {} s",
                TIMEOUT.as_secs()
            ));
        }
        Err(Failure::Unreachable(cause)) => {
            return Err(format!(
                "nothing answers at {url} ({cause}): is `pronto serve` running, on port {}?",
                addr.port()
            ));
        }
    };
    let health = answer.json().filter(|v| v.get("status").is_some());
    match (answer.status, health) {
        (200, Some(health)) => {
            let text = |key: &str| health.get(key).and_then(Value::as_str).unwrap_or("?");
            if text("status") != "ok" {
                return Err(format!("{url} says status {:?}", text("status")));
            }
            let calls = health
                .get("active_calls")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            Ok(format!(
                "ok: Pronto {} at {addr}, {} mode, calls in progress: {calls}",
                text("version"),
                text("mode")
            ))
        }
        (200, None) => Err(format!(
            "{url} answered 200 ({}) but not Pronto's health JSON: is another program on port {}?",
            answer.content_type(),
            addr.port()
        )),
        (status, _) => Err(format!("{url} answered {status}, not 200")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_loopback_unless_bound_to_one_address() {
        let at = |s: &str| target(s.parse().expect("address")).to_string();
        assert_eq!(at("0.0.0.0:8080"), "127.0.0.1:8080");
        assert_eq!(at("[::]:9000"), "[::1]:9000");
        assert_eq!(at("127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(at("192.168.1.5:8080"), "192.168.1.5:8080");
    }
}
