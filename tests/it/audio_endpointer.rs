//! The endpointer on real (synthetic-voice) recordings, and its configuration.
//!
//! Fixtures are made by `tests/fixtures/make_fixtures.sh`; `fixtures.json` records where the
//! speech was placed in each file, to the sample. Audio goes through the same path as a call:
//! μ-law encode (what Twilio sends), then `Framer`, then `Endpointer` with the default config.
//! Harder noise cases are in `audio_endpointer_noise.rs`.

use std::path::Path;

use crate::common::*;
use pronto::audio::resample::resample_to_8k;
use pronto::audio::vad::{EndpointEvent, Endpointer, EndpointerConfig, UtteranceEnd};
use pronto::audio::{FRAME_SAMPLES, wav::read_wav_mono};

#[test]
fn hello_is_one_utterance_where_the_speech_is() {
    let run = run(&load("hello.wav"));
    let utts = run.utterances();
    assert_eq!(utts.len(), 1);
    assert_where(utts[0], spans("hello.wav", "speech")[0], "hello");
    assert_audio_is_pre_roll_speech_and_tail(&run, "hello");
    // The end is declared exactly one hangover (600 ms) after the last voiced frame.
    let (ended_at, _) = run.events.last().expect("an event");
    assert_eq!(*ended_at, utts[0].last_voiced_frame + 30);
}

#[test]
fn a_pause_inside_a_sentence_does_not_split_it() {
    let run = run(&load("two_turns.wav"));
    let utts = run.utterances();
    assert_eq!(utts.len(), 2, "two sentences, two utterances");
    let speech = spans("two_turns.wav", "speech");
    let pause = spans("two_turns.wav", "pause")[0];
    assert!(utts[0].onset_frame < pause.0 && utts[0].last_voiced_frame > pause.1);
    assert_where(utts[0], speech[0], "first sentence");
    assert_where(utts[1], speech[1], "second sentence");
    assert_audio_is_pre_roll_speech_and_tail(&run, "two_turns");
}

#[test]
fn speech_over_steady_noise_is_still_two_utterances() {
    let run = run(&load("speech_in_noise.wav"));
    let utts = run.utterances();
    assert_eq!(utts.len(), 2);
    let speech = spans("speech_in_noise.wav", "speech");
    assert_where(utts[0], speech[0], "first sentence in noise");
    assert_where(utts[1], speech[1], "second sentence in noise");
}

#[test]
fn steady_noise_starting_on_a_quiet_line_is_not_speech() {
    // Shifting the file moves the noise step to every position inside a frame.
    let noise = load("steady_noise.wav");
    for shift in (0..160).step_by(10) {
        let mut shifted = vec![0i16; shift];
        shifted.extend_from_slice(&noise);
        let run = run(&shifted);
        assert!(run.events.is_empty(), "shift {shift}: {}", summary(&run));
    }
}

#[test]
fn a_short_cough_is_not_speech_however_it_is_aligned() {
    let cough = load("short_cough.wav");
    for shift in (0..160).step_by(10) {
        let mut shifted = vec![0i16; shift];
        shifted.extend_from_slice(&cough);
        let run = run(&shifted);
        assert!(run.events.is_empty(), "shift {shift}: {}", summary(&run));
    }
}

#[test]
fn speech_ms_grows_while_the_caller_talks() {
    let run = run(&load("hello.wav"));
    let (started_at, onset) = match run.events.first() {
        Some((at, EndpointEvent::SpeechStarted { onset_frame })) => (*at, *onset_frame),
        other => panic!("first event should be SpeechStarted, got {other:?}"),
    };
    let speech = spans("hello.wav", "speech")[0];
    assert!(onset.abs_diff(speech.0) <= 3, "onset {onset}");
    // Confirmed after min_speech_ms (140 ms = 7 frames), allowing two gap frames.
    assert!(
        (onset + 6..=onset + 8).contains(&started_at),
        "confirmed at {started_at}"
    );
    let before = &run.speech_ms[..started_at as usize];
    assert!(
        before.iter().all(|&ms| ms == 0),
        "no speech_ms before the onset"
    );
    let utt = run.utterances()[0];
    let (ended_at, _) = run.events[1];
    let during = &run.speech_ms[started_at as usize..ended_at as usize];
    assert!(during[0] >= 140, "speech_ms at onset {}", during[0]);
    assert!(
        during.windows(2).all(|w| w[0] <= w[1]),
        "speech_ms never goes down"
    );
    assert_eq!(*during.last().expect("frames"), utt.speech_ms);
    // Barge-in needs 250 ms of caller speech: reached within 400 ms of the onset.
    let barge_in_at = during
        .iter()
        .position(|&ms| ms >= 250)
        .expect("250 ms reached");
    assert!(started_at + barge_in_at as u64 <= onset + 20);
    assert_eq!(
        run.speech_ms[ended_at as usize], 0,
        "0 once the utterance ended"
    );
}

