//! Properties of the Media Streams parser, for any frame a peer may send:
//! documented messages are read in any key order, with unknown fields and
//! counters of any JSON type; anything else is an error, never a panic; and
//! what the writer sends, this parser reads back unchanged.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use serde_json::Value;

use super::{Inbound, MessageError, OutboundWriter, Parsed, parse};

const EVENTS: &[&str] = &["connected", "start", "media", "dtmf", "mark", "stop"];

/// Any JSON value, nested a little.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        " ?[0-9]{0,21} ?".prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("event".to_string()),
                    Just("payload".to_string()),
                    "[a-zA-Z]{0,8}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// What the parser must make of a counter written as `v`: Twilio's string,
/// a number, or anything else as `None`.
fn counter_of(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An optional counter: the JSON to write (if any) and its expected reading.
fn counter() -> impl Strategy<Value = Option<(String, Option<u64>)>> {
    prop::option::of(prop_oneof![
        any::<u64>().prop_map(|n| Value::from(n.to_string())),
        json(),
    ])
    .prop_map(|v| v.map(|v| (v.to_string(), counter_of(&v))))
}

/// A JSON object written by hand, so that the key order is the test's.
fn object(entries: &[(String, String)]) -> String {
    let fields: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{}:{v}", Value::from(k.as_str())))
        .collect();
    format!("{{{}}}", fields.join(","))
}

fn extra_fields() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("extra_[a-zA-Z]{0,6}", json()), 0..3).prop_map(|fields| {
        let mut fields: Vec<(String, String)> = fields
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect();
        fields.sort();
        fields.dedup_by(|a, b| a.0 == b.0);
        fields
    })
}

/// What a documented message must parse to, owned.
#[derive(Debug, Clone, PartialEq)]
enum Expected {
    Connected,
    Stop,
    Media {
        audio: Vec<u8>,
        timestamp: Option<u64>,
        chunk: Option<u64>,
        track: Option<String>,
    },
    Dtmf(String),
    Mark(String),
    Start {
        stream_sid: String,
        call_sid: String,
        parameters: Vec<(String, String)>,
    },
}

/// The top-level fields of a documented message of each kind and what it means.
fn documented() -> impl Strategy<Value = (Vec<(String, String)>, Expected)> {
    let str_json = |s: &str| Value::from(s).to_string();
    let media = (
        prop::collection::vec(any::<u8>(), 0..400),
        any::<bool>(),
        counter(),
        counter(),
        prop::option::of(any::<String>()),
        extra_fields(),
    )
        .prop_flat_map(
            move |(audio, escape_slashes, timestamp, chunk, track, extra)| {
                let mut payload = str_json(&STANDARD.encode(&audio));
                // `\/` is a legal JSON escape of `/`: the payload is then owned.
                if escape_slashes {
                    payload = payload.replace('/', "\\/");
                }
                let mut inner = vec![("payload".to_string(), payload)];
                for (name, c) in [("timestamp", &timestamp), ("chunk", &chunk)] {
                    if let Some((text, _)) = c {
                        inner.push((name.to_string(), text.clone()));
                    }
                }
                if let Some(t) = &track {
                    inner.push(("track".to_string(), str_json(t)));
                }
                inner.extend(extra);
                let expected = Expected::Media {
                    audio,
                    timestamp: timestamp.and_then(|c| c.1),
                    chunk: chunk.and_then(|c| c.1),
                    track,
                };
                Just(inner).prop_shuffle().prop_map(move |inner| {
                    (
                        vec![("media".to_string(), object(&inner))],
                        expected.clone(),
                    )
                })
            },
        );
    let dtmf = any::<String>().prop_map(move |d| {
        let inner = object(&[("digit".to_string(), str_json(&d))]);
        (vec![("dtmf".to_string(), inner)], Expected::Dtmf(d))
    });
    let mark = any::<String>().prop_map(move |n| {
        let inner = object(&[("name".to_string(), str_json(&n))]);
        (vec![("mark".to_string(), inner)], Expected::Mark(n))
    });
    let start = (
        any::<String>(),
        any::<String>(),
        prop::collection::btree_map(any::<String>(), any::<String>(), 0..4),
    )
        .prop_map(move |(stream_sid, call_sid, parameters)| {
            let params = Value::Object(
                parameters
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                    .collect(),
            );
            let inner = object(&[
                ("streamSid".to_string(), str_json(&stream_sid)),
                ("callSid".to_string(), str_json(&call_sid)),
                ("customParameters".to_string(), params.to_string()),
                ("future".to_string(), "[1,{\"x\":null}]".to_string()),
            ]);
            let expected = Expected::Start {
                stream_sid,
                call_sid,
                parameters: parameters.into_iter().collect(),
            };
            (vec![("start".to_string(), inner)], expected)
        });
    prop_oneof![
        Just((Vec::new(), Expected::Connected)),
        Just((Vec::new(), Expected::Stop)),
        media,
        dtmf,
        mark,
        start,
    ]
}

