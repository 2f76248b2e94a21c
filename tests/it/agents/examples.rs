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