#[test]
fn max_utterance_cuts_and_the_next_utterance_continues_seamlessly() {
    // hello's sentence is voiced from frame ~15 to ~105 (1.8 s); cut it after 1.5 s.
    let cfg = EndpointerConfig {
        max_utterance_ms: 1500,
        ..EndpointerConfig::default()
    };
    let run = run_with(&cfg, &load("hello.wav"), 160);
    let utts = run.utterances();
    assert_eq!(utts.len(), 2, "the sentence is cut once");
    let (first, second) = (utts[0], utts[1]);
    assert_eq!(first.end, UtteranceEnd::MaxLength);
    assert_eq!(second.end, UtteranceEnd::Silence);
    // 1500 ms (75 frames) from the onset, plus the pre-roll before it.
    let first_start = first.onset_frame - PRE_ROLL_FRAMES;
    let cut = first.onset_frame + 75;
    assert_eq!(first.samples.len() as u64, (cut - first_start) * FRAME);
    assert_eq!(
        second.onset_frame, cut,
        "the caller was still talking at the cut"
    );
    // No audio lost or repeated: the second picks up at the first frame after the cut and
    // ends where the uncut utterance ends.
    let uncut = run_with(&EndpointerConfig::default(), &load("hello.wav"), 160);
    let uncut = uncut.utterances()[0];
    let joined: Vec<i16> = [&first.samples[..], &second.samples[..]].concat();
    assert!(
        joined == uncut.samples,
        "cut utterances do not add up to the uncut one"
    );
    assert_eq!(first.speech_ms + second.speech_ms, uncut.speech_ms);
}

#[test]
fn max_utterance_during_the_hangover_leaves_out_the_silence() {
    // Voiced until frame ~105, so the 2.1 s limit (onset + 105 frames) falls in the
    // hangover, after the 100 ms tail.
    let cfg = EndpointerConfig {
        max_utterance_ms: 2100,
        ..EndpointerConfig::default()
    };
    let run = run_with(&cfg, &load("hello.wav"), 160);
    let utts = run.utterances();
    assert_eq!(utts.len(), 1);
    assert_eq!(utts[0].end, UtteranceEnd::MaxLength);
    let (ended_at, _) = run.events.last().expect("an event");
    assert_eq!(*ended_at, utts[0].onset_frame + 104);
    assert!(*ended_at > utts[0].last_voiced_frame + TAIL_FRAMES);
    assert_audio_is_pre_roll_speech_and_tail(&run, "cut in the hangover");
}

#[test]
fn payload_size_does_not_change_the_result() {
    let samples = load("two_turns.wav");
    let reference = run(&samples).events;
    for payload in [1, 159, 161, 4000] {
        let events = run_with(&EndpointerConfig::default(), &samples, payload).events;
        assert!(events == reference, "payload {payload} changed the events");
    }
}

#[test]
fn the_16k_recording_resampled_gives_the_same_utterance() {
    let (wide, rate) = read_wav_mono(&Path::new(FIXTURES).join("hello_16k.wav")).expect("wav");
    assert_eq!(rate, 16_000);
    let narrow = resample_to_8k(&wide, rate).expect("resample");
    let run = run(&narrow);
    let utts = run.utterances();
    assert_eq!(utts.len(), 1);
    assert_where(utts[0], spans("hello.wav", "speech")[0], "hello at 16 kHz");
}

