//! The endpointer against noise that fools webrtc-vad, and against speech that is quiet or
//! far away: the cases the energy, noise-floor and onset checks exist for.

use crate::common::*;
use pronto::audio::vad::Utterance;

#[test]
fn loud_stationary_noise_is_not_speech() {
    // At these levels webrtc-vad calls both speech in every mode, for as long as they last.
    let mut rng = Noise(1);
    let white: Vec<i16> = (0..5 * 8000)
        .map(|_| to_i16(rng.next() * dbfs_to_amplitude(-25.0)))
        .collect();
    let hum: Vec<i16> = (0..5 * 8000)
        .map(|i| {
            let t = f64::from(i) / 8000.0;
            to_i16((2.0 * std::f64::consts::PI * 60.0 * t).sin() * dbfs_to_amplitude(-22.0))
        })
        .collect();
    for (name, signal) in [("white", white), ("hum", hum)] {
        let mut quiet_then_noise = vec![0i16; 8000];
        quiet_then_noise.extend_from_slice(&signal);
        for (label, s) in [("alone", &signal), ("after silence", &quiet_then_noise)] {
            let run = run(s);
            assert!(run.events.is_empty(), "{name} {label}: {}", summary(&run));
        }
    }
}

#[test]
fn a_dropout_inside_noise_does_not_start_speech() {
    let mut noise = load("steady_noise.wav");
    // 200 ms of digital silence in the middle of the steady part.
    noise[24_000..25_600].fill(0);
    assert!(run(&noise).events.is_empty());
}

#[test]
fn speech_soon_after_noise_starts_still_ends_on_time() {
    // A quiet line, then steady noise, then the two sentences 0.5 s later: webrtc-vad is
    // still calling the noise speech when the caller starts, so the utterance ends only
    // because the noise floor has caught up.
    let noise = load("steady_noise.wav");
    let speech = load("two_turns.wav");
    let mut rng = Noise(2);
    let lead = 8000; // 1 s of quiet line
    let mixed: Vec<i16> = (0..lead + speech.len())
        .map(|i| {
            let quiet = rng.next() * dbfs_to_amplitude(-65.0);
            let rest = if i < lead {
                0.0
            } else {
                f64::from(noise[8000 + (i - lead) % 32_000]) + f64::from(speech[i - lead])
            };
            to_i16(quiet + rest)
        })
        .collect();
    let utts_run = run(&mixed);
    let utts = utts_run.utterances();
    assert_eq!(utts.len(), 2);
    assert_ends_on_time(&utts, lead);
}

#[test]
fn utterances_end_in_loud_uneven_noise_that_webrtc_calls_speech() {
    // White noise at -30 dBFS, slowly wobbling by +-1.5 dB like a fan or traffic, starting
    // on a quiet line: webrtc-vad calls all of it speech. The caller (two_turns.wav, about
    // 9 dB above the noise) starts 1.5 s in. Each utterance must still end on time, which
    // only the noise-floor margin can achieve.
    let speech = load("two_turns.wav");
    let mut rng = Noise(3);
    let lead = 8000;
    let mixed: Vec<i16> = (0..lead + speech.len())
        .map(|i| {
            let quiet = rng.next() * dbfs_to_amplitude(-65.0);
            if i < lead {
                return to_i16(quiet);
            }
            let t = (i - lead) as f64 / 8000.0;
            let wobble_db = 1.5 * (2.0 * std::f64::consts::PI * 0.5 * t).sin();
            let noise = rng.next() * dbfs_to_amplitude(-30.0 + wobble_db);
            to_i16(quiet + noise + f64::from(speech[i - lead]))
        })
        .collect();
    let run = run(&mixed);
    let utts = run.utterances();
    assert_eq!(utts.len(), 2, "{}", summary(&run));
    assert_ends_on_time(&utts, lead);
}

#[test]
fn a_quiet_caller_is_heard_from_the_first_word() {
    // 15 dB down: about -36 dBFS RMS over the speech, a soft-spoken caller on a mobile.
    let run = run(&attenuate(&load("two_turns.wav"), 15.0));
    let utts = run.utterances();
    assert_eq!(utts.len(), 2);
    for (u, speech) in utts.iter().zip(spans("two_turns.wav", "speech")) {
        assert!(
            u.onset_frame.abs_diff(speech.0) <= 3,
            "onset at frame {}, speech starts at frame {}",
            u.onset_frame,
            speech.0
        );
    }
}

#[test]
fn distant_background_speech_is_ignored() {
    // The same voice 30 dB down (about -50 dBFS): a TV or another room, not the caller.
    let run = run(&attenuate(&load("hello.wav"), 30.0));
    assert!(run.events.is_empty(), "{}", summary(&run));
}

#[test]
fn dtmf_key_presses_are_not_speech() {
    // Five digits, 250 ms tone + 100 ms gap each, at -10 dBFS: loud, voiced-looking, but
    // steady while each tone lasts.
    let digits = [
        (697.0, 1209.0),
        (770.0, 1336.0),
        (852.0, 1477.0),
        (941.0, 1633.0),
        (697.0, 1336.0),
    ];
    let mut signal = vec![0i16; 8000];
    for (low, high) in digits {
        signal.extend((0..2000).map(|i| {
            let t = f64::from(i) / 8000.0;
            let tau = 2.0 * std::f64::consts::PI;
            to_i16(((tau * low * t).sin() + (tau * high * t).sin()) * dbfs_to_amplitude(-13.0))
        }));
        signal.extend([0i16; 800]);
    }
    signal.extend([0i16; 8000]);
    let run = run(&signal);
    assert!(run.events.is_empty(), "{}", summary(&run));
}

/// Each utterance of two_turns.wav, played after `lead` samples of other audio, ends
/// within a few frames of where its speech ends.
fn assert_ends_on_time(utts: &[&Utterance], lead: usize) {
    let offset = lead as u64 / FRAME;
    for (u, (_, last)) in utts.iter().zip(spans("two_turns.wav", "speech")) {
        let last = last + offset;
        assert!(
            u.last_voiced_frame + 6 >= last && u.last_voiced_frame <= last + 2,
            "last voiced frame {}, speech ends at frame {last}",
            u.last_voiced_frame
        );
    }
}
