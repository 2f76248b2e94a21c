//! Every verdict on a good observation and on the bad ones a broken build or
//! machine would produce: a self-test that cannot fail proves nothing.

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::sim::{CloseInfo, Closer, ProtocolError, TimedEvent, parse_twiml};

const MS: Duration = Duration::from_millis(7);

fn at(at_ms: i64, event: Event) -> TimedEvent {
    TimedEvent { at_ms, event }
}

/// A call where the caller spoke from 100 to 1100 ms and heard `heard`.
fn report(reply: bool, mark: Option<bool>, extra: Vec<TimedEvent>, heard: Vec<i16>) -> Report {
    let mut events = vec![
        at(0, Event::StreamConnected),
        at(100, Event::SpeechStart { turn: 1 }),
        at(1100, Event::SpeechEnd { turn: 1 }),
    ];
    if reply {
        events.push(at(1700, Event::AudioHeardStart));
    }
    if let Some(cleared) = mark {
        events.push(at(
            2900,
            Event::MarkEchoed {
                name: "t1-s0".into(),
                cleared,
            },
        ));
    }
    events.extend(extra);
    Report::new("CA1".into(), "MZ1".into(), events, heard)
}

fn answer(status: u16, body: &str) -> VoiceAnswer {
    VoiceAnswer {
        status,
        content_type: Some("text/xml".into()),
        body: body.into(),
        twiml: parse_twiml(body),
        call_sid: "CA1".into(),
        account_sid: "AC1".into(),
        params: Vec::new(),
        took: MS,
        answered_at: Instant::now(),
    }
}

#[test]
fn lines_start_with_ok_or_fail_and_the_name() {
    assert_eq!(
        Check::pass("health", "fine").to_string(),
        "ok   health    fine"
    );
    assert_eq!(Check::fail("echo", "no").to_string(), "FAIL echo      no");
}

#[test]
fn health_needs_echo_mode_and_signature_checks() {
    let good = json!({"status": "ok", "mode": "echo", "signature_checks": true});
    assert!(health(200, &good, MS).passed);
    let agent = json!({"status": "ok", "mode": "agent", "signature_checks": true});
    let c = health(200, &agent, MS);
    assert!(!c.passed && c.detail.contains("mode agent"), "{c}");
    let open = json!({"status": "ok", "mode": "echo", "signature_checks": false});
    assert!(!health(200, &open, MS).passed);
    assert!(!health(200, &json!("not json"), MS).passed);
    assert!(!health(503, &good, MS).passed);
}

#[test]
fn an_unsigned_webhook_must_be_refused() {
    assert!(unsigned_refused(403).passed);
    let c = unsigned_refused(200);
    assert!(!c.passed && c.detail.contains("HTTP 200"), "{c}");
}

#[test]
fn the_webhook_must_connect_a_stream_under_the_public_url() {
    let public = "wss://self-test.pronto.invalid";
    let stream = r#"<Response><Connect><Stream url="wss://self-test.pronto.invalid/stream/tok"/></Connect></Response>"#;
    assert!(webhook(&answer(200, stream), public).passed);
    let elsewhere = stream.replace("self-test.pronto.invalid", "evil.example");
    assert!(!webhook(&answer(200, &elsewhere), public).passed);
    let busy = "<Response><Say>Busy</Say><Hangup/></Response>";
    let c = webhook(&answer(200, busy), public);
    assert!(!c.passed && c.detail.contains("without a stream"), "{c}");
    assert!(!webhook(&answer(500, stream), public).passed);
}

#[test]
fn the_stream_must_be_the_calls() {
    let status = json!({"calls": [{"call_sid": "CA1", "stream_sid": "MZ1"}]});
    assert!(stream(&status, "CA1", "MZ1", MS).passed);
    assert!(!stream(&status, "CA1", "MZ2", MS).passed);
    assert!(!stream(&status, "CA2", "MZ1", MS).passed);
    assert!(!stream(&json!({"calls": []}), "CA1", "MZ1", MS).passed);
    assert!(!stream(&json!(null), "CA1", "MZ1", MS).passed);
}

#[test]
fn the_echo_is_audio_heard_after_speaking() {
    let c = echo(&report(true, Some(false), vec![], vec![]));
    assert!(c.passed && c.detail.contains("600 ms"), "{c}");
    let closed = at(
        1500,
        Event::Closed(CloseInfo {
            by: Closer::Server,
            code: Some(1011),
            reason: "internal error".into(),
            unplayed_ms: 0,
        }),
    );
    let c = echo(&report(false, None, vec![closed], vec![]));
    assert!(!c.passed, "{c}");
    assert!(
        c.detail.contains("1.0 s") && c.detail.contains("1011"),
        "{c}"
    );
    let silent = Report::new("CA1".into(), "MZ1".into(), vec![], vec![]);
    assert!(!echo(&silent).passed);
}

