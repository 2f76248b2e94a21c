//! The endpointer: decides when the caller starts and stops talking.
//!
//! Input is a stream of 20 ms frames at 8 kHz; output is two events,
//! [`EndpointEvent::SpeechStarted`] (used for barge-in) and [`EndpointEvent::UtteranceEnded`]
//! (the audio to transcribe). Time is counted in
//! frames, so the whole thing is pure and testable without a clock.
//!
//! A frame counts as *voiced* only when three independent checks agree:
//! 1. webrtc-vad (libfvad's GMM) says speech. On its own it calls steady line noise speech
//!    (white noise and hum louder than about -30 dBFS forever, and quieter noise for seconds
//!    after the level steps up), and it calls almost any sound whose loudness changes at a
//!    syllable-like rate speech, even a pulsing 3 kHz tone; so it is only the first gate, and
//!    on the test material the other checks alone reach the same decisions. It stays as the
//!    only check that looks at the spectrum rather than the level.
//! 2. The frame's energy is above an absolute floor (`energy_floor_dbfs`): nothing quieter is
//!    speech meant for us, and webrtc-vad's built-in hangover keeps saying "speech" for up to
//!    100 ms into digital silence after a word.
//! 3. The energy is `noise_margin_db` above the tracked noise floor. The tracker is the
//!    minimum frame energy over the last second ("minimum statistics"): it falls at once when
//!    the line gets quieter and rises only once a louder level has lasted a full second. Steady
//!    noise therefore becomes the floor within a second, while speech, which always dips
//!    between words and syllables, never lifts the floor to its own level.
//!
//! On top of the per-frame decision:
//! - an onset needs `min_speech_ms` of voiced frames (allowing two unvoiced frames inside), so
//!   a cough, a click or a door does not start a turn;
//! - and the energy of those voiced frames must vary by at least 6 dB. Speech always does
//!   (8.6 dB was the smallest onset range measured, for speech 9 dB above loud noise), steady
//!   noise does not (at most 3.4 dB over every noise test, DTMF tones included). This is what
//!   rejects noise that *starts* on a quiet line: webrtc-vad, adapted to the quiet, calls it
//!   speech for seconds, and the noise floor needs a second to catch up, far longer than
//!   `min_speech_ms`;
//! - an utterance ends after `hangover_ms` without a voiced frame, or at `max_utterance_ms`;
//! - the utterance audio starts `pre_roll_ms` before the first voiced frame (weak onsets such
//!   as "h" or "f" fall below the gates but matter to speech-to-text) and ends 100 ms after
//!   the last voiced frame (not the whole hangover, which is just silence).

mod config;
mod history;

pub use config::EndpointerConfig;

use webrtc_vad::{SampleRate, Vad, VadMode};

use super::{FRAME_MS, FRAME_SAMPLES};
use history::{History, NoiseFloor};

/// Audio kept after the last voiced frame, so a trailing consonant is not clipped.
const TAIL_MS: u32 = 100;
/// Unvoiced frames tolerated inside an onset (a stop consonant or a glitch in the middle of
/// the first syllable must not restart the min-speech count).
const ONSET_GAP_FRAMES: usize = 2;
/// Energy range over the voiced frames of a candidate onset below which it is taken for
/// steady noise rather than speech (see [`Endpointer::onset_spread`]). Measured in
/// tests/it/audio_endpointer.rs: speech onsets 8.6-19.5 dB (the low end is speech 9 dB above
/// loud noise, 10.8 a continuation after a `MaxLength` cut); steady noise at every alignment
/// of its start, hum, dropouts and DTMF at most 3.4 dB.
const ONSET_MIN_SPREAD_DB: f32 = 6.0;
/// Initial capacity of an utterance buffer: 2 s, which covers most turns without regrowing.
/// Reserved only once speech has started, so an idle call holds no utterance memory.
const UTTERANCE_RESERVE: usize = 2 * 8000;

/// The endpointer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum VadError {
    /// A configuration value is out of range (the message names the key).
    #[error("{0}")]
    Config(String),
}

/// Something the session has to act on.
#[derive(Clone, Debug, PartialEq)]
pub enum EndpointEvent {
    /// An onset was confirmed (after `min_speech_ms` of speech). `onset_frame` is the index
    /// of its first voiced frame, which is up to `min_speech_ms` + 40 ms in the past.
    SpeechStarted {
        /// Index of the first voiced frame of the utterance.
        onset_frame: u64,
    },
    /// The utterance is over: after `hangover_ms` of non-speech, or at `max_utterance_ms`.
    UtteranceEnded(Utterance),
}

