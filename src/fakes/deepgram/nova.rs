//! The fake's `/v1/listen` side (Nova): `SpeechStarted` at speech (with
//! `vad_events=true`), interim `Results` as words come (with
//! `interim_results=true`), a final `Results` with `speech_final:true` after
//! `endpointing` ms of silence, and `UtteranceEnd` once `utterance_end_ms`
//! have passed since the last word
//! (<https://developers.deepgram.com/docs/understand-endpointing-interim-results>).
//! With `endpointing=false` the turn's final result comes with the
//! `UtteranceEnd`.
//!
//! Controls: `Finalize` flushes the open turn as a final result with
//! `from_finalize:true` and, like Deepgram with nothing buffered, answers
//! nothing when no turn is open; `KeepAlive` keeps the socket; `CloseStream`
//! sends the open turn's final result and `Metadata`, then closes 1000.
//! Ten seconds (configurable) without audio or `KeepAlive`: close 1011
//! `NET-0001`.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{Conn, DeepgramFault, close, close_with, send};
use crate::fakes::hearing::{Heard, Hearing};

/// What the query asked for.
struct Options {
    interim: bool,
    vad_events: bool,
    /// Silence for `speech_final` (ms); `None`: `endpointing=false`.
    endpointing: Option<u64>,
    utterance_end: Option<u64>,
}

impl Options {
    fn from_query(query: &[(String, String)]) -> Options {
        let get = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        Options {
            interim: get("interim_results") == Some("true"),
            vad_events: get("vad_events") == Some("true"),
            // Deepgram's default endpointing is 10 ms.
            endpointing: match get("endpointing") {
                Some("false") => None,
                Some(ms) => ms.parse().ok().or(Some(10)),
                None => Some(10),
            },
            utterance_end: get("utterance_end_ms").and_then(|ms| ms.parse().ok()),
        }
    }
}

struct Nova {
    conn: Conn,
    hearing: Hearing,
    options: Options,
    /// Audio time at which the pending `UtteranceEnd` is due.
    utterance_end_due: Option<u64>,
    /// Audio time of the last word heard (for `last_word_end`).
    last_word_ms: u64,
}

/// Runs one `/v1/listen` connection until the client, a fault or the idle
/// timeout ends it.
pub(super) async fn run(mut ws: WebSocket, conn: Conn, query: &[(String, String)]) {
    let options = Options::from_query(query);
    let marks: Vec<u64> = [options.endpointing, options.utterance_end]
        .into_iter()
        .flatten()
        .collect();
    let hearing = Hearing::new(conn.script(), &marks);
    let mut nova = Nova {
        conn,
        hearing,
        options,
        utterance_end_due: None,
        last_word_ms: 0,
    };
    if nova.conn.unknowns() {
        let odd = json!({"type": "ServerNews", "request_id": nova.conn.request_id});
        if !send(&mut ws, odd, true).await {
            return;
        }
    }
    let idle_timeout = nova.conn.timing.idle_timeout;
    let mut idle_at = Instant::now() + idle_timeout;
    loop {
        let message = tokio::select! {
            message = ws.recv() => message,
            () = tokio::time::sleep_until(idle_at) => {
                let frame = CloseFrame {
                    code: 1011,
                    reason: "NET-0001: no audio received within the timeout".into(),
                };
                close(&mut ws, &nova.conn, Some(frame)).await;
                return;
            }
        };
        let Some(Ok(message)) = message else { return };
        let go_on = match message {
            Message::Binary(audio) => {
                idle_at = Instant::now() + idle_timeout;
                nova.audio(&mut ws, &audio).await
            }
            Message::Text(text) => {
                let (go_on, keep_alive) = nova.control(&mut ws, text.as_str()).await;
                if keep_alive {
                    idle_at = Instant::now() + idle_timeout;
                }
                go_on
            }
            Message::Close(_) => {
                nova.conn.record(|c| c.client_closed = true);
                false
            }
            Message::Ping(_) | Message::Pong(_) => true,
        };
        if !go_on {
            return;
        }
    }
}

impl Nova {
    fn results(
        &self,
        transcript: &str,
        is_final: bool,
        speech_final: bool,
        flushed: bool,
    ) -> Value {
        let at = self.hearing.at_ms() as f64 / 1000.0;
        let words: Vec<Value> = transcript
            .split_whitespace()
            .map(|w| {
                json!({"word": w.to_lowercase(), "start": 0.0, "end": at,
                            "confidence": 0.97, "punctuated_word": w})
            })
            .collect();
        json!({
            "type": "Results",
            "channel_index": [0, 1],
            "duration": at,
            "start": 0.0,
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": flushed,
            "channel": {"alternatives": [{"transcript": transcript, "confidence": 0.97, "words": words}]},
            "metadata": {
                "request_id": self.conn.request_id,
                "model_info": {"name": "fake-nova", "version": "fake", "arch": "nova-3"},
                "model_uuid": "00000000-0000-0000-0000-000000000000",
            },
        })
    }

