//! Unit tests for the endpointer's internals; behaviour on audio is tested in
//! tests/it/audio_endpointer*.rs.

use super::*;

#[test]
fn durations_round_up_to_whole_frames() {
    assert_eq!(frames_for(0), 0);
    assert_eq!(frames_for(20), 1);
    assert_eq!(frames_for(30), 2);
    assert_eq!(frames_for(600), 30);
}

#[test]
fn frame_level_is_relative_to_full_scale() {
    assert_eq!(frame_dbfs(&[0; FRAME_SAMPLES]), -120.0);
    let square: Vec<i16> = (0..FRAME_SAMPLES)
        .map(|i| if i % 2 == 0 { i16::MIN } else { i16::MIN + 1 })
        .collect();
    assert!(frame_dbfs(&square).abs() < 0.01);
    assert!((frame_dbfs(&[3277; FRAME_SAMPLES]) + 20.0).abs() < 0.01);
}

#[test]
#[cfg_attr(debug_assertions, should_panic(expected = "160 samples"))]
fn a_wrong_frame_length_is_a_programming_error() {
    let mut ep = Endpointer::new(&EndpointerConfig::default()).expect("defaults are valid");
    // Release builds ignore the frame; debug builds stop right here.
    assert_eq!(ep.push_frame(&[0; 80]), None);
    assert_eq!(ep.frames_seen(), 0);
}

/// A loud, syllable-like test signal: 1 kHz pulsed at 4 Hz for `frames` frames.
fn pulses(frames: usize) -> Vec<i16> {
    (0..frames * FRAME_SAMPLES)
        .map(|i| {
            let t = i as f32 / 8000.0;
            let env = 0.5 - 0.5 * (std::f32::consts::TAU * 4.0 * t).cos();
            (8000.0 * env * (std::f32::consts::TAU * 1000.0 * t).sin()) as i16
        })
        .collect()
}

#[test]
fn an_idle_endpointer_holds_no_utterance_memory() {
    let cfg = EndpointerConfig {
        pre_roll_ms: 1000,
        min_speech_ms: 1000,
        ..EndpointerConfig::default()
    };
    let mut ep = Endpointer::new(&cfg).expect("valid config");
    // Even at the largest settings the history is small.
    let history_bytes = ep.history.capacity() as usize * (FRAME_SAMPLES * 2 + 5);
    assert!(history_bytes < 64 * 1024, "{history_bytes} bytes");
    assert_eq!(ep.utterance.capacity(), 0);
    let mut ended = false;
    let mut audio = pulses(150);
    audio.extend(vec![0; 60 * FRAME_SAMPLES]);
    for frame in audio.chunks_exact(FRAME_SAMPLES) {
        if let Some(EndpointEvent::UtteranceEnded(u)) = ep.push_frame(frame) {
            assert!(!u.samples.is_empty());
            ended = true;
        }
    }
    assert!(ended, "the pulses are an utterance");
    assert_eq!(
        ep.utterance.capacity(),
        0,
        "the buffer left with the utterance"
    );
}
