//! The dashboard in a real browser: Debian's Chromium, headless, driven
//! through its chromedriver (WebDriver, with `fantoccini`) against a real
//! server on loopback with the fake providers. Nothing is downloaded: when
//! `/usr/bin/chromedriver` is missing the tests say so and pass (CI installs
//! `chromium` and `chromium-driver`).
//!
//! The page is opened at `http://localhost:PORT`, a secure context, so the
//! browser allows the (fake) microphone. Chromium's fake capture device plays
//! `tests/fixtures/hello.wav` in a loop: speech the server's VAD hears.
//!
//! One browser at a time (a lock): CI has two cores, and each test waits
//! for what the page shows, never for a fixed time. On a failure the page's
//! screenshot goes to `target/browser-screenshots/<test>.png`.

mod agents;
mod dashboard;

use std::future::Future;
use std::net::TcpListener;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use pronto::fakes::llm_reply::Reply;
use pronto::sim::Call;
use reqwest::Method;
use serde_json::{Value, json};

use crate::agent_world::{GREETING, Provider, World, hear_mark, say_hello_and_hear};
use crate::harness::{API_TOKEN, WAIT, operator_actions, temp_dir};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// How long the page may take to show something: generous, since it only
/// matters when something is broken.
const PAGE_WAIT: Duration = Duration::from_secs(20);

/// One browser at a time.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Whether the browser tests can run here; says why not when they cannot.
fn browser_available() -> bool {
    let ok = Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists();
    if !ok {
        eprintln!(
            "skipped: browser tests need {CHROMEDRIVER} and {CHROMIUM} (apt-get install chromium chromium-driver)"
        );
    }
    ok
}

/// chromedriver on a free port, with a Chromium session. Dropping it ends
/// the driver and the browser it started (its process group).
struct Browser {
    client: Option<Client>,
    driver: Child,
}

impl Browser {
    async fn start() -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut command = Command::new(CHROMEDRIVER);
        command
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Its own process group, so that the browser it starts ends with it.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let driver = command.spawn().expect("chromedriver starts");
        let mut browser = Browser {
            client: None,
            driver,
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + PAGE_WAIT;
        while reqwest::get(format!("{url}/status")).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let fake_mic = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hello.wav");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    "--window-size=1200,1000",
                    "--use-fake-ui-for-media-stream",
                    "--use-fake-device-for-media-stream",
                    format!("--use-file-for-fake-audio-capture={}", fake_mic.display()),
                    "--autoplay-policy=no-user-gesture-required",
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        let client = ClientBuilder::rustls()
            .expect("rustls")
            .capabilities(capabilities)
            .connect(&url)
            .await
            .expect("a Chromium session");
        browser.client = Some(client);
        browser
    }

    fn client(&self) -> Client {
        self.client.clone().expect("a session")
    }

    /// Saves the page as `target/browser-screenshots/<name>.png` and says where.
    async fn screenshot(&self, name: &str) {
        let Some(client) = &self.client else { return };
        let dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
            .join("browser-screenshots");
        let path = dir.join(format!("{name}.png"));
        match client.screenshot().await {
            Ok(png) => {
                match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, png)) {
                    Ok(()) => eprintln!("screenshot of the page: {}", path.display()),
                    Err(e) => eprintln!("cannot save the screenshot to {}: {e}", path.display()),
                }
            }
            Err(e) => eprintln!("cannot take a screenshot: {e}"),
        }
    }

    async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), client.close()).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The browser is a child of chromedriver in its process group: end both.
        #[cfg(unix)]
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The dashboard of one server, in the browser.
struct Page {
    client: Client,
    /// `http://localhost:PORT`: a secure context, unlike `127.0.0.1`'s name
    /// in some browsers, and the origin the server checks against `Host`.
    base: String,
}

impl Page {
    async fn open(&self, hash: &str) {
        self.client
            .goto(&format!("{}/dashboard{hash}", self.base))
            .await
            .expect("the dashboard loads");
    }

