//! `pronto self-test`: does this binary work on this machine?
//!
//! A build can compile for a Raspberry Pi and still fail there: a C library
//! (SQLite, the voice detector, the TLS library) miscompiled for the target,
//! a codec off by one bit, a runtime that cannot bind or keep real time. So
//! the self-test runs what a phone call runs, in one process and offline: the
//! real server (the router and state `pronto serve` builds, in echo mode) on
//! a loopback port with signature checks on, and Pronto's Twilio simulator
//! placing one call with real speech at real-time pace; then a second server
//! in agent mode, its AI providers the fake OpenAI-compatible server of
//! [`crate::fakes::openai`], answering one turn ([`agent`]). Each step prints
//! one line with a figure; the exit code is 0 only when every check passed.
//! CI runs it under qemu on the arm64 build, where it is the only proof that
//! binary works.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use crate::sim::{self, Call, CallStatus, Event, SimConfig, StreamOptions};
use crate::twilio::signature::websocket_url;
use checklist::Checklist;
use checks::{Check, ms};
use server::{LocalServer, PUBLIC_URL, Scratch, Secrets};

mod agent;
mod checklist;
mod checks;
mod server;

/// The checks, in the order they run and are printed.
pub use checklist::CHECKS;

/// What the caller says: the repository's `hello.wav` (3 s, 1.8 s of it
/// speech), built in so that the self-test needs no file beside the binary.
const HELLO_WAV: &[u8] = include_bytes!("../../tests/fixtures/hello.wav");

const LONG_ABOUT: &str = "\
Check that this pronto binary works on this machine, without a phone, \
Twilio, AI keys or network.

It starts the real Pronto server inside this process on 127.0.0.1 (echo \
mode, Twilio signature checks on, random secrets) and plays one phone call \
against it the way Twilio would: a signed /voice webhook, a signed Media \
Stream WebSocket, a 3-second recording of real speech sent as 20 ms mu-law \
frames in real time. It prints one line per check (ok or FAIL, with a \
figure): the server starts, /health answers, an unsigned webhook is \
refused, the signed one answers with a stream, the stream starts, the \
caller hears their words back (with the voice-to-voice latency) bit for \
bit, playback marks come back, the call lands in the call history as \
completed, its recording is written, and the server shuts down cleanly. \
Then a second server, in agent mode, answers one turn of a call: its \
speech-to-text, language model and text-to-speech are a fake \
OpenAI-compatible server inside this process on 127.0.0.1, and the caller \
must hear the answer and the call history hold the turn.

Your .env, environment and config/pronto.toml are not used (except \
RUST_LOG with --verbose): AI keys are ignored (no API call is made), and \
your call history is neither read nor written. The databases and recordings go to temporary directories under \
$TMPDIR (or /tmp), removed at the end.

Exit status: 0 when every check passed, 1 otherwise. Takes about 10 s.";

/// Arguments of `pronto self-test`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    about = "Check that this binary works here: one simulated call through the real server, offline",
    long_about = LONG_ABOUT
)]
pub struct SelfTestArgs {
    /// Also print the server's log (RUST_LOG, default info) and the call's
    /// timeline.
    #[arg(long, short)]
    pub verbose: bool,
    /// Give up after this many seconds. The call itself takes about 5 s;
    /// allow more on a slow machine or under an emulator.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub timeout: u64,
}

/// How long one step may wait for something that should be quick (an
/// answer, a row to land); generous because an emulator is 5–20x slower.
const STEP_WAIT: Duration = Duration::from_secs(20);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(50);

