use super::*;
use crate::providers::listen::dialect_tests::{
    EAGER_TURNS, PROVIDER_TURNS, feed, settings, turn_ended,
};

fn settings_for(turns: TurnsBy) -> StreamSettings {
    settings("https://streaming.assemblyai.com", "aai-key", turns)
}

fn stream(turns: TurnsBy) -> Stream {
    let mut stream = Stream::new(settings_for(turns));
    stream.opening(&mut Vec::new());
    stream
}

fn heard(stream: &mut Stream, messages: &[&str]) -> Vec<Heard> {
    feed(stream, messages).0
}

fn turn(order: u64, transcript: &str, utterance: &str, end: bool) -> String {
    serde_json::json!({
        "type": "Turn", "turn_order": order, "turn_is_formatted": false,
        "end_of_turn": end, "transcript": transcript, "utterance": utterance,
        "end_of_turn_confidence": 0.5,
        "words": transcript.split_whitespace()
            .map(|w| serde_json::json!({"text": w, "start": 0, "end": 1, "confidence": 0.9, "word_is_final": true}))
            .collect::<Vec<_>>(),
    })
    .to_string()
}

fn sizes(out: &[Message]) -> Vec<usize> {
    out.iter()
        .map(|m| match m {
            Message::Binary(b) => b.len(),
            other => panic!("not audio: {other:?}"),
        })
        .collect()
}

