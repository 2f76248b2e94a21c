//! Endpointer settings: the `[vad]` section of `config/pronto.toml`.

use serde::Deserialize;

/// Endpointer tuning. Every field has a default (see [`Default`]), so a `[vad]` section only
/// needs the keys it changes; unknown keys are rejected so a typo does not silently fall
/// back to a default. Durations are rounded up to whole 20 ms frames.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointerConfig {
    /// webrtc-vad mode, 0 (permissive) ..= 3 (strict). Default 1. Noise rejection comes from
    /// the energy, noise-floor and onset checks (every noise test passes in all four modes),
    /// while mode 3 drops the quiet start of normal-level speech: with `two_turns.wav` played
    /// 10 dB down (about -31 dBFS RMS), mode 3 confirmed the first sentence 320 ms late and
    /// modes 0-2 on time; 20 dB down, mode 2 was 300 ms late too. Mode 1 decides like mode 0
    /// on all the speech and is marginally stricter on babble.
    pub aggressiveness: u8,
    /// Frames quieter than this (RMS, dBFS) are never speech. Default -50: `hello.wav` played
    /// 20 dB down (a quiet caller, about -40 dBFS) is confirmed within 2 frames of its onset,
    /// while the same voice 30 dB down (-50 dBFS: a TV or a conversation in the background)
    /// is ignored. -60 also took the background voice; -40 missed the quiet caller.
    pub energy_floor_dbfs: f32,
    /// How far above the tracked noise floor a frame must be to count as speech, in dB.
    /// Default 5. Steady noise stays within 3 dB of its 1-second minimum (simulated white
    /// noise, 20,000 frames: 0.04 % above +3 dB, none above +4 dB); in noise that webrtc-vad
    /// calls speech and that wobbles by +-1.5 dB, margins of 2-3 dB never let the utterance
    /// end. Larger margins lose speech in noise: with the caller about 10 dB above the noise,
    /// 5 dB confirmed both onsets on time, 6 dB 320 and 380 ms late.
    pub noise_margin_db: f32,
    /// Voiced time needed before an onset is declared. Default 140: the 100 ms burst in
    /// `short_cough.wav` started an utterance at all 16 alignments tried with 100, at 12 with
    /// 120 (it can touch 6 frames), at none with 140; "yes" and "no" last 250 ms or more.
    pub min_speech_ms: u32,
    /// Non-speech time that ends a turn. Default 600: the 300 ms pause inside the first
    /// sentence of `two_turns.wav` leaves a 280 ms gap between voiced frames (380 ms in
    /// `speech_in_noise.wav`, where the weak sounds around it drown), so 380 still splits it
    /// and 400 is the smallest value that does not; 600 leaves room for slower speakers.
    pub hangover_ms: u32,
    /// Audio kept from before the first voiced frame. Default 300: weak onsets ("h", "f",
    /// "th") fall below the gates, but speech-to-text needs them.
    pub pre_roll_ms: u32,
    /// Longest utterance; a longer one is cut and continued in the next. Default 30000.
    pub max_utterance_ms: u32,
}

impl Default for EndpointerConfig {
    fn default() -> Self {
        Self {
            aggressiveness: 1,
            energy_floor_dbfs: -50.0,
            noise_margin_db: 5.0,
            min_speech_ms: 140,
            hangover_ms: 600,
            pre_roll_ms: 300,
            max_utterance_ms: 30_000,
        }
    }
}

impl EndpointerConfig {
    /// Check every value; the error is one line naming the bad key, e.g.
    /// "vad.hangover_ms must be between 100 and 5000 (got 50)".
    pub fn validate(&self) -> Result<(), String> {
        fn range<T: PartialOrd + std::fmt::Display>(
            key: &str,
            value: T,
            min: T,
            max: T,
        ) -> Result<(), String> {
            // Written so that NaN fails too.
            if value >= min && value <= max {
                Ok(())
            } else {
                Err(format!(
                    "vad.{key} must be between {min} and {max} (got {value})"
                ))
            }
        }
        range("aggressiveness", self.aggressiveness, 0, 3)?;
        range("energy_floor_dbfs", self.energy_floor_dbfs, -90.0, -10.0)?;
        range("noise_margin_db", self.noise_margin_db, 0.0, 30.0)?;
        // At least 3 frames: the steady-noise check needs two frames after the first.
        range("min_speech_ms", self.min_speech_ms, 60, 1000)?;
        range("hangover_ms", self.hangover_ms, 100, 5000)?;
        range("pre_roll_ms", self.pre_roll_ms, 0, 1000)?;
        range("max_utterance_ms", self.max_utterance_ms, 500, 300_000)?;
        if self.max_utterance_ms <= self.min_speech_ms {
            return Err(format!(
                "vad.max_utterance_ms ({}) must be longer than vad.min_speech_ms ({})",
                self.max_utterance_ms, self.min_speech_ms
            ));
        }
        Ok(())
    }
}