    /// The value of a JavaScript expression.
    async fn eval(&self, expression: &str) -> Value {
        self.client
            .execute(&format!("return ({expression});"), vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {expression}: {e}"))
    }

    /// Waits until `expression` is truthy in the page, and returns its value.
    async fn until(&self, what: &str, expression: &str) -> Value {
        let deadline = Instant::now() + PAGE_WAIT;
        loop {
            let value = self.eval(expression).await;
            if truthy(&value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {PAGE_WAIT:?} waiting for {what} (last: {value})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the element `selector` names, once it is there.
    async fn click(&self, what: &str, selector: &str) {
        let selector = serde_json::to_string(selector).expect("a string");
        self.until(
            what,
            &format!(
                "(() => {{ const el = document.querySelector({selector}); \
                 if (!el || el.disabled || el.closest('[hidden]')) return false; \
                 el.scrollIntoView({{block: 'center'}}); el.click(); return true; }})()"
            ),
        )
        .await;
    }

    /// Signs in with the API token through the form.
    async fn sign_in(&self) {
        self.open("#/live").await;
        self.until(
            "the sign-in form",
            "!document.querySelector('#signin').hidden",
        )
        .await;
        self.client
            .find(Locator::Css("#token"))
            .await
            .expect("the token field")
            .send_keys(API_TOKEN)
            .await
            .expect("typing the token");
        self.click("the sign-in button", "#signin-submit").await;
        self.until("signed in", "document.body.dataset.signedIn === 'true'")
            .await;
    }

    /// The text of the element `selector` names ("" when it is not there).
    async fn text(&self, selector: &str) -> String {
        let selector = serde_json::to_string(selector).expect("a string");
        self.eval(&format!(
            "document.querySelector({selector})?.textContent ?? ''"
        ))
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Waits until the element `selector` names shows `text`.
    async fn until_text(&self, what: &str, selector: &str, text: &str) {
        let selector = serde_json::to_string(selector).expect("a string");
        let text = serde_json::to_string(text).expect("a string");
        self.until(
            what,
            &format!("(document.querySelector({selector})?.textContent ?? '').includes({text})"),
        )
        .await;
    }

    /// Clicks OK in the page's confirmation dialog.
    async fn confirm(&self, what: &str) {
        self.until(what, "document.querySelector('#dialog').open")
            .await;
        self.click(what, "#dialog-ok").await;
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// Runs `body` with the dashboard of `w`'s server in a fresh browser, one
/// test at a time; on a panic, screenshots the page first. Skips (passes)
/// without a browser.
async fn in_browser<F, Fut>(name: &str, w: &World, body: F)
where
    F: FnOnce(Page) -> Fut,
    Fut: Future<Output = ()>,
{
    let browser = Browser::start().await;
    let page = Page {
        client: browser.client(),
        base: w.server.url.replace("127.0.0.1", "localhost"),
    };
    let outcome = AssertUnwindSafe(body(page)).catch_unwind().await;
    if let Err(panic) = outcome {
        browser.screenshot(name).await;
        browser.close().await;
        std::panic::resume_unwind(panic);
    }
    browser.close().await;
}

/// This test's turn at the browser and a server in agent mode with the
/// fakes and recordings on; `None` (skip) without a browser.
async fn setup() -> Option<(tokio::sync::MutexGuard<'static, ()>, World)> {
    if !browser_available() {
        return None;
    }
    let turn = ONE_BROWSER.lock().await;
    let dir = temp_dir("browser-recordings");
    let dir = dir.to_string_lossy().into_owned();
    let w = World::start_with(
        Provider::OpenAi,
        false,
        &[
            ("PRONTO_STORE_RECORDINGS", "true"),
            ("PRONTO_STORE_RECORDINGS_DIR", dir.as_str()),
        ],
    )
    .await;
    Some((turn, w))
}

/// The card of a call in the live view, as a selector.
fn card(sid: &str) -> String {
    format!("#live-cards [data-sid=\"{sid}\"]")
}
