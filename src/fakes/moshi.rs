//! Fake Kyutai Moshi server (`moshi-server` / `moshi.server`): `GET
//! /api/chat` upgraded to a WebSocket of binary messages, one kind byte then
//! the payload, per
//! <https://github.com/kyutai-labs/moshi/blob/main/rust/protocol.md>.
//!
//! On connect it says it is ready: the Python server's one-byte handshake,
//! or the Rust servers' kind-4 metadata, nine-byte handshake and then the
//! Ogg headers of its stream as a message of their own ([`Handshake`]). For
//! every 80 ms of the client's audio (one Mimi step; the client's Ogg/Opus
//! is decoded only to count it) it sends 80 ms of its own as Ogg/Opus, in
//! two 40 ms pages as the Rust servers do: silence, or a 440 Hz tone while
//! it is scripted to talk ([`FakeMoshi::say`]), with one kind-2 word per
//! step, sent before the step's audio as Moshi's text runs ahead of its
//! voice. After the session's length of client audio it closes (the real
//! servers stop after about five minutes); faults refuse the upgrade or send
//! an error message and close. It records what each connection received.
//!
//! Not modelled: what Moshi would say (the words are scripted), its
//! stopping when talked over, the Python server's one call at a time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;

use super::answer::json_response;
use super::{Faults, Recorded, Running, lock, serve};
use crate::audio::ogg_opus::{OPUS_RATE, OggOpusDecoder, OggOpusEncoder, PacketLength};

/// One Mimi step: 80 ms, 1920 samples at 24 kHz.
pub const STEP_MS: u64 = 80;
const STEP_SAMPLES: u64 = OPUS_RATE as u64 * STEP_MS / 1000;

/// How the server says it is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Handshake {
    /// `moshi.server` (Python): the single byte `0x00`; the Ogg headers
    /// travel with its first audio page.
    #[default]
    Python,
    /// `moshi-backend` / `moshi-server` (Rust): a kind-4 metadata JSON, the
    /// nine-byte handshake, then the Ogg headers as a kind-1 message alone.
    Rust,
}

/// How the next connection goes wrong (one fault per connection).
#[derive(Debug, Clone, PartialEq)]
pub enum MoshiFault {
    /// The upgrade is refused with this HTTP status.
    Refuse(u16),
    /// After this much client audio, a kind-5 error with `message`, then a
    /// close 1011.
    Error { after_ms: u64, message: String },
}

/// What one connection received and did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MoshiConnection {
    /// Binary messages received, and their bytes (kind bytes included).
    pub messages: usize,
    pub bytes: usize,
    /// Messages received before the handshake was sent.
    pub before_handshake: usize,
    /// Messages of a kind other than audio (or empty, or text frames).
    pub other: usize,
    /// The client's first audio message began with the `OpusHead` page.
    pub headers_first: bool,
    /// Client audio decoded (ms), and Opus packets in it.
    pub audio_ms: u64,
    pub packets: u64,
    /// Words sent, in order.
    pub words: Vec<String>,
    /// The close code the fake sent, if it closed.
    pub closed_with: Option<u16>,
}

/// Words Moshi is scripted to say: from `after_ms` of the client's audio,
/// one word per step.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    after_ms: u64,
    words: Vec<String>,
}

struct Shared {
    handshake: Mutex<Handshake>,
    lines: Mutex<Vec<Line>>,
    session_ms: Mutex<Option<u64>>,
    latency: Mutex<Duration>,
    faults: Faults<MoshiFault>,
    connections: Recorded<MoshiConnection>,
}

/// The fake; the server stops when it is dropped.
pub struct FakeMoshi {
    running: Running,
    shared: Arc<Shared>,
}

impl FakeMoshi {
    /// The Python handshake, no script, no session limit, no latency.
    pub async fn start() -> FakeMoshi {
        let shared = Arc::new(Shared {
            handshake: Mutex::new(Handshake::default()),
            lines: Mutex::new(Vec::new()),
            session_ms: Mutex::new(None),
            latency: Mutex::new(Duration::ZERO),
            faults: Faults::default(),
            connections: Recorded::default(),
        });
        let router = Router::new()
            .route("/api/chat", get(upgrade))
            .with_state(shared.clone());
        let running = serve(router, "").await;
        FakeMoshi { running, shared }
    }

