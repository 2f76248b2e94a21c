//! `pronto call`: try a call without a phone. Plays Twilio against a running
//! Pronto server, says the given WAV files, prints what happened and writes
//! what the caller heard.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::SimConfig;
use super::script::{Script, load_wav_8k, run};
use crate::config::routing::{NAME_RULE, is_name};

/// Arguments of `pronto call`.
#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// Where the Pronto server listens (plain http://: the simulator talks
    /// to the server directly, not through the TLS tunnel Twilio uses).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// What the caller says: a WAV file (any rate, mono), one per turn;
    /// repeat for several turns. Without one, the caller only listens.
    #[arg(long = "wav", value_name = "FILE")]
    pub wavs: Vec<PathBuf>,
    /// The server's PUBLIC_BASE_URL, which Twilio signs (defaults to --server).
    #[arg(long = "public-url", env = "PUBLIC_BASE_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Twilio auth token to sign requests with; unsigned without one.
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// AccountSid to send (random by default).
    #[arg(long, env = "TWILIO_ACCOUNT_SID")]
    pub account_sid: Option<String>,
    /// Send the caller's speech as fast as possible instead of in real time.
    #[arg(long)]
    pub fast: bool,
    /// Key presses as MS:DIGIT since the stream started, e.g. 1500:5,3000:#.
    #[arg(long, value_delimiter = ',', value_parser = parse_dtmf, value_name = "MS:DIGIT")]
    pub dtmf: Vec<(u64, char)>,
    /// Write what the caller heard to this WAV file (8 kHz mono).
    #[arg(long, default_value = "call.heard.wav", value_name = "FILE")]
    pub out: PathBuf,
    /// The caller's number.
    #[arg(long, default_value = "+15551230001")]
    pub from: String,
    /// The number called (with a `to` routing rule, it picks the agent).
    #[arg(long, default_value = "+15551230002")]
    pub to: String,
    /// Call the agent of this name: the webhook goes to /voice/NAME, the
    /// URL a number reaching that agent has in the Twilio console.
    #[arg(long, value_name = "NAME", value_parser = parse_agent)]
    pub agent: Option<String>,
    /// The server's API token: with it, the call's record says which agent
    /// answered (without it, that is not shown).
    #[arg(long = "api-token", env = "API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// After the last utterance, hang up once the server has been quiet this long.
    #[arg(long, default_value_t = 4000, value_name = "MS")]
    pub tail_ms: u64,
    /// Hang up after this many seconds whatever happens.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub max_secs: u64,
}

/// An agent's name, as its file and its URL have it.
fn parse_agent(s: &str) -> Result<String, String> {
    if is_name(s) {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} is not an agent's name ({NAME_RULE})"))
    }
}

/// `MS:DIGIT` → (ms, digit). Digits are those of a phone keypad.
fn parse_dtmf(s: &str) -> Result<(u64, char), String> {
    let (ms, digit) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: expected MS:DIGIT, e.g. 1500:5"))?;
    let ms: u64 = ms
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: {ms:?} is not a number of milliseconds"))?;
    let mut chars = digit.trim().chars();
    match (chars.next(), chars.next()) {
        (Some(d), None) if d.is_ascii_digit() || "*#ABCD".contains(d) => Ok((ms, d)),
        _ => Err(format!("{s:?}: the digit must be one of 0-9 * # A-D")),
    }
}

impl CallArgs {
    fn config(&self) -> SimConfig {
        let mut cfg = SimConfig::new(self.server.clone());
        cfg.public_base_url = self.public_url.clone();
        cfg.auth_token = self.auth_token.clone().filter(|t| !t.is_empty());
        cfg.account_sid = self.account_sid.clone().filter(|s| !s.is_empty());
        cfg.from = self.from.clone();
        cfg.to = self.to.clone();
        if let Some(agent) = &self.agent {
            cfg.voice_path = format!("/voice/{agent}");
        }
        cfg.fast = self.fast;
        cfg
    }

    fn script(&self) -> anyhow::Result<Script> {
        let utterances = self
            .wavs
            .iter()
            .map(|path| load_wav_8k(path).with_context(|| format!("reading {}", path.display())))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Script {
            utterances,
            dtmf: self
                .dtmf
                .iter()
                .map(|&(ms, d)| (Duration::from_millis(ms), d))
                .collect(),
            tail: Duration::from_millis(self.tail_ms),
            max_call: Duration::from_secs(self.max_secs),
            ..Script::default()
        })
    }
}

