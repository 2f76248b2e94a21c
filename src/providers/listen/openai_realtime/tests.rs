use super::*;
use crate::providers::listen::dialect_tests::{PROVIDER_TURNS, feed, settings, turn_ended};

fn settings_for(turns: TurnsBy) -> StreamSettings {
    StreamSettings {
        vocabulary: "Pronto, Acme".into(),
        ..settings("https://api.openai.com/v1", "sk-test", turns)
    }
}

const SERVER_VAD: TurnsBy = PROVIDER_TURNS;

const UPDATED: &str = r#"{"type":"session.updated","session":{"type":"transcription","audio":{"input":{"format":{"type":"audio/pcmu"},"turn_detection":null}}}}"#;

/// A session whose update was sent (returned) and, with `confirm`, confirmed.
fn session(turns: TurnsBy, confirm: bool) -> (Session, Vec<Message>) {
    let mut session = Session::new(settings_for(turns));
    let mut out = Vec::new();
    session.opening(&mut out);
    if confirm {
        session
            .text(UPDATED, &mut out, &mut Vec::new())
            .expect("confirmed");
    }
    (session, out)
}

fn json_of(message: &Message) -> Value {
    match message {
        Message::Text(text) => serde_json::from_str(text.as_str()).expect("JSON"),
        other => panic!("not text: {other:?}"),
    }
}

fn event(kind: &str, item: &str, extra: Value) -> String {
    let mut event = json!({"type": kind, "item_id": item, "event_id": "ev_1"});
    if let (Some(event), Some(extra)) = (event.as_object_mut(), extra.as_object()) {
        event.extend(extra.clone());
    }
    event.to_string()
}

fn committed(item: &str, previous: Value) -> String {
    event(
        "input_audio_buffer.committed",
        item,
        json!({"previous_item_id": previous}),
    )
}

fn delta(item: &str, delta: &str) -> String {
    event(
        "conversation.item.input_audio_transcription.delta",
        item,
        json!({"content_index": 0, "delta": delta}),
    )
}

fn completed(item: &str, transcript: &str) -> String {
    event(
        "conversation.item.input_audio_transcription.completed",
        item,
        json!({"content_index": 0, "transcript": transcript,
               "usage": {"type": "duration", "seconds": 2}}),
    )
}

#[test]
fn the_request_is_the_ga_transcription_intent_with_a_bearer_key() {
    let (session, _) = session(SERVER_VAD, false);
    let request = session.request().expect("a request");
    assert_eq!(
        request.uri().to_string(),
        "wss://api.openai.com/v1/realtime?intent=transcription"
    );
    assert_eq!(request.headers()["authorization"], "Bearer sk-test");
    assert!(request.headers().get("openai-beta").is_none());
}

