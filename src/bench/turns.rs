//! `pronto bench --turn-detectors`: each turn detector on the end-of-turn
//! data set (`tests/fixtures/turns/`, made by `scripts/make-turn-fixtures.py`),
//! through the same hearing a call uses ([`Ears::open`]), frame by frame.
//!
//! For every clip with speech: when the detector ended the turn, measured
//! from the end of the last word (the manifest's `speech_end_ms`), or that it
//! cut the caller off (declared the turn over before the sentence ended,
//! which on the clips with pauses inside the sentence means inside a pause).
//! For every noise-only clip: whether the caller would have interrupted the
//! agent (a false barge-in) or started a turn.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::report::Spread;
use crate::audio::mulaw;
use crate::audio::vad::EndpointerConfig;
use crate::engine::Event;
use crate::engine::hearing::{Detector, Ears, TurnSettings};
use crate::engine::turn_model::TurnModel;

/// Silence appended to every clip, longer than any detector's ceiling, so
/// that every detector decides.
const TAIL_MS: usize = 3500;
/// A turn ended this close before the end of the last word is taken as
/// ended at it (the fixtures' word ends are measured on the waveform, the
/// detector works in 20 ms frames).
const SLACK_MS: i64 = 60;

#[derive(Debug, Deserialize)]
struct Manifest {
    clips: Vec<Clip>,
}

#[derive(Debug, Clone, Deserialize)]
struct Clip {
    file: String,
    language: String,
    /// `complete`, `paused` (pauses inside the sentence) or `noise`.
    kind: String,
    speech_end_ms: Option<i64>,
}

/// One detector's figures over the data set.
#[derive(Debug, Clone, Serialize)]
pub struct DetectorRow {
    pub detector: String,
    /// End of the last word → turn decided, over the clips not cut off.
    pub latency_ms: Option<Spread>,
    pub paused_clips: usize,
    /// Clips with pauses inside the sentence whose turn was declared over
    /// inside it.
    pub paused_cut_off: usize,
    pub complete_clips: usize,
    pub complete_cut_off: usize,
    /// Clips where no turn ended at all.
    pub undecided: usize,
    pub noise_clips: usize,
    /// Noise clips on which the caller would have interrupted the agent.
    pub false_barge_ins: usize,
    /// Their files.
    pub false_barge_in_clips: Vec<String>,
    /// Noise clips that ended a turn (a turn sent to speech-to-text).
    pub false_turns: usize,
}

impl std::fmt::Display for DetectorRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (p50, p95) = self.latency_ms.map_or(("-".into(), "-".into()), |s| {
            (s.p50.to_string(), s.p95.to_string())
        });
        let pct = |n: usize, of: usize| {
            if of == 0 {
                "-".to_string()
            } else {
                format!("{:.0} % ({n}/{of})", 100.0 * n as f64 / of as f64)
            }
        };
        write!(
            f,
            "{:<14} {:>6} {:>6}  {:<14} {:<14} {:>9}  {}/{} barge-ins, {} turns {:?}",
            self.detector,
            p50,
            p95,
            pct(self.paused_cut_off, self.paused_clips),
            pct(self.complete_cut_off, self.complete_clips),
            self.undecided,
            self.false_barge_ins,
            self.noise_clips,
            self.false_turns,
            self.false_barge_in_clips,
        )
    }
}

/// Runs every detector that can run here on the clips in `dir`.
pub async fn run(
    dir: &Path,
    model: Option<Arc<dyn TurnModel>>,
) -> anyhow::Result<Vec<DetectorRow>> {
    let manifest: Manifest = serde_json::from_slice(
        &std::fs::read(dir.join("manifest.json"))
            .with_context(|| format!("reading {}/manifest.json", dir.display()))?,
    )
    .context("manifest.json")?;
    let mut clips = Vec::new();
    for clip in &manifest.clips {
        let path: PathBuf = dir.join(&clip.file);
        let mut pcm = crate::sim::load_wav_8k(&path)?;
        pcm.extend(std::iter::repeat_n(0, TAIL_MS * 8));
        clips.push((clip.clone(), mulaw::encode(&pcm)));
    }
    let mut detectors = vec![("silence 600", silence(600)), ("silence 300", silence(300))];
    if let Some(model) = model {
        // The defaults, then a stricter threshold and a longer pause before
        // judging: what trades latency for fewer cut-offs.
        for (name, stop_ms, threshold) in [
            ("model", 200, 0.5),
            ("model p>0.8", 200, 0.8),
            ("model 400 ms", 400, 0.5),
        ] {
            let settings = TurnSettings {
                detector: Detector::Model,
                stop_ms,
                threshold,
                ..TurnSettings::default()
            };
            detectors.push((name, ears(settings, Some(Arc::clone(&model)))));
        }
    }
    let mut rows = Vec::new();
    for (name, ears) in detectors {
        rows.push(measure(name, &ears, &clips).await);
    }
    Ok(rows)
}

