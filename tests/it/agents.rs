//! Several agents on one Pronto (issue 17), through real servers on
//! loopback: routing by each rule over signed webhooks, the agents API,
//! reloads (refused, during a live call, by SIGHUP), two agents in two
//! languages through the fakes, outbound and test calls that name their
//! agent.
//!
//! Agent files are written to a temp folder given as `[routing] agents_dir`;
//! in echo mode the agents differ only in name and settings, so the routing
//! tests read the call's record (`agent`), not what was heard.

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

// ---- routing ----

#[tokio::test]
async fn each_routing_rule_picks_its_agent_and_the_record_says_which() {
    let (server, _dir) = echo_agents(&[]).await;
    // (path, from, to, the agent, why)
    let cases = [
        (
            "/voice",
            US_CALLER,
            SALES_NUMBER,
            "sales",
            "the number called",
        ),
        (
            "/voice/assistenza",
            US_CALLER,
            OTHER_NUMBER,
            "support",
            "the webhook's path",
        ),
        (
            "/voice",
            ITALIAN_CALLER,
            OTHER_NUMBER,
            "pronto-it",
            "the caller's prefix",
        ),
        (
            "/voice/quiet",
            US_CALLER,
            OTHER_NUMBER,
            "quiet",
            "its own URL, no rule",
        ),
        (
            "/voice/sales",
            US_CALLER,
            OTHER_NUMBER,
            "sales",
            "its own URL",
        ),
        (
            "/voice",
            US_CALLER,
            OTHER_NUMBER,
            "reception",
            "the default",
        ),
        (
            "/voice/nobody",
            US_CALLER,
            OTHER_NUMBER,
            "reception",
            "an unknown path",
        ),
        // The first matching rule wins: the number before the path and the prefix.
        (
            "/voice/assistenza",
            ITALIAN_CALLER,
            SALES_NUMBER,
            "sales",
            "the first rule of three that match",
        ),
        // The rules come before an agent's own URL.
        (
            "/voice/quiet",
            ITALIAN_CALLER,
            OTHER_NUMBER,
            "pronto-it",
            "a rule before the URL",
        ),
    ];
    for (path, from, to, agent, why) in cases {
        let (sid, twiml) = webhook(&server, path, &sim_for(&server, from, to)).await;
        assert!(twiml.stream_url.is_some(), "{why}: {twiml:?}");
        assert_eq!(
            agent_of(&server, &sid).await,
            agent,
            "{why}: {path} {from} → {to}"
        );
    }
}

#[tokio::test]
async fn a_signature_holds_only_for_the_exact_webhook_url() {
    let (server, _dir) = echo_agents(&[]).await;
    let params = voice_params(
        &sim_for(&server, US_CALLER, OTHER_NUMBER),
        &new_sid(),
        ACCOUNT,
    );
    let signed_for = |path: &str| {
        pronto::twilio::signature::compute(AUTH_TOKEN, &format!("{PUBLIC}{path}"), &params)
    };
    for (signed, posted) in [
        ("/voice", "/voice/sales"),
        ("/voice/sales", "/voice"),
        ("/voice/sales", "/voice/support"),
        ("/voice/assistenza", "/voice/sales"),
    ] {
        let (status, body) = server
            .post_form(posted, &params, Some(&signed_for(signed)))
            .await;
        assert_eq!(
            status, 403,
            "signed for {signed}, posted to {posted}: {body}"
        );
        assert!(!body.contains("<Stream"), "{body}");
    }
    // Signed for where it goes, the same request is answered.
    let (status, body) = server
        .post_form("/voice/sales", &params, Some(&signed_for("/voice/sales")))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<Stream"), "{body}");
}

#[tokio::test]
async fn a_stream_from_voice_sales_is_a_sales_call_and_its_token_names_it_for_good() {
    let (server, _dir) = echo_agents(&[]).await;
    let cfg = sim_for(&server, US_CALLER, OTHER_NUMBER);

    // The agent in the token is signed: another agent's name in its place is
    // a made-up token.
    let (sid, twiml) = webhook(&server, "/voice/sales", &cfg).await;
    let url = twiml.stream_url.expect("a stream");
    assert!(url.contains(".sales."), "the token names its agent: {url}");
    let options = StreamOptions {
        call_sid: Some(sid.clone()),
        account_sid: Some(ACCOUNT.to_string()),
        custom_parameters: twiml.stream_parameters.clone(),
        ..StreamOptions::default()
    };
    for other in ["support", "reception", "default"] {
        let forged = url.replace(".sales.", &format!(".{other}."));
        match Call::connect_stream(&cfg, &forged, options.clone()).await {
            Err(SimError::Handshake { status, .. }) => assert_eq!(status, 403, "{other}"),
            Err(e) => panic!("{other}: {e}"),
            Ok(_) => panic!("a token retargeted to {other} was accepted"),
        }
    }
    // The genuine one still works, and the call is sales' while live and after.
    let call = Call::connect_stream(&cfg, &url, options)
        .await
        .expect("the stream connects");
    let status = server
        .wait_status("the call is live", |s| {
            s["calls"][0]["call_sid"] == sid.as_str() && s["calls"][0]["agent"].is_string()
        })
        .await;
    assert_eq!(status["calls"][0]["agent"], "sales", "{status}");
    call.hang_up().await.expect("report");
    assert_eq!(agent_of(&server, &sid).await, "sales");
    server.end_reason(&sid, WAIT).await;
    assert_eq!(agent_of(&server, &sid).await, "sales", "after the end too");
}