/// Runs `pronto call`: places the call, prints the report, writes the heard
/// audio.
pub async fn run_cli(args: CallArgs) -> anyhow::Result<()> {
    let cfg = args.config();
    let script = args.script()?;
    // Today's line for `/voice`; the whole URL when it names an agent.
    let path = if args.agent.is_some() {
        cfg.voice_path.as_str()
    } else {
        ""
    };
    println!(
        "calling {}{path} (signed for {}{path}){}",
        cfg.server_base(),
        cfg.public_base(),
        if cfg.auth_token.is_some() {
            ""
        } else {
            ", unsigned"
        }
    );
    let report = run(&cfg, &script)
        .await
        .with_context(|| format!("call to {} failed", cfg.server_base()))?;
    print!("{report}");
    if let Some(token) = args.api_token.as_deref().filter(|t| !t.is_empty()) {
        println!("{}", answered_by(&cfg, token, &report.call_sid).await);
    }
    report
        .write_heard_wav(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!("heard audio written to {}", args.out.display());
    Ok(())
}

/// How long the call's record may take to appear: the history is written
/// in the background, and a call refused at once may be a moment behind.
const RECORD_WAIT: Duration = Duration::from_secs(3);

/// Which agent answered, from the call's record (`GET /api/calls/{sid}`,
/// the operator's API, hence the token): one line either way, since the
/// call itself went through whatever this says.
async fn answered_by(cfg: &SimConfig, api_token: &str, call_sid: &str) -> String {
    let path = format!("/api/calls/{call_sid}");
    let url = format!("{}{path}", cfg.server_base());
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    {
        Ok(client) => client,
        Err(e) => return format!("which agent answered is not known: {e}"),
    };
    let deadline = tokio::time::Instant::now() + RECORD_WAIT;
    loop {
        let answer = client.get(&url).bearer_auth(api_token).send().await;
        let status = match answer {
            Ok(response) if response.status().is_success() => {
                let record: Result<serde_json::Value, _> = response.json().await;
                return match record.as_ref().ok().and_then(|r| r["agent"].as_str()) {
                    Some(agent) => format!("answered by agent {agent:?} (its record, GET {path})"),
                    None => format!("which agent answered is not known: GET {path} has no agent"),
                };
            }
            Ok(response) => response.status(),
            Err(e) => {
                return format!(
                    "which agent answered is not known: GET {path} failed: {}",
                    e.without_url()
                );
            }
        };
        if status != reqwest::StatusCode::NOT_FOUND || tokio::time::Instant::now() >= deadline {
            let hint = if matches!(status.as_u16(), 401 | 403) {
                " (is API_TOKEN the server's?)"
            } else {
                ""
            };
            return format!(
                "which agent answered is not known: GET {path} answered {}{hint}",
                status.as_u16()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        call: CallArgs,
    }

    #[test]
    fn dtmf_list_parses() {
        assert_eq!(parse_dtmf("1500:5"), Ok((1500, '5')));
        assert_eq!(parse_dtmf("3000:#"), Ok((3000, '#')));
        assert!(parse_dtmf("3000").is_err());
        assert!(parse_dtmf("x:5").is_err());
        assert!(parse_dtmf("10:55").is_err());
        assert!(parse_dtmf("10:e").is_err());
    }

    #[test]
    fn arguments_make_the_config() {
        let cli = Cli::try_parse_from([
            "pronto",
            "--server",
            "http://127.0.0.1:9999",
            "--public-url",
            "https://voice.example.com",
            "--auth-token",
            "tok",
            "--dtmf",
            "1500:5,3000:#",
            "--fast",
        ])
        .unwrap();
        let cfg = cli.call.config();
        assert_eq!(cfg.server, "http://127.0.0.1:9999");
        assert_eq!(cfg.public_base(), "https://voice.example.com");
        assert_eq!(cfg.auth_token.as_deref(), Some("tok"));
        assert!(cfg.fast);
        assert_eq!(cli.call.dtmf, [(1500, '5'), (3000, '#')]);
        let script = cli.call.script().unwrap();
        assert_eq!(script.dtmf[1], (Duration::from_millis(3000), '#'));
        assert_eq!(script.tail, Duration::from_secs(4));
    }

    #[test]
    fn an_agent_is_called_at_its_own_url() {
        let cli = Cli::try_parse_from(["pronto", "--agent", "pronto-it"]).unwrap();
        assert_eq!(cli.call.config().voice_path, "/voice/pronto-it");
        let cli = Cli::try_parse_from(["pronto"]).unwrap();
        assert_eq!(cli.call.config().voice_path, "/voice");
        // Nothing that would change the URL's meaning gets into the path.
        for bad in ["../api", "Reception", "status", "a/b", ""] {
            assert!(
                Cli::try_parse_from(["pronto", "--agent", bad]).is_err(),
                "{bad}"
            );
        }
    }
}