fn silence(hangover_ms: u32) -> Ears {
    let mut ears = ears(TurnSettings::default(), None);
    ears.vad.hangover_ms = hangover_ms;
    ears
}

fn ears(turn: TurnSettings, model: Option<Arc<dyn TurnModel>>) -> Ears {
    Ears {
        vad: EndpointerConfig::default(),
        barge_in_min_ms: 300,
        turn,
        model,
    }
}

/// What one clip did: the frame of each turn end, whether it interrupted.
struct Heard {
    turn_ends_ms: Vec<i64>,
    interrupted: bool,
}

async fn hear(ears: &Ears, mulaw: &[u8]) -> Heard {
    let mut hearing = ears.open(None);
    let mut events = Vec::new();
    let mut heard = Heard {
        turn_ends_ms: Vec::new(),
        interrupted: false,
    };
    for (i, frame) in mulaw.chunks(160).enumerate() {
        hearing.hear(frame, &mut events);
        // The model's verdict comes within the frame, as in a call.
        events.extend(hearing.verdict(Duration::from_secs(5)).await.ok().flatten());
        let at_ms = (i as i64 + 1) * 20;
        for event in events.drain(..) {
            match event {
                Event::TurnEnded { .. } => heard.turn_ends_ms.push(at_ms),
                Event::Interrupting => heard.interrupted = true,
                _ => {}
            }
        }
    }
    heard
}

async fn measure(name: &str, ears: &Ears, clips: &[(Clip, Vec<u8>)]) -> DetectorRow {
    let mut row = DetectorRow {
        detector: name.to_string(),
        latency_ms: None,
        paused_clips: 0,
        paused_cut_off: 0,
        complete_clips: 0,
        complete_cut_off: 0,
        undecided: 0,
        noise_clips: 0,
        false_barge_ins: 0,
        false_barge_in_clips: Vec::new(),
        false_turns: 0,
    };
    let mut latencies = Vec::new();
    for (clip, mulaw) in clips {
        let heard = hear(ears, mulaw).await;
        if clip.kind == "noise" {
            row.noise_clips += 1;
            if heard.interrupted {
                row.false_barge_ins += 1;
                row.false_barge_in_clips.push(clip.file.clone());
            }
            row.false_turns += usize::from(!heard.turn_ends_ms.is_empty());
            continue;
        }
        let paused = clip.kind == "paused";
        if paused {
            row.paused_clips += 1;
        } else {
            row.complete_clips += 1;
        }
        let Some(speech_end) = clip.speech_end_ms else {
            continue;
        };
        let Some(&first_end) = heard.turn_ends_ms.first() else {
            row.undecided += 1;
            continue;
        };
        if first_end < speech_end - SLACK_MS {
            if paused {
                row.paused_cut_off += 1;
            } else {
                row.complete_cut_off += 1;
            }
            tracing::debug!(clip = %clip.file, language = %clip.language, first_end, speech_end, "cut off");
            continue;
        }
        latencies.push(first_end - speech_end);
    }
    row.latency_ms = Spread::of(latencies);
    row
}

/// The table.
pub fn table(rows: &[DetectorRow]) -> String {
    let mut out = format!(
        "{:<14} {:>6} {:>6}  {:<14} {:<14} {:>9}  {}\n",
        "detector", "p50 ms", "p95 ms", "cut (paused)", "cut (complete)", "undecided", "noise"
    );
    for row in rows {
        out.push_str(&format!("{row}\n"));
    }
    out
}
