//! The dashboard's API, as a browser and an operator use it: signing in with
//! a cookie and the Origin rules that keep other sites out, the live event
//! stream, listening in, stepping in (say, hang up, transfer), a test call
//! that takes the phone path, and history search and export.

use futures_util::StreamExt;
use pronto::fakes::llm_reply::Reply;
use pronto::http::auth::Sessions;
use pronto::redact::Secret;
use pronto::sim::{Call, SignatureHeader, StreamOptions};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::agent_world::{Provider, TRANSFER_TO, World, hear_mark, say_hello_and_hear};
use crate::harness::{self, API_TOKEN, PUBLIC, TestServer, WAIT, eventually, operator_actions};

/// The server's own origin, as its page has it.
fn origin(server: &TestServer) -> String {
    server.url.clone()
}

/// Signs in as the page does; the cookie's `name=value`.
async fn sign_in(server: &TestServer) -> String {
    let resp = server
        .http()
        .post(format!("{}/api/session", server.url))
        .header("origin", origin(server))
        .json(&json!({ "token": API_TOKEN }))
        .send()
        .await
        .expect("sign in");
    assert_eq!(resp.status(), 200);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a cookie")
        .to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: not Secure");
    cookie.split(';').next().expect("name=value").to_string()
}

/// A request with the cookie (and `origin`, if any): its status.
async fn with_cookie(
    server: &TestServer,
    method: Method,
    path: &str,
    cookie: &str,
    origin: Option<&str>,
) -> u16 {
    let mut req = server
        .http()
        .request(method, format!("{}{path}", server.url))
        .header("cookie", cookie);
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    if let Some(body) = matches!(path, "/api/calls").then(|| json!({})) {
        req = req.json(&body);
    }
    req.send().await.expect("request").status().as_u16()
}

#[tokio::test]
async fn a_browser_signs_in_with_the_token_and_out_again() {
    let server = TestServer::start().await;
    let wrong = server
        .http()
        .post(format!("{}/api/session", server.url))
        .json(&json!({ "token": "guess" }))
        .send()
        .await
        .expect("sign in");
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    let (status, _) = server.get_json("/api/session", None).await;
    assert_eq!(status, 401, "not signed in");

    let cookie = sign_in(&server).await;
    let own = origin(&server);
    for path in ["/api/status", "/api/overview", "/api/calls", "/api/session"] {
        assert_eq!(
            with_cookie(&server, Method::GET, path, &cookie, None).await,
            200,
            "{path}"
        );
    }
    let out = server
        .http()
        .delete(format!("{}/api/session", server.url))
        .header("cookie", &cookie)
        .header("origin", &own)
        .send()
        .await
        .expect("sign out");
    assert_eq!(out.status(), 204);
    assert!(
        out.headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.contains("Max-Age=0")),
        "the cookie is cleared"
    );
    assert_eq!(
        with_cookie(&server, Method::GET, "/api/status", &cookie, None).await,
        401,
        "a signed-out session is refused even if the browser kept the cookie"
    );
}