/// One finished turn of caller speech.
#[derive(Clone, Debug, PartialEq)]
pub struct Utterance {
    /// Pre-roll, then everything from the onset to the last voiced frame, then a 100 ms
    /// tail (cut at `MaxLength` mid-speech: everything up to the cut).
    pub samples: Vec<i16>,
    /// Index of the first voiced frame.
    pub onset_frame: u64,
    /// Index of the last voiced frame.
    pub last_voiced_frame: u64,
    /// Voiced time in the utterance, in ms (pauses not counted).
    pub speech_ms: u32,
    /// Why the utterance ended.
    pub end: UtteranceEnd,
}

/// Why an utterance ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UtteranceEnd {
    /// `hangover_ms` of non-speech: the caller finished a turn.
    Silence,
    /// The utterance reached `max_utterance_ms`; if the caller keeps talking, the next
    /// utterance continues exactly where this one stopped.
    MaxLength,
}

/// webrtc-vad's handle, made movable between threads.
struct SendVad(Vad);

// SAFETY: `Vad` holds a raw pointer to a heap-allocated libfvad instance, which is plain
// data (filter states and counters) with no thread-local or shared state; the pointer is
// what makes it `!Send`. `SendVad` owns the instance exclusively and every call goes through
// `&mut self`, so moving it to another thread (a tokio task migrating between workers) is
// sound. It is deliberately not `Sync`.
unsafe impl Send for SendVad {}

enum State {
    /// No utterance; looking for an onset in the history.
    Idle,
    Speech {
        onset: u64,
        last_voiced: u64,
        voiced_frames: u32,
        /// Frame index of the first sample in `Endpointer::utterance`.
        start: u64,
    },
}

/// Turns a stream of 20 ms frames into speech-start and utterance-end events.
///
/// Memory: the history ring (pre-roll + onset window, about 8 KB with the defaults) and
/// libfvad's state are allocated in [`new`](Self::new); the utterance buffer is allocated when
/// speech starts and handed over in the [`Utterance`], so an idle endpointer holds none.
pub struct Endpointer {
    vad: SendVad,
    energy_floor_dbfs: f32,
    noise_margin_db: f32,
    min_speech_frames: usize,
    hangover_frames: u64,
    tail_frames: u64,
    pre_roll_frames: u64,
    max_frames: u64,
    noise: NoiseFloor,
    history: History,
    state: State,
    utterance: Vec<i16>,
    frames_seen: u64,
    /// Frames before this index were delivered in an utterance or dropped by `reset`, so
    /// they must never reappear as pre-roll.
    fresh_from: u64,
}

impl std::fmt::Debug for Endpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpointer")
            .field("frames_seen", &self.frames_seen)
            .field("in_speech", &self.in_speech())
            .field("speech_ms", &self.speech_ms())
            .field("noise_floor_dbfs", &self.noise.floor())
            .finish_non_exhaustive()
    }
}

/// Whole frames covering `ms` (rounded up, so no configured duration is shortened).
fn frames_for(ms: u32) -> u64 {
    u64::from(ms.div_ceil(FRAME_MS))
}

impl Endpointer {
    /// Build an endpointer; the configuration is validated first.
    pub fn new(cfg: &EndpointerConfig) -> Result<Self, VadError> {
        cfg.validate().map_err(VadError::Config)?;
        let mode = match cfg.aggressiveness {
            0 => VadMode::Quality,
            1 => VadMode::LowBitrate,
            2 => VadMode::Aggressive,
            _ => VadMode::VeryAggressive,
        };
        let min_speech_frames = frames_for(cfg.min_speech_ms) as usize;
        let pre_roll_frames = frames_for(cfg.pre_roll_ms);
        Ok(Self {
            vad: SendVad(Vad::new_with_rate_and_mode(SampleRate::Rate8kHz, mode)),
            energy_floor_dbfs: cfg.energy_floor_dbfs,
            noise_margin_db: cfg.noise_margin_db,
            min_speech_frames,
            hangover_frames: frames_for(cfg.hangover_ms),
            tail_frames: frames_for(TAIL_MS).min(frames_for(cfg.hangover_ms)),
            pre_roll_frames,
            max_frames: frames_for(cfg.max_utterance_ms),
            noise: NoiseFloor::new(),
            // Enough for the longest onset window plus the pre-roll before it.
            history: History::new(pre_roll_frames as usize + min_speech_frames + ONSET_GAP_FRAMES),
            state: State::Idle,
            utterance: Vec::new(),
            frames_seen: 0,
            fresh_from: 0,
        })
    }

