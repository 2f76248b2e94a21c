//! Media Streams WebSocket messages
//! (<https://www.twilio.com/docs/voice/media-streams/websocket-messages>).
//!
//! Inbound (Twilio → Pronto) messages are parsed tolerantly: any key order, unknown
//! fields ignored, counters as JSON strings (numbers accepted too). The `media`
//! message arrives fifty times a second, so it is parsed without allocating: the
//! payload is borrowed from the frame text and decoded into a caller's buffer.
//!
//! Outbound (Pronto → Twilio) messages have exactly the three documented shapes
//! (`media`, `mark`, `clear`); anything else makes Twilio raise warning 31951 and
//! drop the message, so they are written from fixed structs, never by hand.

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Deserializer, Serialize};

/// An inbound message, validated. Borrowed from the frame it was parsed from.
#[derive(Debug, PartialEq)]
pub enum Inbound<'a> {
    Connected,
    Start(Box<Start>),
    Media(Media<'a>),
    Dtmf { digit: Cow<'a, str> },
    Mark { name: Cow<'a, str> },
    Stop,
}

/// The `start` message's metadata (sent once per stream).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Start {
    #[serde(rename = "streamSid")]
    pub stream_sid: String,
    #[serde(rename = "callSid")]
    pub call_sid: String,
    #[serde(rename = "accountSid", default)]
    pub account_sid: String,
    #[serde(default)]
    pub tracks: Vec<String>,
    /// `<Parameter>`s from the TwiML; absent in older captures when none were set.
    #[serde(rename = "customParameters", default)]
    pub custom_parameters: BTreeMap<String, String>,
    #[serde(rename = "mediaFormat", default)]
    pub media_format: Option<MediaFormat>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MediaFormat {
    #[serde(default)]
    pub encoding: String,
    #[serde(rename = "sampleRate", default)]
    pub sample_rate: u32,
    #[serde(default)]
    pub channels: u32,
}

/// One `media` message: base64 μ-law audio and Twilio's stream clock.
#[derive(Debug, PartialEq)]
pub struct Media<'a> {
    /// Base64 of raw μ-law bytes, not yet decoded (see [`Media::decode_into`]).
    pub payload: Cow<'a, str>,
    /// Milliseconds since the stream started, on Twilio's clock.
    pub timestamp_ms: Option<u64>,
    pub chunk: Option<u64>,
    pub track: Option<Cow<'a, str>>,
}

impl Media<'_> {
    /// Decodes the payload into `out` (cleared first), reusing its allocation.
    pub fn decode_into(&self, out: &mut Vec<u8>) -> Result<(), MessageError> {
        out.clear();
        STANDARD
            .decode_vec(self.payload.as_bytes(), out)
            .map_err(|_| MessageError::BadBase64)
    }
}

/// Why an inbound text frame was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("not a JSON object: {0}")]
    NotJson(String),
    #[error("unknown event {0:?}")]
    UnknownEvent(String),
    #[error("{event} message without {field}")]
    MissingField {
        event: &'static str,
        field: &'static str,
    },
    #[error("media payload is not valid base64")]
    BadBase64,
}

/// Every field any inbound message may carry, all optional, so that one struct
/// parses any event in any key order without serde's tag buffering (which would
/// allocate for every media frame).
#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(borrow)]
    event: Option<Text<'a>>,
    #[serde(rename = "sequenceNumber", default, deserialize_with = "counter")]
    sequence_number: Option<u64>,
    #[serde(borrow, default)]
    media: Option<RawMedia<'a>>,
    #[serde(default)]
    start: Option<Start>,
    #[serde(borrow, default)]
    dtmf: Option<RawDtmf<'a>>,
    #[serde(borrow, default)]
    mark: Option<RawMark<'a>>,
}

#[derive(Deserialize)]
struct RawMedia<'a> {
    #[serde(borrow)]
    payload: Option<Text<'a>>,
    #[serde(default, deserialize_with = "counter")]
    timestamp: Option<u64>,
    #[serde(default, deserialize_with = "counter")]
    chunk: Option<u64>,
    #[serde(borrow, default)]
    track: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct RawDtmf<'a> {
    #[serde(borrow)]
    digit: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct RawMark<'a> {
    #[serde(borrow)]
    name: Option<Text<'a>>,
}

/// A string borrowed from the frame when it has no JSON escapes, owned otherwise.
/// (`Option<Cow<str>>` alone always allocates: serde only borrows a bare `Cow`.)
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(Visitor)
    }
}

/// Twilio's counters are JSON strings (`"sequenceNumber": "4"`); a number is
/// accepted too, and anything unparsable becomes `None` rather than failing the
/// whole message.
fn counter<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a counter as a string or a number")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.trim().parse().ok())
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(u64::try_from(v).ok())
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        // An array or an object is as unparsable as `"soon"`: read past it.
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut a: A,
        ) -> Result<Self::Value, A::Error> {
            while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut a: A,
        ) -> Result<Self::Value, A::Error> {
            while a
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok(None)
        }
    }
    d.deserialize_any(Visitor)
}