/// Runs the self-test, printing each check as it completes.
pub async fn run(args: SelfTestArgs) -> ExitCode {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.timeout.max(1));
    println!(
        "pronto {} self-test ({}-{}): one simulated call through the real server on 127.0.0.1",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS,
    );
    let mut list = Checklist::default();
    let scratch = match Scratch::create() {
        Ok(s) => s,
        Err(e) => {
            list.add(Check::fail(
                "server",
                format!(
                    "cannot create a temporary directory in {}: {e} (set TMPDIR to a writable directory)",
                    std::env::temp_dir().display()
                ),
            ));
            return list.finish("no temporary directory", started);
        }
    };
    let secrets = Secrets::random();
    let t = Instant::now();
    let server = match server::environment(scratch.path(), &secrets) {
        Ok(env) => LocalServer::start(&env).await,
        Err(e) => Err(e),
    };
    let server = match server {
        Ok(s) => s,
        Err(e) => {
            list.add(Check::fail("server", format!("did not start: {e}")));
            return list.finish("the server did not start", started);
        }
    };
    list.add(Check::pass(
        "server",
        format!(
            "started in {} ms on {} (SQLite and recordings in a temporary directory)",
            ms(t.elapsed()),
            server.url.trim_start_matches("http://")
        ),
    ));
    let call = Caller {
        server: &server,
        secrets: &secrets,
        verbose: args.verbose,
    };
    let outcome = tokio::time::timeout_at(deadline, call.play(&mut list)).await;
    let not_run = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(why)) => Some(why),
        Err(_) => Some(too_slow(args.timeout)),
    };
    if let Some(why) = &not_run {
        list.skip_to("shutdown", why);
    }
    let t = Instant::now();
    let dir = scratch.path().display().to_string();
    let stopped = server.stop(STEP_WAIT).await;
    list.add(match (stopped, scratch.remove()) {
        (Ok(()), Ok(())) => Check::pass(
            "shutdown",
            format!(
                "drained and stopped in {} ms; temporary files removed",
                ms(t.elapsed())
            ),
        ),
        (Err(e), _) => Check::fail("shutdown", e),
        (Ok(()), Err(e)) => Check::fail("shutdown", format!("cannot remove {dir}: {e}")),
    });
    let agent = tokio::time::timeout_at(deadline, agent::check(&secrets, args.verbose)).await;
    list.add(agent.unwrap_or_else(|_| Check::fail("agent", too_slow(args.timeout))));
    list.finish("", started)
}

/// Why a check did not finish within `--timeout`, and what to try.
fn too_slow(timeout: u64) -> String {
    format!(
        "no result within {timeout} s (a slow machine or an emulator? try --timeout {})",
        timeout.saturating_mul(3).max(60)
    )
}

/// Plays Twilio's part against the server.
struct Caller<'a> {
    server: &'a LocalServer,
    secrets: &'a Secrets,
    verbose: bool,
}

