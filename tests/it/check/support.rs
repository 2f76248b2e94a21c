//! Running the `pronto` binary as a user does, in an empty working directory
//! with only the variables a test gives it, and a fake tunnel.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use crate::harness::{OWN_URL, TestServer};
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const BIN: &str = env!("CARGO_BIN_EXE_pronto");

/// A Twilio Account SID and its auth token, as the tests use them.
pub const SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const AUTH: &str = "5f4dcc3b5aa765d61d8327deb882cf99";
/// A public URL that passes every offline check.
pub const PUBLIC: &str = "https://voice.acme-dental.net";

/// The variables of a configuration with nothing to fix, in echo mode.
pub fn good() -> Vec<(&'static str, String)> {
    vec![
        ("PUBLIC_BASE_URL", PUBLIC.to_string()),
        ("TWILIO_AUTH_TOKEN", AUTH.to_string()),
        ("TWILIO_ACCOUNT_SID", SID.to_string()),
        ("API_TOKEN", "check-api-token".to_string()),
    ]
}

/// `base` with `changes` applied: a new value, or removed when empty.
pub fn with(
    base: &[(&'static str, String)],
    changes: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut env = base.to_vec();
    for (key, value) in changes {
        env.retain(|(k, _)| k != key);
        if !value.is_empty() {
            env.push((key, value.to_string()));
        }
    }
    env
}

/// An empty working directory (no `.env`, no `config/`), removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("pronto-check-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A `DATABASE_URL` inside this directory, so that a test server's
    /// history goes when the directory does.
    pub fn database(&self, name: &str) -> String {
        format!("sqlite://{}/{name}.db", self.0.display())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a run printed, and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The lines of stdout, trimmed.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().map(str::trim).collect()
    }

    /// Panics, showing the whole output, unless `line` is printed exactly.
    #[track_caller]
    pub fn has(&self, line: &str) {
        assert!(
            self.lines().contains(&line),
            "no line {line:?} in:\n{}\n{}",
            self.stdout,
            self.stderr
        );
    }

    /// Panics unless no line contains `text`.
    #[track_caller]
    pub fn lacks(&self, text: &str) {
        assert!(
            !self.stdout.contains(text) && !self.stderr.contains(text),
            "{text:?} was printed:\n{}\n{}",
            self.stdout,
            self.stderr
        );
    }

    /// The `error:` lines.
    pub fn errors(&self) -> Vec<&str> {
        self.lines()
            .into_iter()
            .filter(|l| l.starts_with("error: "))
            .collect()
    }

    /// The `note:` lines.
    pub fn notes(&self) -> Vec<&str> {
        self.lines()
            .into_iter()
            .filter(|l| l.starts_with("note: "))
            .collect()
    }

    #[track_caller]
    pub fn exit(&self, code: i32) {
        assert_eq!(
            self.code,
            Some(code),
            "exit status\n{}\n{}",
            self.stdout,
            self.stderr
        );
    }
}

/// Runs `pronto args…` in `dir` with exactly `env`, off the test's runtime
/// (which keeps serving the fakes meanwhile). An online check never reaches
/// the internet: every base URL the test leaves out points at a closed
/// loopback port instead of the real service.
pub async fn pronto(dir: &Path, args: &[&str], env: &[(&'static str, String)]) -> Run {
    let mut env = env.to_vec();
    if args.contains(&"--online") {
        let nowhere = format!("http://127.0.0.1:{}", closed_port());
        for var in [
            "TWILIO_API_BASE_URL",
            "OPENAI_BASE_URL",
            "ANTHROPIC_BASE_URL",
            "ELEVENLABS_BASE_URL",
        ] {
            if !env.iter().any(|(k, _)| *k == var) {
                env.push((var, nowhere.clone()));
            }
        }
    }
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("the run's thread")
        .expect("pronto runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A loopback port where nothing listens.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address").port()
}

/// Where a fake tunnel forwards to, set once the server behind it is up (it
/// must know the tunnel's URL first: that is its `PUBLIC_BASE_URL`).
pub type Upstream = Arc<OnceLock<String>>;

/// What a fake tunnel does with a path.
#[derive(Clone)]
pub enum Route {
    /// Pass the GET on to the upstream's base URL, headers kept.
    Forward(Upstream),
    /// Cloudflare's error page with this status.
    CloudflarePage(u16),
    /// A plain status, as a tunnel without that route answers.
    Status(u16),
}

/// A tunnel on loopback: `/health` and `/stream/…` each go where told.
pub async fn fake_tunnel(health: Route, stream: Route) -> pronto::fakes::Running {
    let http = reqwest::Client::new();
    let router = Router::new().fallback(move |request: Request| {
        let route = if request.uri().path().starts_with("/stream/") {
            stream.clone()
        } else {
            health.clone()
        };
        let http = http.clone();
        async move { answer(route, request, &http).await }
    });
    pronto::fakes::serve(router, "").await
}

async fn answer(route: Route, request: Request, http: &reqwest::Client) -> Response {
    match route {
        Route::Status(status) => StatusCode::from_u16(status)
            .expect("status")
            .into_response(),
        Route::CloudflarePage(status) => {
            let page = format!(
                "<!DOCTYPE html><html><head><title>{status} | Cloudflare</title></head><body>Error {status}</body></html>"
            );
            let mut response =
                (StatusCode::from_u16(status).expect("status"), page).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=UTF-8"),
            );
            headers.insert(header::SERVER, HeaderValue::from_static("cloudflare"));
            headers.insert("cf-ray", HeaderValue::from_static("8c0ffee0c0ffee00-LHR"));
            response
        }
        Route::Forward(upstream) => {
            let Some(base) = upstream.get() else {
                return StatusCode::BAD_GATEWAY.into_response();
            };
            let url = format!("{base}{}", request.uri().path());
            let mut forward = http.get(url);
            for (name, value) in request.headers() {
                if name != header::HOST {
                    forward = forward.header(name, value);
                }
            }
            match forward.send().await {
                Ok(upstream) => {
                    let status = upstream.status();
                    let body = upstream.bytes().await.unwrap_or_default();
                    (status, Body::from(body)).into_response()
                }
                Err(_) => StatusCode::BAD_GATEWAY.into_response(),
            }
        }
    }
}

/// `host:port` of a base URL, as the lines name it.
pub fn host(base_url: &str) -> &str {
    let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// An echo-mode Pronto reached at its own loopback URL, its history in `dir`.
pub async fn own_server(dir: &Scratch) -> TestServer {
    let database = dir.database("server");
    TestServer::with(
        &[("PUBLIC_BASE_URL", OWN_URL), ("DATABASE_URL", &database)],
        None,
    )
    .await
}