    fn utterance_end(&self) -> Value {
        json!({"type": "UtteranceEnd", "channel": [0, 1],
               "last_word_end": self.last_word_ms as f64 / 1000.0})
    }

    async fn send(&self, ws: &mut WebSocket, message: Value) -> bool {
        send(ws, message, self.conn.unknowns()).await
    }

    async fn audio(&mut self, ws: &mut WebSocket, audio: &[u8]) -> bool {
        self.conn.heard_audio(audio);
        let mut heard = Vec::new();
        self.hearing.hear(audio, &mut heard);
        match self.conn.due_fault(self.hearing.at_ms()) {
            Some(DeepgramFault::Drop { .. }) => return false,
            Some(DeepgramFault::StreamError { code, .. }) => {
                close_with(ws, &self.conn, code).await;
                return false;
            }
            _ => {}
        }
        for event in heard {
            if !self.heard(ws, event).await {
                return false;
            }
        }
        if let Some(due) = self.utterance_end_due
            && self.hearing.at_ms() >= due
        {
            self.utterance_end_due = None;
            return self.send(ws, self.utterance_end()).await;
        }
        true
    }

    async fn heard(&mut self, ws: &mut WebSocket, event: Heard) -> bool {
        match event {
            Heard::Started { turn } if turn == self.hearing.turn() => {
                // Speech again: the gap was not an utterance's end.
                self.utterance_end_due = None;
                if self.options.vad_events {
                    let at = self.hearing.at_ms() as f64 / 1000.0;
                    let started = json!({"type": "SpeechStarted", "channel": [0], "timestamp": at});
                    return self.send(ws, started).await;
                }
                true
            }
            Heard::Words { turn, transcript } if turn == self.hearing.turn() => {
                self.last_word_ms = self.hearing.at_ms();
                if self.options.interim {
                    return self
                        .send(ws, self.results(&transcript, false, false, false))
                        .await;
                }
                true
            }
            Heard::Paused {
                turn, silence_ms, ..
            } if turn == self.hearing.turn() && self.hearing.in_turn() => {
                if Some(silence_ms) == self.options.endpointing {
                    // The endpoint: the last word was `silence_ms` ago.
                    let last_word = self.hearing.at_ms().saturating_sub(silence_ms);
                    self.last_word_ms = last_word;
                    self.utterance_end_due = self.options.utterance_end.map(|ms| last_word + ms);
                    return self.end_turn(ws, true, false).await;
                }
                if Some(silence_ms) == self.options.utterance_end {
                    // No endpointing (or a longer one): the turn's words
                    // are final with the utterance's end.
                    if !self.end_turn(ws, false, false).await {
                        return false;
                    }
                    return self.send(ws, self.utterance_end()).await;
                }
                true
            }
            _ => true,
        }
    }

    /// The turn's whole text as a final result, after the final delay.
    async fn end_turn(&mut self, ws: &mut WebSocket, speech_final: bool, flushed: bool) -> bool {
        tokio::time::sleep(self.conn.timing.final_delay).await;
        let text = self.hearing.full_text();
        let result = self.results(&text, true, speech_final, flushed);
        self.hearing.end_turn();
        self.send(ws, result).await
    }

    /// Whether to go on, and whether the message keeps the socket alive.
    async fn control(&mut self, ws: &mut WebSocket, text: &str) -> (bool, bool) {
        let Some(control) = self.conn.heard_text(text) else {
            close_with(ws, &self.conn, 1008).await;
            return (false, false);
        };
        match control["type"].as_str().unwrap_or_default() {
            "KeepAlive" => (true, true),
            "Finalize" if self.hearing.in_turn() => (self.end_turn(ws, false, true).await, true),
            // Nothing buffered: Deepgram need not answer.
            "Finalize" => (true, true),
            "CloseStream" => {
                if self.hearing.in_turn() {
                    self.end_turn(ws, false, false).await;
                }
                let metadata = json!({
                    "type": "Metadata",
                    "transaction_key": "deprecated",
                    "request_id": self.conn.request_id,
                    "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                    "created": "2026-01-01T00:00:00.000Z",
                    "duration": self.hearing.at_ms() as f64 / 1000.0,
                    "channels": 1,
                });
                self.send(ws, metadata).await;
                let frame = CloseFrame {
                    code: 1000,
                    reason: "".into(),
                };
                close(ws, &self.conn, Some(frame)).await;
                (false, false)
            }
            _ => (true, false),
        }
    }
}
