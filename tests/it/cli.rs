//! The `pronto` binary as a user runs it: start-up errors, and a server in
//! echo mode answering `pronto call`, the way the README describes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pronto");

/// An empty working directory (no `.env`, no `config/`), like a fresh install.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pronto-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn pronto(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("pronto runs")
}

#[test]
fn version() {
    let out = run(&mut pronto(&scratch_dir("version"), &["--version"], &[]));
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("pronto {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_bad_setting_stops_start_up_with_one_line_and_exit_code_2() {
    let dir = scratch_dir("bad-config");
    let out = run(&mut pronto(
        &dir,
        &[],
        &[("PRONTO_VAD_HANGOVER_MS", "soon")],
    ));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("PRONTO_VAD_HANGOVER_MS=soon"), "{stderr}");

    std::fs::write(dir.join("bad.toml"), "[vad]\nhangover = 700\n").expect("write");
    let out = run(&mut pronto(&dir, &[], &[("PRONTO_CONFIG", "bad.toml")]));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml: unknown key vad.hangover"),
        "{stderr}"
    );

    let out = run(&mut pronto(&dir, &[], &[("PRONTO_CONFIG", "missing.toml")]));
    assert_eq!(
        out.status.code(),
        Some(2),
        "an explicitly named config file must exist"
    );
}

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address").port()
}

fn health(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

fn start_server(dir: &Path) -> Server {
    let port = free_port();
    let port_text = port.to_string();
    let child = pronto(
        dir,
        &[],
        &[
            ("PORT", port_text.as_str()),
            ("BIND", "127.0.0.1"),
            ("PUBLIC_BASE_URL", "https://pronto.test"),
            ("TWILIO_AUTH_TOKEN", "cli-test-token"),
            ("API_TOKEN", "cli-api-token"),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("server starts");
    let server = Server { child, port };
    let deadline = Instant::now() + Duration::from_secs(20);
    while health(port).is_none_or(|r| !r.contains("\"mode\":\"echo\"")) {
        assert!(
            Instant::now() < deadline,
            "the server never answered /health"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

#[test]
fn a_fresh_server_answers_pronto_call_in_echo_mode_and_stops_on_sigterm() {
    let dir = scratch_dir("call");
    let mut server = start_server(&dir);
    let wav = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hello_16k.wav");
    let heard = dir.join("heard.wav");
    let url = format!("http://127.0.0.1:{}", server.port);
    let out = run(&mut pronto(
        &dir,
        &[
            "call",
            "--server",
            &url,
            "--public-url",
            "https://pronto.test",
            "--auth-token",
            "cli-test-token",
            "--wav",
            wav.to_str().expect("utf-8 path"),
            "--fast",
            "--tail-ms",
            "1500",
            "--out",
            heard.to_str().expect("utf-8 path"),
        ],
        &[],
    ));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("voice-to-voice"), "{stdout}");
    assert!(stdout.contains("0 protocol errors"), "{stdout}");
    let (samples, rate) = pronto::audio::wav::read_wav_mono(&heard).expect("heard WAV");
    assert_eq!(rate, 8000);
    assert!(
        samples.iter().any(|s| s.unsigned_abs() > 3000),
        "the caller heard their words back"
    );

    // SIGTERM: nothing is live, so the server drains at once and exits cleanly.
    let killed = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}

/// `pronto call --agent NAME` posts the webhook to `/voice/NAME`, signed
/// for that URL, and that agent answers (its record says so); `--to` a
/// number a rule routes reaches the rule's agent. With `API_TOKEN` the call
/// says which agent answered; without it, it does not ask.
#[tokio::test]
async fn pronto_call_reaches_the_agent_it_names() {
    use crate::harness::{API_TOKEN, AUTH_TOKEN, PUBLIC, TestServer};

    let dir = scratch_dir("call-agent");
    let team = dir.join("team");
    std::fs::create_dir_all(&team).expect("agents dir");
    for (name, text) in [
        ("reception.toml", "description = \"Front desk\"\n"),
        (
            "pronto-it.toml",
            "description = \"Centralino\"\n[agent]\nlanguage = \"it\"\n",
        ),
    ] {
        std::fs::write(team.join(name), text).expect("agent file");
    }
    let toml = format!(
        "[routing]\nagents_dir = {:?}\n[[routing.rules]]\nto = \"+15551230009\"\nagent = \"reception\"\n",
        team.display().to_string()
    );
    let server = TestServer::with(&[], Some(&toml)).await;
    let heard = dir.join("heard.wav");
    let call = |extra: &[&str], env: &[(&str, &str)]| {
        let args: Vec<String> = [
            "call",
            "--server",
            &server.url,
            "--public-url",
            PUBLIC,
            "--auth-token",
            AUTH_TOKEN,
            "--fast",
            "--tail-ms",
            "300",
            "--max-secs",
            "20",
            "--out",
            heard.to_str().expect("utf-8 path"),
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
        let mut cmd = pronto(&dir, &[], env);
        cmd.args(args);
        async move {
            let out = tokio::task::spawn_blocking(move || cmd.output())
                .await
                .expect("the run's thread")
                .expect("pronto runs");
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            stdout
        }
    };
    let sid_of = |stdout: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("call "))
            .and_then(|l| l.split_whitespace().next())
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no call line in {stdout}"))
    };
    let agent_of = |sid: String| {
        let server = &server;
        async move {
            let (status, record) = server
                .api(reqwest::Method::GET, &format!("/api/calls/{sid}"), None)
                .await;
            assert_eq!(status, 200, "{record}");
            record["agent"].as_str().unwrap_or_default().to_string()
        }
    };

    let stdout = call(&["--agent", "pronto-it"], &[("API_TOKEN", API_TOKEN)]).await;
    assert!(
        stdout.contains(&format!(
            "calling {}/voice/pronto-it (signed for {PUBLIC}/voice/pronto-it)",
            server.url
        )),
        "{stdout}"
    );
    let sid = sid_of(&stdout);
    assert!(
        stdout.contains(&format!(
            "answered by agent \"pronto-it\" (its record, GET /api/calls/{sid})"
        )),
        "{stdout}"
    );
    assert_eq!(agent_of(sid).await, "pronto-it");

    // The number called picks the agent; no API token, no question asked.
    let stdout = call(&["--to", "+15551230009"], &[]).await;
    assert!(!stdout.contains("answered by"), "{stdout}");
    assert_eq!(agent_of(sid_of(&stdout)).await, "reception");

    // A name with no agent: the default answers, as Twilio would find it.
    let stdout = call(&["--agent", "ghost"], &[("API_TOKEN", API_TOKEN)]).await;
    assert!(stdout.contains("answered by agent \"default\""), "{stdout}");

    // A wrong token: the call went through; which agent answered is not known.
    let stdout = call(&["--agent", "reception"], &[("API_TOKEN", "wrong")]).await;
    assert!(
        stdout.contains("which agent answered is not known: GET /api/calls/")
            && stdout.contains("answered 401 (is API_TOKEN the server's?)"),
        "{stdout}"
    );
    assert_eq!(agent_of(sid_of(&stdout)).await, "reception");
    let _ = std::fs::remove_dir_all(&dir);
}
