//! `pronto check --online` against the fakes, with a real Pronto on loopback
//! standing for the tunnel (its own URL as `PUBLIC_BASE_URL`), and fake
//! tunnels that answer what Cloudflare answers when it cannot reach Pronto.

use base64::Engine;

use super::support::{
    AUTH, Route, SID, Scratch, Upstream, closed_port, fake_tunnel, good, host, own_server, pronto,
    with,
};
use crate::harness::{OWN_URL, TestServer};
use pronto::fakes::anthropic::FakeAnthropic;
use pronto::fakes::elevenlabs::{FakeElevenLabs, elevenlabs_error};
use pronto::fakes::openai_audio::FakeOpenAiAudio;
use pronto::fakes::openai_chat::FakeOpenAiChat;
use pronto::fakes::twilio_rest::FakeTwilioRest;
use pronto::fakes::{Fault, Running};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn status_fault(status: u16, body: &str) -> Fault {
    Fault::Status {
        status,
        body: body.to_string(),
        retry_after: None,
    }
}

/// The two lines of a tunnel that reaches Pronto at `url`.
fn tunnel_ok(url: &str, mode: &str) -> [String; 2] {
    let ws = url.replacen("http://", "ws://", 1);
    [
        format!("ok: {url}/health reaches Pronto {VERSION} ({mode} mode)"),
        format!(
            "ok: {ws}/stream/pronto-check reaches Pronto: it refused an unsigned upgrade (403), as it should"
        ),
    ]
}

#[tokio::test]
async fn everything_online_is_good() {
    let dir = Scratch::new("online-good");
    let audio = FakeOpenAiAudio::start().await;
    let claude = FakeAnthropic::start_with_key("sk-ant-good").await;
    let rest = FakeTwilioRest::start(SID, AUTH).await;
    let agent: Vec<(&str, String)> = vec![
        ("OPENAI_API_KEY", "sk-proj-good".into()),
        ("OPENAI_BASE_URL", audio.base_url().to_string()),
        ("ANTHROPIC_API_KEY", "sk-ant-good".into()),
        ("ANTHROPIC_BASE_URL", claude.base_url()),
        ("TWILIO_API_BASE_URL", rest.base_url().to_string()),
    ];
    // The server runs the agent too, so that its mode is the check's.
    let mut server_env: Vec<(&str, &str)> = agent.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let database = dir.database("server");
    server_env.extend([("PUBLIC_BASE_URL", OWN_URL), ("DATABASE_URL", &database)]);
    let server = TestServer::agent(&server_env, None).await;
    let mut env = with(&good(), &[("PUBLIC_BASE_URL", &server.url)]);
    env.extend(agent.iter().cloned());

    let run = pronto(dir.path(), &["check", "--online"], &env).await;
    run.exit(0);
    run.has(&format!(
        "ok: OPENAI_API_KEY works at {} (speech-to-text, text-to-speech)",
        host(audio.base_url())
    ));
    run.has(&format!(
        "ok: ANTHROPIC_API_KEY works at {} (LLM)",
        host(&claude.base_url())
    ));
    for line in tunnel_ok(&server.url, "agent") {
        run.has(&line);
    }
    run.has(&format!(
        "ok: TWILIO_AUTH_TOKEN is accepted by {} for account {SID}",
        host(rest.base_url())
    ));
    assert_eq!(run.errors(), Vec::<&str>::new());
    // The only note: a loopback PUBLIC_BASE_URL, which Twilio cannot reach.
    assert_eq!(run.notes().len(), 1, "{}", run.stdout);
    assert!(run.notes()[0].starts_with("note: PUBLIC_BASE_URL is http://127.0.0.1:"));
    for secret in ["sk-proj-good", "sk-ant-good", AUTH] {
        run.lacks(secret);
    }

    // STT and TTS share the key and server: one request, not two.
    assert_eq!(audio.models_requests().len(), 1);
    let asked = &claude.models_requests()[0];
    assert_eq!(asked["anthropic-version"], "2023-06-01");
    assert_eq!(asked["x-api-key"], "sk-ant-good");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{AUTH}"));
    assert_eq!(rest.account_fetches(), [format!("Basic {basic}")]);
}

