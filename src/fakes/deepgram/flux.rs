//! The fake's Flux side (`/v2/listen`): `Connected`, then `TurnInfo` events
//! as the hearing hears the caller
//! (<https://developers.deepgram.com/docs/flux/state>): `StartOfTurn` at
//! speech, `Update` as words come (one per 250 ms of speech), after a
//! silence `EagerEndOfTurn` (eager mode) and `EndOfTurn` with
//! `"trigger":"model"` (unless `eot_threshold=1.0`), `TurnResumed` when
//! speech comes back after an eager end; and after `eot_timeout_ms` of
//! silence the backstop `EndOfTurn` in any mode.
//!
//! Controls: `ForceEndTurn` ends the open turn at once (`"trigger":"manual"`)
//! and is ignored with none open; `Configure` is answered
//! `ConfigureSuccess` (echoing the thresholds) or, out of range,
//! `ConfigureFailure`; `CloseStream` sends the turn's last `Update` and
//! closes with no status code, without `EndOfTurn`.

use axum::extract::ws::{Message, WebSocket};
use serde_json::{Value, json};

use super::{Conn, DeepgramFault, close, close_with, send};
use crate::fakes::hearing::{Heard, Hearing};

/// Flux's turn settings (query, then `Configure`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Thresholds {
    eot: f64,
    eager: Option<f64>,
    timeout_ms: u64,
}

impl Thresholds {
    /// The query's, with Flux's defaults; an error names a value out of
    /// range (<https://developers.deepgram.com/docs/flux/configuration>).
    pub(super) fn from_query(query: &[(String, String)]) -> Result<Thresholds, String> {
        let mut thresholds = Thresholds {
            eot: 0.7,
            eager: None,
            timeout_ms: 5000,
        };
        for (name, value) in query {
            let bad = || format!("{name}={value:?} is not a number");
            match name.as_str() {
                "eot_threshold" => thresholds.eot = value.parse().map_err(|_| bad())?,
                "eager_eot_threshold" => thresholds.eager = Some(value.parse().map_err(|_| bad())?),
                "eot_timeout_ms" => thresholds.timeout_ms = value.parse().map_err(|_| bad())?,
                _ => {}
            }
        }
        thresholds.check()?;
        Ok(thresholds)
    }

    fn check(&self) -> Result<(), String> {
        // 1.0 is allowed: it turns the model's end of turn off.
        if !((0.5..=0.9).contains(&self.eot) || self.eot == 1.0) {
            return Err(format!(
                "eot_threshold {} is outside 0.5–0.9 (or 1.0)",
                self.eot
            ));
        }
        if let Some(eager) = self.eager
            && (!(0.3..=0.9).contains(&eager) || eager > self.eot)
        {
            return Err(format!(
                "eager_eot_threshold {eager} is outside 0.3–0.9 or above eot_threshold"
            ));
        }
        if !(500..=60_000).contains(&self.timeout_ms) {
            return Err(format!(
                "eot_timeout_ms {} is outside 500–60000",
                self.timeout_ms
            ));
        }
        Ok(())
    }

    /// `Configure`'s `thresholds`: omitted keys unchanged.
    fn configured(&self, given: &Value) -> Result<Thresholds, String> {
        let mut next = *self;
        if let Some(eot) = given.get("eot_threshold") {
            next.eot = eot.as_f64().ok_or("eot_threshold is not a number")?;
        }
        if let Some(eager) = given.get("eager_eot_threshold") {
            next.eager = if eager.is_null() {
                None
            } else {
                Some(
                    eager
                        .as_f64()
                        .ok_or("eager_eot_threshold is not a number")?,
                )
            };
        }
        if let Some(timeout) = given.get("eot_timeout_ms") {
            next.timeout_ms = timeout.as_u64().ok_or("eot_timeout_ms is not a number")?;
        }
        next.check()?;
        Ok(next)
    }
}

struct Flux {
    conn: Conn,
    hearing: Hearing,
    thresholds: Thresholds,
    sequence_id: u64,
    /// An `EagerEndOfTurn` was sent in this turn and not resumed.
    eager_sent: bool,
    /// The unknown event has been sent (fault `Unknowns`).
    odd_event_sent: bool,
}

/// Runs one Flux connection until the client or a fault ends it.
pub(super) async fn run(mut ws: WebSocket, conn: Conn, query: &[(String, String)]) {
    // The handshake checked them: these are the defaults only in theory.
    let thresholds = Thresholds::from_query(query).unwrap_or(Thresholds {
        eot: 0.7,
        eager: None,
        timeout_ms: 5000,
    });
    let timing = conn.timing;
    let hearing = Hearing::new(
        conn.script(),
        &[timing.eager_ms, timing.eot_ms, thresholds.timeout_ms],
    );
    let mut flux = Flux {
        conn,
        hearing,
        thresholds,
        sequence_id: 0,
        eager_sent: false,
        odd_event_sent: false,
    };
    let connected = json!({"type": "Connected", "request_id": flux.conn.request_id});
    if !flux.send(&mut ws, connected).await {
        return;
    }
    if flux.conn.unknowns() {
        let odd = json!({"type": "ServerNews", "request_id": flux.conn.request_id});
        if !flux.send(&mut ws, odd).await {
            return;
        }
    }
    while let Some(Ok(message)) = ws.recv().await {
        let go_on = match message {
            Message::Binary(audio) => flux.audio(&mut ws, &audio).await,
            Message::Text(text) => flux.control(&mut ws, text.as_str()).await,
            Message::Close(_) => {
                flux.conn.record(|c| c.client_closed = true);
                false
            }
            Message::Ping(_) | Message::Pong(_) => true,
        };
        if !go_on {
            return;
        }
    }
}