/// A reload between the webhook and the stream that removes the webhook's
/// agent: the call started with the webhook, so it keeps its agent (the
/// switchboard holds it until the stream connects), and the live view and
/// the record name it.
#[tokio::test]
async fn an_agent_removed_before_its_stream_starts_still_answers_its_call() {
    let dir = temp_dir("agents");
    let w = alpha_and_beta(&dir).await;
    w.llm.fake().set_default_reply(Reply::text("Sure."));
    let cfg = w.server.fast_sim();
    let (sid, twiml) = webhook(&w.server, "/voice/beta", &cfg).await;
    assert_eq!(agent_of(&w.server, &sid).await, "beta");
    std::fs::remove_file(dir.join("beta.toml")).expect("remove");
    let (status, report) = reload(&w.server).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(names(&report["removed"]), ["beta"], "{report}");

    let options = StreamOptions {
        call_sid: Some(sid.clone()),
        account_sid: Some(ACCOUNT.to_string()),
        custom_parameters: twiml.stream_parameters.clone(),
        ..StreamOptions::default()
    };
    let url = twiml.stream_url.expect("a stream");
    let call = Call::connect_stream(&cfg, &url, options)
        .await
        .expect("the stream connects");
    hear_mark(&call, "t0-s0").await;
    say_hello_and_hear(&call, "t1-s0").await;
    let (system, _) = conversation(&w.llm_request(1).await);
    assert!(
        system.contains("You are Beta"),
        "the agent the webhook chose answers: {system}"
    );
    let status = w.server.api_status().await;
    let live = status["calls"][0]["agent"].clone();
    call.hang_up().await.expect("report");
    w.server.end_reason(&sid, WAIT).await;
    let recorded = agent_of(&w.server, &sid).await;
    assert_eq!(
        (live.as_str(), recorded.as_str()),
        (Some("beta"), "beta"),
        "the live view and the record name the agent that answered"
    );
}

// ---- the API ----

#[tokio::test]
async fn the_agents_api_lists_routes_and_filters_calls_by_agent() {
    let (server, dir) = echo_agents(&[]).await;
    let (status, list) = server.api(Method::GET, "/api/agents", None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["default"], "reception", "{list}");
    let agents = list["agents"].as_array().expect("agents");
    let by_name = |name: &str| {
        agents
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {list}"))
    };
    assert_eq!(
        agents
            .iter()
            .map(|a| a["name"].as_str())
            .collect::<Vec<_>>(),
        [
            "default",
            "pronto-it",
            "quiet",
            "reception",
            "sales",
            "support"
        ]
        .map(Some),
        "every file, and the agent of config/pronto.toml"
    );
    let sales = by_name("sales");
    assert_eq!(sales["routes"]["numbers"], json!([SALES_NUMBER]), "{sales}");
    assert_eq!(sales["routes"]["paths"], json!([]), "{sales}");
    assert_eq!(sales["routes"]["default"], false, "{sales}");
    assert_eq!(sales["webhook_url"], "https://pronto.test/voice/sales");
    assert_eq!(sales["description"], "Sales line");
    assert_eq!(sales["engine"], "echo");
    assert_eq!(
        sales["file"].as_str(),
        Some(dir.join("sales.toml").display().to_string().as_str())
    );
    assert_eq!(by_name("support")["routes"]["paths"], json!(["assistenza"]));
    let italian = by_name("pronto-it");
    assert_eq!(italian["routes"]["from_prefixes"], json!(["+39"]));
    assert_eq!(italian["language"], "it");
    assert_eq!(by_name("reception")["routes"]["default"], true);
    assert_eq!(by_name("reception")["language"], "en");
    let quiet = by_name("quiet")["routes"].clone();
    assert_eq!(
        quiet,
        json!({"numbers": [], "paths": [], "from_prefixes": [], "default": false})
    );
    assert_eq!(by_name("default")["file"], Value::Null);

    let (status, one) = server.api(Method::GET, "/api/agents/pronto-it", None).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["name"], "pronto-it");
    assert_eq!(one["greeting"], "Pronto!");
    assert_eq!(one["language"], "it");
    assert_eq!(one["routes"]["from_prefixes"], json!(["+39"]));
    assert!(one["prompt_file"].is_string(), "{one}");
    assert_eq!(one["knowledge_files"], json!([]));
    let (status, one) = server.api(Method::GET, "/api/agents/reception", None).await;
    assert_eq!((status, &one["greeting"]), (200, &json!("Reception here.")));
    for unknown in ["nobody", "Sales", "status"] {
        let (status, body) = server
            .api(Method::GET, &format!("/api/agents/{unknown}"), None)
            .await;
        assert_eq!(status, 404, "{unknown}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    let (status, _) = server.get_json("/api/agents", None).await;
    assert_eq!(status, 401, "the agents are the operators'");

    // Calls by agent.
    let mut sids = Vec::new();
    for (path, from, to) in [
        ("/voice", US_CALLER, SALES_NUMBER),
        ("/voice/sales", US_CALLER, OTHER_NUMBER),
        ("/voice", ITALIAN_CALLER, OTHER_NUMBER),
        ("/voice", US_CALLER, OTHER_NUMBER),
    ] {
        let (sid, _) = webhook(&server, path, &sim_for(&server, from, to)).await;
        record(&server, &sid).await;
        sids.push(sid);
    }
    let listed = |query: &'static str| {
        let server = &server;
        async move {
            let (status, page) = server
                .api(Method::GET, &format!("/api/calls{query}"), None)
                .await;
            assert_eq!(status, 200, "{query}: {page}");
            let mut sids: Vec<String> = page["calls"]
                .as_array()
                .expect("calls")
                .iter()
                .map(|c| {
                    assert!(c["agent"].is_string(), "{c}");
                    c["call_sid"].as_str().expect("sid").to_string()
                })
                .collect();
            sids.sort();
            sids
        }
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(listed("?agent=sales").await, sorted(sids[..2].to_vec()));
    assert_eq!(listed("?agent=pronto-it").await, vec![sids[2].clone()]);
    assert_eq!(listed("?agent=reception").await, vec![sids[3].clone()]);
    assert_eq!(listed("?agent=nobody").await, Vec::<String>::new());
    assert_eq!(listed("").await, sorted(sids.clone()));
    for bad in ["Sales", "a%2Fb", "-x", "status"] {
        let (status, body) = server
            .api(Method::GET, &format!("/api/calls?agent={bad}"), None)
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains("agent")),
            "{body}"
        );
    }

    let (status, doc) = server.api(Method::GET, "/api/openapi.json", None).await;
    assert_eq!(status, 200);
    for path in ["/api/agents", "/api/agents/{name}", "/api/agents/reload"] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} not in the OpenAPI document"
        );
    }
    assert!(doc["paths"]["/api/agents/reload"]["post"].is_object());
    let list_params = doc["paths"]["/api/calls"]["get"]["parameters"].to_string();
    assert!(list_params.contains("\"agent\""), "{list_params}");
}

