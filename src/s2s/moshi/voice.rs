//! Moshi's audio both ways: Twilio's 8 kHz μ-law to and from Moshi's
//! 24 kHz Ogg/Opus. Pure computation; every buffer is made once per call,
//! so a frame costs no allocation beyond what the codec and the message
//! need.

use rubato::{Fft, FixedSync, Resampler};

use crate::audio::ogg_opus::{
    OPUS_RATE, OggOpusDecoder, OggOpusEncoder, OggOpusError, PacketLength, Pushed, SAMPLES_20MS,
};
use crate::audio::resample::{ResampleError, TtsResampler, one_block, to_i16};
use crate::audio::{FRAME_SAMPLES, SAMPLE_RATE, mulaw};

/// Why a call's audio path could not be built.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    #[error(transparent)]
    Codec(#[from] OggOpusError),
    #[error(transparent)]
    Resample(#[from] ResampleError),
}

impl From<rubato::ResamplerConstructionError> for VoiceError {
    fn from(e: rubato::ResamplerConstructionError) -> Self {
        VoiceError::Resample(ResampleError::Construction(e))
    }
}

/// The RMS (of 16-bit samples) from which 20 ms of Moshi's audio is speech
/// rather than its silence (about -30 dBFS; its silence is far below).
const LOUD_RMS: f64 = 1000.0;

/// The caller's μ-law → Moshi's Ogg/Opus: 8 kHz → 24 kHz (one 20 ms frame
/// in, one 20 ms Opus packet out), the Ogg headers before the first page.
pub struct CallerVoice {
    up: Fft<f32>,
    block_in: Vec<f32>,
    filled: usize,
    block_out: Vec<f32>,
    pcm: Vec<i16>,
    encoder: OggOpusEncoder,
    /// The energy of the 20 ms block being filled.
    energy: f64,
}

/// What one piece of the caller's audio made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sent {
    /// Opus packets written.
    pub packets: usize,
    /// Some 20 ms of it was loud enough to be speech.
    pub loud: bool,
}

impl CallerVoice {
    pub fn new() -> Result<CallerVoice, VoiceError> {
        let up = Fft::<f32>::new(
            SAMPLE_RATE as usize,
            OPUS_RATE as usize,
            FRAME_SAMPLES,
            1,
            FixedSync::Input,
        )?;
        if up.input_frames_next() != FRAME_SAMPLES || up.output_frames_max() != SAMPLES_20MS {
            return Err(VoiceError::Resample(ResampleError::Layout(format!(
                "expected {FRAME_SAMPLES} in / {SAMPLES_20MS} out per block, rubato wants {} / {}",
                up.input_frames_next(),
                up.output_frames_max()
            ))));
        }
        Ok(CallerVoice {
            up,
            block_in: vec![0.0; FRAME_SAMPLES],
            filled: 0,
            block_out: vec![0.0; SAMPLES_20MS],
            pcm: Vec::with_capacity(SAMPLES_20MS),
            encoder: OggOpusEncoder::new(PacketLength::Ms20)?,
            energy: 0.0,
        })
    }

    /// Appends to `out` the Ogg pages of `mulaw` (any length; a partial
    /// 20 ms frame waits for the next call).
    pub fn push(&mut self, mulaw: &[u8], out: &mut Vec<u8>) -> Result<Sent, OggOpusError> {
        let mut sent = Sent::default();
        for &byte in mulaw {
            let sample = mulaw::decode_sample(byte);
            self.energy += f64::from(sample) * f64::from(sample);
            self.block_in[self.filled] = f32::from(sample) / 32768.0;
            self.filled += 1;
            if self.filled < FRAME_SAMPLES {
                continue;
            }
            self.filled = 0;
            sent.loud |= (self.energy / FRAME_SAMPLES as f64).sqrt() >= LOUD_RMS;
            self.energy = 0.0;
            one_block(&mut self.up, &self.block_in, &mut self.block_out);
            self.pcm.clear();
            self.pcm.extend(self.block_out.iter().map(|&x| to_i16(x)));
            sent.packets += self.encoder.push(&self.pcm, out)?;
        }
        Ok(sent)
    }
}

/// Moshi's Ogg/Opus → μ-law for the caller: decode, 24 kHz → 8 kHz, encode.
pub struct MoshiVoice {
    decoder: OggOpusDecoder,
    down: TtsResampler,
    pcm24: Vec<i16>,
    bytes: Vec<u8>,
    pcm8: Vec<i16>,
    /// 8 kHz samples of the 20 ms block being measured, and its energy.
    block: usize,
    energy: f64,
}

