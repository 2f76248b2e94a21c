//! `pronto check` and `pronto health` as a user runs them: the binary, in an
//! empty working directory, with only the variables each test gives it.
//! Offline problems and `health` here; `--online` (against the fakes, a real
//! Pronto on loopback as the tunnel, and fake tunnels) in `check/online.rs`;
//! several agents in `check/agents.rs`.

mod agents;
mod online;
mod support;
mod twilio;

use crate::harness::TestServer;
use support::{AUTH, PUBLIC, SID, Scratch, closed_port, good, pronto, with};

/// Variables changed from [`good`]: a new value, or removed when empty.
type Changes = &'static [(&'static str, &'static str)];

const URL_FIX: &str =
    "set it to your tunnel's https URL, exactly as typed in the Twilio console, without /voice";

#[tokio::test]
async fn a_good_configuration_prints_the_console_urls_and_exits_0() {
    let dir = Scratch::new("good");
    let run = pronto(dir.path(), &["check"], &good()).await;
    run.exit(0);
    run.has("Configuration: the built-in defaults (no config/pronto.toml here), no .env, and the environment");
    run.has("No problems in the configuration.");
    run.has("A call comes in: Webhook, https://voice.acme-dental.net/voice, HTTP POST");
    run.has("Call status changes: https://voice.acme-dental.net/voice/status, HTTP POST");
    run.has("Mode: echo (after each pause the caller hears their own words back; set OPENAI_API_KEY, and ANTHROPIC_API_KEY for Claude, to run the agent)");
    run.has("No problems found.");
    run.lacks(AUTH);

    // The agent: each stage, its model and the variable of its key, never the key.
    let agent = with(
        &good(),
        &[
            ("OPENAI_API_KEY", "sk-proj-secret1"),
            ("ANTHROPIC_API_KEY", "sk-ant-secret2"),
        ],
    );
    let run = pronto(dir.path(), &["check"], &agent).await;
    run.exit(0);
    run.has("Mode: agent, language en");
    run.has("speech-to-text: OpenAI gpt-4o-mini-transcribe, at https://api.openai.com/v1, key OPENAI_API_KEY");
    run.has("LLM: Anthropic claude-haiku-4-5, at https://api.anthropic.com, key ANTHROPIC_API_KEY");
    run.has("text-to-speech: OpenAI gpt-4o-mini-tts, voice coral, at https://api.openai.com/v1, key OPENAI_API_KEY");
    run.lacks("secret1");
    run.lacks("secret2");

    // A speech-to-speech engine: what hears and speaks, and what it cannot do.
    let realtime = with(
        &good(),
        &[
            ("OPENAI_API_KEY", "sk-proj-secret1"),
            ("PRONTO_ENGINE_KIND", "openai-realtime"),
        ],
    );
    let run = pronto(dir.path(), &["check"], &realtime).await;
    run.exit(0);
    run.has("Mode: speech-to-speech, OpenAI Realtime gpt-realtime at wss://api.openai.com/v1, key OPENAI_API_KEY, voice marin, language en");
    run.has("the caller's turns: the model's own voice detection (server_vad, 500 ms of silence)");
    run.lacks("Turn detector:");
    run.lacks("secret1");
    let moshi = with(&good(), &[("PRONTO_ENGINE_KIND", "moshi")]);
    let run = pronto(dir.path(), &["check"], &moshi).await;
    run.has("Mode: speech-to-speech, Kyutai Moshi at ws://localhost:8998/api/chat");
    run.has("English only; no prompt, knowledge or tools (it cannot end or transfer calls); sessions end after about five minutes, and the call with them");
}