// ---- reloads ----

/// What breaks the agents' folder for a reload.
type Breaks = dyn Fn(&Path);

#[tokio::test]
async fn a_refused_reload_keeps_the_agents_in_use() {
    let (server, dir) = echo_agents(&[]).await;
    let before = lineup(&server).await;
    let sales_file = std::fs::read_to_string(dir.join("sales.toml")).expect("read");
    // (what is wrong, the file, what the error names)
    let broken: [(&str, &Breaks, &str); 7] = [
        (
            "an unknown key",
            &|d| {
                write(
                    d,
                    "sales.toml",
                    "description = \"x\"\n[agent]\nnot_a_key = 1\n",
                )
            },
            "sales.toml",
        ),
        (
            "a [server] section",
            &|d| write(d, "extra.toml", "[server]\nport = 1\n"),
            "extra.toml",
        ),
        (
            "a [routing] section",
            &|d| write(d, "extra.toml", "[routing]\ndefault = \"extra\"\n"),
            "extra.toml",
        ),
        (
            "not TOML",
            &|d| write(d, "support.toml", "description = \"unclosed\n"),
            "support.toml",
        ),
        (
            "a bad value",
            &|d| write(d, "support.toml", "[agent]\nlanguage = 7\n"),
            "support.toml",
        ),
        (
            "a name that cannot be an agent's",
            &|d| write(d, "Big Sales.toml", "description = \"x\"\n"),
            "Big Sales.toml",
        ),
        (
            "a rule's agent without its file",
            &|d| std::fs::remove_file(d.join("sales.toml")).expect("remove"),
            "sales.toml",
        ),
    ];
    for (what, breaks, names) in broken {
        breaks(&dir);
        let (status, body) = reload(&server).await;
        assert_eq!(status, 422, "{what}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(names),
            "{what}: the error names {names}: {body}"
        );
        assert_eq!(error.lines().count(), 1, "{what}: one line: {error:?}");
        assert_eq!(lineup(&server).await, before, "{what}: the agents stay");
        // New calls are routed as before.
        let (sid, _) = webhook(
            &server,
            "/voice",
            &sim_for(&server, US_CALLER, SALES_NUMBER),
        )
        .await;
        assert_eq!(agent_of(&server, &sid).await, "sales", "{what}");
        let (sid, _) = webhook(
            &server,
            "/voice/assistenza",
            &sim_for(&server, US_CALLER, OTHER_NUMBER),
        )
        .await;
        assert_eq!(agent_of(&server, &sid).await, "support", "{what}");
        // Put it right for the next case.
        for name in ["extra.toml", "Big Sales.toml"] {
            let _ = std::fs::remove_file(dir.join(name));
        }
        write(&dir, "sales.toml", &sales_file);
        write(&dir, "support.toml", "description = \"Support line\"\n");
    }
    let (status, report) = reload(&server).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["changed"],
        json!([]),
        "put right, nothing changed: {report}"
    );
    assert_eq!(report["added"], json!([]), "{report}");
    assert_eq!(report["removed"], json!([]), "{report}");
}