#[tokio::test]
async fn another_site_cannot_use_the_cookie_and_forged_or_expired_cookies_are_refused() {
    let server = TestServer::start().await;
    let cookie = sign_in(&server).await;
    let own = origin(&server);
    // A cross-site form post: the browser sends the other site's Origin.
    let evil = Some("http://evil.test");
    assert_eq!(
        with_cookie(&server, Method::POST, "/api/calls", &cookie, evil).await,
        403
    );
    assert_eq!(
        with_cookie(&server, Method::DELETE, "/api/calls/CA0", &cookie, evil).await,
        403
    );
    // A cookie alone, with no Origin at all, cannot change anything.
    assert_eq!(
        with_cookie(&server, Method::POST, "/api/test-call", &cookie, None).await,
        403
    );
    // From the page itself it goes through (here: a bad body, so a 400).
    assert_eq!(
        with_cookie(&server, Method::POST, "/api/calls", &cookie, Some(&own)).await,
        400
    );
    // A script with the token has no Origin and needs none.
    let (status, _) = server
        .api(Method::POST, "/api/calls", Some(json!({})))
        .await;
    assert_eq!(status, 400);
    // Signing in from another site is refused too (login CSRF).
    let resp = server
        .http()
        .post(format!("{}/api/session", server.url))
        .header("origin", "http://evil.test")
        .json(&json!({ "token": API_TOKEN }))
        .send()
        .await
        .expect("sign in");
    assert_eq!(resp.status(), 403);

    // A WebSocket upgrade from another origin, cookie and all.
    let ws = ws_request(
        &server,
        "/api/test-call/x",
        &[("cookie", &cookie)],
        "http://evil.test",
    );
    match tokio_tungstenite::connect_async(ws).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("upgrade from another origin: {:?}", other.map(|_| ())),
    }

    // Forged: a tag that does not match, another key, an expiry moved on.
    let sessions = Sessions::new(Some(&Secret::new(String::from(API_TOKEN))));
    let now = chrono::Utc::now();
    let (expired, _) = sessions
        .issue(now - chrono::Duration::hours(13))
        .expect("a key");
    let other = Sessions::new(Some(&Secret::new(String::from("another token"))));
    let (foreign, _) = other.issue(now).expect("a key");
    let (genuine, _) = sessions.issue(now).expect("a key");
    let mut parts: Vec<String> = genuine.split('.').map(String::from).collect();
    parts[1] = (now.timestamp() + 10 * 365 * 86400).to_string();
    let moved = parts.join(".");
    for (what, value) in [
        ("expired", expired),
        ("foreign", foreign),
        ("moved", moved),
        ("junk", "v1.1.2.3".into()),
    ] {
        let cookie = format!("pronto_session={value}");
        assert_eq!(
            with_cookie(&server, Method::GET, "/api/status", &cookie, None).await,
            401,
            "{what}"
        );
    }
    let genuine = format!("pronto_session={genuine}");
    assert_eq!(
        with_cookie(&server, Method::GET, "/api/status", &genuine, None).await,
        200,
        "a cookie signed with the API token's key works on any replica"
    );
}

fn ws_request(
    server: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
    origin: &str,
) -> tungstenite::handshake::client::Request {
    let url = format!("{}{path}", server.url.replacen("http", "ws", 1));
    let mut request = url.into_client_request().expect("request");
    let h = request.headers_mut();
    h.insert("origin", origin.parse().expect("origin"));
    for (name, value) in headers {
        h.insert(
            tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            value.parse().expect("value"),
        );
    }
    request
}

