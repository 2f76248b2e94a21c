//! Kyutai's Moshi as the engine, through the real server: the simulated
//! caller talks to Pronto as Twilio does, and Pronto talks to the fake
//! Moshi over a real WebSocket in Ogg/Opus. When Moshi talks the caller
//! hears it, and the record holds its words as the agent's turns; the
//! server's end of the session, its error message, a refused upgrade or
//! nothing listening end the call politely (`engine_failed`).
#![cfg(feature = "moshi")]

use std::time::Duration;

use pronto::fakes::moshi::{FakeMoshi, Handshake, MoshiConnection, MoshiFault};
use pronto::s2s::moshi::QUIET_MS;
use pronto::sim::{Call, Event};
use serde_json::Value;

use crate::harness::{API_TOKEN, TestServer, WAIT, eventually, expect_event};

struct World {
    server: TestServer,
    moshi: FakeMoshi,
}

impl World {
    /// Pronto with `[engine] kind = "moshi"` at the fake (after `setup`).
    async fn start(setup: impl FnOnce(&FakeMoshi)) -> World {
        let moshi = FakeMoshi::start().await;
        setup(&moshi);
        let server = World::server(&moshi.url()).await;
        World { server, moshi }
    }

    async fn server(url: &str) -> TestServer {
        TestServer::agent(&[("PRONTO_ENGINE_KIND", "moshi"), ("MOSHI_URL", url)], None).await
    }

    async fn dial(&self) -> Call {
        Call::dial(&self.server.sim()).await.expect("call connects")
    }

    /// The fake's latest connection, once it has `what`.
    async fn connection(
        &self,
        what: &str,
        done: impl Fn(&MoshiConnection) -> bool,
    ) -> MoshiConnection {
        eventually(what, || {
            self.moshi
                .connections()
                .into_iter()
                .next_back()
                .filter(|c| done(c))
        })
        .await
    }

    /// The turns of the call's record, once it has ended.
    async fn turns(&self, sid: &str) -> Vec<Value> {
        self.server.end_reason(sid, WAIT).await;
        let (_, call) = self
            .server
            .get_json(&format!("/api/calls/{sid}"), Some(API_TOKEN))
            .await;
        call["turns"].as_array().cloned().unwrap_or_default()
    }
}

/// How much of `heard` (8 kHz) is loud, in ms (20 ms frames above about
/// -30 dBFS).
fn loud_ms(heard: &[i16]) -> usize {
    heard
        .chunks(160)
        .filter(|frame| {
            let energy: f64 = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
            (energy / frame.len() as f64).sqrt() > 1000.0
        })
        .count()
        * 20
}

/// The call's end, and the words of its agent turns.
async fn agent_words(w: &World, call: Call) -> Vec<String> {
    let sid = call.call_sid().to_string();
    call.hang_up().await.expect("hang up");
    w.turns(&sid)
        .await
        .iter()
        .filter_map(|t| t["agent_heard"].as_str().map(str::to_string))
        .filter(|words| !words.is_empty())
        .collect()
}

#[tokio::test]
async fn the_caller_hears_moshi_and_the_record_has_its_words() {
    // Six words, 80 ms each, from half a second into the call's audio.
    let w = World::start(|m| m.say(500, "Hello there. How can I help?")).await;
    let call = w.dial().await;
    expect_event(&call, "Moshi heard", |e| *e == Event::AudioHeardStart).await;
    expect_event(&call, "Moshi's words end", |e| *e == Event::AudioHeardEnd).await;
    // Its turn is over after Moshi's pause.
    w.server.wait_turns(1).await;
    let heard = call.heard();
    let loud = loud_ms(&heard);
    assert!(
        (300..=700).contains(&loud),
        "{loud} ms of Moshi's voice heard"
    );
    let (_, health) = w.server.get_json("/health", None).await;
    assert_eq!(health["mode"], "moshi", "{health}");
    assert_eq!(health["engine"]["turn_detector"], "moshi", "{health}");
    assert_eq!(health["engine"]["speech_to_text"], "none", "{health}");

    let words = agent_words(&w, call).await;
    assert_eq!(words, ["Hello there. How can I help?"]);
    let c = &w.moshi.connections()[0];
    assert_eq!(c.before_handshake, 0);
    assert!(c.headers_first, "OpusHead first: {c:?}");
    assert_eq!(c.other, 0, "audio only: {c:?}");
    assert!(
        c.audio_ms >= 1000 + QUIET_MS,
        "the caller's audio went on as Ogg/Opus: {c:?}"
    );
    assert_eq!(c.words.len(), 6);
}

#[tokio::test]
async fn the_rust_servers_handshake_and_two_stretches_of_talk() {
    let w = World::start(|m| {
        m.set_handshake(Handshake::Rust);
        m.set_latency(Duration::from_millis(30));
        m.say(200, "Good morning.");
        m.say(2400, "Anything else?");
    })
    .await;
    let call = w.dial().await;
    w.connection("the second stretch said", |c| c.words.len() == 4)
        .await;
    w.server.wait_turns(2).await;
    let words = agent_words(&w, call).await;
    assert_eq!(words, ["Good morning.", "Anything else?"]);
    let c = &w.moshi.connections()[0];
    assert_eq!(c.before_handshake, 0, "nothing sent before the handshake");
}

#[tokio::test]
async fn the_end_of_moshis_session_ends_the_call_politely() {
    let w = World::start(|m| {
        m.say(200, "Hi.");
        m.set_session_ms(Some(1500));
    })
    .await;
    let call = w.dial().await;
    let sid = call.call_sid().to_string();
    assert_eq!(w.server.end_reason(&sid, WAIT).await, "engine_failed");
    expect_event(&call, "Pronto hangs up", |e| matches!(e, Event::Closed(_))).await;
    assert_eq!(w.moshi.connections()[0].closed_with, Some(1000));
    let report = call.hang_up().await.expect("report");
    assert!(report.protocol_errors().is_empty(), "{report}");
}

#[tokio::test]
async fn an_error_from_moshi_ends_the_call_politely() {
    let w = World::start(|m| {
        m.push_fault(MoshiFault::Error {
            after_ms: 600,
            message: "model overloaded".into(),
        });
    })
    .await;
    let call = w.dial().await;
    let sid = call.call_sid().to_string();
    assert_eq!(w.server.end_reason(&sid, WAIT).await, "engine_failed");
    assert_eq!(w.moshi.connections()[0].closed_with, Some(1011));
    let _ = call.hang_up().await;
}

#[tokio::test]
async fn a_refused_or_absent_server_ends_the_call_cleanly() {
    let w = World::start(|m| m.push_fault(MoshiFault::Refuse(503))).await;
    let call = w.dial().await;
    let sid = call.call_sid().to_string();
    assert_eq!(w.server.end_reason(&sid, WAIT).await, "engine_failed");
    let report = call.hang_up().await.expect("report");
    assert!(report.protocol_errors().is_empty(), "{report}");
    assert_eq!(loud_ms(&report.heard), 0, "nothing was played");
    assert!(w.moshi.connections().is_empty(), "no session was opened");

    // Nothing listening at all.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        listener.local_addr().expect("address").port()
    };
    let server = World::server(&format!("ws://127.0.0.1:{port}")).await;
    let call = Call::dial(&server.sim()).await.expect("call connects");
    let sid = call.call_sid().to_string();
    assert_eq!(server.end_reason(&sid, WAIT).await, "engine_failed");
    let _ = call.hang_up().await;
}