    /// Feed exactly one 20 ms frame (160 samples).
    ///
    /// Any other length is a programming error in the caller (the [`Framer`] guarantees
    /// whole frames): it is ignored, returns `None`, and asserts in debug builds.
    ///
    /// [`Framer`]: super::framer::Framer
    pub fn push_frame(&mut self, frame: &[i16]) -> Option<EndpointEvent> {
        debug_assert_eq!(
            frame.len(),
            FRAME_SAMPLES,
            "endpointer frames are 160 samples"
        );
        if frame.len() != FRAME_SAMPLES {
            return None;
        }
        let n = self.frames_seen;
        self.frames_seen += 1;
        let energy = frame_dbfs(frame);
        let voiced = self.classify(frame, energy);
        self.history.push(frame, voiced, energy);
        match self.state {
            State::Idle => self.look_for_onset(n),
            State::Speech { .. } => self.continue_speech(n, frame, voiced),
        }
    }

    /// The three gates described in the module docs, plus the noise-floor update.
    fn classify(&mut self, frame: &[i16], energy: f32) -> bool {
        // Always run webrtc-vad, so its own adaptive model sees every frame.
        let webrtc = self.vad.0.is_voice_segment(frame).unwrap_or(false);
        let above_noise = self
            .noise
            .floor()
            .is_none_or(|floor| energy >= floor + self.noise_margin_db);
        self.noise.push(energy);
        webrtc && energy >= self.energy_floor_dbfs && above_noise
    }

    fn look_for_onset(&mut self, n: u64) -> Option<EndpointEvent> {
        let window = (self.min_speech_frames + ONSET_GAP_FRAMES) as u64;
        let since = self.fresh_from.max((n + 1).saturating_sub(window));
        if !self.history.is_voiced(n) {
            return None;
        }
        let voiced = (since..=n).filter(|&i| self.history.is_voiced(i)).count();
        if voiced < self.min_speech_frames {
            return None;
        }
        let onset = (since..=n).find(|&i| self.history.is_voiced(i))?;
        if self.onset_spread(onset, n) < ONSET_MIN_SPREAD_DB {
            return None;
        }
        let start = self
            .fresh_from
            .max(onset.saturating_sub(self.pre_roll_frames))
            .max(self.history.oldest());
        self.utterance = Vec::with_capacity(UTTERANCE_RESERVE);
        for i in start..=n {
            // Always present: `start` is clamped to the oldest frame still held.
            if let Some(frame) = self.history.frame(i) {
                self.utterance.extend_from_slice(frame);
            }
        }
        self.state = State::Speech {
            onset,
            last_voiced: n,
            voiced_frames: voiced as u32,
            start,
        };
        Some(EndpointEvent::SpeechStarted { onset_frame: onset })
    }