    /// `ws://127.0.0.1:…`, as `MOSHI_URL` takes it.
    pub fn url(&self) -> String {
        self.running.base_url.replacen("http://", "ws://", 1)
    }

    pub fn set_handshake(&self, handshake: Handshake) {
        *lock(&self.shared.handshake) = handshake;
    }

    /// From `after_ms` of each connection's client audio, Moshi says
    /// `text`, a word per step (each word with its leading space, as
    /// Moshi's text pieces come).
    pub fn say(&self, after_ms: u64, text: &str) {
        let words = text.split_whitespace().map(|w| format!(" {w}")).collect();
        lock(&self.shared.lines).push(Line { after_ms, words });
    }

    /// The session closes (1000) after this much client audio.
    pub fn set_session_ms(&self, ms: Option<u64>) {
        *lock(&self.shared.session_ms) = ms;
    }

    /// Before the handshake and before each step's answer.
    pub fn set_latency(&self, latency: Duration) {
        *lock(&self.shared.latency) = latency;
    }

    pub fn push_fault(&self, fault: MoshiFault) {
        self.shared.faults.push(fault);
    }

    pub fn connections(&self) -> Vec<MoshiConnection> {
        self.shared.connections.all()
    }
}

async fn upgrade(State(shared): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    let fault = shared.faults.next();
    if let Some(MoshiFault::Refuse(status)) = fault {
        return json_response(status, r#"{"error":"refused by the fake"}"#.into());
    }
    let record = shared.connections.add(MoshiConnection::default());
    ws.on_upgrade(move |socket| async move {
        let closed = Session::new(shared.clone(), record, fault)
            .run(socket)
            .await;
        shared
            .connections
            .update(record, |c| c.closed_with = closed);
    })
    .into_response()
}

/// One connection.
struct Session {
    shared: Arc<Shared>,
    record: usize,
    fault: Option<MoshiFault>,
    /// The client's stream, decoded to count it.
    decoder: Option<OggOpusDecoder>,
    encoder: Option<OggOpusEncoder>,
    pcm: Vec<i16>,
    samples: u64,
    steps: u64,
}

impl Session {
    fn new(shared: Arc<Shared>, record: usize, fault: Option<MoshiFault>) -> Session {
        Session {
            shared,
            record,
            fault,
            decoder: OggOpusDecoder::new().ok(),
            encoder: OggOpusEncoder::new(PacketLength::Ms40).ok(),
            pcm: Vec::new(),
            samples: 0,
            steps: 0,
        }
    }

    fn latency(&self) -> Duration {
        *lock(&self.shared.latency)
    }

    fn update(&self, change: impl FnOnce(&mut MoshiConnection)) {
        self.shared.connections.update(self.record, change);
    }

    /// Serves the connection; the close code it sent, if it closed.
    async fn run(mut self, mut socket: WebSocket) -> Option<u16> {
        let handshake = *lock(&self.shared.handshake);
        let latency = self.latency();
        if !latency.is_zero() {
            // What arrives meanwhile is counted as before the handshake.
            let wait = tokio::time::sleep(latency);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    () = &mut wait => break,
                    message = socket.recv() => match message {
                        Some(Ok(_)) => self.update(|c| c.before_handshake += 1),
                        _ => return None,
                    },
                }
            }
        }
        let ready = match handshake {
            Handshake::Python => vec![Bytes::from_static(&[0])],
            Handshake::Rust => {
                let mut metadata = vec![4];
                metadata.extend_from_slice(
                    br#"{"text_temperature":0.7,"text_topk":25,"audio_temperature":0.8,"audio_topk":250,"instance_name":"fake","build_info":{}}"#,
                );
                let mut headers = vec![1];
                if let Some(encoder) = self.encoder.as_mut() {
                    let _ = encoder.push(&[], &mut headers);
                }
                vec![
                    Bytes::from(metadata),
                    Bytes::from_static(&[0; 9]),
                    Bytes::from(headers),
                ]
            }
        };
        for message in ready {
            if socket.send(Message::Binary(message)).await.is_err() {
                return None;
            }
        }
        while let Some(Ok(message)) = socket.recv().await {
            let Message::Binary(data) = message else {
                if matches!(message, Message::Close(_)) {
                    return None;
                }
                self.update(|c| c.other += 1);
                continue;
            };
            self.update(|c| {
                c.messages += 1;
                c.bytes += data.len();
            });
            match data.split_first() {
                Some((1, ogg)) => self.hear(ogg),
                _ => self.update(|c| c.other += 1),
            }
            if let Some(code) = self.answer(&mut socket).await {
                return Some(code);
            }
        }
        None
    }

    /// The client's Ogg/Opus, decoded and counted.
    fn hear(&mut self, ogg: &[u8]) {
        let Some(decoder) = self.decoder.as_mut() else {
            return;
        };
        let first = decoder.decoded() == 0 && self.samples == 0;
        self.pcm.clear();
        let pushed = decoder.push(ogg, &mut self.pcm);
        self.samples += self.pcm.len() as u64;
        let ms = self.samples * 1000 / u64::from(OPUS_RATE);
        let headers = first
            && ogg.starts_with(b"OggS")
            && ogg[..ogg.len().min(64)]
                .windows(8)
                .any(|w| w == b"OpusHead");
        self.update(|c| {
            c.audio_ms = ms;
            c.packets += pushed.packets as u64;
            if first {
                c.headers_first = headers;
            }
        });
    }

    /// Every step now due: its word and audio; then the session's end or
    /// the fault, when due (the close code).
    async fn answer(&mut self, socket: &mut WebSocket) -> Option<u16> {
        let heard_ms = self.samples * 1000 / u64::from(OPUS_RATE);
        while (self.steps + 1) * STEP_SAMPLES <= self.samples {
            let latency = self.latency();
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            let word = self.word(self.steps * STEP_MS);
            if let Some(word) = &word {
                let mut text = vec![2];
                text.extend_from_slice(word.as_bytes());
                let _ = socket.send(Message::Binary(text.into())).await;
                let sent = word.clone();
                self.update(|c| c.words.push(sent));
            }
            let audio = self.step_audio(word.is_some());
            let _ = socket.send(Message::Binary(audio.into())).await;
            self.steps += 1;
        }
        if let Some(MoshiFault::Error { after_ms, message }) = &self.fault
            && heard_ms >= *after_ms
        {
            let mut error = vec![5];
            error.extend_from_slice(message.as_bytes());
            let _ = socket.send(Message::Binary(error.into())).await;
            return Some(close(socket, 1011, "error").await);
        }
        let session_ms = *lock(&self.shared.session_ms);
        if session_ms.is_some_and(|limit| heard_ms >= limit) {
            return Some(close(socket, 1000, "session over").await);
        }
        None
    }

    /// The scripted word of the step starting at `at_ms`, if any.
    fn word(&self, at_ms: u64) -> Option<String> {
        lock(&self.shared.lines).iter().find_map(|line| {
            let index = at_ms.checked_sub(line.after_ms)? / STEP_MS;
            line.words.get(usize::try_from(index).ok()?).cloned()
        })
    }

    /// One step of Moshi's voice as a kind-1 message: 80 ms in two pages.
    fn step_audio(&mut self, loud: bool) -> Vec<u8> {
        let start = self.steps * STEP_SAMPLES;
        let pcm: Vec<i16> = (start..start + STEP_SAMPLES)
            .map(|i| {
                if loud {
                    let t = i as f64 / f64::from(OPUS_RATE);
                    ((2.0 * std::f64::consts::PI * 440.0 * t).sin() * 9000.0) as i16
                } else {
                    0
                }
            })
            .collect();
        let mut message = vec![1];
        if let Some(encoder) = self.encoder.as_mut() {
            let _ = encoder.push(&pcm, &mut message);
        }
        message
    }
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) -> u16 {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
    code
}