/// A whole documented frame, keys shuffled, and what it means.
fn frame() -> impl Strategy<Value = (String, Option<u64>, Expected)> {
    (documented(), counter(), extra_fields()).prop_flat_map(|((body, expected), seq, extra)| {
        let event = match &expected {
            Expected::Connected => "connected",
            Expected::Stop => "stop",
            Expected::Media { .. } => "media",
            Expected::Dtmf(_) => "dtmf",
            Expected::Mark(_) => "mark",
            Expected::Start { .. } => "start",
        };
        let mut fields = body;
        fields.push(("event".to_string(), Value::from(event).to_string()));
        fields.push(("streamSid".to_string(), "\"MZ1\"".to_string()));
        if let Some((text, _)) = &seq {
            fields.push(("sequenceNumber".to_string(), text.clone()));
        }
        fields.extend(extra);
        let seq = seq.and_then(|s| s.1);
        Just(fields)
            .prop_shuffle()
            .prop_map(move |fields| (object(&fields), seq, expected.clone()))
    })
}

/// The parsed message, owned, to compare with [`Expected`].
fn owned(message: Inbound<'_>) -> Result<Expected, TestCaseError> {
    Ok(match message {
        Inbound::Connected => Expected::Connected,
        Inbound::Stop => Expected::Stop,
        Inbound::Dtmf { digit } => Expected::Dtmf(digit.into_owned()),
        Inbound::Mark { name } => Expected::Mark(name.into_owned()),
        Inbound::Start(start) => Expected::Start {
            stream_sid: start.stream_sid,
            call_sid: start.call_sid,
            parameters: start.custom_parameters.into_iter().collect(),
        },
        Inbound::Media(media) => {
            let mut audio = vec![0xAA; 3];
            media
                .decode_into(&mut audio)
                .map_err(|e| TestCaseError::fail(format!("payload: {e}")))?;
            Expected::Media {
                audio,
                timestamp: media.timestamp_ms,
                chunk: media.chunk,
                track: media.track.map(|t| t.into_owned()),
            }
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn documented_messages_parse_in_any_key_order((text, seq, expected) in frame()) {
        let parsed = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
        prop_assert_eq!(parsed.sequence_number, seq, "{}", text);
        prop_assert_eq!(owned(parsed.message)?, expected, "{}", text);
    }

    #[test]
    fn any_json_is_a_message_or_an_error(v in json(), event in prop::option::of(prop_oneof![
        prop::sample::select(EVENTS).prop_map(str::to_string),
        any::<String>(),
    ])) {
        // Mostly objects, with an `event` of each kind, to reach past the first check.
        let v = match (v, event) {
            (Value::Object(mut m), Some(e)) => {
                m.insert("event".into(), e.into());
                Value::Object(m)
            }
            (v, _) => v,
        };
        let text = v.to_string();
        let event = v.get("event").and_then(Value::as_str);
        match parse(&text) {
            Ok(p) => {
                let kind = match p.message {
                    Inbound::Connected => "connected",
                    Inbound::Start(_) => "start",
                    Inbound::Media(_) => "media",
                    Inbound::Dtmf { .. } => "dtmf",
                    Inbound::Mark { .. } => "mark",
                    Inbound::Stop => "stop",
                };
                prop_assert_eq!(event, Some(kind), "{}", text);
            }
            Err(MessageError::UnknownEvent(e)) => {
                let event = event.unwrap_or_default();
                prop_assert!(!EVENTS.contains(&event), "{text}");
                // Cut, so that a peer cannot flood the log through it.
                prop_assert_eq!(e, event.chars().take(40).collect::<String>());
            }
            Err(MessageError::MissingField { .. } | MessageError::NotJson(_)) => {}
            Err(MessageError::BadBase64) => prop_assert!(false, "parse does not decode: {text}"),
        }
    }

    #[test]
    fn any_text_is_a_message_or_an_error(text in prop_oneof![
        any::<String>(),
        // Valid frames cut anywhere, or with one character changed.
        (frame(), any::<prop::sample::Index>(), any::<char>(), any::<bool>()).prop_map(
            |((t, _, _), at, c, replace)| {
                let mut chars: Vec<char> = t.chars().collect();
                let i = at.index(chars.len() + 1);
                if replace && i < chars.len() {
                    chars[i] = c;
                } else {
                    chars.truncate(i);
                }
                chars.into_iter().collect::<String>()
            }
        ),
    ]) {
        // Tolerant of content, never of syntax: what is not JSON is `NotJson`.
        // Syntax, not values: `1e445742311` is JSON whose number no f64
        // holds (a `Value` refuses it; a skipped field does not care).
        let is_json = serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok();
        match parse(&text) {
            Ok(_) => prop_assert!(is_json, "{text}"),
            Err(MessageError::NotJson(_)) => {}
            Err(e) => prop_assert!(is_json, "{e}: {text}"),
        }
    }

    #[test]
    fn a_payload_decodes_only_if_it_is_canonical_base64(payload in prop_oneof![
        "[A-Za-z0-9+/=]{0,64}",
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| STANDARD.encode(b)),
        any::<String>(),
    ]) {
        let text = object(&[
            ("event".to_string(), "\"media\"".to_string()),
            ("media".to_string(), object(&[("payload".to_string(), Value::from(payload.as_str()).to_string())])),
        ]);
        let Ok(Parsed { message: Inbound::Media(media), .. }) = parse(&text) else {
            return Err(TestCaseError::fail(format!("not a media message: {text}")));
        };
        let mut out = vec![1, 2, 3];
        match media.decode_into(&mut out) {
            Ok(()) => {
                prop_assert_eq!(STANDARD.encode(&out), payload);
                prop_assert!(out.len() <= media.payload.len() / 4 * 3);
            }
            Err(e) => prop_assert_eq!(e, MessageError::BadBase64),
        }
    }

    #[test]
    fn what_the_writer_sends_reads_back(sid in any::<String>(), name in any::<String>(),
                                         audio in prop::collection::vec(any::<u8>(), 0..320)) {
        let mut writer = OutboundWriter::new(sid.clone());
        let mark = writer.mark(&name);
        let mark = std::str::from_utf8(&mark).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let parsed = parse(mark).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(owned(parsed.message)?, Expected::Mark(name));
        let json: Value = serde_json::from_str(mark).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(json.get("streamSid").and_then(Value::as_str), Some(sid.as_str()));

        let media = writer.media(&audio);
        let media = std::str::from_utf8(&media).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let parsed = parse(media).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let Expected::Media { audio: back, .. } = owned(parsed.message)? else {
            return Err(TestCaseError::fail(format!("not media: {media}")));
        };
        prop_assert_eq!(back, audio);
    }
}
