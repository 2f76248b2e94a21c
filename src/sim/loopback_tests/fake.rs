//! A tiny fake Pronto for the simulator's loopback tests: `/voice` answers
//! TwiML, `/stream/{token}` checks the signature with the server's own
//! `twilio::signature` and then acts out one scripted behaviour ([`Act`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::super::*;
use crate::twilio::{signature, twiml};

pub(super) const TOKEN: &str = "test-auth-token";
pub(super) const PUBLIC: &str = "https://voice.example.com";
pub(super) const WAIT: Duration = Duration::from_secs(5);

/// What the fake does once the stream has started.
#[derive(Clone, Copy)]
pub(super) enum Act {
    /// 100 ms of sound, then mark "greeting"; then listen.
    Greet,
    /// 1 s of sound, then close with this code and reason.
    CloseWith(u16, &'static str),
    /// A binary frame, non-JSON, a wrong streamSid, then a valid mark "ok".
    Garbage,
    /// 1 s of sound, marks "a" and "b", then `clear` after 100 ms.
    ClearSoon,
    /// Reply 200 ms of sound + mark "reply" when the caller stops talking.
    Reply,
}

#[derive(Clone)]
pub(super) struct Fake {
    act: Act,
    /// Every text message the fake received, parsed.
    inbound: Arc<Mutex<Vec<Value>>>,
}

pub(super) fn loud_mulaw(ms: usize) -> Vec<u8> {
    let pcm: Vec<i16> = (0..ms * 8)
        .map(|i| if i % 8 < 4 { 8000 } else { -8000 })
        .collect();
    codec::encode(&pcm)
}

pub(super) fn media(sid: &str, mulaw: &[u8]) -> Message {
    let payload = STANDARD.encode(mulaw);
    Message::Text(
        json!({"event":"media","streamSid":sid,"media":{"payload":payload}})
            .to_string()
            .into(),
    )
}

pub(super) fn mark(sid: &str, name: &str) -> Message {
    Message::Text(
        json!({"event":"mark","streamSid":sid,"mark":{"name":name}})
            .to_string()
            .into(),
    )
}

pub(super) async fn voice(headers: HeaderMap, body: String) -> Response {
    let params: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let header = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok());
    if signature::validate_form(TOKEN, &format!("{PUBLIC}/voice"), &params, header).is_err() {
        return StatusCode::FORBIDDEN.into_response();
    }
    let call_sid = params
        .iter()
        .find(|(k, _)| k == "CallSid")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let url = format!("{}/stream/tok123", signature::websocket_url(PUBLIC));
    twiml::connect_stream(None, &url, &[("callSid", &call_sid)]).into_response()
}

pub(super) async fn stream(
    State(fake): State<Fake>,
    Path(token): Path<String>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let url = format!("{}/stream/{token}", signature::websocket_url(PUBLIC));
    let header = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok());
    if signature::validate_websocket(TOKEN, &url, header).is_err() {
        return StatusCode::FORBIDDEN.into_response();
    }
    upgrade.on_upgrade(move |socket| run_fake(socket, fake))
}

pub(super) async fn run_fake(mut ws: WebSocket, fake: Fake) {
    // Read up to `start` to learn the streamSid.
    let mut sid = String::new();
    while let Some(Ok(Message::Text(t))) = ws.recv().await {
        let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
        fake.inbound.lock().unwrap().push(v.clone());
        if v["event"] == "start" {
            sid = v["streamSid"].as_str().unwrap_or_default().to_string();
            break;
        }
    }
    match fake.act {
        Act::Greet => {
            let _ = ws.send(media(&sid, &loud_mulaw(100))).await;
            let _ = ws.send(mark(&sid, "greeting")).await;
        }
        Act::CloseWith(code, reason) => {
            let _ = ws.send(media(&sid, &loud_mulaw(1000))).await;
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            let _ = ws.send(Message::Close(Some(frame))).await;
        }
        Act::Garbage => {
            let _ = ws.send(Message::Binary(vec![1, 2, 3].into())).await;
            let _ = ws.send(Message::Text("nope".into())).await;
            let _ = ws.send(media("MZwrong", &[0xFF; 8])).await;
            let _ = ws.send(mark(&sid, "ok")).await;
        }
        Act::ClearSoon => {
            let _ = ws.send(media(&sid, &loud_mulaw(1000))).await;
            let _ = ws.send(mark(&sid, "a")).await;
            let _ = ws.send(mark(&sid, "b")).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let clear = json!({"event":"clear","streamSid":sid}).to_string();
            let _ = ws.send(Message::Text(clear.into())).await;
        }
        Act::Reply => {}
    }
    // Listen; for `Reply`, answer when the caller falls quiet after speech.
    let (mut heard_speech, mut quiet_frames) = (false, 0);
    while let Some(Ok(msg)) = ws.recv().await {
        let Message::Text(t) = msg else { continue };
        let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
        fake.inbound.lock().unwrap().push(v.clone());
        if matches!(fake.act, Act::Reply) && v["event"] == "media" {
            let payload = v["media"]["payload"].as_str().unwrap_or_default();
            let pcm = codec::decode(&STANDARD.decode(payload).unwrap_or_default());
            if level::is_audible(&pcm) {
                (heard_speech, quiet_frames) = (true, 0);
            } else if heard_speech {
                quiet_frames += 1;
                if quiet_frames == 10 {
                    heard_speech = false;
                    let _ = ws.send(media(&sid, &loud_mulaw(200))).await;
                    let _ = ws.send(mark(&sid, "reply")).await;
                }
            }
        }
    }
}

/// Starts a fake server; returns its config and the inbound message log.
pub(super) async fn fake(act: Act) -> (SimConfig, Arc<Mutex<Vec<Value>>>) {
    let inbound = Arc::new(Mutex::new(Vec::new()));
    let state = Fake {
        act,
        inbound: inbound.clone(),
    };
    let app = Router::new()
        .route("/voice", post(voice))
        .route("/stream/{token}", get(stream))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Without TCP_NODELAY a small message (a mark) sent right after a large
    // one waits for an ACK, i.e. for the simulator's next media frame.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut cfg = SimConfig::new(format!("http://{addr}"));
    cfg.public_base_url = Some(PUBLIC.into());
    cfg.auth_token = Some(TOKEN.into());
    (cfg, inbound)
}