#[cfg(test)]
mod tests {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message as Client;

    use super::*;
    use crate::audio::ogg_opus::SAMPLES_20MS;

    /// `n` 20 ms Ogg/Opus messages of silence, as a client sends them.
    fn client_audio(n: usize) -> Vec<Vec<u8>> {
        let mut encoder = OggOpusEncoder::new(PacketLength::Ms20).expect("encoder");
        (0..n)
            .map(|_| {
                let mut message = vec![1];
                encoder
                    .push(&[0; SAMPLES_20MS], &mut message)
                    .expect("encodes");
                message
            })
            .collect()
    }

    async fn connect(
        fake: &FakeMoshi,
    ) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>
    {
        let (socket, _) = tokio_tungstenite::connect_async(format!("{}/api/chat", fake.url()))
            .await
            .expect("connects");
        socket
    }

    /// The next binary message (failing after two seconds); `None` at the close.
    async fn next_binary(
        socket: &mut tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    ) -> Option<Vec<u8>> {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(2), socket.next())
                .await
                .expect("in time")?
                .ok()?;
            match message {
                Client::Binary(data) => return Some(data.to_vec()),
                Client::Close(_) => return None,
                _ => {}
            }
        }
    }

    #[tokio::test]
    async fn the_python_handshake_then_words_and_audio_per_step() {
        let fake = FakeMoshi::start().await;
        fake.say(0, "Hi there.");
        let mut socket = connect(&fake).await;
        assert_eq!(next_binary(&mut socket).await, Some(vec![0]));
        // 180 ms, less the pre-skip: two steps.
        for message in client_audio(9) {
            socket
                .send(Client::Binary(message.into()))
                .await
                .expect("sent");
        }
        // Two steps: a word and its audio each, the first with the headers.
        let mut decoder = OggOpusDecoder::new().expect("decoder");
        let mut pcm = Vec::new();
        let mut words = Vec::new();
        for _ in 0..4 {
            let message = next_binary(&mut socket).await.expect("a message");
            match message[0] {
                1 => {
                    decoder.push(&message[1..], &mut pcm);
                }
                2 => words.push(String::from_utf8(message[1..].to_vec()).expect("utf-8")),
                other => panic!("kind {other}"),
            }
        }
        assert_eq!(words, [" Hi", " there."]);
        assert_eq!(decoder.decoded(), 4, "two 40 ms packets per step");
        let connection = &fake.connections()[0];
        assert_eq!(connection.messages, 9);
        assert!(
            (170..180).contains(&connection.audio_ms),
            "180 ms less the pre-skip: {}",
            connection.audio_ms
        );
        assert!(connection.headers_first);
    }

    #[tokio::test]
    async fn the_rust_handshake_a_session_limit_and_faults() {
        let fake = FakeMoshi::start().await;
        fake.set_handshake(Handshake::Rust);
        fake.set_session_ms(Some(100));
        let mut socket = connect(&fake).await;
        let metadata = next_binary(&mut socket).await.expect("metadata");
        assert_eq!(metadata[0], 4);
        assert_eq!(next_binary(&mut socket).await, Some(vec![0; 9]));
        let headers = next_binary(&mut socket).await.expect("headers");
        assert_eq!(&headers[..5], b"\x01OggS");
        for message in client_audio(7) {
            let _ = socket.send(Client::Binary(message.into())).await;
        }
        let mut kinds = Vec::new();
        while let Some(message) = next_binary(&mut socket).await {
            kinds.push(message[0]);
        }
        assert_eq!(kinds, [1], "one step, then the close");
        assert_eq!(fake.connections()[0].closed_with, Some(1000));

        fake.push_fault(MoshiFault::Refuse(503));
        let refused = tokio_tungstenite::connect_async(format!("{}/api/chat", fake.url())).await;
        assert!(refused.is_err());

        fake.set_session_ms(None);
        fake.push_fault(MoshiFault::Error {
            after_ms: 40,
            message: "no more".into(),
        });
        let mut socket = connect(&fake).await;
        for _ in 0..3 {
            next_binary(&mut socket).await;
        }
        for message in client_audio(3) {
            let _ = socket.send(Client::Binary(message.into())).await;
        }
        let error = next_binary(&mut socket).await.expect("the error");
        assert_eq!(error, b"\x05no more");
        assert_eq!(next_binary(&mut socket).await, None);
    }
}
