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

/// A call with two turns, after the greeting: what the caller says and what
/// the agent answers.
const TURNS: [(&str, &str); 2] = [
    (
        "What time do you open?",
        "We open at nine. Every day of the week.",
    ),
    ("And on Saturday?", "On Saturday we open at ten."),
];

fn script_two_turns(w: &World) {
    for (caller, agent) in TURNS {
        w.audio.push_transcript(caller);
        w.llm.fake().push_reply(Reply::text(agent));
    }
}

#[tokio::test]
async fn a_call_appears_live_its_transcript_grows_and_it_leaves_when_it_ends() {
    let Some((_turn, w)) = setup().await else {
        return;
    };
    script_two_turns(&w);
    let w = &w;
    in_browser("live_call", w, |page| async move {
        page.sign_in().await;
        page.until("the empty live view", "!document.querySelector('#live-empty').hidden")
            .await;

        let call = w.dial_and_hear_greeting().await;
        let card = card(call.call_sid());
        page.until_text("the call's card with the greeting", &card, GREETING)
            .await;
        // Masked as in the logs: the caller's full number is not on the page.
        let shown = page.text(&card).await;
        assert!(!shown.contains("+15551230001"), "unmasked number: {shown}");

        say_hello_and_hear(&call, "t1-s0").await;
        page.until_text("the first answer", &card, TURNS[0].1).await;
        say_hello_and_hear(&call, "t2-s0").await;
        page.until_text("the second turn's question", &card, TURNS[1].0)
            .await;
        page.until_text("the second turn's answer", &card, TURNS[1].1)
            .await;
        // Each answered turn has its latency waterfall, the latest one open.
        page.until(
            "the second turn's waterfall",
            &format!(
                "document.querySelector('{card} li[data-turn=\"2\"] details[open] .waterfall .wf-bar.total')"
            ),
        )
        .await;

        call.hang_up().await.expect("hung up");
        page.until(
            "the card to leave the live view",
            &format!("document.querySelector('{card}') === null"),
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn an_ended_call_replays_with_its_waveform_and_a_turn_click_seeks() {
    let Some((_turn, w)) = setup().await else {
        return;
    };
    script_two_turns(&w);
    // In real time (not the fast simulator): the recording's clock is the
    // call's, as a phone call's is.
    let call = Call::dial(&w.server.sim()).await.expect("call connects");
    hear_mark(&call, "t0-s0").await;
    say_hello_and_hear(&call, "t1-s0").await;
    hear_mark(&call, "t1-s1").await;
    say_hello_and_hear(&call, "t2-s0").await;
    let sid = call.call_sid().to_string();
    call.hang_up().await.expect("hung up");
    w.server.end_reason(&sid, WAIT).await;
    // The recording is served once it is finished.
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, detail) = w
            .server
            .api(Method::GET, &format!("/api/calls/{sid}"), None)
            .await;
        if detail["recording"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "no recording: {detail}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let w = &w;
    in_browser("replay", w, |page| async move {
        page.sign_in().await;
        page.open("#/calls").await;
        let row = format!("#calls tr[data-sid=\"{sid}\"]");
        page.until("the call in the history", &format!("document.querySelector('{row}')"))
            .await;
        let listed = page.text(&row).await;
        assert!(!listed.contains("+15551230001"), "unmasked in the list: {listed}");
        // Searching the transcripts: a word the caller said finds it, another does not.
        for (words, found) in [("bicycle", false), ("saturday", true)] {
            page.eval(&format!("document.querySelector('#f-q').value = '{words}'"))
                .await;
            page.click("Search", "#filters button[type=submit]").await;
            page.until(
                &format!("the search for {words}"),
                &format!(
                    "document.querySelector('#export-csv').href.endsWith('q={words}') \
                     && (document.querySelector('{row}') !== null) === {found} \
                     && document.querySelectorAll('#calls tbody tr').length === {}",
                    u8::from(found)
                ),
            )
            .await;
        }
        page.click("the call's link", &format!("{row} a")).await;

        // The call page shows the full number.
        page.until_text("the call page", "#view", "+15551230001").await;
        page.until_text("its transcript", "#call-transcript", TURNS[1].1)
            .await;
        let drawn = page
            .until(
                "the waveform drawn",
                "document.querySelector('#waveform')?.dataset.drawn === 'true' \
                 && Number(document.querySelector('#waveform').dataset.peaks)",
            )
            .await;
        assert!(drawn.as_f64().unwrap_or(0.0) > 0.0, "a blank waveform");

        let turn = "#call-transcript li.seekable[data-turn=\"2\"]";
        let at_ms = page
            .until(
                "the second turn placed on the recording",
                &format!("document.querySelector('{turn}')?.dataset.atMs"),
            )
            .await;
        let at_ms: f64 = at_ms.as_str().unwrap_or("0").parse().expect("a number");
        // Where the record says the caller began the turn.
        let (_, detail) = w
            .server
            .api(Method::GET, &format!("/api/calls/{sid}"), None)
            .await;
        let second = &detail["turns"][2];
        let spoke_from = second["at_ms"].as_f64().expect("at_ms")
            - second["latency"]["utterance_ms"].as_f64().expect("utterance_ms");
        assert!(
            at_ms > 0.0 && (at_ms - spoke_from).abs() <= 1.0,
            "the second turn placed at {at_ms} ms, the caller spoke from {spoke_from} ms: {second}"
        );
        page.click("the second turn", turn).await;
        page.until(
            "the audio to move to the second turn",
            &format!(
                "Math.abs(document.querySelector('#replay-audio').currentTime * 1000 - {at_ms}) < 50"
            ),
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn listening_in_plays_both_sides_and_stepping_in_says_and_ends_a_live_call() {
    let Some((_turn, w)) = setup().await else {
        return;
    };
    script_two_turns(&w);
    let w = &w;
    in_browser("listen_in", w, |page| async move {
        page.sign_in().await;
        let call = w.dial_and_hear_greeting().await;
        let card = card(call.call_sid());
        page.until_text("the call's card", &card, GREETING).await;

        page.click("Listen", &format!("{card} [data-action=\"listen\"]"))
            .await;
        page.confirm("the listen-in confirmation").await;
        // The caller's side flows all the time (silence too): it arrives at once.
        let started = Instant::now();
        page.until(
            "the caller's audio",
            "Number(document.querySelector('#player').dataset.bytesCaller) > 0",
        )
        .await;
        eprintln!(
            "listen-in: first caller audio after {:?}",
            started.elapsed()
        );

        // The agent's side: its answer to the caller.
        say_hello_and_hear(&call, "t1-s0").await;
        page.until(
            "the agent's audio",
            "Number(document.querySelector('#player').dataset.bytesAgent) >= 1600",
        )
        .await;
        assert_eq!(
            page.eval("document.querySelector('#player').dataset.state")
                .await,
            "playing"
        );

        page.click("Stop", "#listen-stop").await;
        page.until(
            "the player to close",
            "document.querySelector('#player').hidden",
        )
        .await;

        // Stepping in: the agent's voice says what the operator typed, and
        // the transcript marks it as the operator's; then the operator ends
        // the call.
        page.click("Say…", &format!("{card} [data-action=\"say\"]"))
            .await;
        page.until("the say dialog", "document.querySelector('#dialog-input')")
            .await;
        page.eval(&format!(
            "document.querySelector('#dialog-input').value = '{OPERATOR_LINE}'"
        ))
        .await;
        page.click("Say", "#dialog-ok").await;
        page.until_text(
            "the operator's line in the transcript",
            &format!("{card} .said.operator"),
            OPERATOR_LINE,
        )
        .await;
        page.click("End call", &format!("{card} [data-action=\"hangup\"]"))
            .await;
        page.confirm("the end-call confirmation").await;
        page.until(
            "the ended call to leave the live view",
            &format!("document.querySelector('{card}') === null"),
        )
        .await;
        let sid = call.call_sid().to_string();
        let _ = call.hang_up().await;
        assert_eq!(w.server.end_reason(&sid, WAIT).await, "operator_hung_up");
        let (_, detail) = w
            .server
            .api(Method::GET, &format!("/api/calls/{sid}"), None)
            .await;
        let actions = operator_actions(&detail);
        for action in ["listen", "say", "hang_up"] {
            assert!(
                actions.contains(&action),
                "{action} is not on the record: {detail}"
            );
        }
    })
    .await;
}

/// What the operator has the agent say in the step-in test.
const OPERATOR_LINE: &str = "A colleague will call you back today.";

#[tokio::test]
async fn a_test_call_from_the_browser_microphone_is_answered_by_the_agent() {
    let Some((_turn, w)) = setup().await else {
        return;
    };
    // Every utterance of the looping fake microphone gets the same answer.
    w.audio.set_default_transcript("What time do you open?");
    w.llm
        .fake()
        .set_default_reply(Reply::text("We open at nine."));
    in_browser("test_call", &w, |page| async move {
        page.sign_in().await;
        page.open("#/test").await;
        page.click("Start test call", "#test-start").await;
        page.until(
            "the test call to connect",
            "document.querySelector('#test-call').dataset.state === 'connected'",
        )
        .await;
        page.until_text(
            "the greeting in the test call's transcript",
            "#test-card",
            GREETING,
        )
        .await;
        page.until_text(
            "the caller's words in the transcript",
            "#test-card",
            "What time do you open?",
        )
        .await;
        page.until_text("the agent's answer", "#test-card", "We open at nine.")
            .await;
        page.until(
            "the agent's audio played",
            "Number(document.querySelector('#test-call').dataset.receivedBytes) > 0",
        )
        .await;
        page.click("Hang up", "#test-hangup").await;
        page.until(
            "the test call to end",
            "document.querySelector('#test-call').dataset.state === 'ended'",
        )
        .await;
    })
    .await;
    let (_, list) = w.server.api(Method::GET, "/api/calls", None).await;
    let call = &list["calls"][0];
    assert_eq!(call["direction"], "browser", "{list}");
    let sid = call["call_sid"].as_str().expect("a call").to_string();
    assert_eq!(w.server.end_reason(&sid, WAIT).await, "caller_hung_up");
}

#[tokio::test]
async fn signing_out_returns_to_the_sign_in_form() {
    let Some((_turn, w)) = setup().await else {
        return;
    };
    in_browser("sign_out", &w, |page| async move {
        page.sign_in().await;
        page.until("the live view", "document.querySelector('#live-status')")
            .await;
        page.open("#/health").await;
        page.until_text("the server's mode on the health view", "#health-facts", "agent")
            .await;
        page.click("Sign out", "#sign-out").await;
        page.until(
            "the sign-in form",
            "!document.querySelector('#signin').hidden && document.querySelector('#nav').hidden",
        )
        .await;
        // The cookie is gone: a reload stays signed out, and the API refuses.
        page.open("#/calls").await;
        page.until(
            "the sign-in form after a reload",
            "document.body.dataset.signedIn === 'false'",
        )
        .await;
        let status = page
            .client
            .execute_async(
                "const done = arguments[0]; fetch('/api/overview').then(r => done(r.status), () => done(0));",
                vec![],
            )
            .await
            .expect("fetch");
        assert_eq!(status, 401);
    })
    .await;
}

/// The greetings of the two agents of [`setup_agents`], each its own, so
/// that what a call hears says which agent answered.
const RECEPTION_GREETING: &str = "Front desk, good morning. How can I help you?";
const PRONTO_GREETING: &str = "Pronto, Bottega Verde, buongiorno! Come posso aiutarla?";

fn reception_file() -> String {
    format!(
        "description = \"English front desk\"\n\
         [agent]\nlanguage = \"en\"\nend_call = true\n\
         [tts]\nvoice = \"coral\"\n\
         [lines.en]\ngreeting = \"{RECEPTION_GREETING}\"\n"
    )
}

fn pronto_it_file(description: &str) -> String {
    format!(
        "description = \"{description}\"\n\
         [agent]\nlanguage = \"it\"\n\
         [tts]\nvoice = \"sage\"\n\
         [lines.it]\ngreeting = \"{PRONTO_GREETING}\"\n"
    )
}

/// This test's turn at the browser and a server in agent mode with two
/// agent files in a folder of their own (`[routing] agents_dir`): reception,
/// the routing's default (so the simulator's calls reach it), and
/// pronto-it; `None` (skip) without a browser.
async fn setup_agents() -> Option<(tokio::sync::MutexGuard<'static, ()>, World, PathBuf)> {
    if !browser_available() {
        return None;
    }
    let turn = ONE_BROWSER.lock().await;
    let dir = temp_dir("browser-agents");
    std::fs::write(dir.join("reception.toml"), reception_file()).expect("reception.toml");
    std::fs::write(
        dir.join("pronto-it.toml"),
        pronto_it_file("Centralino in italiano"),
    )
    .expect("pronto-it.toml");
    let agents_dir = dir.to_string_lossy().into_owned();
    let w = World::start_with(
        Provider::OpenAi,
        false,
        &[
            ("PRONTO_ROUTING_AGENTS_DIR", agents_dir.as_str()),
            ("PRONTO_ROUTING_DEFAULT", "reception"),
        ],
    )
    .await;
    Some((turn, w, dir))
}

/// The names of the agents the agents view shows, in its order.
const SHOWN_AGENTS: &str =
    "[...document.querySelectorAll('#agents [data-agent]')].map(a => a.dataset.agent).join(' ')";

#[tokio::test]
async fn the_agents_view_lists_each_agent_and_a_broken_reload_changes_nothing() {
    let Some((_turn, w, dir)) = setup_agents().await else {
        return;
    };
    let dir = &dir;
    in_browser("agents", &w, |page| async move {
        page.sign_in().await;
        page.click("the Agents link", "#nav a[data-route=\"agents\"]")
            .await;
        page.until(
            "the agents listed",
            &format!("{SHOWN_AGENTS} === 'default pronto-it reception'"),
        )
        .await;
        // The routing's default is reached at /voice, the others at their own path.
        for (name, language, voice, path) in [
            ("reception", "en", "coral", "/voice"),
            ("pronto-it", "it", "sage", "/voice/pronto-it"),
        ] {
            let card = format!("#agents [data-agent=\"{name}\"]");
            let webhook = format!("https://pronto.test{path}");
            assert_eq!(page.text(&format!("{card} code.webhook")).await, webhook);
            assert!(
                page.eval(&format!("!!document.querySelector('{card} button[data-action=\"copy\"]')"))
                    .await
                    == true,
                "no copy button on {name}'s card"
            );
            let shown = page.text(&card).await;
            for fact in [language, voice, "agent", &format!("/voice/{name}")] {
                assert!(shown.contains(fact), "{name}'s card lacks {fact}: {shown}");
            }
        }
        // The routing's default says so; the others do not.
        let defaults = page
            .eval("[...document.querySelectorAll('#agents [data-agent] .badge')].map(b => b.closest('[data-agent]').dataset.agent).join(' ')")
            .await;
        assert_eq!(defaults, "reception");
        assert!(page.text("#agents [data-agent=\"pronto-it\"]").await.contains("Centralino in italiano"));

        // A good change: the reload reports it and the list shows it.
        std::fs::write(dir.join("pronto-it.toml"), pronto_it_file("Il centralino, rinnovato"))
            .expect("rewrite pronto-it.toml");
        page.click("Reload", "#agents-reload").await;
        page.until(
            "the reload's report",
            "document.querySelector('#agents-report').dataset.outcome === 'reloaded' \
             && !document.querySelector('#agents-report').hidden",
        )
        .await;
        let changed = page.text("#agents-report [data-change=\"changed\"]").await;
        assert!(changed.contains("pronto-it") && !changed.contains("reception"), "{changed}");
        let unchanged = page.text("#agents-report [data-change=\"unchanged\"]").await;
        assert!(unchanged.contains("reception"), "{unchanged}");
        page.until_text(
            "the new description",
            "#agents [data-agent=\"pronto-it\"]",
            "Il centralino, rinnovato",
        )
        .await;

        // A broken file: the server's error is on the page, as text (the
        // markup in the file stays markup), and nothing changed.
        std::fs::write(dir.join("broken.toml"), "[agent <b id=injected>x</b>\n")
            .expect("broken.toml");
        page.click("Reload", "#agents-reload").await;
        page.until(
            "the refusal",
            "document.querySelector('#agents-report').dataset.outcome === 'refused' \
             && !document.querySelector('#agents-report').hidden",
        )
        .await;
        let refused = page.text("#agents-refused").await;
        assert!(
            refused.contains("broken.toml") && refused.contains("<b id=injected>"),
            "the error does not name the file and quote it: {refused}"
        );
        assert_eq!(
            page.eval("document.querySelector('#agents-refused').children.length + (document.querySelector('#injected') ? 1 : 0)")
                .await,
            0,
            "the error was put in the page as HTML"
        );
        // Drawn afresh from the server: the same agents, the good change kept.
        page.open("#/live").await;
        page.until("the live view", "document.querySelector('#live-status')")
            .await;
        page.open("#/agents").await;
        page.until(
            "the agents listed again",
            &format!("{SHOWN_AGENTS} === 'default pronto-it reception'"),
        )
        .await;
        assert!(page.text("#agents [data-agent=\"pronto-it\"]").await.contains("Il centralino, rinnovato"));
    })
    .await;
    let (_, listed) = w.server.api(Method::GET, "/api/agents", None).await;
    let names: Vec<_> = listed["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["default", "pronto-it", "reception"], "{listed}");
}

#[tokio::test]
async fn each_call_shows_its_agent_live_and_the_history_filters_by_agent() {
    let Some((_turn, w, _dir)) = setup_agents().await else {
        return;
    };
    w.audio.set_default_transcript("What time do you open?");
    w.llm
        .fake()
        .set_default_reply(Reply::text("We open at nine."));
    let w = &w;
    in_browser("agents_calls", w, |page| async move {
        page.sign_in().await;

        // A phone call reaches the routing's default, reception, and its card says so.
        let call = w.dial_and_hear_greeting().await;
        let phoned = call.call_sid().to_string();
        let card = card(&phoned);
        page.until_text("the phone call's card", &card, RECEPTION_GREETING)
            .await;
        assert_eq!(page.text(&format!("{card} .agent-name")).await, "reception");
        call.hang_up().await.expect("hung up");
        page.until(
            "the card to leave the live view",
            &format!("document.querySelector('{card}') === null"),
        )
        .await;
        w.server.end_reason(&phoned, WAIT).await;

        // A test call to the other agent: chosen in the list, which starts at the default.
        page.open("#/test").await;
        page.until(
            "the agents to choose from",
            "document.querySelector('#test-agent')?.dataset.loaded === 'true' \
             && document.querySelector('#test-agent').value === 'reception'",
        )
        .await;
        page.eval(
            "(() => { const s = document.querySelector('#test-agent'); \
             s.value = 'pronto-it'; s.dispatchEvent(new Event('change')); return s.value; })()",
        )
        .await;
        page.click("Start test call", "#test-start").await;
        page.until_text("pronto-it's greeting", "#test-card", PRONTO_GREETING)
            .await;
        assert_eq!(page.text("#test-card .agent-name").await, "pronto-it");
        let tested = page
            .until(
                "the test call's sid",
                "document.querySelector('#test-call').dataset.sid",
            )
            .await
            .as_str()
            .expect("a sid")
            .to_string();
        page.click("Hang up", "#test-hangup").await;
        page.until(
            "the test call to end",
            "document.querySelector('#test-call').dataset.state === 'ended'",
        )
        .await;
        w.server.end_reason(&tested, WAIT).await;

        // The history: each call with its agent, and the filter by agent.
        page.open("#/calls").await;
        let row = |sid: &str| format!("#calls tr[data-sid=\"{sid}\"]");
        page.until(
            "both calls in the history",
            &format!(
                "document.querySelector('{}') && document.querySelector('{}')",
                row(&phoned),
                row(&tested)
            ),
        )
        .await;
        assert_eq!(
            page.text(&format!("{} .agent-name", row(&phoned))).await,
            "reception"
        );
        assert_eq!(
            page.text(&format!("{} .agent-name", row(&tested))).await,
            "pronto-it"
        );
        for (agent, only) in [("pronto-it", &tested), ("reception", &phoned)] {
            page.until(
                "the agent filter's choices",
                &format!("document.querySelector('#f-agent option[value=\"{agent}\"]')"),
            )
            .await;
            page.eval(&format!(
                "document.querySelector('#f-agent').value = '{agent}'"
            ))
            .await;
            page.click("Search", "#filters button[type=submit]").await;
            page.until(
                &format!("only {agent}'s call"),
                &format!(
                    "document.querySelector('#export-csv').href.includes('agent={agent}') \
                     && document.querySelector('#export-json').href.includes('agent={agent}') \
                     && document.querySelectorAll('#calls tbody tr').length === 1 \
                     && document.querySelector('{}') !== null",
                    row(only)
                ),
            )
            .await;
        }

        // The call page names the agent too.
        page.click("the phone call's link", &format!("{} a", row(&phoned)))
            .await;
        page.until(
            "the call page's agent",
            "[...document.querySelectorAll('dl.facts dt')].some(dt => dt.textContent === 'Agent' \
             && dt.nextElementSibling.textContent === 'reception')",
        )
        .await;
    })
    .await;
}