fn query_of(stream: &Stream) -> Vec<(String, String)> {
    let request = stream.request().expect("a request");
    let query = request.uri().query().unwrap_or_default().to_string();
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn param(query: &[(String, String)], name: &str) -> Option<String> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

#[test]
fn the_request_asks_for_mulaw_with_the_bare_key() {
    let stream = stream(PROVIDER_TURNS);
    let request = stream.request().expect("a request");
    assert_eq!(request.uri().scheme_str(), Some("wss"));
    assert_eq!(request.uri().path(), "/v3/ws");
    assert_eq!(request.headers()["authorization"], "aai-key");
    let query = query_of(&stream);
    assert_eq!(param(&query, "sample_rate").as_deref(), Some("8000"));
    assert_eq!(param(&query, "encoding").as_deref(), Some("pcm_mulaw"));
    assert_eq!(
        param(&query, "speech_model").as_deref(),
        Some("universal-streaming-english")
    );
    assert_eq!(param(&query, "format_turns").as_deref(), Some("false"));
    assert_eq!(
        param(&query, "end_of_turn_confidence_threshold").as_deref(),
        Some("0.4")
    );
    assert_eq!(param(&query, "min_turn_silence").as_deref(), Some("400"));
    assert_eq!(param(&query, "max_turn_silence").as_deref(), Some("1280"));
    assert_eq!(param(&query, "keyterms_prompt"), None);
}

#[test]
fn pronto_turns_push_the_provider_end_to_its_backstop() {
    let query = query_of(&stream(TurnsBy::Pronto));
    assert_eq!(
        param(&query, "end_of_turn_confidence_threshold").as_deref(),
        Some("1.0")
    );
    assert_eq!(param(&query, "max_turn_silence").as_deref(), Some("10000"));
}

#[test]
fn other_languages_get_the_multilingual_model_and_vocabulary_becomes_keyterms() {
    let mut settings = settings_for(PROVIDER_TURNS);
    settings.language = "it".into();
    settings.vocabulary = "Pronto, Twilio\nAcme Bank".into();
    let query = query_of(&Stream::new(settings.clone()));
    assert_eq!(
        param(&query, "speech_model").as_deref(),
        Some("universal-streaming-multilingual")
    );
    assert_eq!(
        param(&query, "keyterms_prompt").as_deref(),
        Some(r#"["Pronto","Twilio","Acme Bank"]"#)
    );
    settings.model = "u3-rt-pro".into();
    let query = query_of(&Stream::new(settings));
    assert_eq!(param(&query, "speech_model").as_deref(), Some("u3-rt-pro"));
}

#[test]
fn twilio_frames_go_out_in_100_ms_messages() {
    let mut stream = stream(PROVIDER_TURNS);
    let mut out = Vec::new();
    for _ in 0..4 {
        stream.audio(&[0x10; 160], &mut out);
    }
    assert!(out.is_empty(), "80 ms is not yet a batch");
    stream.audio(&[0x10; 160], &mut out);
    stream.audio(&[0x10; 160], &mut out);
    assert_eq!(sizes(&out), vec![800]);
}

#[test]
fn a_long_replay_is_cut_into_messages_the_service_accepts() {
    let mut stream = stream(PROVIDER_TURNS);
    let mut out = Vec::new();
    stream.audio(&vec![0x10; 30 * 8000 + 500], &mut out);
    let sizes = sizes(&out);
    assert!(
        sizes.iter().all(|&s| (MIN_MESSAGE..=8000).contains(&s)),
        "{sizes:?}"
    );
    assert_eq!(sizes.iter().sum::<usize>(), 30 * 8000);
    // The rest waits for the next frames.
    assert_eq!(stream.pending.len(), 500);
}

#[test]
fn finish_pads_a_short_tail_to_50_ms_then_terminates() {
    let mut stream = stream(PROVIDER_TURNS);
    let mut out = Vec::new();
    stream.audio(&[0x10; 160], &mut out);
    stream.finish(&mut out);
    assert_eq!(out.len(), 2);
    let Message::Binary(tail) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(tail.len(), 400);
    assert!(tail[160..].iter().all(|&b| b == 0xFF));
    assert_eq!(out[1], Message::Text(r#"{"type":"Terminate"}"#.into()));
}

#[test]
fn partials_grow_and_the_end_of_turn_is_the_final_transcript() {
    let mut stream = stream(PROVIDER_TURNS);
    let heard = heard(
        &mut stream,
        &[
            r#"{"type":"Begin","id":"abc","expires_at":1759796682}"#,
            r#"{"type":"SpeechStarted","timestamp":1920}"#,
            &turn(0, "", "", false),
            &turn(0, "hi", "", false),
            &turn(0, "hi my name", "hi my name", false),
            &turn(0, "hi my name", "", true),
        ],
    );
    assert_eq!(
        heard,
        vec![
            Heard::SpeechStarted,
            Heard::Partial("hi".into()),
            Heard::Partial("hi my name".into()),
            turn_ended("hi my name", false),
        ]
    );
}

#[test]
fn the_formatted_copy_after_the_end_is_ignored() {
    let mut stream = stream(PROVIDER_TURNS);
    let formatted = r#"{"type":"Turn","turn_order":0,"turn_is_formatted":true,"end_of_turn":true,"transcript":"Hi.","utterance":"","words":[]}"#;
    let heard = heard(&mut stream, &[&turn(0, "hi", "", true), formatted]);
    assert_eq!(heard.len(), 1, "{heard:?}");
}

#[test]
fn eager_mode_reports_the_utterance_pause_with_the_whole_turn() {
    let mut stream = stream(EAGER_TURNS);
    let heard = heard(
        &mut stream,
        &[
            &turn(0, "book a", "", false),
            &turn(0, "book a table", "table", false),
            &turn(0, "book a table", "", true),
        ],
    );
    assert_eq!(
        heard,
        vec![
            Heard::Partial("book a".into()),
            Heard::Partial("book a table".into()),
            Heard::EagerEnd("book a table".into()),
            turn_ended("book a table", false),
        ]
    );
}

#[test]
fn new_words_after_an_eager_end_resume_the_turn() {
    let mut stream = stream(EAGER_TURNS);
    let heard = heard(
        &mut stream,
        &[
            &turn(0, "book a table", "book a table", false),
            &turn(0, "book a table for two", "", false),
            &turn(0, "book a table for two", "", true),
        ],
    );
    assert_eq!(
        heard,
        vec![
            Heard::Partial("book a table".into()),
            Heard::EagerEnd("book a table".into()),
            Heard::Resumed,
            Heard::Partial("book a table for two".into()),
            turn_ended("book a table for two", false),
        ]
    );
}

#[test]
fn without_eager_mode_the_utterance_is_only_a_partial() {
    let mut stream = stream(PROVIDER_TURNS);
    let heard = heard(&mut stream, &[&turn(0, "yes", "yes", false)]);
    assert_eq!(heard, vec![Heard::Partial("yes".into())]);
}

#[test]
fn force_end_flushes_the_batch_then_asks_for_the_endpoint() {
    let mut stream = stream(TurnsBy::Pronto);
    let _ = heard(&mut stream, &[&turn(0, "hello", "", false)]);
    let mut out = Vec::new();
    stream.audio(&[0x10; 320], &mut out);
    let mut events = Vec::new();
    stream.force_end(&mut out, &mut events);
    assert!(events.is_empty());
    assert_eq!(out.len(), 2);
    assert!(matches!(&out[0], Message::Binary(b) if b.len() == 400));
    assert_eq!(out[1], Message::Text(r#"{"type":"ForceEndpoint"}"#.into()));
    let heard = heard(&mut stream, &[&turn(0, "hello", "", true)]);
    assert_eq!(heard, vec![turn_ended("hello", true)]);
}

#[test]
fn force_end_with_nothing_heard_yet_still_asks() {
    // The caller's words may still be on their way to AssemblyAI when
    // Pronto hears the pause: the endpoint is asked for, no answer invented.
    let mut stream = stream(TurnsBy::Pronto);
    let mut out = Vec::new();
    let mut events = Vec::new();
    stream.force_end(&mut out, &mut events);
    assert!(events.is_empty(), "{events:?}");
    assert!(
        out.iter()
            .any(|m| matches!(m, Message::Text(t) if t.as_str().contains("ForceEndpoint"))),
        "{out:?}"
    );
}

#[test]
fn a_force_end_lost_with_the_connection_is_asked_again_after_the_replay() {
    let mut stream = stream(TurnsBy::Pronto);
    let _ = heard(&mut stream, &[&turn(0, "hello", "", false)]);
    stream.force_end(&mut Vec::new(), &mut Vec::new());
    stream.opening(&mut Vec::new());
    let mut out = Vec::new();
    stream.audio(&[0x10; 2000], &mut out);
    let last = out.last().expect("messages");
    assert_eq!(*last, Message::Text(r#"{"type":"ForceEndpoint"}"#.into()));
    let audio: usize = out
        .iter()
        .map(|m| match m {
            Message::Binary(b) => b.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(audio, 2000, "the whole replay before the endpoint");
}

#[test]
fn errors_are_fatal_or_retried_by_their_code() {
    let mut stream = stream(PROVIDER_TURNS);
    let mut heard = Vec::new();
    let refused = stream.text(
        r#"{"type":"Error","error_code":4001,"error":"Not Authorized"}"#,
        &mut Vec::new(),
        &mut heard,
    );
    assert!(
        matches!(
            refused,
            Err(Closed::Fatal(ProviderError::Status { status: 401, .. }))
        ),
        "{refused:?}"
    );
    let server = stream.text(
        r#"{"type":"Error","error_code":3005,"error":"Server error"}"#,
        &mut Vec::new(),
        &mut heard,
    );
    assert!(matches!(server, Err(Closed::Retry(_))), "{server:?}");
    let warning = stream.text(
        r#"{"type":"Warning","warning_code":1,"warning":"slow down"}"#,
        &mut Vec::new(),
        &mut heard,
    );
    assert_eq!(warning, Ok(()));
}

#[test]
fn unknown_and_malformed_messages_are_skipped() {
    let mut stream = stream(PROVIDER_TURNS);
    let heard = heard(
        &mut stream,
        &[
            "not json",
            r#"{"type":"SpeakerRevision","whatever":1}"#,
            r#"{"type":"Turn","turn_order":0,"end_of_turn":false,"transcript":"hi","utterance":"","new_field":[1]}"#,
        ],
    );
    assert_eq!(heard, vec![Heard::Partial("hi".into())]);
}

#[test]
fn close_codes_are_classified() {
    let mut stream = stream(PROVIDER_TURNS);
    for code in [1013, 3005, 4031, 1011] {
        assert!(
            matches!(stream.closed(Some(code), ""), Closed::Retry(_)),
            "{code}"
        );
    }
    for code in [4001, 4002, 4003, 3006, 3007, 3009, 4029, 4102] {
        assert!(
            matches!(stream.closed(Some(code), ""), Closed::Fatal(_)),
            "{code}"
        );
    }
    assert!(matches!(stream.closed(None, ""), Closed::Retry(_)));
    assert!(matches!(stream.closed(Some(1000), ""), Closed::Retry(_)));
    stream.finish(&mut Vec::new());
    assert_eq!(stream.closed(Some(1000), ""), Closed::Clean);
    assert_eq!(stream.closed(None, ""), Closed::Clean);
}