/// Server-sent events, read as they come: `(event, data)`.
struct Events {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl Events {
    async fn open(server: &TestServer) -> Events {
        let resp = server
            .http()
            .get(format!("{}/api/events", server.url))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .expect("events");
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        Events {
            body: Box::pin(resp.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped).
    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(n) = line.strip_prefix("event: ") {
                        name = n.to_string();
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data.push_str(d);
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return (name, serde_json::from_str(&data).expect("JSON data"));
            }
            let chunk = tokio::time::timeout(WAIT, self.body.next())
                .await
                .expect("an event in time")
                .expect("the stream goes on")
                .expect("bytes");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Skips events until one satisfies `pred`.
    async fn until(&mut self, what: &str, pred: impl Fn(&str, &Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            assert!(tokio::time::Instant::now() < deadline, "no event: {what}");
            let (name, data) = self.next().await;
            if pred(&name, &data) {
                return data;
            }
        }
    }
}

#[tokio::test]
async fn the_event_stream_shows_a_call_come_grow_and_go() {
    let w = World::start(Provider::Anthropic).await;
    w.audio.push_transcript("When are you open?");
    w.llm
        .fake()
        .push_reply(Reply::text("We open at nine every morning."));
    let mut events = Events::open(&w.server).await;
    let (name, calls) = events.next().await;
    assert_eq!(
        (name.as_str(), calls),
        ("calls", json!([])),
        "first, at once"
    );

    let call = w.dial_and_hear_greeting().await;
    let sid = call.call_sid().to_string();
    let shown = events
        .until("the call", |name, c| name == "call" && c["call_sid"] == sid)
        .await;
    assert_eq!(shown["from"], "+*******0001", "masked: {shown}");
    say_hello_and_hear(&call, "t1-s0").await;
    let grown = events
        .until("the answer in the transcript", |name, c| {
            name == "call" && c["transcript"].to_string().contains("We open at nine")
        })
        .await;
    assert_eq!(grown["transcript"][1]["caller"], "When are you open?");
    assert!(grown["transcript"][1]["latency"]["voice_to_voice_ms"].is_u64());
    call.hang_up().await.expect("report");
    events
        .until("the call to leave", |name, c| {
            name == "ended" && c["call_sid"] == sid
        })
        .await;
}

/// Opens a listener on `sid` with the token.
async fn listen(
    server: &TestServer,
    sid: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let auth = format!("Bearer {API_TOKEN}");
    let request = ws_request(
        server,
        &format!("/api/calls/{sid}/listen"),
        &[("authorization", &auth)],
        &server.url,
    );
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("listen upgrade");
    ws
}

#[tokio::test]
async fn an_operator_listens_in_to_both_sides_and_hears_the_end() {
    let w = World::start(Provider::Anthropic).await;
    w.audio.push_transcript("Hello there.");
    w.llm
        .fake()
        .push_reply(Reply::text("Hello! How can I help you today?"));
    let call = w.dial_and_hear_greeting().await;
    let sid = call.call_sid().to_string();
    // Not a call here: a clear refusal, before any upgrade.
    let (status, _) = w
        .server
        .api(
            Method::GET,
            "/api/calls/CA00000000000000000000000000000000/listen",
            None,
        )
        .await;
    assert_eq!(status, 404);

    let mut ws = listen(&w.server, &sid).await;
    call.say(&harness::fixture("hello.wav"));
    let (mut caller, mut agent) = (0usize, 0usize);
    let deadline = tokio::time::Instant::now() + WAIT;
    // A second of the caller; the agent's short answer (about half a second).
    while caller < 8000 || agent < 2400 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "heard {caller} bytes of the caller, {agent} of the agent"
        );
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => match b.first() {
                Some(0) => caller += b.len() - 1,
                Some(1) => agent += b.len() - 1,
                other => panic!("unknown side {other:?}"),
            },
            Ok(Some(Ok(_))) => {}
            other => panic!("the listener stopped: {other:?}"),
        }
    }
    // Counted among the dashboard's sessions while it lasts.
    let metrics = crate::metrics::scrape(&w.server).await;
    let listening =
        crate::metrics::value(&metrics, "pronto_dashboard_sessions", &[("kind", "listen")]);
    assert!(listening >= 1.0, "{listening} listeners counted");
    // The call's record says someone listened, and who.
    let status = w
        .server
        .wait_status("the listener recorded", |s| {
            s["calls"][0]["events"].to_string().contains("\"listen\"")
        })
        .await;
    assert!(
        status["calls"][0]["events"]
            .to_string()
            .contains("api-token"),
        "{status}"
    );
    call.hang_up().await.expect("report");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        assert!(tokio::time::Instant::now() < deadline, "no end message");
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.as_str() == r#"{"event":"ended"}"# => break,
            Ok(Some(Ok(_))) => {}
            other => panic!("closed without saying the call ended: {other:?}"),
        }
    }
    let _ = ws.close(None).await;
}