/// Each problem, alone in an otherwise good configuration: its exact line and
/// the exit status it leads to (1 for errors, 0 for notes).
#[tokio::test]
async fn each_problem_is_one_line_saying_how_to_fix_it() {
    let dir = Scratch::new("problems");
    let cases: Vec<(Changes, String, i32)> = vec![
        (&[("PUBLIC_BASE_URL", "")], format!("error: PUBLIC_BASE_URL is not set (Pronto would use http://localhost:8080): {URL_FIX}"), 1),
        (&[("PUBLIC_BASE_URL", "http://voice.acme-dental.net")], format!("error: PUBLIC_BASE_URL is http://voice.acme-dental.net, not https: Twilio connects the call's audio stream only to wss:// on port 443, so calls would fail (Twilio error 31920 or 31910); {URL_FIX}"), 1),
        (&[("PUBLIC_BASE_URL", "https://voice.example.com")], format!("error: PUBLIC_BASE_URL is https://voice.example.com, a placeholder address Twilio cannot reach: {URL_FIX}"), 1),
        (&[("PUBLIC_BASE_URL", "https://voice.acme-dental.net:8443")], "error: PUBLIC_BASE_URL is https://voice.acme-dental.net:8443, with port 8443: Twilio connects the call's audio stream only to wss:// on port 443, so calls would fail (Twilio error 31920); use the tunnel's https URL without a port".into(), 1),
        (&[("PUBLIC_BASE_URL", "https://voice.acme-dental.net/voice")], "error: PUBLIC_BASE_URL ends in /voice: leave that out, Pronto adds it (set PUBLIC_BASE_URL=https://voice.acme-dental.net; the console's \"A call comes in\" URL is https://voice.acme-dental.net/voice)".into(), 1),
        (&[("PUBLIC_BASE_URL", "http://localhost:8080")], format!("note: PUBLIC_BASE_URL is http://localhost:8080, an address of this machine that Twilio cannot reach: fine for trying Pronto with `pronto call`; for real calls {URL_FIX}"), 0),
        (&[("PUBLIC_BASE_URL", "https://calm-lake-1234.trycloudflare.com")], "note: PUBLIC_BASE_URL is a Cloudflare quick tunnel (calm-lake-1234.trycloudflare.com): its hostname changes each time cloudflared restarts, and PUBLIC_BASE_URL and the Twilio console must then change with it; a named tunnel keeps one hostname".into(), 0),
        (&[("TWILIO_AUTH_TOKEN", "")], "error: TWILIO_AUTH_TOKEN is not set: Pronto would refuse every call (403); set it to your account's primary Auth Token (Twilio console → Account → API keys & tokens)".into(), 1),
        (&[("TWILIO_SKIP_SIGNATURE", "true")], "error: TWILIO_SKIP_SIGNATURE=true: Twilio's signatures are not checked, so anyone who finds PUBLIC_BASE_URL can place calls into Pronto and spend your AI credit (development only); remove it, or set it to false, and set TWILIO_AUTH_TOKEN".into(), 1),
        (&[("TWILIO_AUTH_TOKEN", "\"0123456789abcdef0123456789abcdef\"")], "error: TWILIO_AUTH_TOKEN is wrapped in quotes: remove them (`docker run --env-file` keeps quotes as part of the value, and the value is then refused)".into(), 1),
        (&[("API_TOKEN", "")], "note: API_TOKEN is not set: /api/* (call history, live status) answers 401, calls work without it; to use the API, set it to a random string (openssl rand -hex 32)".into(), 0),
        (&[("TWILIO_ACCOUNT_SID", "")], "note: TWILIO_ACCOUNT_SID is not set: the agent cannot hang up or transfer calls, and outbound calls are off; set it to your Account SID (AC…, on the Twilio console's home page)".into(), 0),
        (&[("TWILIO_ACCOUNT_SID", "SK0123456789abcdef0123456789abcdef")], "error: TWILIO_ACCOUNT_SID=SK0123456789abcdef0123456789abcdef is an API key SID (SK…), not an Account SID: put it in TWILIO_API_KEY_SID, and your Account SID (AC…, on the Twilio console's home page) in TWILIO_ACCOUNT_SID".into(), 1),
        (&[("TWILIO_ACCOUNT_SID", "AC123")], "error: TWILIO_ACCOUNT_SID=AC123 is not an Account SID (AC followed by 32 hexadecimal digits): copy it from the Twilio console's home page".into(), 1),
        (&[("TWILIO_API_KEY_SID", "SK0123456789abcdef0123456789abcdef")], "note: only one of TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET is set: Pronto's REST calls use TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN instead; set both, or neither".into(), 0),
        (&[("ANTHROPIC_API_KEY", "sk-ant-x")], "error: Pronto would answer in echo mode: the agent also needs OPENAI_API_KEY; set it in .env (or the environment) to run the agent".into(), 1),
        (&[("PRONTO_VAD_HANGOVR_MS", "800")], "note: PRONTO_VAD_HANGOVR_MS is not a Pronto setting and is ignored".into(), 0),
    ];
    for (changes, line, code) in cases {
        let run = pronto(dir.path(), &["check"], &with(&good(), changes)).await;
        run.has(&line);
        run.exit(code);
        // That problem and no other.
        assert_eq!(
            run.errors().len() + run.notes().len(),
            1,
            "{changes:?}:\n{}",
            run.stdout
        );
    }
}

