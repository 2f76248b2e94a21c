//! Media Streams messages on the wire, from Twilio's side (reference §3).
//!
//! Two halves:
//!
//! - [`parse_server_message`]: a strict reader of what the server sends. Twilio
//!   accepts exactly three shapes (§3.4) and drops anything else with warning
//!   31950 (binary) or 31951 (not JSON, unknown event, missing or extra field,
//!   wrong `streamSid`). This parser is deliberately separate from the
//!   server's tolerant `twilio::media` so that a test proves the server's
//!   output is what Twilio accepts, not what the server's own parser accepts.
//! - [`TwilioWriter`]: the messages Twilio sends, with exactly the documented
//!   keys and every counter as a JSON string.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// A valid message from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMessage {
    /// Audio to queue for playback: raw μ-law bytes, already base64-decoded.
    Media {
        /// The payload, base64-decoded.
        mulaw: Vec<u8>,
    },
    /// A mark to queue behind the audio sent before it.
    Mark {
        /// The mark's name, echoed back when reached.
        name: String,
    },
    /// Drop all queued audio, echo all pending marks.
    Clear,
}

/// Why Twilio would have dropped a message from the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A binary frame (Twilio warning 31950).
    #[error("binary frame of {len} bytes (31950)")]
    BinaryFrame {
        /// Frame length in bytes.
        len: usize,
    },
    /// Text that is not a JSON object (31951).
    #[error("not a JSON object: {detail} (31951)")]
    NotJson {
        /// The JSON parser's complaint.
        detail: String,
    },
    /// A JSON object with no string `event` field (31951).
    #[error("no \"event\" string (31951)")]
    MissingEvent,
    /// An `event` other than `media`, `mark`, `clear` (31951).
    #[error("unknown event {event:?} (31951)")]
    UnknownEvent {
        /// The `event` value sent.
        event: String,
    },
    /// A known event with a missing, extra or mistyped field (31951).
    #[error("bad {event} message: {detail} (31951)")]
    Shape {
        /// The `event` value sent.
        event: String,
        /// Which field is missing, extra or mistyped.
        detail: String,
    },
    /// A `streamSid` other than the one in this stream's `start` (31951).
    #[error("wrong streamSid {got:?} (31951)")]
    WrongStreamSid {
        /// The `streamSid` sent.
        got: String,
    },
    /// A `media.payload` that is not standard padded base64 (31951).
    #[error("media payload is not base64 (31951)")]
    BadBase64,
}

