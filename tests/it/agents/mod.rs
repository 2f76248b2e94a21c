//! Several agents on one Pronto (issue 17), through real servers on
//! loopback: routing by each rule over signed webhooks, the agents API,
//! reloads (refused, during a live call, by SIGHUP), two agents in two
//! languages through the fakes, outbound and test calls that name their
//! agent.
//!
//! Agent files are written to a temp folder given as `[routing] agents_dir`;
//! in echo mode the agents differ only in name and settings, so the routing
//! tests read the call's record (`agent`), not what was heard.

mod api;
mod calls;
mod examples;
mod reload;
mod routing;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::agent_world::{Provider, World, conversation, hear_mark, say_hello_and_hear};
use crate::harness::{AUTH_TOKEN, PUBLIC, TestServer, WAIT, temp_dir};
use pronto::fakes::llm_reply::Reply;
use pronto::fakes::twilio_rest::FakeTwilioRest;
use pronto::sim::{Call, SimConfig, SimError, StreamOptions, Twiml, parse_twiml, voice_params};

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
/// The number a `to` rule sends to `sales`.
const SALES_NUMBER: &str = "+15550000002";
/// A number no rule is about.
const OTHER_NUMBER: &str = "+15550000009";
const US_CALLER: &str = "+15551112222";
const ITALIAN_CALLER: &str = "+390612345678";

// ---- helpers ----

/// A fresh call SID in Twilio's shape, unique in this process.
fn new_sid() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "CA{:016x}{:016x}",
        u64::from(std::process::id()),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A folder holding `files` (name, text).
fn agents_dir(files: &[(&str, &str)]) -> PathBuf {
    let dir = temp_dir("agents");
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("write an agent file");
    }
    dir
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write");
}

/// `[routing]` with `dir` as the agents' folder, then `rest` (rules...).
fn routing_toml(dir: &Path, default: &str, rules: &[(&str, &str, &str)]) -> String {
    let mut toml = format!(
        "[limits]\ncalls_per_hour_per_number = 0\n\n[routing]\nagents_dir = {:?}\ndefault = {default:?}\n",
        dir.display().to_string()
    );
    for (kind, value, agent) in rules {
        toml.push_str(&format!(
            "\n[[routing.rules]]\n{kind} = {value:?}\nagent = {agent:?}\n"
        ));
    }
    toml
}

/// Five agents and three rules, one of each kind; `quiet` has no rule.
const ECHO_AGENTS: &[(&str, &str)] = &[
    (
        "reception.toml",
        "description = \"Front desk\"\n[lines.en]\ngreeting = \"Reception here.\"\n",
    ),
    ("sales.toml", "description = \"Sales line\"\n"),
    ("support.toml", "description = \"Support line\"\n"),
    (
        "pronto-it.toml",
        "description = \"Centralino\"\n[agent]\nlanguage = \"it\"\n[lines.it]\ngreeting = \"Pronto!\"\n",
    ),
    ("quiet.toml", "description = \"Only by its URL\"\n"),
];

const ECHO_RULES: &[(&str, &str, &str)] = &[
    ("to", SALES_NUMBER, "sales"),
    ("path", "assistenza", "support"),
    ("from_prefix", "+39", "pronto-it"),
];

/// An echo-mode server with [`ECHO_AGENTS`] and [`ECHO_RULES`], `reception`
/// the default; and the agents' folder.
async fn echo_agents(env: &[(&str, &str)]) -> (TestServer, PathBuf) {
    let dir = agents_dir(ECHO_AGENTS);
    let toml = routing_toml(&dir, "reception", ECHO_RULES);
    (TestServer::with(env, Some(&toml)).await, dir)
}

/// The simulator's view of a call from `from` to `to`.
fn sim_for(server: &TestServer, from: &str, to: &str) -> SimConfig {
    let mut cfg = server.fast_sim();
    cfg.from = from.to_string();
    cfg.to = to.to_string();
    cfg
}

/// Twilio's voice webhook for a new call at `path` (`/voice` or
/// `/voice/<name>`), signed over that exact public URL: the call's SID and
/// the TwiML answered.
async fn webhook(server: &TestServer, path: &str, cfg: &SimConfig) -> (String, Twiml) {
    let sid = cfg.call_sid.clone().unwrap_or_else(new_sid);
    let params = voice_params(cfg, &sid, ACCOUNT);
    let (status, body) = server.post_signed(path, &params).await;
    assert_eq!(status, 200, "{path}: {body}");
    (sid, parse_twiml(&body).expect("TwiML"))
}

/// Dials as Twilio does, through the webhook at `path`.
async fn dial_at(server: &TestServer, path: &str, cfg: &SimConfig) -> Call {
    let (sid, twiml) = webhook(server, path, cfg).await;
    let url = twiml.stream_url.clone().expect("a stream");
    let options = StreamOptions {
        call_sid: Some(sid),
        account_sid: Some(ACCOUNT.to_string()),
        custom_parameters: twiml.stream_parameters.clone(),
        ..StreamOptions::default()
    };
    Call::connect_stream(cfg, &url, options)
        .await
        .expect("the stream connects")
}

/// The call's record, once it is written (the journal writes in the background).
async fn record(server: &TestServer, sid: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, call) = server
            .api(Method::GET, &format!("/api/calls/{sid}"), None)
            .await;
        if status == 200 {
            return call;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no record of {sid}: {status} {call}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The agent the record of `sid` names.
async fn agent_of(server: &TestServer, sid: &str) -> String {
    let call = record(server, sid).await;
    call["agent"]
        .as_str()
        .unwrap_or_else(|| panic!("no agent in {call}"))
        .to_string()
}

/// `GET /api/agents`, as (name, description) pairs.
async fn lineup(server: &TestServer) -> Vec<(String, String)> {
    let (status, list) = server.api(Method::GET, "/api/agents", None).await;
    assert_eq!(status, 200, "{list}");
    list["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .map(|a| {
            (
                a["name"].as_str().expect("name").to_string(),
                a["description"].as_str().expect("description").to_string(),
            )
        })
        .collect()
}

async fn reload(server: &TestServer) -> (u16, Value) {
    server.api(Method::POST, "/api/agents/reload", None).await
}

fn names(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("a list: {v}"))
        .iter()
        .map(|n| n.as_str().expect("a name"))
        .collect()
}
