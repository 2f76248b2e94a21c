//! The `agent` check: a second server, in agent mode, whose speech-to-text,
//! language model and text-to-speech are the fake OpenAI-compatible server
//! of [`crate::fakes::openai`], on loopback in this process: no network, no
//! key of the user's. One caller turn goes the whole agent path (the WAV
//! upload, the SSE stream, the 24 kHz speech resampled to 8 kHz μ-law), and
//! the check asks that the caller heard an answer and that the call's record
//! holds the turn with the fake's transcript and answer.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::checks::{self, Check};
use super::server::{LocalServer, PUBLIC_URL, Scratch, Secrets};
use super::{HELLO_WAV, STEP_WAIT, get, json, poll};
use crate::fakes::llm_reply::DEFAULT_REPLY;
use crate::fakes::openai::FakeOpenAi;
use crate::fakes::openai_audio::DEFAULT_TRANSCRIPT;
use crate::sim::{self, Call, Event, SimConfig};

/// The agent's prompt, written to the scratch directory so that no
/// `prompts/` of the working directory is read. The fake ignores it.
const PROMPT: &str = "You answer the phone for Pronto's self-test.";

/// Audio the fake speaks per character: short lines, so that the start-up
/// synthesis of the fixed lines and the answer stay quick under an emulator.
const MS_PER_CHAR: u64 = 15;

/// Runs the check, in a temporary directory of its own.
pub async fn check(secrets: &Secrets, verbose: bool) -> Check {
    let scratch = match Scratch::create() {
        Ok(s) => s,
        Err(e) => return Check::fail("agent", format!("no temporary directory: {e}")),
    };
    let outcome = run(&scratch, secrets, verbose).await;
    let dir = scratch.path().display().to_string();
    match (outcome, scratch.remove()) {
        (Ok(check), Ok(())) => check,
        (Err(e), _) => Check::fail("agent", e),
        (Ok(_), Err(e)) => Check::fail("agent", format!("cannot remove {dir}: {e}")),
    }
}

/// `Err` says why the check could not judge.
async fn run(scratch: &Scratch, secrets: &Secrets, verbose: bool) -> Result<Check, String> {
    let fake = FakeOpenAi::start()
        .await
        .map_err(|e| format!("the fake providers did not start: {e}"))?;
    fake.audio.set_ms_per_char(MS_PER_CHAR);
    let env = environment(scratch.path(), secrets, fake.base_url())?;
    let server = LocalServer::start(&env)
        .await
        .map_err(|e| format!("the agent server did not start: {e}"))?;
    let played = call(&server, secrets, verbose).await;
    let stopped = server.stop(STEP_WAIT).await;
    let check = played?;
    stopped.map_err(|e| format!("the agent server: {e}"))?;
    Ok(check)
}

/// The self-test's environment plus the fake as every AI stage's provider,
/// and a prompt of its own.
fn environment(
    dir: &Path,
    secrets: &Secrets,
    providers: &str,
) -> Result<HashMap<String, String>, String> {
    let prompt = dir.join("system.md");
    std::fs::write(&prompt, PROMPT)
        .map_err(|e| format!("cannot write {}: {e}", prompt.display()))?;
    let prompt = prompt
        .to_str()
        .ok_or_else(|| format!("{} is not valid UTF-8", prompt.display()))?
        .to_string();
    let mut env = super::server::environment(dir, secrets)?;
    env.extend(
        [
            ("OPENAI_API_KEY", "self-test".to_string()),
            ("OPENAI_BASE_URL", providers.to_string()),
            ("LLM_PROVIDER", "openai".into()),
            ("PRONTO_AGENT_PROMPT_FILE", prompt),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    Ok(env)
}

/// One call: the greeting, the caller's turn, the answer; then the record.
async fn call(server: &LocalServer, secrets: &Secrets, verbose: bool) -> Result<Check, String> {
    let mut sim = SimConfig::new(server.url.as_str());
    sim.public_base_url = Some(PUBLIC_URL.to_string());
    sim.auth_token = Some(secrets.auth_token.clone());
    let speech = sim::load_wav_8k_from_bytes(HELLO_WAV)
        .map_err(|e| format!("the built-in speech does not decode: {e}"))?;
    let call = Call::dial(&sim)
        .await
        .map_err(|e| format!("the call did not connect: {e}"))?;
    let played = |e: &Event| matches!(e, Event::MarkEchoed { cleared: false, .. });
    // The greeting, played to its end, then the caller's turn and whatever
    // answer it gets: the report says what was heard either way.
    let greeted = call.wait_for(played, STEP_WAIT).await.is_ok();
    if greeted {
        call.say(&speech);
        let _ = call.wait_said().await;
        let _ = call.wait_for(played, STEP_WAIT).await;
    }
    let report = call
        .hang_up()
        .await
        .map_err(|e| format!("hanging up: {e}"))?;
    if verbose {
        print!("{report}");
    }
    if !greeted {
        return Err("the greeting was not played to its end".into());
    }
    let path = format!("{}/api/calls/{}", server.url, report.call_sid);
    let http = reqwest::Client::builder()
        .timeout(STEP_WAIT)
        .build()
        .map_err(|e| format!("no HTTP client: {e}"))?;
    let token = secrets.api_token.as_str();
    Ok(poll(STEP_WAIT, async || {
        let record = match get(&http, &path, Some(token)).await {
            Ok((200, body)) => json(&body),
            Ok((status, body)) => Value::String(format!("HTTP {status}: {}", json(&body))),
            Err(e) => Value::String(e),
        };
        let check = checks::agent(&report, &record, (DEFAULT_TRANSCRIPT, DEFAULT_REPLY));
        (check.passed, check)
    })
    .await)
}