/// What one piece of Moshi's stream held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Heard {
    pub pushed: Pushed,
    /// Some 20 ms of it was loud enough to be speech.
    pub loud: bool,
}

impl MoshiVoice {
    pub fn new() -> Result<MoshiVoice, VoiceError> {
        Ok(MoshiVoice {
            decoder: OggOpusDecoder::new()?,
            down: TtsResampler::new()?,
            pcm24: Vec::with_capacity(4 * SAMPLES_20MS),
            bytes: Vec::with_capacity(8 * SAMPLES_20MS),
            pcm8: Vec::with_capacity(2 * FRAME_SAMPLES),
            block: 0,
            energy: 0.0,
        })
    }

    /// Takes the next bytes of Moshi's stream and appends the μ-law audio
    /// now complete to `out`.
    pub fn push(&mut self, ogg: &[u8], out: &mut Vec<u8>) -> Heard {
        self.pcm24.clear();
        let pushed = self.decoder.push(ogg, &mut self.pcm24);
        self.bytes.clear();
        self.bytes
            .extend(self.pcm24.iter().flat_map(|s| s.to_le_bytes()));
        self.pcm8.clear();
        self.down.push_bytes(&self.bytes, &mut self.pcm8);
        let mut loud = false;
        for &s in &self.pcm8 {
            self.energy += f64::from(s) * f64::from(s);
            self.block += 1;
            if self.block == FRAME_SAMPLES {
                loud |= (self.energy / FRAME_SAMPLES as f64).sqrt() >= LOUD_RMS;
                self.block = 0;
                self.energy = 0.0;
            }
        }
        mulaw::encode_into(&self.pcm8, out);
        Heard { pushed, loud }
    }
}

/// Float in [-1, 1) back to 16-bit, rounding and saturating.
#[cfg(test)]
mod tests {
    use super::*;

    /// `frames` Twilio frames of a 440 Hz tone, as μ-law.
    fn tone_mulaw(frames: usize) -> Vec<u8> {
        let pcm: Vec<i16> = (0..frames * FRAME_SAMPLES)
            .map(|i| {
                let t = i as f32 / SAMPLE_RATE as f32;
                ((2.0 * std::f32::consts::PI * 440.0 * t).sin() * 8000.0) as i16
            })
            .collect();
        mulaw::encode(&pcm)
    }

    fn rms(pcm: &[i16]) -> f64 {
        let sum: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
        (sum / pcm.len().max(1) as f64).sqrt()
    }

    #[test]
    fn the_callers_frames_go_to_moshi_and_come_back_as_the_same_sound() {
        let mut caller = CallerVoice::new().expect("caller path");
        let mut moshi = MoshiVoice::new().expect("moshi path");
        let input = tone_mulaw(50);
        let mut ogg = Vec::new();
        let mut packets = 0;
        for frame in input.chunks(FRAME_SAMPLES) {
            let sent = caller.push(frame, &mut ogg).expect("encodes");
            assert!(sent.loud);
            packets += sent.packets;
        }
        assert_eq!(packets, 50, "one 20 ms packet per Twilio frame");
        let mut back = Vec::new();
        let heard = moshi.push(&ogg, &mut back);
        assert_eq!(heard.pushed.packets, 50);
        assert!(heard.loud);
        // One second, less the codec's pre-skip and the resamplers' delays.
        assert!((7600..=8000).contains(&back.len()), "{}", back.len());
        let (a, b) = (
            rms(&mulaw::decode(&input[800..])),
            rms(&mulaw::decode(&back[800..back.len() - 400])),
        );
        assert!((b / a - 1.0).abs() < 0.25, "rms {a} in, {b} back");
    }

    #[test]
    fn silence_is_not_loud_and_half_frames_wait() {
        let mut caller = CallerVoice::new().expect("caller path");
        let mut moshi = MoshiVoice::new().expect("moshi path");
        let silence = vec![0xffu8; 80];
        let mut ogg = Vec::new();
        assert_eq!(caller.push(&silence, &mut ogg).expect("encodes").packets, 0);
        assert!(ogg.is_empty(), "half a frame waits");
        let sent = caller.push(&silence, &mut ogg).expect("encodes");
        assert_eq!((sent.packets, sent.loud), (1, false));
        assert!(ogg.starts_with(b"OggS"), "the headers go first");
        for _ in 0..10 {
            caller.push(&[0xff; 160], &mut ogg).expect("encodes");
        }
        let mut back = Vec::new();
        let heard = moshi.push(&ogg, &mut back);
        assert_eq!(heard.pushed.packets, 11);
        assert!(!heard.loud);
    }
}