#[tokio::test]
async fn a_good_reload_reports_what_changed_and_new_calls_get_it() {
    let (server, dir) = echo_agents(&[]).await;
    // Nothing changed.
    let (status, report) = reload(&server).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        names(&report["unchanged"]),
        [
            "default",
            "pronto-it",
            "quiet",
            "reception",
            "sales",
            "support"
        ]
    );
    assert_eq!(report["routing_changed"], false);
    assert_eq!(report["needs_restart"], json!([]));

    write(&dir, "newcomer.toml", "description = \"Just hired\"\n");
    write(
        &dir,
        "support.toml",
        "description = \"Support line, now 24/7\"\n",
    );
    write(
        &dir,
        "reception.toml",
        "description = \"Front desk\"\n[lines.en]\ngreeting = \"Reception, good morning.\"\n",
    );
    std::fs::remove_file(dir.join("quiet.toml")).expect("remove");
    let (status, report) = reload(&server).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(names(&report["added"]), ["newcomer"], "{report}");
    assert_eq!(
        names(&report["changed"]),
        ["reception", "support"],
        "{report}"
    );
    assert_eq!(names(&report["removed"]), ["quiet"], "{report}");
    assert_eq!(
        names(&report["unchanged"]),
        ["default", "pronto-it", "sales"],
        "{report}"
    );
    assert_eq!(report["routing_changed"], false, "{report}");

    let agents = lineup(&server).await;
    assert!(
        agents.contains(&("newcomer".into(), "Just hired".into())),
        "{agents:?}"
    );
    assert!(
        agents.contains(&("support".into(), "Support line, now 24/7".into())),
        "{agents:?}"
    );
    assert!(!agents.iter().any(|(n, _)| n == "quiet"), "{agents:?}");
    let (_, reception) = server.api(Method::GET, "/api/agents/reception", None).await;
    assert_eq!(reception["greeting"], "Reception, good morning.");
    let (status, _) = server.api(Method::GET, "/api/agents/quiet", None).await;
    assert_eq!(status, 404);

    // The newcomer answers at its URL; the removed agent's URL is now an
    // unknown path (the default answers).
    let cfg = sim_for(&server, US_CALLER, OTHER_NUMBER);
    let (sid, _) = webhook(&server, "/voice/newcomer", &cfg).await;
    assert_eq!(agent_of(&server, &sid).await, "newcomer");
    let (sid, _) = webhook(&server, "/voice/quiet", &cfg).await;
    assert_eq!(agent_of(&server, &sid).await, "reception");
}

/// An agent-mode server whose default agent is `alpha`, with its prompt
/// file; `beta` is reached at `/voice/beta`.
async fn alpha_and_beta(dir: &Path) -> World {
    write(dir, "alpha.md", "You are Alpha, version one.");
    write(dir, "beta.md", "You are Beta.");
    let agent = |name: &str, greeting: &str| {
        format!(
            "description = \"{name}\"\n[agent]\nprompt_file = {:?}\n[lines.en]\ngreeting = {greeting:?}\n",
            dir.join(format!("{name}.md")).display().to_string()
        )
    };
    write(
        dir,
        "alpha.toml",
        &agent("alpha", "Alpha here, version one."),
    );
    write(dir, "beta.toml", &agent("beta", "Beta here."));
    let toml = routing_toml(dir, "alpha", &[]);
    // default, alpha and beta synthesize their lines.
    World::start_agents(Provider::OpenAi, &[], &toml, 3).await
}

#[tokio::test]
async fn a_call_keeps_its_agent_through_a_reload_and_the_next_call_gets_the_new_one() {
    let dir = temp_dir("agents");
    let w = alpha_and_beta(&dir).await;
    w.llm.fake().set_default_reply(Reply::text("Sure."));
    let call = w.dial_and_hear_greeting().await;
    let sid = call.call_sid().to_string();
    say_hello_and_hear(&call, "t1-s0").await;
    let (system, _) = conversation(&w.llm_request(1).await);
    assert!(system.contains("You are Alpha, version one."), "{system}");

    // Alpha changes while its call is live: a new prompt, a new greeting.
    write(&dir, "alpha.md", "You are Alpha, version two.");
    let changed = std::fs::read_to_string(dir.join("alpha.toml"))
        .expect("read")
        .replace("Alpha here, version one.", "Alpha here, version two.");
    write(&dir, "alpha.toml", &changed);
    let (status, report) = reload(&w.server).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(names(&report["changed"]), ["alpha"], "{report}");
    let (_, alpha) = w.server.api(Method::GET, "/api/agents/alpha", None).await;
    assert_eq!(alpha["greeting"], "Alpha here, version two.");

    // The call in progress finishes its turns as the alpha it started with.
    say_hello_and_hear(&call, "t2-s0").await;
    let (system, messages) = conversation(&w.llm_request(2).await);
    assert!(system.contains("You are Alpha, version one."), "{system}");
    assert!(!system.contains("version two"), "{system}");
    assert_eq!(messages.len(), 3, "the same conversation: {messages:?}");
    let status = w.server.api_status().await;
    assert_eq!(status["calls"][0]["agent"], "alpha", "{status}");
    call.hang_up().await.expect("report");
    w.server.end_reason(&sid, WAIT).await;
    let old = record(&w.server, &sid).await;
    assert_eq!(old["agent"], "alpha");
    assert_eq!(
        old["turns"][0]["agent_said"], "Alpha here, version one.",
        "{old}"
    );

    // The next call gets the new alpha: its greeting and its prompt.
    let call = w.dial_and_hear_greeting().await;
    let sid = call.call_sid().to_string();
    say_hello_and_hear(&call, "t1-s0").await;
    let (system, messages) = conversation(&w.llm_request(3).await);
    assert!(system.contains("You are Alpha, version two."), "{system}");
    assert_eq!(messages.len(), 1, "a new conversation: {messages:?}");
    assert!(
        w.tts_texts()
            .contains(&"Alpha here, version two.".to_string()),
        "the new greeting was synthesized: {:?}",
        w.tts_texts()
    );
    call.hang_up().await.expect("report");
    w.server.end_reason(&sid, WAIT).await;
    let new = record(&w.server, &sid).await;
    assert_eq!(new["agent"], "alpha");
    assert_eq!(
        new["turns"][0]["agent_said"], "Alpha here, version two.",
        "{new}"
    );
}