    /// Range of energies (dB) over the voiced frames `onset..=n`, the test that tells speech
    /// (always modulated) from steady noise.
    ///
    /// When nothing was voiced just before `onset`, the first frame is left out: a sound that
    /// starts part-way through a frame makes that frame quieter than the rest (by 20 dB if
    /// it starts in the last 10 % of it), which would make a step of steady noise look
    /// modulated. After a `MaxLength` cut the caller is still talking, so the first frame of
    /// the continuation is a whole frame and counts.
    fn onset_spread(&self, onset: u64, n: u64) -> f32 {
        let skip_first = !(onset > 0 && self.history.is_voiced(onset - 1));
        let from = if skip_first { onset + 1 } else { onset };
        let (lo, hi) = (from..=n)
            .filter(|&i| self.history.is_voiced(i))
            .filter_map(|i| self.history.energy(i))
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), e| {
                (lo.min(e), hi.max(e))
            });
        hi - lo
    }

    fn continue_speech(&mut self, n: u64, frame: &[i16], voiced: bool) -> Option<EndpointEvent> {
        let State::Speech {
            onset,
            last_voiced,
            voiced_frames,
            start,
        } = &mut self.state
        else {
            return None;
        };
        self.utterance.extend_from_slice(frame);
        if voiced {
            *last_voiced = n;
            *voiced_frames += 1;
        }
        let (onset, last_voiced, voiced_frames, start) =
            (*onset, *last_voiced, *voiced_frames, *start);
        let (end, keep_until) = if n - last_voiced >= self.hangover_frames {
            (UtteranceEnd::Silence, last_voiced + 1 + self.tail_frames)
        } else if n + 1 - onset >= self.max_frames {
            // Cut here; if the caller already stopped (hangover running), still leave out
            // the silence beyond the tail.
            (
                UtteranceEnd::MaxLength,
                (n + 1).min(last_voiced + 1 + self.tail_frames),
            )
        } else {
            return None;
        };
        Some(EndpointEvent::UtteranceEnded(self.deliver(
            end,
            keep_until,
            onset,
            last_voiced,
            voiced_frames,
            start,
        )))
    }

    /// Ends the utterance in progress with what has been heard up to `keep_until` (frame
    /// index, exclusive).
    fn deliver(
        &mut self,
        end: UtteranceEnd,
        keep_until: u64,
        onset: u64,
        last_voiced: u64,
        voiced_frames: u32,
        start: u64,
    ) -> Utterance {
        self.utterance
            .truncate((keep_until.saturating_sub(start)) as usize * FRAME_SAMPLES);
        self.state = State::Idle;
        self.fresh_from = keep_until;
        Utterance {
            samples: std::mem::take(&mut self.utterance),
            onset_frame: onset,
            last_voiced_frame: last_voiced,
            speech_ms: voiced_frames * FRAME_MS,
            end,
        }
    }

    /// Ends the utterance in progress now, as a silence would have after the hangover
    /// (the tail after the last voiced frame is kept, as far as it has been heard): a turn
    /// detector decided sooner. `None` when no utterance is in progress.
    pub fn end_utterance(&mut self) -> Option<Utterance> {
        let State::Speech {
            onset,
            last_voiced,
            voiced_frames,
            start,
        } = self.state
        else {
            return None;
        };
        let keep_until = (last_voiced + 1 + self.tail_frames).min(self.frames_seen);
        Some(self.deliver(
            UtteranceEnd::Silence,
            keep_until,
            onset,
            last_voiced,
            voiced_frames,
            start,
        ))
    }

    /// The utterance in progress so far (pre-roll included); empty when none.
    pub fn utterance_so_far(&self) -> &[i16] {
        if self.in_speech() {
            &self.utterance
        } else {
            &[]
        }
    }

    /// Unvoiced frames since the last voiced one of the utterance in progress (0 when none
    /// is in progress or the last frame was voiced).
    pub fn silent_frames(&self) -> u64 {
        match self.state {
            State::Speech { last_voiced, .. } => self.frames_seen.saturating_sub(last_voiced + 1),
            State::Idle => 0,
        }
    }

    /// The index of the last voiced frame of the utterance in progress.
    pub fn last_voiced_frame(&self) -> Option<u64> {
        match self.state {
            State::Speech { last_voiced, .. } => Some(last_voiced),
            State::Idle => None,
        }
    }

    /// The silence that ends an utterance (ms, whole frames).
    pub fn hangover_ms(&self) -> u32 {
        u32::try_from(self.hangover_frames).unwrap_or(u32::MAX) * FRAME_MS
    }

    /// Changes the silence that ends an utterance, from the next frame on.
    pub fn set_hangover_ms(&mut self, ms: u32) {
        self.hangover_frames = frames_for(ms);
        self.tail_frames = frames_for(TAIL_MS).min(self.hangover_frames);
    }

    /// True while an utterance is in progress (onset confirmed, end not yet reached).
    pub fn in_speech(&self) -> bool {
        matches!(self.state, State::Speech { .. })
    }

    /// Voiced milliseconds in the utterance in progress, 0 if none. Pauses are not counted,
    /// so the session can require e.g. 250 ms of actual speech before a barge-in.
    pub fn speech_ms(&self) -> u32 {
        match self.state {
            State::Speech { voiced_frames, .. } => voiced_frames * FRAME_MS,
            State::Idle => 0,
        }
    }

    /// Frames pushed since creation (the index the next frame will get).
    pub fn frames_seen(&self) -> u64 {
        self.frames_seen
    }

    /// Drop any utterance in progress and the audio heard so far (it will not be used as
    /// pre-roll), but keep the noise estimate and webrtc-vad's adaptation, which describe
    /// the line rather than the turn.
    pub fn reset(&mut self) {
        self.state = State::Idle;
        self.utterance = Vec::new();
        self.fresh_from = self.frames_seen;
    }
}

/// Frame level in dB relative to full scale (RMS; a full-scale sine is -3 dBFS). Digital
/// silence is reported as -120 dBFS rather than -inf so comparisons stay simple.
pub fn frame_dbfs(frame: &[i16]) -> f32 {
    if frame.is_empty() {
        return -120.0;
    }
    let sum: i64 = frame.iter().map(|&s| i64::from(s) * i64::from(s)).sum();
    let mean = sum as f64 / frame.len() as f64 / (32768.0 * 32768.0);
    if mean <= 1e-12 {
        -120.0
    } else {
        (10.0 * mean.log10()) as f32
    }
}

#[cfg(test)]
mod tests;