impl Flux {
    /// Sends with the next `sequence_id`.
    async fn send(&mut self, ws: &mut WebSocket, mut message: Value) -> bool {
        message["sequence_id"] = json!(self.sequence_id);
        self.sequence_id += 1;
        send(ws, message, self.conn.unknowns()).await
    }

    fn turn_info(&self, event: &str, transcript: &str) -> Value {
        let words: Vec<Value> = transcript
            .split_whitespace()
            .map(|w| json!({"word": w, "confidence": 0.97}))
            .collect();
        json!({
            "type": "TurnInfo",
            "request_id": self.conn.request_id,
            "event": event,
            "turn_index": self.hearing.turn(),
            "audio_window_start": 0.0,
            "audio_window_end": self.hearing.at_ms() as f64 / 1000.0,
            "transcript": transcript,
            "words": words,
            "end_of_turn_confidence": if event == "EndOfTurn" { 0.92 } else { 0.1 },
        })
    }

    async fn audio(&mut self, ws: &mut WebSocket, audio: &[u8]) -> bool {
        self.conn.heard_audio(audio);
        let mut heard = Vec::new();
        self.hearing.hear(audio, &mut heard);
        match self.conn.due_fault(self.hearing.at_ms()) {
            Some(DeepgramFault::Drop { .. }) => return false,
            Some(DeepgramFault::StreamError { code, .. }) => {
                let error = json!({"type": "Error", "code": "INTERNAL_SERVER_ERROR",
                                   "description": "the fake was told to fail"});
                self.send(ws, error).await;
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
        true
    }

    async fn heard(&mut self, ws: &mut WebSocket, event: Heard) -> bool {
        match event {
            Heard::Started { turn } if turn == self.hearing.turn() => {
                self.eager_sent = false;
                let start = self.turn_info("StartOfTurn", "");
                self.send(ws, start).await
            }
            Heard::Words { turn, transcript } if turn == self.hearing.turn() => {
                if self.conn.unknowns() && !self.odd_event_sent {
                    self.odd_event_sent = true;
                    let odd = self.turn_info("Pondering", &transcript);
                    if !self.send(ws, odd).await {
                        return false;
                    }
                }
                let update = self.turn_info("Update", &transcript);
                self.send(ws, update).await
            }
            Heard::Paused {
                turn,
                transcript,
                silence_ms,
            } if turn == self.hearing.turn() && self.hearing.in_turn() => {
                let timing = self.conn.timing;
                if self.thresholds.eager.is_some() && silence_ms == timing.eager_ms {
                    self.eager_sent = true;
                    let eager = self.turn_info("EagerEndOfTurn", &transcript);
                    if !self.send(ws, eager).await {
                        return false;
                    }
                }
                let by_model = self.thresholds.eot < 1.0 && silence_ms == timing.eot_ms;
                if by_model || silence_ms == self.thresholds.timeout_ms {
                    return self.end_turn(ws, "model").await;
                }
                true
            }
            Heard::Resumed { turn } if turn == self.hearing.turn() && self.eager_sent => {
                self.eager_sent = false;
                let resumed = self.turn_info("TurnResumed", &self.hearing.transcript());
                self.send(ws, resumed).await
            }
            // An earlier turn's, or nothing to say.
            _ => true,
        }
    }

    /// `EndOfTurn` with the turn's whole text, after the final delay.
    async fn end_turn(&mut self, ws: &mut WebSocket, trigger: &str) -> bool {
        tokio::time::sleep(self.conn.timing.final_delay).await;
        let text = self.hearing.full_text();
        let mut end = self.turn_info("EndOfTurn", &text);
        end["trigger"] = json!(trigger);
        self.hearing.end_turn();
        self.eager_sent = false;
        self.send(ws, end).await
    }

    async fn control(&mut self, ws: &mut WebSocket, text: &str) -> bool {
        let Some(control) = self.conn.heard_text(text) else {
            let error = json!({"type": "Error", "code": "INVALID_MESSAGE",
                               "description": "a text message must be a JSON control message"});
            self.send(ws, error).await;
            close_with(ws, &self.conn, 1008).await;
            return false;
        };
        match control["type"].as_str().unwrap_or_default() {
            "ForceEndTurn" if self.hearing.in_turn() => self.end_turn(ws, "manual").await,
            // No turn open: Flux says nothing.
            "ForceEndTurn" => true,
            "Configure" => {
                let answer = match self.thresholds.configured(&control["thresholds"]) {
                    Ok(next) => {
                        self.thresholds = next;
                        json!({"type": "ConfigureSuccess", "request_id": self.conn.request_id,
                               "thresholds": control["thresholds"],
                               "keyterms": control.get("keyterms").cloned().unwrap_or(json!([])),
                               "language_hints": control.get("language_hints").cloned().unwrap_or(json!([]))})
                    }
                    Err(_) => {
                        json!({"type": "ConfigureFailure", "request_id": self.conn.request_id})
                    }
                };
                self.send(ws, answer).await
            }
            "CloseStream" => {
                if self.hearing.in_turn() {
                    let last = self.turn_info("Update", &self.hearing.full_text());
                    self.send(ws, last).await;
                }
                // No status code, as Flux closes after CloseStream.
                close(ws, &self.conn, None).await;
                false
            }
            // Not a Flux control (KeepAlive is /v1's): ignored.
            _ => true,
        }
    }
}