#[tokio::test]
async fn a_refused_key_is_named_for_each_kind_of_provider() {
    let dir = Scratch::new("online-refused");
    let openai = FakeOpenAiChat::start_with_key("sk-proj-right").await;
    let claude = FakeAnthropic::start_with_key("sk-ant-right").await;
    let eleven = FakeElevenLabs::start_with_key("xi-right").await;
    let server = own_server(&dir).await;
    let env = with(
        &good(),
        &[
            ("PUBLIC_BASE_URL", &server.url),
            ("TWILIO_ACCOUNT_SID", ""),
            ("OPENAI_API_KEY", "sk-proj-wrong-key"),
            ("OPENAI_BASE_URL", &openai.base_url()),
            ("ANTHROPIC_API_KEY", "sk-ant-wrong-key"),
            ("ANTHROPIC_BASE_URL", &claude.base_url()),
            ("PRONTO_TTS_PROVIDER", "elevenlabs"),
            ("ELEVENLABS_API_KEY", "xi-wrong-key"),
            ("ELEVENLABS_BASE_URL", eleven.base_url()),
        ],
    );
    let run = pronto(dir.path(), &["check", "--online"], &env).await;
    run.exit(1);
    let (o, a, e) = (
        host(&openai.base_url()).to_string(),
        host(&claude.base_url()).to_string(),
        host(eleven.base_url()).to_string(),
    );
    assert_eq!(
        run.errors(),
        [
            format!(
                "error: OPENAI_API_KEY was refused by {o} (401, invalid_api_key): put the key {o} expects in OPENAI_API_KEY"
            ),
            format!(
                "error: ANTHROPIC_API_KEY was refused by {a} (401, authentication_error): put the key {a} expects in ANTHROPIC_API_KEY"
            ),
            format!(
                "error: ELEVENLABS_API_KEY was refused by {e} (401, invalid_api_key): put the key {e} expects in ELEVENLABS_API_KEY"
            ),
        ]
    );
    // OpenAI quotes the start of a wrong key back; the check does not.
    run.lacks("wrong");
}

#[tokio::test]
async fn trouble_at_a_provider_that_is_not_the_key_is_a_note() {
    let dir = Scratch::new("online-trouble");
    let openai = FakeOpenAiChat::start().await;
    let claude = FakeAnthropic::start().await;
    let eleven = FakeElevenLabs::start().await;
    let server = own_server(&dir).await;
    openai.push_fault(status_fault(429, ""));
    claude.push_fault(status_fault(529, ""));
    let restricted =
        "The API key you used is missing the permission user_read to execute this operation.";
    eleven.push_fault(status_fault(
        401,
        &elevenlabs_error("missing_permissions", restricted),
    ));
    let env = with(
        &good(),
        &[
            ("PUBLIC_BASE_URL", &server.url),
            ("OPENAI_API_KEY", "sk-1"),
            ("OPENAI_BASE_URL", &openai.base_url()),
            ("ANTHROPIC_API_KEY", "sk-2"),
            ("ANTHROPIC_BASE_URL", &claude.base_url()),
            ("PRONTO_TTS_PROVIDER", "elevenlabs"),
            ("ELEVENLABS_API_KEY", "xi-3"),
            ("ELEVENLABS_BASE_URL", eleven.base_url()),
            (
                "TWILIO_API_BASE_URL",
                &format!("http://127.0.0.1:{}", closed_port()),
            ),
        ],
    );
    let run = pronto(dir.path(), &["check", "--online", "--timeout", "3"], &env).await;
    let (o, a) = (
        host(&openai.base_url()).to_string(),
        host(&claude.base_url()).to_string(),
    );
    run.has(&format!("note: {o} is rate-limiting OPENAI_API_KEY right now (429, rate_limit_exceeded): not a configuration problem, but calls hear the fallback line while it lasts"));
    run.has(&format!("note: {a} answered 529 when checking ANTHROPIC_API_KEY: a problem on their side, not in this configuration; try again later"));
    run.has("note: ELEVENLABS_API_KEY is a valid ElevenLabs key that may not read /v1/user (401 missing_permissions): fine if it may use text-to-speech, which this check cannot try without spending characters");
    // The one error: Twilio's API cannot be reached.
    assert_eq!(run.errors().len(), 1, "{}", run.stdout);
    assert!(
        run.errors()[0].starts_with("error: TWILIO_AUTH_TOKEN could not be checked: 127.0.0.1:"),
        "{}",
        run.stdout
    );
    run.exit(1);

    // An exhausted quota is not a passing rate limit.
    let quota = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
    openai.push_fault(status_fault(429, quota));
    let run = pronto(dir.path(), &["check", "--online"], &env).await;
    run.has(&format!("error: OPENAI_API_KEY's account at {o} is out of credit or over its spend limit (429, insufficient_quota): add credit or raise the limit, or every turn gets the fallback line"));
}

#[tokio::test]
async fn an_unreachable_tunnel_is_one_line() {
    let dir = Scratch::new("online-down");
    let url = format!("http://127.0.0.1:{}", closed_port());
    let run = pronto(
        dir.path(),
        &["check", "--online"],
        &with(
            &good(),
            &[("PUBLIC_BASE_URL", &url), ("TWILIO_ACCOUNT_SID", "")],
        ),
    )
    .await;
    run.exit(1);
    let errors = run.errors();
    assert_eq!(errors.len(), 1, "{}", run.stdout);
    let prefix = format!("error: PUBLIC_BASE_URL ({url}) is unreachable (");
    assert!(errors[0].starts_with(&prefix), "{}", errors[0]);
    assert!(
        errors[0].ends_with("): is the tunnel running, and is PUBLIC_BASE_URL its hostname?"),
        "{}",
        errors[0]
    );
}

