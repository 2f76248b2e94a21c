//! Helpers shared by the endpointer tests: fixtures, running audio through the call path,
//! and deterministic noise.

use std::path::Path;

use pronto::audio::framer::Framer;
use pronto::audio::vad::{EndpointEvent, Endpointer, EndpointerConfig, Utterance, UtteranceEnd};
use pronto::audio::{FRAME_SAMPLES, mulaw, wav::read_wav_mono};
use serde_json::Value;

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

pub const FRAME: u64 = FRAME_SAMPLES as u64;

/// Default pre-roll and tail, in frames.
pub const PRE_ROLL_FRAMES: u64 = 15;

pub const TAIL_FRAMES: u64 = 5;

pub fn load(name: &str) -> Vec<i16> {
    let (samples, rate) =
        read_wav_mono(&Path::new(FIXTURES).join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(rate, 8000, "{name}");
    samples
}

pub fn meta(name: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(FIXTURES).join("fixtures.json"))
        .expect("tests/fixtures/fixtures.json");
    let all: Value = serde_json::from_str(&text).expect("fixtures.json is JSON");
    all[name].clone()
}

/// `[start, end)` sample spans of `kind` in a fixture, converted to (first, last) frames.
pub fn spans(name: &str, kind: &str) -> Vec<(u64, u64)> {
    meta(name)[kind]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: no {kind} in fixtures.json"))
        .iter()
        .map(|span| {
            let start = span[0].as_u64().expect("span start");
            let end = span[1].as_u64().expect("span end");
            (start / FRAME, (end - 1) / FRAME)
        })
        .collect()
}

/// What the endpointer did with a recording.
pub struct Run {
    /// Events with the index of the frame that produced them.
    pub events: Vec<(u64, EndpointEvent)>,
    /// `speech_ms()` after every frame.
    pub speech_ms: Vec<u32>,
    /// The audio as the endpointer saw it (after the μ-law round trip).
    pub heard: Vec<i16>,
}

impl Run {
    pub fn utterances(&self) -> Vec<&Utterance> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                EndpointEvent::UtteranceEnded(u) => Some(u),
                EndpointEvent::SpeechStarted { .. } => None,
            })
            .collect()
    }
}

/// The events without the audio, for assertion messages.
pub fn summary(run: &Run) -> String {
    let events: Vec<String> = run
        .events
        .iter()
        .map(|(at, e)| match e {
            EndpointEvent::SpeechStarted { onset_frame } => {
                format!("frame {at}: started (onset {onset_frame})")
            }
            EndpointEvent::UtteranceEnded(u) => format!(
                "frame {at}: ended {:?} (onset {}, last voiced {}, {} ms voiced)",
                u.end, u.onset_frame, u.last_voiced_frame, u.speech_ms
            ),
        })
        .collect();
    format!("[{}]", events.join("; "))
}

pub fn run_with(cfg: &EndpointerConfig, samples: &[i16], payload: usize) -> Run {
    let mut ep = Endpointer::new(cfg).expect("valid config");
    let mut framer = Framer::new();
    let mut run = Run {
        events: Vec::new(),
        speech_ms: Vec::new(),
        heard: Vec::new(),
    };
    for chunk in mulaw::encode(samples).chunks(payload) {
        framer.push_mulaw(chunk, |frame| {
            run.heard.extend_from_slice(frame);
            if let Some(event) = ep.push_frame(frame) {
                run.events.push((ep.frames_seen() - 1, event));
            }
            run.speech_ms.push(ep.speech_ms());
        });
    }
    run
}

pub fn run(samples: &[i16]) -> Run {
    run_with(&EndpointerConfig::default(), samples, 160)
}

/// Onset within 60 ms of the first speech frame; last voiced frame between 120 ms before
/// the speech ends (weak final consonants may sink below the gates; the tail covers them)
/// and 40 ms after it.
pub fn assert_where(u: &Utterance, speech: (u64, u64), what: &str) {
    assert!(
        u.onset_frame.abs_diff(speech.0) <= 3,
        "{what}: onset at frame {}, speech starts at frame {}",
        u.onset_frame,
        speech.0
    );
    assert!(
        u.last_voiced_frame + 6 >= speech.1 && u.last_voiced_frame <= speech.1 + 2,
        "{what}: last voiced frame {}, speech ends at frame {}",
        u.last_voiced_frame,
        speech.1
    );
    assert_eq!(u.end, UtteranceEnd::Silence, "{what}");
}

/// Check every utterance ended by silence is exactly pre-roll + speech + tail of `heard`.
pub fn assert_audio_is_pre_roll_speech_and_tail(run: &Run, what: &str) {
    for u in run.utterances() {
        let first = u.onset_frame.saturating_sub(PRE_ROLL_FRAMES);
        let last = u.last_voiced_frame + TAIL_FRAMES;
        let expected = &run.heard[(first * FRAME) as usize..((last + 1) * FRAME) as usize];
        assert!(
            u.samples == expected,
            "{what}: utterance audio is not frames {first}..={last}"
        );
    }
}

/// Deterministic Gaussian-ish noise (sum of 12 uniforms from an LCG).
pub struct Noise(pub u64);

impl Noise {
    pub fn next(&mut self) -> f64 {
        let mut sum = 0.0;
        for _ in 0..12 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            sum += (self.0 >> 11) as f64 / (1u64 << 53) as f64;
        }
        sum - 6.0
    }
}

pub fn dbfs_to_amplitude(dbfs: f64) -> f64 {
    32768.0 * 10f64.powf(dbfs / 20.0)
}

pub fn to_i16(x: f64) -> i16 {
    x.round().clamp(-32768.0, 32767.0) as i16
}

pub fn attenuate(samples: &[i16], db: f64) -> Vec<i16> {
    let gain = 10f64.powf(-db / 20.0);
    samples
        .iter()
        .map(|&s| to_i16(f64::from(s) * gain))
        .collect()
}
