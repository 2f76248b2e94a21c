//! The messages Twilio sends on a stream, with exactly the documented keys
//! and every counter as a JSON string (<https://www.twilio.com/docs/voice/media-streams/websocket-messages>).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

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
