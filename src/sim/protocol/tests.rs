use super::*;
use serde_json::{Value, json};

const SID: &str = "MZ00000000000000000000000000000001";

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

fn parse(text: &str) -> Result<ServerMessage, ProtocolError> {
    parse_server_message(text, SID)
}

#[test]
fn accepts_exactly_the_three_documented_shapes() {
    assert_eq!(
        parse(&json!({"event":"media","streamSid":SID,"media":{"payload":"/38A"}}).to_string()),
        Ok(ServerMessage::Media {
            mulaw: vec![0xFF, 0x7F, 0x00]
        })
    );
    assert_eq!(
        parse(&json!({"event":"mark","streamSid":SID,"mark":{"name":"utt-1"}}).to_string()),
        Ok(ServerMessage::Mark {
            name: "utt-1".into()
        })
    );
    assert_eq!(
        parse(&json!({"event":"clear","streamSid":SID}).to_string()),
        Ok(ServerMessage::Clear)
    );
    // Key order is free.
    assert_eq!(
        parse(&format!(r#"{{"streamSid":"{SID}","event":"clear"}}"#)),
        Ok(ServerMessage::Clear)
    );
}

#[test]
fn accepts_what_the_servers_writer_produces() {
    let mut w = crate::twilio::media::OutboundWriter::new(SID);
    let media = w.media(&[1, 2, 3]);
    assert_eq!(
        parse(std::str::from_utf8(&media).unwrap()),
        Ok(ServerMessage::Media {
            mulaw: vec![1, 2, 3]
        })
    );
    let mark = w.mark("m");
    assert!(matches!(
        parse(std::str::from_utf8(&mark).unwrap()),
        Ok(ServerMessage::Mark { .. })
    ));
    let clear = w.clear();
    assert_eq!(
        parse(std::str::from_utf8(&clear).unwrap()),
        Ok(ServerMessage::Clear)
    );
}

#[test]
fn rejects_extra_and_missing_fields() {
    let shape = |v: Value| matches!(parse(&v.to_string()), Err(ProtocolError::Shape { .. }));
    assert!(shape(
        json!({"event":"media","streamSid":SID,"media":{"payload":"AA==","track":"outbound"}})
    ));
    assert!(shape(
        json!({"event":"media","streamSid":SID,"media":{"payload":"AA=="},"sequenceNumber":"1"})
    ));
    assert!(shape(json!({"event":"media","streamSid":SID,"media":{}})));
    assert!(shape(json!({"event":"media","streamSid":SID})));
    assert!(shape(json!({"event":"media","media":{"payload":"AA=="}})));
    assert!(shape(
        json!({"event":"media","streamSid":SID,"media":{"payload":42}})
    ));
    assert!(shape(json!({"event":"mark","streamSid":SID,"mark":{}})));
    assert!(shape(
        json!({"event":"mark","streamSid":SID,"mark":{"name":"a","x":1}})
    ));
    assert!(shape(json!({"event":"clear","streamSid":SID,"clear":{}})));
    assert!(shape(json!({"event":"clear","streamSid":null})));
    // Duplicate keys: a lenient `Value` parse would keep the last one.
    assert!(matches!(
        parse(&format!(
            r#"{{"event":"clear","streamSid":"{SID}","streamSid":"{SID}"}}"#
        )),
        Err(ProtocolError::Shape { .. })
    ));
}

#[test]
fn rejects_unknown_events_and_non_json() {
    for event in ["connected", "start", "stop", "dtmf", "Media", "transcript"] {
        assert_eq!(
            parse(&json!({"event":event,"streamSid":SID}).to_string()),
            Err(ProtocolError::UnknownEvent {
                event: event.into()
            })
        );
    }
    assert_eq!(
        parse(r#"{"streamSid":"x"}"#),
        Err(ProtocolError::MissingEvent)
    );
    assert_eq!(parse(r#"{"event":3}"#), Err(ProtocolError::MissingEvent));
    assert!(matches!(parse("hello"), Err(ProtocolError::NotJson { .. })));
    assert!(matches!(parse("[1,2]"), Err(ProtocolError::NotJson { .. })));
    assert!(matches!(parse(""), Err(ProtocolError::NotJson { .. })));
}

#[test]
fn rejects_a_wrong_stream_sid_and_bad_base64() {
    assert_eq!(
        parse(&json!({"event":"clear","streamSid":"MZother"}).to_string()),
        Err(ProtocolError::WrongStreamSid {
            got: "MZother".into()
        })
    );
    for bad in ["!!!!", "AA", "AA=", "A A=", "AAAA\n"] {
        assert_eq!(
            parse(&json!({"event":"media","streamSid":SID,"media":{"payload":bad}}).to_string()),
            Err(ProtocolError::BadBase64),
            "{bad:?}"
        );
    }
}

#[test]
fn twilio_codes() {
    assert_eq!(ProtocolError::BinaryFrame { len: 1 }.twilio_code(), 31950);
    assert_eq!(ProtocolError::BadBase64.twilio_code(), 31951);
}

fn writer() -> TwilioWriter {
    TwilioWriter::new("AC01", "CA01", SID)
}

#[test]
fn connected_is_exact() {
    assert_eq!(
        writer().connected(),
        r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#
    );
}

#[test]
fn start_has_exactly_the_documented_keys() {
    let mut w = writer();
    let params = vec![("token".to_string(), "t1".to_string())];
    let v: Value = serde_json::from_str(&w.start(None, &params)).unwrap();
    assert_eq!(keys(&v), ["event", "sequenceNumber", "start", "streamSid"]);
    assert_eq!(v["event"], "start");
    assert_eq!(v["sequenceNumber"], "1");
    assert_eq!(v["streamSid"], SID);
    let s = &v["start"];
    assert_eq!(
        keys(s),
        [
            "accountSid",
            "callSid",
            "customParameters",
            "mediaFormat",
            "streamSid",
            "tracks"
        ]
    );
    assert_eq!(s["accountSid"], "AC01");
    assert_eq!(s["callSid"], "CA01");
    assert_eq!(s["streamSid"], SID);
    assert_eq!(s["tracks"], json!(["inbound"]));
    assert_eq!(
        s["mediaFormat"],
        json!({"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1})
    );
    assert_eq!(s["customParameters"], json!({"token":"t1"}));
}

#[test]
fn start_can_claim_another_call() {
    let v: Value = serde_json::from_str(&writer().start(Some("CAforged"), &[])).unwrap();
    assert_eq!(v["start"]["callSid"], "CAforged");
    assert_eq!(v["start"]["customParameters"], json!({}));
}

#[test]
fn media_counters_are_strings_and_advance() {
    let mut w = writer();
    w.start(None, &[]);
    let first: Value = serde_json::from_str(&w.media(155, &[0xFF; 160])).unwrap();
    assert_eq!(
        keys(&first),
        ["event", "media", "sequenceNumber", "streamSid"]
    );
    assert_eq!(
        keys(&first["media"]),
        ["chunk", "payload", "timestamp", "track"]
    );
    assert_eq!(first["sequenceNumber"], "2");
    assert_eq!(first["media"]["chunk"], "1");
    assert_eq!(first["media"]["timestamp"], "155");
    assert_eq!(first["media"]["track"], "inbound");
    let payload = first["media"]["payload"].as_str().unwrap();
    assert_eq!(payload.len(), 216, "160 bytes are 216 base64 characters");
    assert_eq!(STANDARD.decode(payload).unwrap(), vec![0xFF; 160]);
    w.dtmf('5');
    let second: Value = serde_json::from_str(&w.media(175, &[0xFF; 160])).unwrap();
    assert_eq!(second["sequenceNumber"], "4");
    assert_eq!(second["media"]["chunk"], "2");
}

#[test]
fn dtmf_mark_and_stop_are_exact() {
    let mut w = writer();
    let dtmf: Value = serde_json::from_str(&w.dtmf('#')).unwrap();
    assert_eq!(
        dtmf,
        json!({"event":"dtmf","streamSid":SID,"sequenceNumber":"1","dtmf":{"track":"inbound_track","digit":"#"}})
    );
    let mark: Value = serde_json::from_str(&w.mark("utt-7")).unwrap();
    assert_eq!(
        mark,
        json!({"event":"mark","sequenceNumber":"2","streamSid":SID,"mark":{"name":"utt-7"}})
    );
    let stop: Value = serde_json::from_str(&w.stop()).unwrap();
    assert_eq!(
        stop,
        json!({"event":"stop","sequenceNumber":"3","stop":{"accountSid":"AC01","callSid":"CA01"},"streamSid":SID})
    );
}

#[test]
fn the_servers_parser_reads_what_the_simulator_writes() {
    use crate::twilio::media::{Inbound, parse as server_parse};
    let mut w = writer();
    let text = w.connected();
    assert_eq!(server_parse(&text).unwrap().message, Inbound::Connected);
    let text = w.start(None, &[("k".into(), "v".into())]);
    match server_parse(&text).unwrap().message {
        Inbound::Start(s) => {
            assert_eq!(s.stream_sid, SID);
            assert_eq!(s.call_sid, "CA01");
            assert_eq!(s.custom_parameters.get("k").map(String::as_str), Some("v"));
        }
        other => panic!("{other:?}"),
    }
    let text = w.media(20, &[1, 2]);
    let parsed = server_parse(&text).unwrap();
    assert_eq!(parsed.sequence_number, Some(2));
    match parsed.message {
        Inbound::Media(m) => {
            assert_eq!(m.timestamp_ms, Some(20));
            assert_eq!(m.chunk, Some(1));
        }
        other => panic!("{other:?}"),
    }
    let text = w.stop();
    assert_eq!(server_parse(&text).unwrap().message, Inbound::Stop);
}