#[test]
fn reset_drops_the_utterance_in_progress_and_its_audio() {
    let samples = load("hello.wav");
    let mut ep = Endpointer::new(&EndpointerConfig::default()).expect("default config");
    let frames: Vec<&[i16]> = samples.chunks_exact(FRAME_SAMPLES).collect();
    // Into the sentence (onset ~15, confirmed ~21), then reset.
    for f in &frames[..40] {
        let _ = ep.push_frame(f);
    }
    assert!(ep.in_speech());
    ep.reset();
    assert!(!ep.in_speech());
    assert_eq!(ep.speech_ms(), 0);
    assert_eq!(ep.frames_seen(), 40, "reset keeps counting frames");
    let mut utts = Vec::new();
    for f in &frames[40..] {
        if let Some(EndpointEvent::UtteranceEnded(u)) = ep.push_frame(f) {
            utts.push(u);
        }
    }
    // The rest of the sentence may form a new utterance, but none of its audio predates
    // the reset.
    for u in &utts {
        assert!(u.onset_frame >= 40);
        let pre_roll_start = u.onset_frame.saturating_sub(PRE_ROLL_FRAMES).max(40);
        let expected = (u.last_voiced_frame + TAIL_FRAMES + 1 - pre_roll_start) * FRAME;
        assert_eq!(u.samples.len() as u64, expected);
    }
}

#[test]
fn bad_config_values_are_rejected_naming_the_key() {
    assert_eq!(EndpointerConfig::default().validate(), Ok(()));
    let d = EndpointerConfig::default;
    let cases = [
        (
            EndpointerConfig {
                aggressiveness: 4,
                ..d()
            },
            "vad.aggressiveness",
        ),
        (
            EndpointerConfig {
                energy_floor_dbfs: 0.0,
                ..d()
            },
            "vad.energy_floor_dbfs",
        ),
        (
            EndpointerConfig {
                energy_floor_dbfs: f32::NAN,
                ..d()
            },
            "vad.energy_floor_dbfs",
        ),
        (
            EndpointerConfig {
                noise_margin_db: -1.0,
                ..d()
            },
            "vad.noise_margin_db",
        ),
        (
            EndpointerConfig {
                min_speech_ms: 0,
                ..d()
            },
            "vad.min_speech_ms",
        ),
        (
            EndpointerConfig {
                hangover_ms: 50,
                ..d()
            },
            "vad.hangover_ms",
        ),
        (
            EndpointerConfig {
                pre_roll_ms: 5000,
                ..d()
            },
            "vad.pre_roll_ms",
        ),
        (
            EndpointerConfig {
                max_utterance_ms: 100,
                ..d()
            },
            "vad.max_utterance_ms",
        ),
        (
            EndpointerConfig {
                min_speech_ms: 800,
                max_utterance_ms: 600,
                ..d()
            },
            "vad.max_utterance_ms",
        ),
    ];
    for (cfg, key) in cases {
        let err = cfg.validate().expect_err(key);
        assert!(err.starts_with(key), "{err:?} should start with {key}");
        assert!(!err.contains('\n'), "one line: {err:?}");
        let built = Endpointer::new(&cfg).err().map(|e| e.to_string());
        assert_eq!(built, Some(err), "new() refuses the same config");
    }
    assert_eq!(
        EndpointerConfig {
            hangover_ms: 50,
            ..d()
        }
        .validate(),
        Err("vad.hangover_ms must be between 100 and 5000 (got 50)".to_string())
    );
}

#[test]
fn config_deserializes_from_a_partial_vad_section() {
    let cfg: EndpointerConfig =
        toml::from_str("hangover_ms = 800\nnoise_margin_db = 8.0").expect("valid TOML");
    assert_eq!(cfg.hangover_ms, 800);
    assert_eq!(cfg.noise_margin_db, 8.0);
    assert_eq!(cfg.min_speech_ms, EndpointerConfig::default().min_speech_ms);
    let err = toml::from_str::<EndpointerConfig>("hangover = 800").expect_err("typo");
    assert!(err.to_string().contains("hangover"), "{err}");
}

#[test]
fn endpointer_can_live_in_a_tokio_task() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<Endpointer>();
}
