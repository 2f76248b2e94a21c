//! The simulator's only door to the audio core: 20 ms frames of 8 kHz μ-law,
//! and WAV files in (any rate) and out (8 kHz).

use std::path::Path;

use super::SimError;
use crate::audio::{self, mulaw, resample, wav};

/// Samples (and μ-law bytes) in one 20 ms frame.
pub(crate) const FRAME_SAMPLES: usize = audio::FRAME_SAMPLES;
/// Milliseconds in one frame.
pub(crate) const FRAME_MS: u64 = audio::FRAME_MS as u64;
/// Samples per second of all call audio.
pub(crate) const SAMPLE_RATE: u32 = audio::SAMPLE_RATE;
/// μ-law code of a zero sample: what a quiet line carries.
pub(crate) const SILENCE: u8 = 0xFF;

pub(crate) fn encode(pcm: &[i16]) -> Vec<u8> {
    mulaw::encode(pcm)
}

pub(crate) fn decode(mulaw_bytes: &[u8]) -> Vec<i16> {
    mulaw::decode(mulaw_bytes)
}

/// Writes 8 kHz mono 16-bit PCM as a WAV file.
pub(crate) fn write_wav_8k(path: &Path, pcm: &[i16]) -> Result<(), SimError> {
    wav::write_wav_8k(path, pcm).map_err(|e| SimError::Audio(format!("{}: {e}", path.display())))
}

/// Reads a WAV file (any PCM layout, mixed to mono) as 8 kHz PCM.
pub(crate) fn read_wav_8k(path: &Path) -> Result<Vec<i16>, SimError> {
    let err = |e: &dyn std::fmt::Display| SimError::Audio(format!("{}: {e}", path.display()));
    let (pcm, rate) = wav::read_wav_mono(path).map_err(|e| err(&e))?;
    resample::resample_to_8k(&pcm, rate).map_err(|e| err(&e))
}

/// Reads WAV bytes already in memory (any PCM layout, mixed to mono) as
/// 8 kHz PCM: for speech built into a binary with `include_bytes!`.
pub(crate) fn read_wav_bytes_8k(bytes: &[u8]) -> Result<Vec<i16>, SimError> {
    let err = |e: &dyn std::fmt::Display| SimError::Audio(format!("WAV data: {e}"));
    let (pcm, rate) = wav::read_wav_mono_from(bytes).map_err(|e| err(&e))?;
    resample::resample_to_8k(&pcm, rate).map_err(|e| err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_the_code_of_zero() {
        assert_eq!(encode(&[0]), [SILENCE]);
        assert_eq!(decode(&[SILENCE]), [0]);
    }

    #[test]
    fn wav_round_trip_and_resampling() {
        let dir = std::env::temp_dir().join(format!("pronto-sim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tone.wav");
        let tone: Vec<i16> = (0..800).map(|i| ((i % 20) * 500) as i16).collect();
        write_wav_8k(&path, &tone).unwrap();
        assert_eq!(read_wav_8k(&path).unwrap(), tone);
        // A 16 kHz file comes back at 8 kHz: half the samples.
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let path16 = dir.join("tone16.wav");
        let mut w = hound::WavWriter::create(&path16, spec).unwrap();
        for _ in 0..1600 {
            w.write_sample(0i16).unwrap();
        }
        w.finalize().unwrap();
        assert_eq!(read_wav_8k(&path16).unwrap().len(), 800);
        assert!(matches!(
            read_wav_8k(&dir.join("missing.wav")),
            Err(SimError::Audio(_))
        ));
        // The same bytes in memory read the same; garbage is an error, not a panic.
        let bytes = std::fs::read(&path16).unwrap();
        assert_eq!(read_wav_bytes_8k(&bytes).unwrap().len(), 800);
        assert!(matches!(
            read_wav_bytes_8k(b"RIFF\0\0"),
            Err(SimError::Audio(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