#[tokio::test]
async fn a_removed_agent_finishes_its_call_and_its_url_then_reaches_the_default() {
    let dir = temp_dir("agents");
    let w = alpha_and_beta(&dir).await;
    w.llm.fake().set_default_reply(Reply::text("Sure."));
    let call = dial_at(&w.server, "/voice/beta", &w.server.fast_sim()).await;
    let sid = call.call_sid().to_string();
    hear_mark(&call, "t0-s0").await;
    say_hello_and_hear(&call, "t1-s0").await;

    std::fs::remove_file(dir.join("beta.toml")).expect("remove");
    let (status, report) = reload(&w.server).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(names(&report["removed"]), ["beta"], "{report}");
    let (status, _) = w.server.api(Method::GET, "/api/agents/beta", None).await;
    assert_eq!(status, 404);

    // Beta is gone for new calls, not for the one it is on.
    say_hello_and_hear(&call, "t2-s0").await;
    for n in [1, 2] {
        let (system, _) = conversation(&w.llm_request(n).await);
        assert!(system.contains("You are Beta."), "turn {n}: {system}");
    }
    call.hang_up().await.expect("report");
    w.server.end_reason(&sid, WAIT).await;
    let old = record(&w.server, &sid).await;
    assert_eq!(old["agent"], "beta");
    assert_eq!(old["turns"][0]["agent_said"], "Beta here.", "{old}");
    assert_eq!(old["turns"].as_array().map(Vec::len), Some(3), "{old}");

    let call = dial_at(&w.server, "/voice/beta", &w.server.fast_sim()).await;
    let sid = call.call_sid().to_string();
    hear_mark(&call, "t0-s0").await;
    say_hello_and_hear(&call, "t1-s0").await;
    let (system, _) = conversation(&w.llm_request(3).await);
    assert!(system.contains("You are Alpha, version one."), "{system}");
    call.hang_up().await.expect("report");
    assert_eq!(agent_of(&w.server, &sid).await, "alpha");
}

/// Gives `beta` its own transfer number, and reloads.
async fn set_beta_transfer_number(w: &World, dir: &Path, number: &str) {
    let text = std::fs::read_to_string(dir.join("beta.toml")).expect("read");
    let text = match text.find("transfer_number") {
        Some(at) => format!("{}transfer_number = {number:?}\n{}", &text[..at], {
            let rest = &text[at..];
            &rest[rest.find('\n').map_or(rest.len(), |n| n + 1)..]
        }),
        None => text.replace(
            "[agent]\n",
            &format!("[agent]\ntransfer_number = {number:?}\n"),
        ),
    };
    write(dir, "beta.toml", &text);
    let (status, report) = reload(&w.server).await;
    assert_eq!(status, 200, "{report}");
    let (_, beta) = w.server.api(Method::GET, "/api/agents/beta", None).await;
    assert_eq!(beta["transfer"], true, "{beta}");
}

/// An operator's transfer of a live call, and the number Twilio is told to dial.
async fn operator_transfer(w: &World, sid: &str) -> (u16, Option<String>) {
    let (status, body) = w
        .server
        .api(
            Method::POST,
            &format!("/api/calls/{sid}/transfer"),
            Some(json!({})),
        )
        .await;
    if status != 202 {
        return (status, body["error"].as_str().map(str::to_string));
    }
    let update = crate::harness::eventually("the redirect through Twilio's REST API", || {
        w.rest.updates().into_iter().find(|u| u.call_sid == sid)
    })
    .await;
    (status, update.field("Twiml").map(str::to_string))
}

#[tokio::test]
async fn an_operator_transfer_dials_the_number_of_the_agent_the_call_started_with() {
    let dir = temp_dir("agents");
    let w = alpha_and_beta(&dir).await;
    set_beta_transfer_number(&w, &dir, "+15550001111").await;
    let call = dial_at(&w.server, "/voice/beta", &w.server.fast_sim()).await;
    let sid = call.call_sid().to_string();
    hear_mark(&call, "t0-s0").await;
    set_beta_transfer_number(&w, &dir, "+15550002222").await;
    let (status, twiml) = operator_transfer(&w, &sid).await;
    let _ = call.hang_up().await;
    assert_eq!(status, 202, "{twiml:?}");
    let twiml = twiml.unwrap_or_default();
    assert!(
        twiml.contains("+15550001111") && !twiml.contains("+15550002222"),
        "the call keeps its agent's number through the reload: {twiml}"
    );
}