impl ProtocolError {
    /// The Twilio warning code this would raise in the Debugger.
    pub fn twilio_code(&self) -> u32 {
        match self {
            ProtocolError::BinaryFrame { .. } => 31950,
            _ => 31951,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MediaIn {
    #[allow(dead_code)]
    event: String,
    #[serde(rename = "streamSid")]
    stream_sid: String,
    media: PayloadIn,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayloadIn {
    payload: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkIn {
    #[allow(dead_code)]
    event: String,
    #[serde(rename = "streamSid")]
    stream_sid: String,
    mark: MarkNameIn,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkNameIn {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClearIn {
    #[allow(dead_code)]
    event: String,
    #[serde(rename = "streamSid")]
    stream_sid: String,
}

/// Reads one text frame from the server the way Twilio does. `stream_sid` is
/// the one this stream announced in `start`.
pub fn parse_server_message(text: &str, stream_sid: &str) -> Result<ServerMessage, ProtocolError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ProtocolError::NotJson {
            detail: e.to_string(),
        })?;
    let object = value.as_object().ok_or_else(|| ProtocolError::NotJson {
        detail: format!("a JSON {}", json_kind(&value)),
    })?;
    let event = object
        .get("event")
        .and_then(|e| e.as_str())
        .ok_or(ProtocolError::MissingEvent)?;
    // Parse the text again into the exact struct: unlike `Value`, this also
    // rejects duplicate keys.
    fn exact<'a, T: Deserialize<'a>>(text: &'a str, event: &str) -> Result<T, ProtocolError> {
        serde_json::from_str(text).map_err(|e| ProtocolError::Shape {
            event: event.to_string(),
            detail: e.to_string(),
        })
    }
    let check_sid = |got: String| {
        if got == stream_sid {
            Ok(())
        } else {
            Err(ProtocolError::WrongStreamSid { got: clip(&got) })
        }
    };
    match event {
        "media" => {
            let m: MediaIn = exact(text, event)?;
            check_sid(m.stream_sid)?;
            let mulaw = STANDARD
                .decode(m.media.payload.as_bytes())
                .map_err(|_| ProtocolError::BadBase64)?;
            Ok(ServerMessage::Media { mulaw })
        }
        "mark" => {
            let m: MarkIn = exact(text, event)?;
            check_sid(m.stream_sid)?;
            Ok(ServerMessage::Mark { name: m.mark.name })
        }
        "clear" => {
            let m: ClearIn = exact(text, event)?;
            check_sid(m.stream_sid)?;
            Ok(ServerMessage::Clear)
        }
        other => Err(ProtocolError::UnknownEvent { event: clip(other) }),
    }
}

/// At most 100 characters of a server-chosen string, so that one absurd
/// message cannot bloat the report.
fn clip(s: &str) -> String {
    s.chars().take(100).collect()
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Writes the messages Twilio sends on one stream, numbering them: every
/// message after `connected` carries the next `sequenceNumber` (`start` is
/// "1"), every `media` the next `chunk`. Counters are JSON strings, as on the
/// real wire; key order follows real captures.
#[derive(Debug, Clone)]
pub struct TwilioWriter {
    account_sid: String,
    call_sid: String,
    stream_sid: String,
    sequence: u64,
    chunk: u64,
}

#[derive(Serialize)]
struct Connected {
    event: &'static str,
    protocol: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct StartOut<'a> {
    event: &'static str,
    #[serde(rename = "sequenceNumber")]
    sequence_number: String,
    start: StartBody<'a>,
    #[serde(rename = "streamSid")]
    stream_sid: &'a str,
}

#[derive(Serialize)]
struct StartBody<'a> {
    #[serde(rename = "accountSid")]
    account_sid: &'a str,
    #[serde(rename = "streamSid")]
    stream_sid: &'a str,
    #[serde(rename = "callSid")]
    call_sid: &'a str,
    tracks: [&'static str; 1],
    #[serde(rename = "mediaFormat")]
    media_format: MediaFormat,
    #[serde(rename = "customParameters")]
    custom_parameters: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
struct MediaFormat {
    encoding: &'static str,
    #[serde(rename = "sampleRate")]
    sample_rate: u32,
    channels: u32,
}

#[derive(Serialize)]
struct MediaOut<'a> {
    event: &'static str,
    #[serde(rename = "sequenceNumber")]
    sequence_number: String,
    media: MediaBody,
    #[serde(rename = "streamSid")]
    stream_sid: &'a str,
}

#[derive(Serialize)]
struct MediaBody {
    track: &'static str,
    chunk: String,
    timestamp: String,
    payload: String,
}

#[derive(Serialize)]
struct DtmfOut<'a> {
    event: &'static str,
    #[serde(rename = "streamSid")]
    stream_sid: &'a str,
    #[serde(rename = "sequenceNumber")]
    sequence_number: String,
    dtmf: DtmfBody,
}

#[derive(Serialize)]
struct DtmfBody {
    track: &'static str,
    digit: String,
}

#[derive(Serialize)]
struct MarkOut<'a> {
    event: &'static str,
    #[serde(rename = "sequenceNumber")]
    sequence_number: String,
    #[serde(rename = "streamSid")]
    stream_sid: &'a str,
    mark: MarkName<'a>,
}

#[derive(Serialize)]
struct MarkName<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct StopOut<'a> {
    event: &'static str,
    #[serde(rename = "sequenceNumber")]
    sequence_number: String,
    stop: StopBody<'a>,
    #[serde(rename = "streamSid")]
    stream_sid: &'a str,
}

#[derive(Serialize)]
struct StopBody<'a> {
    #[serde(rename = "accountSid")]
    account_sid: &'a str,
    #[serde(rename = "callSid")]
    call_sid: &'a str,
}

fn to_json<T: Serialize>(msg: &T) -> String {
    // Serialising these plain structs of strings and maps cannot fail.
    serde_json::to_string(msg).unwrap_or_else(|_| unreachable!("plain struct serialises"))
}

impl TwilioWriter {
    /// A writer for one stream of one call.
    pub fn new(account_sid: &str, call_sid: &str, stream_sid: &str) -> Self {
        TwilioWriter {
            account_sid: account_sid.to_string(),
            call_sid: call_sid.to_string(),
            stream_sid: stream_sid.to_string(),
            sequence: 0,
            chunk: 0,
        }
    }

    /// This stream's `streamSid`.
    pub fn stream_sid(&self) -> &str {
        &self.stream_sid
    }

    /// This call's `callSid`.
    pub fn call_sid(&self) -> &str {
        &self.call_sid
    }

    fn next_sequence(&mut self) -> String {
        self.sequence += 1;
        self.sequence.to_string()
    }

    /// `{"event":"connected","protocol":"Call","version":"1.0.0"}`: first, once,
    /// unnumbered.
    pub fn connected(&self) -> String {
        to_json(&Connected {
            event: "connected",
            protocol: "Call",
            version: "1.0.0",
        })
    }

    /// The `start` message. `call_sid` overrides the call's SID (to test a
    /// server that must refuse a stream whose `callSid` does not match its
    /// token); duplicate parameter names keep the last value, as a JSON
    /// object can only hold one.
    pub fn start(&mut self, call_sid: Option<&str>, parameters: &[(String, String)]) -> String {
        let sequence_number = self.next_sequence();
        to_json(&StartOut {
            event: "start",
            sequence_number,
            start: StartBody {
                account_sid: &self.account_sid,
                stream_sid: &self.stream_sid,
                call_sid: call_sid.unwrap_or(&self.call_sid),
                tracks: ["inbound"],
                media_format: MediaFormat {
                    encoding: "audio/x-mulaw",
                    sample_rate: 8000,
                    channels: 1,
                },
                custom_parameters: parameters
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
            },
            stream_sid: &self.stream_sid,
        })
    }

    /// A `media` message carrying `mulaw`, presented at `timestamp_ms` since
    /// the stream started.
    pub fn media(&mut self, timestamp_ms: u64, mulaw: &[u8]) -> String {
        let sequence_number = self.next_sequence();
        self.chunk += 1;
        to_json(&MediaOut {
            event: "media",
            sequence_number,
            media: MediaBody {
                track: "inbound",
                chunk: self.chunk.to_string(),
                timestamp: timestamp_ms.to_string(),
                payload: STANDARD.encode(mulaw),
            },
            stream_sid: &self.stream_sid,
        })
    }

    /// A `dtmf` message for a key press on the caller's phone.
    pub fn dtmf(&mut self, digit: char) -> String {
        let sequence_number = self.next_sequence();
        to_json(&DtmfOut {
            event: "dtmf",
            stream_sid: &self.stream_sid,
            sequence_number,
            dtmf: DtmfBody {
                track: "inbound_track",
                digit: digit.to_string(),
            },
        })
    }

    /// The echo of a server's mark, sent when playback reaches it.
    pub fn mark(&mut self, name: &str) -> String {
        let sequence_number = self.next_sequence();
        to_json(&MarkOut {
            event: "mark",
            sequence_number,
            stream_sid: &self.stream_sid,
            mark: MarkName { name },
        })
    }

    /// The `stop` message: the caller hung up; the last message on the stream.
    pub fn stop(&mut self) -> String {
        let sequence_number = self.next_sequence();
        to_json(&StopOut {
            event: "stop",
            sequence_number,
            stop: StopBody {
                account_sid: &self.account_sid,
                call_sid: &self.call_sid,
            },
            stream_sid: &self.stream_sid,
        })
    }
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