impl Caller<'_> {
    /// Runs the checks from `health` to `recording`. `Err` says why the rest
    /// cannot run.
    async fn play(&self, list: &mut Checklist) -> Result<(), String> {
        let url = &self.server.url;
        let http = reqwest::Client::builder()
            .timeout(STEP_WAIT)
            .build()
            .map_err(|e| format!("no HTTP client: {e}"))?;
        let t = Instant::now();
        list.add(match get(&http, &format!("{url}/health"), None).await {
            Ok((status, body)) => checks::health(status, &json(&body), t.elapsed()),
            Err(e) => Check::fail("health", format!("GET /health failed: {e}")),
        });

        let mut sim = SimConfig::new(url.as_str());
        sim.public_base_url = Some(PUBLIC_URL.to_string());
        let unsigned = sim::post_voice(&sim).await;
        list.add(match unsigned {
            Ok(answer) => checks::unsigned_refused(answer.status),
            Err(e) => Check::fail("signature", e.to_string()),
        });

        sim.auth_token = Some(self.secrets.auth_token.clone());
        let answer = match sim::post_voice(&sim).await {
            Ok(answer) => answer,
            Err(e) => {
                list.add(Check::fail("webhook", e.to_string()));
                return Err("the webhook failed".into());
            }
        };
        let webhook = checks::webhook(&answer, &websocket_url(PUBLIC_URL));
        let stream_url = answer.stream_url().filter(|_| webhook.passed);
        let stream_url = stream_url.map(str::to_string);
        list.add(webhook);
        let stream_url = stream_url.ok_or("the webhook gave no stream to open")?;

        let t = Instant::now();
        let options = StreamOptions::for_answer(&answer);
        let call = match Call::connect_stream(&sim, &stream_url, options).await {
            Ok(call) => call,
            Err(e) => {
                list.add(Check::fail("stream", e.to_string()));
                return Err("the stream did not open".into());
            }
        };
        let took = t.elapsed();
        let status = poll(STEP_WAIT, async || {
            let status = self.api(&http, "/api/status").await;
            let status = status.map_or_else(Value::String, |(_, body)| json(&body));
            let check = checks::stream(&status, call.call_sid(), call.stream_sid(), took);
            (check.passed, check)
        })
        .await;
        list.add(status);

        let speech = sim::load_wav_8k_from_bytes(HELLO_WAV).map_err(|e| {
            list.add(Check::fail("echo", format!("the built-in speech: {e}")));
            "the built-in speech does not decode".to_string()
        })?;
        call.say(&speech);
        let _ = call.wait_said().await;
        let played = |e: &Event| matches!(e, Event::MarkEchoed { cleared: false, .. });
        // Whether it came or not, the report says what the caller heard.
        let _ = call.wait_for(played, STEP_WAIT).await;
        let call_secs = call.elapsed();
        let report = call
            .hang_up()
            .await
            .map_err(|e| format!("hanging up: {e}"))?;
        if self.verbose {
            print!("{report}");
        }
        list.add(checks::echo(&report));
        list.add(checks::bit_exact(&report.heard, &speech));
        list.add(checks::marks(&report));

        let t = Instant::now();
        let sid = &report.call_sid;
        let completed = CallStatus {
            call_sid: sid,
            account_sid: &answer.account_sid,
            status: "completed",
            sequence: 0,
            duration: Some(call_secs),
        };
        list.add(match sim::post_status(&sim, &completed).await {
            Ok(200) => self.record(&http, sid, t).await,
            Ok(status) => Check::fail(
                "record",
                format!("the completed status callback was answered HTTP {status}"),
            ),
            Err(e) => Check::fail("record", e.to_string()),
        });

        let wav_path = format!("/api/calls/{sid}/recording.wav");
        let said = Duration::from_millis(speech.len() as u64 / 8);
        list.add(
            poll(STEP_WAIT, async || {
                let check = match self.api(&http, &wav_path).await {
                    Ok((status, body)) => checks::recording(status, &body, said),
                    Err(e) => Check::fail("recording", e),
                };
                (check.passed, check)
            })
            .await,
        );
        Ok(())
    }

    /// Waits for the call's record to be final (the journal writes behind
    /// the call) and judges it.
    async fn record(&self, http: &reqwest::Client, sid: &str, since: Instant) -> Check {
        let path = format!("/api/calls/{sid}");
        poll(STEP_WAIT, async || match self.api(http, &path).await {
            Ok((status, body)) => {
                let body = json(&body);
                let check = checks::record(status, &body, since.elapsed());
                (check.passed, check)
            }
            Err(e) => (false, Check::fail("record", e)),
        })
        .await
    }

    /// `GET` an `/api/…` path with the API token.
    async fn api(&self, http: &reqwest::Client, path: &str) -> Result<(u16, Vec<u8>), String> {
        let url = format!("{}{path}", self.server.url);
        get(http, &url, Some(&self.secrets.api_token)).await
    }
}

/// `GET url`: the status and the body.
async fn get(
    http: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
) -> Result<(u16, Vec<u8>), String> {
    let mut request = http.get(url);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    Ok((status, body.to_vec()))
}

/// A body as JSON, or as a JSON string of its text when it is not JSON.
fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// Repeats `attempt` every [`POLL`] until it reports done or `bound` has
/// passed; returns the last result either way.
async fn poll<T>(bound: Duration, mut attempt: impl AsyncFnMut() -> (bool, T)) -> T {
    let until = Instant::now() + bound;
    loop {
        let (done, value) = attempt().await;
        if done || Instant::now() >= until {
            return value;
        }
        tokio::time::sleep(POLL).await;
    }
}