#[tokio::test]
async fn an_operator_can_transfer_a_call_whose_agent_a_reload_removed() {
    let dir = temp_dir("agents");
    let w = alpha_and_beta(&dir).await;
    set_beta_transfer_number(&w, &dir, "+15550001111").await;
    let call = dial_at(&w.server, "/voice/beta", &w.server.fast_sim()).await;
    let sid = call.call_sid().to_string();
    hear_mark(&call, "t0-s0").await;
    std::fs::remove_file(dir.join("beta.toml")).expect("remove");
    let (status, report) = reload(&w.server).await;
    assert_eq!(status, 200, "{report}");
    let (status, twiml) = operator_transfer(&w, &sid).await;
    let _ = call.hang_up().await;
    assert_eq!(
        (
            status,
            twiml.as_deref().is_some_and(|t| t.contains("+15550001111"))
        ),
        (202, true),
        "the call's agent (removed for new calls) still has its number: {twiml:?}"
    );
}

// ---- outbound and test calls ----

#[tokio::test]
async fn an_outbound_call_names_its_agent_whatever_the_rules_say() {
    let rest = FakeTwilioRest::start(ACCOUNT, AUTH_TOKEN).await;
    let our_number = "+390200000001";
    let callee = SALES_NUMBER;
    let rest_url = rest.base_url().to_string();
    let (server, _dir) = echo_agents(&[
        ("TWILIO_ACCOUNT_SID", ACCOUNT),
        ("TWILIO_API_BASE_URL", &rest_url),
        ("TWILIO_PHONE_NUMBER", our_number),
    ])
    .await;
    let (status, body) = server
        .api(
            Method::POST,
            "/api/calls",
            Some(json!({"to": callee, "agent": "nobody"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("nobody")),
        "{body}"
    );
    assert!(rest.created_calls().is_empty(), "Twilio was not asked");

    let (status, created) = server
        .api(
            Method::POST,
            "/api/calls",
            Some(json!({"to": callee, "agent": "quiet"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let sid = FakeTwilioRest::created_sid(0);
    let form = &rest.created_calls()[0];
    let url = form
        .iter()
        .find(|(k, _)| k == "Url")
        .map(|(_, v)| v.as_str());
    assert_eq!(url, Some("https://pronto.test/voice/quiet"), "{form:?}");
    assert_eq!(
        agent_of(&server, &sid).await,
        "quiet",
        "recorded when placed"
    );

    // Answered: Twilio comes back at the agent's URL. Its To is a number a
    // `to` rule sends to sales, its From one a prefix rule sends to
    // pronto-it; the call is quiet's all the same.
    let mut cfg = sim_for(&server, our_number, callee);
    cfg.direction = "outbound-api".into();
    cfg.call_sid = Some(sid.clone());
    let call = dial_at(&server, "/voice/quiet", &cfg).await;
    let status = server
        .wait_status("the call is live", |s| s["calls"][0]["agent"].is_string())
        .await;
    assert_eq!(status["calls"][0]["agent"], "quiet", "{status}");
    call.hang_up().await.expect("report");
    assert_eq!(agent_of(&server, &sid).await, "quiet");

    // Without an agent: Twilio's URL is /voice, and the call is the
    // default's, not what the rules would make of the callee's number.
    let (status, created) = server
        .api(Method::POST, "/api/calls", Some(json!({"to": callee})))
        .await;
    assert_eq!(status, 201, "{created}");
    let sid = FakeTwilioRest::created_sid(1);
    let form = &rest.created_calls()[1];
    let url = form
        .iter()
        .find(|(k, _)| k == "Url")
        .map(|(_, v)| v.as_str());
    assert_eq!(url, Some("https://pronto.test/voice"), "{form:?}");
    cfg.call_sid = Some(sid.clone());
    let (_, twiml) = webhook(&server, "/voice", &cfg).await;
    assert!(twiml.stream_url.is_some(), "{twiml:?}");
    assert_eq!(agent_of(&server, &sid).await, "reception");
}

#[tokio::test]
async fn a_test_call_talks_to_the_agent_it_names() {
    let (server, _dir) = echo_agents(&[]).await;
    for (body, agent) in [
        (Some(json!({"agent": "sales"})), "sales"),
        (Some(json!({"agent": "pronto-it"})), "pronto-it"),
        (None, "reception"),
        (Some(json!({})), "reception"),
    ] {
        let (status, created) = server
            .api(Method::POST, "/api/test-call", body.clone())
            .await;
        assert_eq!(status, 201, "{body:?}: {created}");
        let sid = created["call_sid"].as_str().expect("call_sid");
        assert!(created["stream_url"].is_string(), "{created}");
        assert_eq!(agent_of(&server, sid).await, agent, "{body:?}");
    }
    for body in [
        json!({"agent": "nobody"}),
        json!({"agent": "sales", "x": 1}),
    ] {
        let (status, answer) = server
            .api(Method::POST, "/api/test-call", Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body}: {answer}");
    }
}

// ---- the shipped examples, as a process ----

mod process {
    //! `agents.example` copied to `agents/` in the working directory of a
    //! `pronto` process, as the README says, against the fakes in this
    //! process; reloaded by SIGHUP.

    use std::path::Path;
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    use reqwest::Method;
    use serde_json::Value;

    use crate::agent_world::{conversation, hear_mark};
    use crate::harness::{AUTH_TOKEN, PUBLIC, WAIT, fixture, temp_dir};
    use pronto::fakes::llm_reply::Reply;
    use pronto::fakes::openai_audio::FakeOpenAiAudio;
    use pronto::fakes::openai_chat::FakeOpenAiChat;
    use pronto::sim::{Call, SimConfig};

    const BIN: &str = env!("CARGO_BIN_EXE_pronto");
    const API_TOKEN: &str = "agents-api-token";
    const RECEPTION_GREETING: &str =
        "Good morning, Bottega Verde, this is the front desk. How can I help you?";
    const ITALIAN_GREETING: &str = "Pronto, Bottega Verde, buongiorno! Come posso aiutarla?";

    struct Pronto {
        child: Child,
        url: String,
        dir: std::path::PathBuf,
        http: reqwest::Client,
    }

    impl Drop for Pronto {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl Pronto {
        async fn api(&self, method: Method, path: &str) -> (u16, Value) {
            let resp = self
                .http
                .request(method, format!("{}{path}", self.url))
                .bearer_auth(API_TOKEN)
                .send()
                .await
                .expect("API request");
            let status = resp.status().as_u16();
            let text = resp.text().await.expect("body");
            (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        }

        async fn record(&self, sid: &str) -> Value {
            let deadline = tokio::time::Instant::now() + WAIT;
            loop {
                let (status, call) = self.api(Method::GET, &format!("/api/calls/{sid}")).await;
                if status == 200 && call["end_reason"].is_string() {
                    return call;
                }
                assert!(tokio::time::Instant::now() < deadline, "{status} {call}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }

        fn sighup(&self) {
            let sent = Command::new("kill")
                .args(["-HUP", &self.child.id().to_string()])
                .status()
                .expect("kill");
            assert!(sent.success());
        }

        /// What the process has logged so far.
        fn log(&self) -> String {
            std::fs::read_to_string(self.dir.join("pronto.log")).unwrap_or_default()
        }

        async fn wait_log(&self, what: &str, count: usize) {
            let deadline = tokio::time::Instant::now() + WAIT;
            while self.log().matches(what).count() < count {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{what:?} ×{count} never logged:\n{}",
                    self.log()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }

        fn sim(&self, from: &str) -> SimConfig {
            let mut cfg = SimConfig::new(self.url.clone());
            cfg.public_base_url = Some(PUBLIC.to_string());
            cfg.auth_token = Some(AUTH_TOKEN.to_string());
            cfg.fast = true;
            cfg.from = from.to_string();
            cfg
        }
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read_dir") {
            let entry = entry.expect("entry");
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }

    async fn start(audio: &FakeOpenAiAudio, llm: &FakeOpenAiChat) -> Pronto {
        let dir = temp_dir("examples");
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("agents.example"),
            &dir.join("agents"),
        );
        std::fs::create_dir_all(dir.join("config")).expect("mkdir");
        // The routing the examples' comments suggest: Italian callers to
        // pronto-it; everyone else to the receptionist.
        std::fs::write(
            dir.join("config/pronto.toml"),
            "[routing]\ndefault = \"reception\"\n\n[[routing.rules]]\nfrom_prefix = \"+39\"\nagent = \"pronto-it\"\n",
        )
        .expect("write config");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("address")
            .port();
        let log = std::fs::File::create(dir.join("pronto.log")).expect("log file");
        let port_text = port.to_string();
        let llm_url = llm.base_url();
        let mut env = vec![
            ("PORT", port_text.as_str()),
            ("BIND", "127.0.0.1"),
            ("PUBLIC_BASE_URL", PUBLIC),
            ("TWILIO_AUTH_TOKEN", AUTH_TOKEN),
            ("API_TOKEN", API_TOKEN),
            ("STREAM_TOKEN_SECRET", "agents-stream-secret"),
            ("OPENAI_API_KEY", "sk-test-openai"),
            ("OPENAI_BASE_URL", audio.base_url()),
            ("LLM_PROVIDER", "openai"),
            ("PRONTO_LLM_BASE_URL", llm_url.as_str()),
            ("PRONTO_TURN_DETECTOR", "silence"),
            ("RUST_LOG", "info"),
        ];
        let models = std::env::var("PRONTO_MODELS_DIR").unwrap_or_default();
        if !models.is_empty() {
            env.push(("PRONTO_MODELS_DIR", models.as_str()));
        }
        let child = Command::new(BIN)
            .current_dir(&dir)
            .env_clear()
            .envs(env.iter().copied())
            .stdout(log.try_clone().expect("log"))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("pronto starts");
        let pronto = Pronto {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
            http: reqwest::Client::new(),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let health = pronto
                .http
                .get(format!("{}/health", pronto.url))
                .send()
                .await;
            if let Ok(resp) = health
                && let Ok(body) = resp.json::<Value>().await
                && body["mode"] == "agent"
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "pronto never answered /health:\n{}",
                pronto.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        pronto
    }

    /// A call from `from`: the greeting, one turn (the caller says hello, the
    /// STT fake hears `heard`), the hang-up; the call's SID.
    async fn one_turn(pronto: &Pronto, from: &str, heard: &str, audio: &FakeOpenAiAudio) -> String {
        audio.push_transcript(heard);
        let call = Call::dial(&pronto.sim(from)).await.expect("call connects");
        hear_mark(&call, "t0-s0").await;
        call.say(&fixture("hello.wav"));
        call.wait_said().await.expect("said");
        hear_mark(&call, "t1-s0").await;
        let sid = call.call_sid().to_string();
        call.hang_up().await.expect("report");
        sid
    }

    #[tokio::test]
    async fn the_shipped_examples_answer_in_two_languages_and_reload_on_sighup() {
        let audio = FakeOpenAiAudio::start().await;
        audio.set_ms_per_char(15);
        let llm = FakeOpenAiChat::start().await;
        llm.set_default_reply(Reply::text("Certo."));
        let pronto = start(&audio, &llm).await;
        // default, pronto-it and reception: six lines each.
        let deadline = tokio::time::Instant::now() + WAIT;
        while audio.tts_requests().len() < 18 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "lines never synthesized: {:?}",
                audio.tts_requests()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let voice_of = |text: &str| {
            audio
                .tts_requests()
                .into_iter()
                .find(|r| r.input == text)
                .map(|r| r.voice)
        };
        assert_eq!(voice_of(ITALIAN_GREETING).as_deref(), Some("sage"));
        assert_eq!(voice_of(RECEPTION_GREETING).as_deref(), Some("coral"));

        // An Italian caller reaches pronto-it.
        let sid = one_turn(&pronto, "+390612345678", "A che ora aprite sabato?", &audio).await;
        let call = pronto.record(&sid).await;
        assert_eq!(call["agent"], "pronto-it", "{call}");
        assert_eq!(call["turns"][0]["agent_said"], ITALIAN_GREETING, "{call}");
        let stt = audio.stt_requests();
        assert_eq!(stt.len(), 1, "{stt:?}");
        assert_eq!(stt[0].language.as_deref(), Some("it"), "{stt:?}");
        assert_eq!(
            stt[0].prompt.as_deref(),
            Some("Bottega Verde, Via Roma"),
            "{stt:?}"
        );
        let (system, messages) = conversation(&llm.requests()[0]);
        assert!(
            system.contains("Sei il centralino di Bottega Verde"),
            "{system}"
        );
        assert!(
            system.contains("dal lunedì al venerdì dalle 9 alle 13"),
            "the hours: {system}"
        );
        assert!(!system.contains("receptionist"), "{system}");
        assert_eq!(
            messages.last().map(|m| m.1.as_str()),
            Some("A che ora aprite sabato?")
        );

        // Anyone else reaches the receptionist.
        let sid = one_turn(&pronto, "+15551112222", "When do you open?", &audio).await;
        let call = pronto.record(&sid).await;
        assert_eq!(call["agent"], "reception", "{call}");
        assert_eq!(call["turns"][0]["agent_said"], RECEPTION_GREETING, "{call}");
        let stt = audio.stt_requests();
        assert_eq!(stt[1].language.as_deref(), Some("en"), "{stt:?}");
        let (system, _) = conversation(&llm.requests()[1]);
        assert!(
            system.contains("You are the receptionist of Bottega Verde"),
            "{system}"
        );
        assert!(
            system.contains("Monday to Friday 9 am to 1 pm"),
            "the shop's facts: {system}"
        );
        assert!(!system.contains("centralino"), "{system}");

        // SIGHUP reads the files again.
        let reception = pronto.dir.join("agents/reception.toml");
        let text = std::fs::read_to_string(&reception).expect("read");
        let text = text.replace(
            "description = \"English receptionist",
            "description = \"Front desk (v2)",
        );
        std::fs::write(&reception, text).expect("write");
        pronto.sighup();
        let description = |list: &Value, name: &str| {
            list["agents"]
                .as_array()
                .and_then(|a| a.iter().find(|a| a["name"] == name))
                .map(|a| a["description"].as_str().unwrap_or_default().to_string())
        };
        let deadline = tokio::time::Instant::now() + WAIT;
        let before = loop {
            let (_, list) = pronto.api(Method::GET, "/api/agents").await;
            if description(&list, "reception").is_some_and(|d| d.starts_with("Front desk (v2)")) {
                break list;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "SIGHUP did not reload: {list}\n{}",
                pronto.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        pronto.wait_log("agents reloaded", 1).await;

        // A broken file and SIGHUP: refused, with the file named; the agents stay.
        let italian = pronto.dir.join("agents/pronto-it.toml");
        let text = std::fs::read_to_string(&italian).expect("read");
        std::fs::write(&italian, format!("{text}\n[server]\nport = 1\n")).expect("write");
        pronto.sighup();
        pronto.wait_log("reload refused", 1).await;
        let log = pronto.log();
        let refused = log
            .lines()
            .find(|l| l.contains("reload refused"))
            .unwrap_or_default();
        assert!(refused.contains("pronto-it.toml"), "{refused}");
        let (_, after) = pronto.api(Method::GET, "/api/agents").await;
        assert_eq!(after, before, "the agents in use stay");
        assert_eq!(
            description(&after, "pronto-it").as_deref(),
            Some("Centralino in italiano: risponde «Pronto», conosce gli orari di apertura")
        );
        // And they still answer: an Italian caller still gets pronto-it.
        let sid = one_turn(&pronto, "+390612345678", "Grazie.", &audio).await;
        assert_eq!(pronto.record(&sid).await["agent"], "pronto-it");
    }
}
