use super::*;

#[test]
fn parses_the_documented_start() {
    let text = r#"{"event":"start","sequenceNumber":"1","start":{"accountSid":"ACx","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{"From":"+1555"}},"streamSid":"MZ1"}"#;
    let parsed = parse(text).expect("valid start");
    assert_eq!(parsed.sequence_number, Some(1));
    let Inbound::Start(start) = parsed.message else {
        panic!("not start")
    };
    assert_eq!(start.call_sid, "CA1");
    assert_eq!(start.stream_sid, "MZ1");
    assert_eq!(
        start.custom_parameters.get("From").map(String::as_str),
        Some("+1555")
    );
    assert_eq!(start.media_format.map(|f| f.sample_rate), Some(8000));
}

#[test]
fn start_without_custom_parameters_and_with_extra_fields() {
    let text = r#"{"streamSid":"MZ1","start":{"callSid":"CA1","streamSid":"MZ1","future":{"x":[1,2]}},"event":"start","extra":true}"#;
    let Inbound::Start(start) = parse(text).expect("valid").message else {
        panic!()
    };
    assert!(start.custom_parameters.is_empty());
}

#[test]
fn media_borrows_its_payload_and_reads_string_counters() {
    let text = r#"{"event":"media","sequenceNumber":"4","media":{"track":"inbound","chunk":"2","timestamp":"5","payload":"/38="},"streamSid":"MZ1"}"#;
    let parsed = parse(text).expect("valid");
    assert_eq!(parsed.sequence_number, Some(4));
    let Inbound::Media(media) = parsed.message else {
        panic!()
    };
    assert!(matches!(media.payload, Cow::Borrowed("/38=")));
    assert_eq!((media.timestamp_ms, media.chunk), (Some(5), Some(2)));
    let mut out = Vec::new();
    media.decode_into(&mut out).expect("base64");
    assert_eq!(out, vec![0xff, 0x7f]);
}

#[test]
fn numeric_or_garbage_counters_do_not_fail_the_message() {
    let text = r#"{"event":"media","sequenceNumber":7,"media":{"chunk":null,"timestamp":"soon","payload":""}}"#;
    let parsed = parse(text).expect("valid");
    assert_eq!(parsed.sequence_number, Some(7));
    let Inbound::Media(media) = parsed.message else {
        panic!()
    };
    assert_eq!((media.timestamp_ms, media.chunk), (None, None));
}

#[test]
fn array_or_object_counters_do_not_fail_the_message() {
    // Found by a property test (`proptests::documented_messages_parse_in_any_key_order`): these
    // failed the whole message although the doc says they become `None`.
    let text = r#"{"event":"media","sequenceNumber":[],"media":{"chunk":{"n":1},"timestamp":[1,[2]],"payload":""}}"#;
    let parsed = parse(text).expect("valid");
    assert_eq!(parsed.sequence_number, None);
    let Inbound::Media(media) = parsed.message else {
        panic!()
    };
    assert_eq!((media.timestamp_ms, media.chunk), (None, None));
}

#[test]
fn escaped_payload_falls_back_to_an_owned_string() {
    let text = r#"{"event":"media","media":{"payload":"\/38="}}"#;
    let Inbound::Media(media) = parse(text).expect("valid").message else {
        panic!()
    };
    assert_eq!(media.payload, "/38=");
}

#[test]
fn other_events() {
    assert_eq!(
        parse(r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#).map(|p| p.message),
        Ok(Inbound::Connected)
    );
    assert_eq!(
        parse(r#"{"event":"dtmf","streamSid":"MZ","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"1"}}"#).map(|p| p.message),
        Ok(Inbound::Dtmf { digit: "1".into() })
    );
    assert_eq!(
        parse(r#"{"event":"mark","sequenceNumber":"4","streamSid":"MZ","mark":{"name":"t1-s0"}}"#)
            .map(|p| p.message),
        Ok(Inbound::Mark {
            name: "t1-s0".into()
        })
    );
    assert_eq!(parse(r#"{"event":"stop","sequenceNumber":"5","stop":{"accountSid":"AC","callSid":"CA"},"streamSid":"MZ"}"#).map(|p| p.message), Ok(Inbound::Stop));
}

#[test]
fn bad_messages_are_errors_not_panics() {
    assert!(matches!(parse("not json"), Err(MessageError::NotJson(_))));
    assert!(matches!(parse("[1,2]"), Err(MessageError::NotJson(_))));
    // Found by `proptests::any_json_is_a_message_or_an_error`: serde reads a
    // struct from an array too, so these were a stop and a media message.
    assert!(matches!(
        parse(r#"["stop"]"#),
        Err(MessageError::NotJson(_))
    ));
    assert!(matches!(
        parse(r#" ["media", null, {"payload": ""}]"#),
        Err(MessageError::NotJson(_))
    ));
    assert!(parse(" \n{\"event\":\"stop\"}").is_ok());
    assert!(
        matches!(parse(r#"{"event":"dance"}"#), Err(MessageError::UnknownEvent(e)) if e == "dance")
    );
    assert!(matches!(
        parse(r#"{"event":"media"}"#),
        Err(MessageError::MissingField { .. })
    ));
    assert!(matches!(
        parse(r#"{"event":"media","media":{}}"#),
        Err(MessageError::MissingField { .. })
    ));
    assert!(matches!(
        parse(r#"{"event":"start"}"#),
        Err(MessageError::MissingField { .. })
    ));
    assert!(matches!(
        parse(r#"{"media":{"payload":""}}"#),
        Err(MessageError::MissingField { .. })
    ));
    assert!(matches!(
        parse(r#"{"event":"start","start":{"streamSid":1}}"#),
        Err(MessageError::NotJson(_))
    ));
    let Inbound::Media(media) = parse(r#"{"event":"media","media":{"payload":"!!!"}}"#)
        .expect("parses")
        .message
    else {
        panic!()
    };
    assert_eq!(
        media.decode_into(&mut Vec::new()),
        Err(MessageError::BadBase64)
    );
}

#[test]
fn outbound_shapes_are_exact() {
    let mut w = OutboundWriter::new("MZ123");
    assert_eq!(
        &w.media(&[0xff, 0x7f])[..],
        br#"{"event":"media","streamSid":"MZ123","media":{"payload":"/38="}}"#
    );
    assert_eq!(
        &w.mark("t1-s0")[..],
        br#"{"event":"mark","streamSid":"MZ123","mark":{"name":"t1-s0"}}"#
    );
    assert_eq!(&w.clear()[..], br#"{"event":"clear","streamSid":"MZ123"}"#);
    assert_eq!(
        &w.mark("a\"b")[..],
        br#"{"event":"mark","streamSid":"MZ123","mark":{"name":"a\"b"}}"#
    );
}

#[test]
fn earlier_messages_survive_later_writes() {
    let mut w = OutboundWriter::new("MZ");
    let first = w.media(&[1, 2, 3]);
    let second = w.media(&[4, 5, 6]);
    assert_ne!(first, second);
    assert!(std::str::from_utf8(&first).is_ok_and(|s| s.contains("AQID")));
}