#[tokio::test]
async fn an_operator_says_a_line_in_the_agents_voice_then_hangs_up() {
    let w = World::start(Provider::Anthropic).await;
    let call = w.dial_and_hear_greeting().await;
    let sid = call.call_sid().to_string();
    let say = |body: Value| {
        let server = &w.server;
        let sid = sid.clone();
        async move {
            server
                .api(Method::POST, &format!("/api/calls/{sid}/say"), Some(body))
                .await
        }
    };
    assert_eq!(say(json!({ "text": "  " })).await.0, 400);
    assert_eq!(say(json!({ "txt": "Hi" })).await.0, 400);
    let (status, body) = say(json!({ "text": "A colleague will call you back today." })).await;
    assert_eq!(status, 202, "{body}");
    hear_mark(&call, "t1-s0").await;
    assert!(
        w.tts_texts()
            .contains(&"A colleague will call you back today.".to_string()),
        "spoken by the agent's TTS"
    );
    let status = w
        .server
        .wait_status("the operator's turn", |s| {
            s["calls"][0]["transcript"][1]["by_operator"] == true
        })
        .await;
    assert_eq!(
        status["calls"][0]["transcript"][1]["agent_heard"],
        "A colleague will call you back today."
    );

    let (status, _) = w
        .server
        .api(
            Method::POST,
            &format!("/api/calls/{sid}/hangup"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 202);
    eventually("the hang-up through Twilio's REST API", || {
        w.rest
            .updates()
            .iter()
            .any(|u| u.call_sid == sid && u.field("Status") == Some("completed"))
            .then_some(())
    })
    .await;
    let _ = call.hang_up().await;
    assert_eq!(w.server.end_reason(&sid, WAIT).await, "operator_hung_up");
    let (_, record) = w
        .server
        .api(Method::GET, &format!("/api/calls/{sid}"), None)
        .await;
    assert_eq!(record["turns"][1]["by_operator"], true, "{record}");
    // The turns are on the recording's clock, in order.
    let at = |n: usize| record["turns"][n]["at_ms"].as_u64().expect("at_ms");
    assert!(at(0) < at(1), "{record}");
    assert_eq!(operator_actions(&record), ["say", "hang_up"], "{record}");
}

#[tokio::test]
async fn an_operator_transfers_the_caller_to_the_configured_number() {
    let w = World::start(Provider::Anthropic).await;
    let call = w.dial_and_hear_greeting().await;
    let sid = call.call_sid().to_string();
    let (status, _) = w
        .server
        .api(
            Method::POST,
            &format!("/api/calls/{sid}/transfer"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 202);
    let update = eventually("the redirect through Twilio's REST API", || {
        w.rest.updates().into_iter().find(|u| u.call_sid == sid)
    })
    .await;
    assert!(
        update
            .field("Twiml")
            .is_some_and(|t| t.contains(TRANSFER_TO)),
        "{update:?}"
    );
    let _ = call.hang_up().await;
    assert_eq!(w.server.end_reason(&sid, WAIT).await, "transferred");
    // Without a number there is nothing to transfer to.
    let server = TestServer::start().await;
    let (status, body) = server
        .api(
            Method::POST,
            "/api/calls/CA00000000000000000000000000000000/transfer",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test]
async fn a_test_call_from_the_browser_takes_the_phone_path() {
    let w = World::start(Provider::Anthropic).await;
    w.audio.push_transcript("Do you deliver?");
    w.llm.fake().push_reply(Reply::text("Yes, every weekday."));
    let (status, created) = w
        .server
        .api(Method::POST, "/api/test-call", Some(json!({})))
        .await;
    assert_eq!(status, 201, "{created}");
    let sid = created["call_sid"].as_str().expect("sid").to_string();
    let stream_url = created["stream_url"].as_str().expect("url").to_string();
    assert!(stream_url.starts_with("/api/test-call/"));
    let options = StreamOptions {
        call_sid: Some(sid.clone()),
        custom_parameters: vec![("Direction".into(), "browser".into())],
        signature: SignatureHeader::Omit,
        headers: vec![("authorization".into(), format!("Bearer {API_TOKEN}"))],
        ..StreamOptions::default()
    };
    let url = format!("{}{stream_url}", PUBLIC.replacen("https", "wss", 1));
    let call = Call::connect_stream(&w.server.fast_sim(), &url, options)
        .await
        .expect("the test call's stream");
    hear_mark(&call, "t0-s0").await;
    say_hello_and_hear(&call, "t1-s0").await;
    let status = w.server.wait_turns(1).await;
    assert_eq!(status["calls"][0]["direction"], "browser");
    assert_eq!(
        status["calls"][0]["transcript"][1]["agent_heard"],
        "Yes, every weekday."
    );
    // The token was for one stream.
    let again = StreamOptions {
        signature: SignatureHeader::Omit,
        headers: vec![("authorization".into(), format!("Bearer {API_TOKEN}"))],
        ..StreamOptions::default()
    };
    assert!(
        Call::connect_stream(&w.server.fast_sim(), &url, again)
            .await
            .is_err(),
        "a used token"
    );
    call.hang_up().await.expect("report");
    assert_eq!(w.server.end_reason(&sid, WAIT).await, "caller_hung_up");
    let (_, record) = w
        .server
        .api(Method::GET, &format!("/api/calls/{sid}"), None)
        .await;
    assert_eq!(record["direction"], "browser");
    assert_eq!(record["turns"][1]["caller"], "Do you deliver?");
}

#[tokio::test]
async fn history_is_searched_exported_and_summed_up_for_today() {
    let w = World::start(Provider::Anthropic).await;
    w.audio.push_transcript("Do you sell bicycles?");
    w.llm
        .fake()
        .push_reply(Reply::text("We do, 50% off today."));
    let call = w.dial_and_hear_greeting().await;
    let sid = call.call_sid().to_string();
    say_hello_and_hear(&call, "t1-s0").await;
    call.hang_up().await.expect("report");
    w.server.end_reason(&sid, WAIT).await;

    let sids = |page: &Value| -> Vec<String> {
        page["calls"]
            .as_array()
            .expect("calls")
            .iter()
            .filter_map(|c| c["call_sid"].as_str().map(String::from))
            .collect()
    };
    for (query, found) in [
        ("q=BICYCLES", true),
        ("q=50%25%20off", true),
        ("q=motorbikes", false),
        ("end_reason=caller_hung_up", true),
        ("end_reason=transferred", false),
        ("end_reason=caller_hung_up&q=bicycles", true),
    ] {
        let (status, page) = w
            .server
            .api(Method::GET, &format!("/api/calls?{query}"), None)
            .await;
        assert_eq!(status, 200, "{query}: {page}");
        assert_eq!(sids(&page).contains(&sid), found, "{query}: {page}");
    }
    let (status, body) = w
        .server
        .api(Method::GET, "/api/calls?end_reason=hung_up", None)
        .await;
    assert_eq!(status, 400, "{body}");

    let (status, exported) = w
        .server
        .api(Method::GET, "/api/calls/export.json?q=bicycles", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(exported[0]["call_sid"], sid, "{exported}");
    let csv = w
        .server
        .http()
        .get(format!("{}/api/calls/export.csv", w.server.url))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("csv");
    assert_eq!(
        csv.headers()
            .get("content-disposition")
            .and_then(|v| v.to_str().ok()),
        Some("attachment; filename=\"calls.csv\"")
    );
    let csv = csv.text().await.expect("text");
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .is_some_and(|h| h.starts_with("call_sid,direction,from"))
    );
    let row = lines.next().expect("a row");
    // A masked number would start a spreadsheet formula: it is quoted as text.
    assert!(
        row.starts_with(&format!("\"{sid}\",\"inbound\",\"'+*******0001\"")),
        "{row}"
    );

    let (status, overview) = w.server.api(Method::GET, "/api/overview", None).await;
    assert_eq!(status, 200);
    assert_eq!(overview["today"]["calls"], 1, "{overview}");
    assert_eq!(overview["today"]["end_reasons"]["caller_hung_up"], 1);
    assert_eq!(overview["today"]["failed"], 0);
    assert_eq!(overview["health"]["mode"], "agent");
    assert_eq!(overview["budget_ms"], 1000);
    assert_eq!(overview["transfer"], true);
    assert_eq!(overview["say"], true);
}

#[tokio::test]
async fn a_call_record_names_each_key_once() {
    let w = World::start(Provider::Anthropic).await;
    let call = w.dial_and_hear_greeting().await;
    let sid = call.call_sid().to_string();
    call.hang_up().await.expect("report");
    w.server.end_reason(&sid, WAIT).await;
    let body = w
        .server
        .http()
        .get(format!("{}/api/calls/{sid}", w.server.url))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("record")
        .text()
        .await
        .expect("body");
    assert_eq!(body.matches("\"turns\":").count(), 1, "{body}");
    let record: Value = serde_json::from_str(&body).expect("JSON");
    assert!(record["turns"].is_array(), "the list, not the count");
}
