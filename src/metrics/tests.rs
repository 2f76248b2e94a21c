//! The labels and rules of the metrics; the families as served are checked
//! end to end in `tests/it/metrics.rs`.

use super::*;
use crate::model::TurnLatency;

fn latency() -> TurnLatency {
    TurnLatency {
        turn: 1,
        utterance_ms: 0,
        endpoint_wait_ms: 0,
        decided_by: TurnDecider::Silence,
        turn_decided_ms: 0,
        stt_final_ms: None,
        speculative: false,
        stt_ms: None,
        llm_first_token_ms: None,
        first_sentence_ms: None,
        tts_first_byte_ms: None,
        first_tts_request_ms: None,
        model_first_audio_ms: None,
        voice_to_voice_ms: None,
        pipeline_overhead_ms: None,
        interrupted: false,
    }
}

fn record(turn: u32, caller: Option<&str>, latency: TurnLatency) -> TurnRecord {
    TurnRecord {
        turn,
        at_ms: None,
        caller: caller.map(str::to_string),
        agent_said: String::new(),
        agent_heard: String::new(),
        heard_approximate: false,
        by_operator: false,
        interrupted: latency.interrupted,
        latency,
    }
}

#[test]
fn every_histogram_gets_its_buckets() {
    assert!(builder().is_ok());
    for (name, buckets) in HISTOGRAMS {
        assert!(name.ends_with("_seconds"), "{name}");
        assert!(buckets.windows(2).all(|w| w[0] < w[1]), "{name}");
    }
}

#[test]
fn label_enums_index_their_handles_in_order() {
    for (i, d) in CallDirection::ALL.iter().enumerate() {
        assert_eq!(d.index(), i);
    }
    for (i, s) in Stage::ALL.iter().enumerate() {
        assert_eq!(*s as usize, i);
    }
    for (i, r) in TurnResult::ALL.iter().enumerate() {
        assert_eq!(*r as usize, i);
    }
    for (i, w) in Webhook::ALL.iter().enumerate() {
        assert_eq!(*w as usize, i);
    }
    for (i, r) in WebhookResult::ALL.iter().enumerate() {
        assert_eq!(*r as usize, i);
    }
    for (i, k) in WatchKind::ALL.iter().enumerate() {
        assert_eq!(*k as usize, i);
    }
}

#[test]
fn directions_are_four_labels() {
    for (twilio, label) in [
        ("", "inbound"),
        ("inbound", "inbound"),
        ("outbound-api", "outbound"),
        ("outbound-dial", "outbound"),
        ("browser", "browser"),
        ("trunking-originating", "other"),
        ("unknown", "other"),
    ] {
        assert_eq!(CallDirection::of(&Direction::parse(twilio)).as_str(), label);
    }
}

#[test]
fn only_turns_that_answer_the_caller_have_a_latency() {
    assert!(!answers_caller(&record(0, None, latency())), "greeting");
    assert!(!answers_caller(&record(3, None, latency())), "announcement");
    let operator = TurnRecord {
        by_operator: true,
        ..record(2, Some("caller words before it"), latency())
    };
    assert!(!answers_caller(&operator), "an operator's line");
    assert!(answers_caller(&record(1, Some("hello"), latency())));
    // Echo mode: no transcript, but an utterance and a wait.
    let echo = TurnLatency {
        utterance_ms: 900,
        endpoint_wait_ms: 600,
        ..latency()
    };
    assert!(answers_caller(&record(1, None, echo)));
    // Speech to speech: the model's voice detection decided.
    let s2s = TurnLatency {
        decided_by: TurnDecider::Provider,
        ..latency()
    };
    assert!(answers_caller(&record(2, None, s2s)));
}

#[test]
fn a_turn_is_answered_interrupted_or_empty() {
    let sent = TurnLatency {
        voice_to_voice_ms: Some(700),
        ..latency()
    };
    assert_eq!(
        TurnResult::of(&record(1, None, sent.clone())),
        TurnResult::Answered
    );
    let cut = TurnLatency {
        interrupted: true,
        ..sent
    };
    assert_eq!(
        TurnResult::of(&record(1, None, cut)),
        TurnResult::Interrupted
    );
    assert_eq!(
        TurnResult::of(&record(1, None, latency())),
        TurnResult::Empty
    );
}

#[test]
fn a_playback_sample_keeps_a_few_round_trips() {
    let mut sample = PlaybackSample::default();
    assert!(sample.is_empty());
    for ms in 1..=6 {
        sample.mark_roundtrip(Duration::from_millis(ms));
    }
    sample.underrun();
    assert_eq!(sample.underruns(), 1);
    assert_eq!(
        sample.roundtrips(),
        (1..=4).map(Duration::from_millis).collect::<Vec<_>>()
    );
}

#[test]
fn an_amended_turn_is_not_counted_again() {
    let mut call = CallMetrics::start(&Direction::Inbound);
    let firsts: Vec<bool> = [0, 1, 1, 0, 2, 4, 3]
        .into_iter()
        .map(|turn| call.first_record_of(turn))
        .collect();
    // A dropped turn (3, nothing intelligible) amended after a later one
    // was recorded is not counted either: turns are recorded in order.
    assert_eq!(firsts, [true, true, false, false, true, true, false]);
}

#[test]
fn the_families_render_with_their_types() {
    let text = Metrics::global().render();
    for (name, kind) in [
        (BUILD_INFO, "gauge"),
        (CALLS_STARTED, "counter"),
        (ACTIVE_CALLS, "gauge"),
        (TURN_RESPONSE, "histogram"),
        (MARK_ROUNDTRIP, "histogram"),
        (DASHBOARD_SESSIONS, "gauge"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "{name}:\n{text}"
        );
    }
    assert!(
        text.contains("pronto_turn_overhead_seconds_bucket{le=\"0.0005\"}"),
        "{text}"
    );
}