#[test]
fn the_opening_asks_for_pcmu_with_server_vad() {
    let (_, out) = session(SERVER_VAD, false);
    assert_eq!(out.len(), 1);
    let update = json_of(&out[0]);
    assert_eq!(update["type"], "session.update");
    assert_eq!(update["session"]["type"], "transcription");
    let input = &update["session"]["audio"]["input"];
    assert_eq!(input["format"], json!({"type": "audio/pcmu"}));
    assert_eq!(input["transcription"]["model"], "gpt-4o-mini-transcribe");
    assert_eq!(input["transcription"]["language"], "en");
    assert_eq!(input["transcription"]["prompt"], "Pronto, Acme");
    assert_eq!(
        input["turn_detection"],
        json!({"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500})
    );
    assert!(update["session"].get("input_audio_format").is_none());
}

#[test]
fn semantic_and_pronto_turns_set_the_detector() {
    let semantic = TurnsBy::Provider {
        eager: false,
        semantic: true,
    };
    let (_, out) = session(semantic, false);
    assert_eq!(
        json_of(&out[0])["session"]["audio"]["input"]["turn_detection"],
        json!({"type": "semantic_vad", "eagerness": "high"})
    );
    let (_, out) = session(TurnsBy::Pronto, false);
    let input = &json_of(&out[0])["session"]["audio"]["input"];
    assert!(input.get("turn_detection").is_some_and(Value::is_null));
}

#[test]
fn audio_waits_for_the_session_to_confirm_pcmu() {
    let (mut session, _) = session(SERVER_VAD, false);
    let mut out = Vec::new();
    session.audio(&[0x10; 160], &mut out);
    session.audio(&[0x20; 160], &mut out);
    assert!(out.is_empty(), "held before session.updated");
    let (_, out) = feed(
        &mut session,
        &[
            r#"{"type":"session.created","session":{"audio":{"input":{"format":{"type":"audio/pcm","rate":24000}}}}}"#,
        ],
    );
    assert!(out.is_empty(), "session.created is not the confirmation");
    let (_, out) = feed(&mut session, &[UPDATED]);
    assert_eq!(out.len(), 2);
    let first = json_of(&out[0]);
    assert_eq!(first["type"], "input_audio_buffer.append");
    assert_eq!(
        STANDARD
            .decode(first["audio"].as_str().unwrap_or_default())
            .ok(),
        Some(vec![0x10; 160])
    );
    let mut out = Vec::new();
    session.audio(&[0x30; 160], &mut out);
    assert_eq!(out.len(), 1, "one event per frame once confirmed");
}

#[test]
fn a_session_that_is_not_pcmu_is_fatal() {
    let (mut session, _) = session(SERVER_VAD, false);
    let pcm = r#"{"type":"session.updated","session":{"audio":{"input":{"format":{"type":"audio/pcm","rate":24000}}}}}"#;
    let result = session.text(pcm, &mut Vec::new(), &mut Vec::new());
    assert!(matches!(result, Err(Closed::Fatal(_))), "{result:?}");
}

#[test]
fn an_error_before_the_confirmation_is_fatal_and_after_it_a_warning() {
    let (mut session, _) = session(SERVER_VAD, false);
    let error = r#"{"type":"error","error":{"type":"invalid_request_error","code":"unknown_parameter","message":"Unknown parameter: 'session.input_audio_format'.","param":"session.input_audio_format"}}"#;
    let result = session.text(error, &mut Vec::new(), &mut Vec::new());
    assert!(matches!(result, Err(Closed::Fatal(_))), "{result:?}");
    let (mut session, _) = self::session(SERVER_VAD, true);
    assert_eq!(
        session.text(error, &mut Vec::new(), &mut Vec::new()),
        Ok(())
    );
}

#[test]
fn a_long_replay_is_split_into_one_second_appends() {
    let (mut session, _) = session(SERVER_VAD, true);
    let mut out = Vec::new();
    session.audio(&vec![0x10; 30 * 8000 + 100], &mut out);
    assert_eq!(out.len(), 31);
    let sizes: Vec<usize> = out
        .iter()
        .map(|m| {
            STANDARD
                .decode(json_of(m)["audio"].as_str().unwrap_or_default())
                .map(|a| a.len())
                .unwrap_or(0)
        })
        .collect();
    assert!(sizes.iter().all(|&s| s <= 8000));
    assert_eq!(sizes.iter().sum::<usize>(), 30 * 8000 + 100);
}

#[test]
fn vad_turns_report_speech_partials_and_the_completed_text() {
    let (mut session, _) = session(SERVER_VAD, true);
    let (heard, _) = feed(
        &mut session,
        &[
            &event(
                "input_audio_buffer.speech_started",
                "item_1",
                json!({"audio_start_ms": 300}),
            ),
            &event(
                "input_audio_buffer.speech_stopped",
                "item_1",
                json!({"audio_end_ms": 2100}),
            ),
            &committed("item_1", Value::Null),
            &delta("item_1", "Hello"),
            &delta("item_1", " there."),
            &completed("item_1", "Hello there."),
        ],
    );
    assert_eq!(
        heard,
        vec![
            Heard::SpeechStarted,
            Heard::SpeechStopped,
            Heard::Partial("Hello".into()),
            Heard::Partial("Hello there.".into()),
            turn_ended("Hello there.", false),
        ]
    );
}

#[test]
fn completions_out_of_order_are_reported_in_commit_order() {
    let (mut session, _) = session(SERVER_VAD, true);
    let (heard, _) = feed(
        &mut session,
        &[
            &committed("item_1", Value::Null),
            &committed("item_2", json!("item_1")),
            &completed("item_2", "second"),
        ],
    );
    assert!(heard.is_empty(), "the first turn is not in yet: {heard:?}");
    let (heard, _) = feed(&mut session, &[&completed("item_1", "first")]);
    assert_eq!(
        heard,
        vec![turn_ended("first", false), turn_ended("second", false),]
    );
}

#[test]
fn force_end_commits_and_the_completion_is_forced() {
    let (mut session, _) = session(TurnsBy::Pronto, true);
    let mut out = Vec::new();
    session.audio(&[0x10; 1600], &mut out);
    let mut events = Vec::new();
    session.force_end(&mut out, &mut events);
    assert!(events.is_empty());
    assert_eq!(
        json_of(&out[1]),
        json!({"type": "input_audio_buffer.commit"})
    );
    let (heard, _) = feed(
        &mut session,
        &[
            &committed("item_1", Value::Null),
            &completed("item_1", "hello"),
        ],
    );
    assert_eq!(heard, vec![turn_ended("hello", true)]);
}

#[test]
fn an_empty_commit_is_the_empty_forced_turn() {
    let (mut session, _) = session(TurnsBy::Pronto, true);
    session.audio(&[0xFF; 160], &mut Vec::new());
    let mut out = Vec::new();
    session.force_end(&mut out, &mut Vec::new());
    assert_eq!(out.len(), 1);
    let (heard, _) = feed(
        &mut session,
        &[
            r#"{"type":"error","error":{"type":"invalid_request_error","code":"input_audio_buffer_commit_empty","message":"buffer too small","param":null,"event_id":null}}"#,
        ],
    );
    assert_eq!(heard, vec![turn_ended("", true)]);
}

#[test]
fn force_end_with_no_audio_since_the_last_turn_answers_itself() {
    let (mut session, _) = session(TurnsBy::Pronto, true);
    let (mut out, mut heard) = (Vec::new(), Vec::new());
    session.force_end(&mut out, &mut heard);
    assert!(out.is_empty());
    assert_eq!(heard, vec![turn_ended("", true)]);
}

#[test]
fn a_force_end_before_the_confirmation_follows_the_held_audio() {
    let (mut session, _) = session(TurnsBy::Pronto, false);
    let mut out = Vec::new();
    session.audio(&[0x10; 800], &mut out);
    session.force_end(&mut out, &mut Vec::new());
    assert!(out.is_empty());
    let (_, out) = feed(&mut session, &[UPDATED]);
    let kinds: Vec<Value> = out.iter().map(|m| json_of(m)["type"].clone()).collect();
    assert_eq!(
        kinds,
        vec![
            json!("input_audio_buffer.append"),
            json!("input_audio_buffer.commit")
        ]
    );
}

#[test]
fn a_forced_commit_lost_with_the_connection_is_sent_again_after_the_replay() {
    let (mut session, _) = session(TurnsBy::Pronto, true);
    session.audio(&[0x10; 800], &mut Vec::new());
    session.force_end(&mut Vec::new(), &mut Vec::new());
    let mut out = Vec::new();
    session.opening(&mut out);
    session.audio(&[0x10; 800], &mut out);
    let (_, out) = feed(&mut session, &[UPDATED]);
    let kinds: Vec<Value> = out.iter().map(|m| json_of(m)["type"].clone()).collect();
    assert_eq!(
        kinds,
        vec![
            json!("input_audio_buffer.append"),
            json!("input_audio_buffer.commit")
        ]
    );
    let (heard, _) = feed(
        &mut session,
        &[
            &committed("item_9", Value::Null),
            &completed("item_9", "hi"),
        ],
    );
    assert_eq!(heard, vec![turn_ended("hi", true)]);
}

#[test]
fn held_audio_is_bounded() {
    let (mut session, _) = session(SERVER_VAD, false);
    for _ in 0..40 {
        session.audio(&[0x10; 8000], &mut Vec::new());
    }
    assert!(session.held_bytes <= MAX_HELD);
    assert_eq!(session.held.len(), MAX_HELD / 8000);
}

#[test]
fn unknown_and_malformed_events_are_skipped() {
    let (mut session, _) = session(SERVER_VAD, true);
    let (heard, _) = feed(
        &mut session,
        &[
            "{oops",
            r#"{"type":"rate_limits.updated","rate_limits":[]}"#,
            r#"{"type":"conversation.item.input_audio_transcription.segment","item_id":"x"}"#,
        ],
    );
    assert!(heard.is_empty());
}

#[test]
fn finish_closes_normally_and_close_codes_are_classified() {
    let (mut session, _) = session(SERVER_VAD, true);
    assert!(matches!(
        session.closed(Some(4000), "beta_api_shape_disabled"),
        Closed::Fatal(_)
    ));
    assert!(matches!(session.closed(Some(1001), ""), Closed::Retry(_)));
    assert!(matches!(session.closed(Some(1011), ""), Closed::Retry(_)));
    assert!(matches!(session.closed(None, ""), Closed::Retry(_)));
    let mut out = Vec::new();
    session.finish(&mut out);
    assert!(matches!(&out[..], [Message::Close(Some(frame))] if frame.code == CloseCode::Normal));
    assert_eq!(session.closed(Some(1000), ""), Closed::Clean);
    assert_eq!(session.closed(None, ""), Closed::Clean);
}