#[test]
fn the_echo_must_hold_the_speech_bit_for_bit() {
    let said: Vec<i16> = (0..4000)
        .map(|i| ((i * 37) % 20_000 - 10_000) as i16)
        .collect();
    let wire = mulaw::decode(&mulaw::encode(&said));
    let mut heard = vec![0i16; 1000];
    heard.extend(&wire);
    heard.extend(vec![0i16; 1000]);
    let c = bit_exact(&heard, &said);
    assert!(c.passed, "{c}");
    // The speech without the codec's rounding is not what travels the wire.
    let mut raw = vec![0i16; 1000];
    raw.extend(&said);
    assert!(!bit_exact(&raw, &said).passed);
    // One sample off anywhere fails it.
    heard[3000] = heard[3000].wrapping_add(1);
    assert!(!bit_exact(&heard, &said).passed);
    assert!(!bit_exact(&[], &said).passed);
}

#[test]
fn marks_must_come_back_played_and_the_protocol_be_clean() {
    assert!(marks(&report(true, Some(false), vec![], vec![])).passed);
    let c = marks(&report(true, Some(true), vec![], vec![]));
    assert!(!c.passed, "a cleared mark was not played: {c}");
    assert!(!marks(&report(true, None, vec![], vec![])).passed);
    let bad = at(
        2000,
        Event::ProtocolError(ProtocolError::BinaryFrame { len: 3 }),
    );
    let c = marks(&report(true, Some(false), vec![bad], vec![]));
    assert!(!c.passed && c.detail.contains("binary frame"), "{c}");
}

#[test]
fn the_record_must_be_completed_with_one_turn() {
    let good = json!({
        "status": "completed",
        "ended_at": "2026-01-01T00:00:00Z",
        "end_reason": "caller_hung_up",
        "turns": [{"turn": 1}],
    });
    assert!(record(200, &good, MS).passed);
    let mut open = good.clone();
    open["ended_at"] = json!(null);
    open["status"] = json!(null);
    let c = record(200, &open, MS);
    assert!(
        !c.passed && c.detail.contains("no end time") && c.detail.contains("status null"),
        "{c}"
    );
    let mut abnormal = good.clone();
    abnormal["end_reason"] = json!("abnormal");
    assert!(!record(200, &abnormal, MS).passed);
    let mut no_turns = good.clone();
    no_turns["turns"] = json!([]);
    assert!(!record(200, &no_turns, MS).passed);
    assert!(!record(404, &json!({"error": "no such call"}), MS).passed);
}

#[test]
fn the_agent_must_answer_and_the_record_hold_the_turn() {
    let said = ("hello", "Sure.");
    let stored = json!({"turns": [
        {"turn": 0, "caller": null, "agent_said": "Hi!"},
        {"turn": 1, "caller": "hello", "agent_said": "Sure."},
    ]});
    let c = agent(&report(true, Some(false), vec![], vec![]), &stored, said);
    assert!(c.passed && c.detail.contains("600 ms"), "{c}");
    // Silence after the caller's speech: no answer, whatever the record says.
    let c = agent(&report(false, None, vec![], vec![]), &stored, said);
    assert!(!c.passed && c.detail.contains("no answer"), "{c}");
    let silent = Report::new("CA1".into(), "MZ1".into(), vec![], vec![]);
    assert!(!agent(&silent, &stored, said).passed);
    // Heard, but the turn is not (yet) stored as it was said and answered.
    let heard = report(true, Some(false), vec![], vec![]);
    let other = json!({"turns": [{"turn": 1, "caller": "hello", "agent_said": "Sorry?"}]});
    let c = agent(&heard, &other, said);
    assert!(!c.passed && c.detail.contains("\"Sorry?\""), "{c}");
    let c = agent(&heard, &json!({"turns": []}), said);
    assert!(!c.passed && c.detail.contains("no turns"), "{c}");
    let c = agent(&heard, &json!("HTTP 404"), said);
    assert!(!c.passed && c.detail.contains("404"), "{c}");
}

#[test]
fn the_recording_must_be_a_long_enough_stereo_wav() {
    let wav = |channels: u16, frames: u32| {
        let spec = hound::WavSpec {
            channels,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut out = std::io::Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
        for _ in 0..frames * u32::from(channels) {
            w.write_sample(0i16).unwrap();
        }
        w.finalize().unwrap();
        out.into_inner()
    };
    let two_secs = Duration::from_secs(2);
    assert!(recording(200, &wav(2, 24_000), two_secs).passed);
    assert!(!recording(200, &wav(1, 24_000), two_secs).passed);
    assert!(!recording(200, &wav(2, 8_000), two_secs).passed);
    assert!(!recording(200, b"RIFF", two_secs).passed);
    assert!(!recording(404, &wav(2, 24_000), two_secs).passed);
}

#[test]
fn speech_part_drops_the_silence_around_it() {
    assert_eq!(speech_part(&[0, 5, 400, -500, 3, 0]), &[400, -500]);
    assert_eq!(speech_part(&[0, 0]), &[] as &[i16]);
}