/// A tunnel whose host is up but does not reach Pronto.
async fn through(tunnel: &Running, dir: &Scratch) -> super::support::Run {
    let env = with(
        &good(),
        &[
            ("PUBLIC_BASE_URL", &tunnel.base_url),
            ("TWILIO_ACCOUNT_SID", ""),
        ],
    );
    pronto(dir.path(), &["check", "--online"], &env).await
}

#[tokio::test]
async fn a_tunnel_that_answers_cloudflare_502_does_not_reach_pronto() {
    let dir = Scratch::new("online-502");
    let tunnel = fake_tunnel(Route::CloudflarePage(502), Route::CloudflarePage(502)).await;
    let run = through(&tunnel, &dir).await;
    run.exit(1);
    let url = &tunnel.base_url;
    let ws = url.replacen("http://", "ws://", 1);
    assert_eq!(
        run.errors(),
        [
            format!(
                "error: {url}/health answered 502 from Cloudflare (text/html), not Pronto: the tunnel does not reach Pronto; cloudflared runs but cannot reach Pronto; point the tunnel's service at Pronto (http://localhost:8080, or http://<container name>:8080 from another container)"
            ),
            format!(
                "error: {ws}/stream/pronto-check answered 502 from Cloudflare (text/html) instead of Pronto's refusal: the tunnel does not pass the call's audio stream to Pronto (Twilio error 31920); check that it passes WebSockets and every path to Pronto"
            ),
        ]
    );
}

/// The webhook would work, the stream would not: Twilio error 31920.
#[tokio::test]
async fn a_tunnel_that_reaches_health_but_not_the_stream_is_error_31920() {
    let dir = Scratch::new("online-no-ws");
    let upstream = Upstream::default();
    let tunnel = fake_tunnel(Route::Forward(upstream.clone()), Route::Status(404)).await;
    // The server checks signatures against the tunnel's URL, as in production.
    let database = dir.database("server");
    let env = [
        ("PUBLIC_BASE_URL", tunnel.base_url.as_str()),
        ("DATABASE_URL", &database),
    ];
    let server = TestServer::with(&env, None).await;
    upstream.set(server.url.clone()).expect("upstream set once");
    let run = through(&tunnel, &dir).await;
    run.exit(1);
    let url = &tunnel.base_url;
    let ws = url.replacen("http://", "ws://", 1);
    run.has(&tunnel_ok(url, "echo")[0]);
    assert_eq!(
        run.errors(),
        [format!(
            "error: {ws}/stream/pronto-check answered 404 (no content type) instead of Pronto's refusal: the tunnel does not pass the call's audio stream to Pronto (Twilio error 31920); check that it passes WebSockets and every path to Pronto"
        )]
    );
}

#[tokio::test]
async fn a_server_with_another_public_base_url_would_refuse_every_call() {
    let dir = Scratch::new("online-other-url");
    // The harness's server checks signatures against https://pronto.test.
    let database = dir.database("server");
    let server = TestServer::with(&[("DATABASE_URL", &database)], None).await;
    let env = with(
        &good(),
        &[("PUBLIC_BASE_URL", &server.url), ("TWILIO_ACCOUNT_SID", "")],
    );
    let run = pronto(dir.path(), &["check", "--online"], &env).await;
    run.exit(1);
    let url = &server.url;
    assert_eq!(
        run.errors(),
        [format!(
            "error: the Pronto behind PUBLIC_BASE_URL checks signatures against https://pronto.test, but this configuration says {url}: it would refuse every call (403); make them the same and restart Pronto, or point the tunnel at the right Pronto"
        )]
    );
    run.has(&tunnel_ok(url, "echo")[0]);
}

/// With the signature checks off, Pronto looks at the upgrade itself before
/// the token: its 403 then proves the probe arrived as a real WebSocket
/// upgrade (a plain GET would get 400 or 426).
#[tokio::test]
async fn the_stream_probe_is_a_real_websocket_upgrade() {
    let dir = Scratch::new("online-upgrade");
    let database = dir.database("server");
    let env = [
        ("PUBLIC_BASE_URL", OWN_URL),
        ("TWILIO_SKIP_SIGNATURE", "true"),
        ("DATABASE_URL", database.as_str()),
    ];
    let server = TestServer::with(&env, None).await;
    let checked = with(
        &good(),
        &[
            ("PUBLIC_BASE_URL", &server.url),
            ("TWILIO_SKIP_SIGNATURE", "true"),
        ],
    );
    let run = pronto(dir.path(), &["check", "--online"], &checked).await;
    run.has(&tunnel_ok(&server.url, "echo")[1]);

    // And a plain GET is indeed refused otherwise.
    let plain = reqwest::get(format!("{}/stream/pronto-check", server.url))
        .await
        .expect("GET");
    assert_ne!(plain.status(), 403);
}
