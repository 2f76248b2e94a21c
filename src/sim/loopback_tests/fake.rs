//! A tiny fake Pronto for the simulator's loopback tests: `/voice` answers
//! TwiML, `/stream/{token}` checks the signature with the server's own
//! `twilio::signature` and then acts out one scripted behaviour ([`Act`]),
//! writing its messages with the server's own `twilio::media` writer.
//!
//! Not one of the provider fakes in `crate::fakes`: this plays Pronto's part
//! (the server the simulator calls), including what the real server must
//! never do (close mid-call, send garbage, clear at once), which is what the
//! simulator has to cope with.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::Value;

use super::super::*;
use crate::fakes::{Running, serve};
use crate::twilio::media::OutboundWriter;
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

fn loud_mulaw(ms: usize) -> Vec<u8> {
    let pcm: Vec<i16> = (0..ms * 8)
        .map(|i| if i % 8 < 4 { 8000 } else { -8000 })
        .collect();
    codec::encode(&pcm)
}

/// A message of the server's writer, as the WebSocket text it is.
fn text(json: Bytes) -> Message {
    Message::Text(Utf8Bytes::try_from(json).expect("the writer writes UTF-8 JSON"))
}

async fn voice(headers: HeaderMap, body: String) -> Response {
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

async fn stream(
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

async fn run_fake(mut ws: WebSocket, fake: Fake) {
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
    let mut out = OutboundWriter::new(sid);
    match fake.act {
        Act::Greet => {
            let _ = ws.send(text(out.media(&loud_mulaw(100)))).await;
            let _ = ws.send(text(out.mark("greeting"))).await;
        }
        Act::CloseWith(code, reason) => {
            let _ = ws.send(text(out.media(&loud_mulaw(1000)))).await;
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            let _ = ws.send(Message::Close(Some(frame))).await;
        }
        Act::Garbage => {
            let _ = ws.send(Message::Binary(vec![1, 2, 3].into())).await;
            let _ = ws.send(Message::Text("nope".into())).await;
            let wrong = OutboundWriter::new("MZwrong").media(&[0xFF; 8]);
            let _ = ws.send(text(wrong)).await;
            let _ = ws.send(text(out.mark("ok"))).await;
        }
        Act::ClearSoon => {
            let _ = ws.send(text(out.media(&loud_mulaw(1000)))).await;
            let _ = ws.send(text(out.mark("a"))).await;
            let _ = ws.send(text(out.mark("b"))).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = ws.send(text(out.clear())).await;
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
                    let _ = ws.send(text(out.media(&loud_mulaw(200)))).await;
                    let _ = ws.send(text(out.mark("reply"))).await;
                }
            }
        }
    }
}

/// Starts a fake server; returns its config, the inbound message log and the
/// server, which stops when dropped.
pub(super) async fn fake(act: Act) -> (SimConfig, Arc<Mutex<Vec<Value>>>, Running) {
    let inbound = Arc::new(Mutex::new(Vec::new()));
    let state = Fake {
        act,
        inbound: inbound.clone(),
    };
    let app = Router::new()
        .route("/voice", post(voice))
        .route("/stream/{token}", get(stream))
        .with_state(state);
    // With TCP_NODELAY, which it needs: without, a small message (a mark)
    // sent right after a large one waits for an ACK, i.e. for the
    // simulator's next media frame.
    let server = serve(app, "").await;
    let mut cfg = SimConfig::new(server.base_url.clone());
    cfg.public_base_url = Some(PUBLIC.into());
    cfg.auth_token = Some(TOKEN.into());
    (cfg, inbound, server)
}