/// What stops `pronto serve` (exit 2) stops the check with the same status.
#[tokio::test]
async fn a_configuration_that_does_not_load_exits_2_like_serve() {
    let dir = Scratch::new("fatal");
    let run = pronto(
        dir.path(),
        &["check"],
        &with(&good(), &[("PRONTO_VAD_HANGOVER_MS", "soon")]),
    )
    .await;
    run.exit(2);
    run.has("error: PRONTO_VAD_HANGOVER_MS=soon: must be a whole number: fix this setting; `pronto serve` would not start with it");
    run.has("1 error, 0 notes.");

    // The agent's prompt file is read at start-up too.
    let agent = with(
        &good(),
        &[
            ("OPENAI_API_KEY", "sk-1"),
            ("PRONTO_AGENT_PROMPT_FILE", "prompts/mine.md"),
        ],
    );
    let run = pronto(dir.path(), &["check"], &agent).await;
    run.exit(2);
    let line = run
        .errors()
        .into_iter()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        line.starts_with("error: agent.prompt_file = \"prompts/mine.md\": cannot read it: "),
        "{}",
        run.stdout
    );
    assert!(
        line.ends_with(": `pronto serve` would not start until it is fixed"),
        "{line}"
    );

    std::fs::write(
        dir.path().join(".env"),
        "PUBLIC_BASE_URL https://voice.acme-dental.net\n",
    )
    .expect("write .env");
    let run = pronto(dir.path(), &["check"], &good()).await;
    run.exit(2);
    assert!(
        run.errors()
            .iter()
            .any(|l| l.starts_with("error: cannot read .env: ")),
        "{}",
        run.stdout
    );
}

/// The check reads `.env` and the config file as `serve` does.
#[tokio::test]
async fn dotenv_and_the_config_file_are_read_as_serve_reads_them() {
    let dir = Scratch::new("dotenv");
    let dotenv = format!(
        "PUBLIC_BASE_URL={PUBLIC}\nTWILIO_AUTH_TOKEN={AUTH}\nTWILIO_ACCOUNT_SID={SID}\nAPI_TOKEN=x\n"
    );
    std::fs::write(dir.path().join(".env"), dotenv).expect("write .env");
    std::fs::create_dir_all(dir.path().join("config")).expect("config dir");
    std::fs::write(
        dir.path().join("config/pronto.toml"),
        "[agent]\nlanguage = \"it\"\n",
    )
    .expect("write toml");
    let run = pronto(
        dir.path(),
        &["check"],
        &with(&[], &[("OPENAI_API_KEY", "sk-1")]),
    )
    .await;
    run.exit(0);
    let env_path = dir.path().join(".env");
    run.has(&format!(
        "Configuration: config/pronto.toml, {}, and the environment",
        env_path.display()
    ));
    run.has("Mode: agent, language it");
    run.has("A call comes in: Webhook, https://voice.acme-dental.net/voice, HTTP POST");

    // The real environment wins over .env, as for serve.
    let run = pronto(
        dir.path(),
        &["check"],
        &with(&[], &[("PUBLIC_BASE_URL", "http://voice.acme-dental.net")]),
    )
    .await;
    run.exit(1);
    assert_eq!(run.errors().len(), 1, "{}", run.stdout);
    assert!(
        run.errors()[0]
            .starts_with("error: PUBLIC_BASE_URL is http://voice.acme-dental.net, not https"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn health_exits_0_when_the_local_pronto_answers_ok() {
    let dir = Scratch::new("health");
    let database = dir.database("server");
    let server = TestServer::with(&[("DATABASE_URL", &database)], None).await;
    let port = server
        .url
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let run = pronto(dir.path(), &["health"], &[("PORT", port.clone())]).await;
    run.exit(0);
    assert_eq!(
        run.stdout,
        format!(
            "ok: Pronto {} at 127.0.0.1:{port}, echo mode, calls in progress: 0\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(run.stderr, "");
}

#[tokio::test]
async fn health_exits_1_with_one_line_when_pronto_is_not_there() {
    let dir = Scratch::new("health-down");
    let port = closed_port();
    let run = pronto(dir.path(), &["health"], &[("PORT", port.to_string())]).await;
    run.exit(1);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    let prefix = format!("pronto health: nothing answers at http://127.0.0.1:{port}/health (");
    let suffix = format!("): is `pronto serve` running, on port {port}?");
    assert!(
        run.stderr.starts_with(&prefix) && run.stderr.trim_end().ends_with(&suffix),
        "{}",
        run.stderr
    );

    // Something else on the port: not Pronto.
    let other = support::fake_tunnel(
        support::Route::CloudflarePage(502),
        support::Route::Status(404),
    )
    .await;
    let port = other
        .base_url
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let run = pronto(dir.path(), &["health"], &[("PORT", port.clone())]).await;
    run.exit(1);
    assert_eq!(
        run.stderr,
        format!("pronto health: http://127.0.0.1:{port}/health answered 502, not 200\n")
    );

    // A bad configuration is a failed health check too, never Docker's reserved 2.
    let run = pronto(dir.path(), &["health"], &[("PORT", "eighty".into())]).await;
    run.exit(1);
    assert_eq!(
        run.stderr,
        "pronto health: configuration error: PORT=eighty: not a port number\n"
    );
}
