//! Audio core: G.711 μ-law, resampling, WAV, framing, the endpointer and the turn model.
//!
//! Everything in here is pure computation on sample buffers: no I/O except the WAV file
//! helpers and loading the turn model ([`smart_turn`], which also blocks for tens of
//! milliseconds per run), no clock (time is counted in 20 ms frames), no async. The call session owns one
//! [`framer::Framer`], one [`vad::Endpointer`] and one [`resample::TtsResampler`] per call
//! and drives them from its task.
//!
//! Telephone audio inside Pronto is always 8 kHz mono signed 16-bit PCM, cut into 20 ms
//! frames of 160 samples: that is what Twilio Media Streams carry (as μ-law) and what
//! webrtc-vad accepts, so one frame size serves the wire, the VAD and playback pacing.

pub mod framer;
pub mod mulaw;
/// Ogg/Opus at 24 kHz, for Moshi (the `moshi` feature: it needs libopus).
#[cfg(feature = "moshi")]
pub mod ogg_opus;
pub mod resample;
pub mod smart_turn;
pub mod vad;
pub mod wav;

/// Sample rate of all call audio (Twilio Media Streams are 8 kHz μ-law).
pub const SAMPLE_RATE: u32 = 8000;

/// Samples in one 20 ms frame at [`SAMPLE_RATE`]: the unit of VAD decisions and playback.
pub const FRAME_SAMPLES: usize = 160;

/// Duration of one frame in milliseconds.
pub const FRAME_MS: u32 = 20;

// Keep the three constants from drifting apart.
const _: () = assert!(FRAME_SAMPLES as u32 * 1000 == SAMPLE_RATE * FRAME_MS);
