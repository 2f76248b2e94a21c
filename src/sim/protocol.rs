//! Media Streams messages on the wire, from Twilio's side (<https://www.twilio.com/docs/voice/media-streams/websocket-messages>).
//!
//! Two halves:
//!
//! - [`parse_server_message`]: a strict reader of what the server sends. Twilio
//!   accepts exactly three shapes (`media`, `mark`, `clear`) and drops anything else with warning
//!   31950 (binary) or 31951 (not JSON, unknown event, missing or extra field,
//!   wrong `streamSid`). This parser is deliberately separate from the
//!   server's tolerant `twilio::media` so that a test proves the server's
//!   output is what Twilio accepts, not what the server's own parser accepts.
//! - [`TwilioWriter`]: the messages Twilio sends, with exactly the documented
//!   keys and every counter as a JSON string.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

mod writer;
pub use writer::TwilioWriter;

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

#[cfg(test)]
mod tests;