/// A parsed message plus Twilio's per-stream `sequenceNumber`, when present.
#[derive(Debug, PartialEq)]
pub struct Parsed<'a> {
    pub message: Inbound<'a>,
    pub sequence_number: Option<u64>,
}

/// Parses one inbound text frame.
pub fn parse(text: &str) -> Result<Parsed<'_>, MessageError> {
    // serde also reads a struct from an array of its fields in order, which
    // would make `["stop"]` a stop message: only an object is a message.
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        return Err(MessageError::NotJson(
            "the frame does not start with `{`".into(),
        ));
    }
    let raw: Raw<'_> =
        serde_json::from_str(text).map_err(|e| MessageError::NotJson(e.to_string()))?;
    let event = raw.event.map(|t| t.0).ok_or(MessageError::MissingField {
        event: "inbound",
        field: "event",
    })?;
    let missing = |event, field| MessageError::MissingField { event, field };
    let message = match event.as_ref() {
        "connected" => Inbound::Connected,
        "start" => Inbound::Start(Box::new(raw.start.ok_or(missing("start", "start"))?)),
        "media" => {
            let m = raw.media.ok_or(missing("media", "media"))?;
            Inbound::Media(Media {
                payload: m
                    .payload
                    .map(|t| t.0)
                    .ok_or(missing("media", "media.payload"))?,
                timestamp_ms: m.timestamp,
                chunk: m.chunk,
                track: m.track.map(|t| t.0),
            })
        }
        "dtmf" => Inbound::Dtmf {
            digit: raw
                .dtmf
                .and_then(|d| d.digit)
                .map(|t| t.0)
                .ok_or(missing("dtmf", "dtmf.digit"))?,
        },
        "mark" => Inbound::Mark {
            name: raw
                .mark
                .and_then(|m| m.name)
                .map(|t| t.0)
                .ok_or(missing("mark", "mark.name"))?,
        },
        "stop" => Inbound::Stop,
        other => return Err(MessageError::UnknownEvent(truncate(other, 40))),
    };
    Ok(Parsed {
        message,
        sequence_number: raw.sequence_number,
    })
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Writes this stream's outbound messages. One per socket: it holds the
/// `streamSid` from `start` and reuses its buffers, so that sending does not
/// allocate per frame: each message is split off one 16 KiB `BytesMut`, and a
/// new buffer is needed only when that one is used up, about once per second
/// of audio (a 20 ms media message is about 290 bytes).
pub struct OutboundWriter {
    stream_sid: String,
    buf: BytesMut,
    base64: String,
}

#[derive(Serialize)]
struct OutMedia<'a> {
    event: &'static str,
    #[serde(rename = "streamSid")]
    stream_sid: &'a str,
    media: OutPayload<'a>,
}

#[derive(Serialize)]
struct OutPayload<'a> {
    payload: &'a str,
}

#[derive(Serialize)]
struct OutMark<'a> {
    event: &'static str,
    #[serde(rename = "streamSid")]
    stream_sid: &'a str,
    mark: OutMarkName<'a>,
}

#[derive(Serialize)]
struct OutMarkName<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct OutClear<'a> {
    event: &'static str,
    #[serde(rename = "streamSid")]
    stream_sid: &'a str,
}

impl OutboundWriter {
    pub fn new(stream_sid: impl Into<String>) -> Self {
        OutboundWriter {
            stream_sid: stream_sid.into(),
            buf: BytesMut::with_capacity(16 * 1024),
            base64: String::with_capacity(512),
        }
    }

    pub fn stream_sid(&self) -> &str {
        &self.stream_sid
    }

    /// `{"event":"media","streamSid":…,"media":{"payload":…}}` for raw μ-law bytes.
    pub fn media(&mut self, mulaw: &[u8]) -> Bytes {
        self.base64.clear();
        STANDARD.encode_string(mulaw, &mut self.base64);
        let msg = OutMedia {
            event: "media",
            stream_sid: &self.stream_sid,
            media: OutPayload {
                payload: &self.base64,
            },
        };
        Self::write(&mut self.buf, &msg)
    }

    /// `{"event":"mark","streamSid":…,"mark":{"name":…}}`.
    pub fn mark(&mut self, name: &str) -> Bytes {
        let msg = OutMark {
            event: "mark",
            stream_sid: &self.stream_sid,
            mark: OutMarkName { name },
        };
        Self::write(&mut self.buf, &msg)
    }

    /// `{"event":"clear","streamSid":…}`.
    pub fn clear(&mut self) -> Bytes {
        let msg = OutClear {
            event: "clear",
            stream_sid: &self.stream_sid,
        };
        Self::write(&mut self.buf, &msg)
    }

    fn write<T: Serialize>(buf: &mut BytesMut, msg: &T) -> Bytes {
        buf.clear();
        // Serialising these plain structs of strings into memory cannot fail.
        if serde_json::to_writer(buf.writer(), msg).is_err() {
            unreachable!("serialising a struct of strings into memory cannot fail");
        }
        buf.split().freeze()
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
