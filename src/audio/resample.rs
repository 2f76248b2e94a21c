//! Sample-rate conversion to the 8 kHz call rate, built on rubato's FFT resampler.
//!
//! Two users with different needs:
//! - [`TtsResampler`]: OpenAI TTS streams 24 kHz s16le PCM in arbitrary byte chunks while the
//!   caller listens, so conversion is streaming, stateful across chunks and allocation-free.
//! - [`resample_to_8k`]: the Twilio simulator plays whole WAV files of any rate, so a one-shot
//!   conversion that allocates freely is fine there.
//!
//! Both use `rubato::Fft` (a synchronous FFT resampler with a windowed-sinc anti-alias filter).
//! Never use rubato's polynomial resampler to go down in rate: it has no anti-alias filter, and
//! everything between 4 and 12 kHz in the TTS voice would fold back into the telephone band.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler, WindowFunction};

use super::SAMPLE_RATE;

/// Why a resampler could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    /// rubato rejected the parameters (should not happen for the rates accepted here).
    #[error("cannot build resampler: {0}")]
    Construction(#[from] rubato::ResamplerConstructionError),
    /// rubato failed while processing (a buffer-size bug on our side).
    #[error("resampling failed: {0}")]
    Process(#[from] rubato::ResampleError),
    /// rubato's buffer sizes are not what this module was designed around (a rubato
    /// behaviour change; caught at construction so the streaming path can rely on them).
    #[error("resampler buffer layout changed: {0}")]
    Layout(String),
    /// The input rate is outside what [`resample_to_8k`] accepts.
    #[error("unsupported sample rate {0} Hz (expected {min}..={max} Hz)", min = MIN_RATE, max = MAX_RATE)]
    UnsupportedRate(u32),
}

/// OpenAI TTS `pcm` output rate.
const TTS_RATE: usize = 24_000;
/// Input samples per rubato call: 20 ms at 24 kHz, so each call yields exactly one frame.
const TTS_BLOCK_IN: usize = 480;
/// Output samples per rubato call: one 20 ms frame at 8 kHz.
const TTS_BLOCK_OUT: usize = 160;

/// Streaming 24 kHz s16le → 8 kHz i16 converter for one TTS stream at a time.
///
/// Output is time-aligned with the input: the resampler's start-up delay (its leading
/// silence) is trimmed from the first output of every utterance, so input sample `3·i` maps
/// to output sample `i`, and an utterance of `n` input samples yields exactly `⌈n / 3⌉`
/// output samples once [`flush`](Self::flush) is called. Output for one 480-sample input
/// block is held back until [`delay_samples`](Self::delay_samples) later samples have
/// arrived, which is the latency this adds (10 ms).
pub struct TtsResampler {
    fft: Fft<f32>,
    /// Partial input block, already converted to f32.
    block_in: Vec<f32>,
    filled: usize,
    /// First byte of a sample whose second byte has not arrived yet.
    odd_byte: Option<u8>,
    block_out: Vec<f32>,
    /// Output samples still to drop at the start of the current utterance.
    to_trim: usize,
    /// Input samples accepted and output samples emitted in the current utterance.
    in_total: u64,
    out_total: u64,
}

impl std::fmt::Debug for TtsResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtsResampler")
            .field("filled", &self.filled)
            .field("odd_byte", &self.odd_byte)
            .field("in_total", &self.in_total)
            .field("out_total", &self.out_total)
            .finish_non_exhaustive()
    }
}

impl TtsResampler {
    /// Build the resampler and every buffer it will ever use.
    pub fn new() -> Result<Self, ResampleError> {
        // With FixedSync::Input and a 480-frame chunk this is a
        // single 480→160 FFT block per call, flat to 3.4 kHz, with an 80-sample (10 ms) delay.
        let fft = Fft::<f32>::new(
            TTS_RATE,
            SAMPLE_RATE as usize,
            TTS_BLOCK_IN,
            1,
            FixedSync::Input,
        )?;
        if fft.input_frames_next() != TTS_BLOCK_IN || fft.output_frames_max() != TTS_BLOCK_OUT {
            // Guards the no-allocation, one-frame-per-block design against a rubato change.
            return Err(ResampleError::Layout(format!(
                "expected {TTS_BLOCK_IN} in / {TTS_BLOCK_OUT} out per block, rubato wants {} / {}",
                fft.input_frames_next(),
                fft.output_frames_max()
            )));
        }
        let to_trim = fft.output_delay();
        Ok(Self {
            fft,
            block_in: vec![0.0; TTS_BLOCK_IN],
            filled: 0,
            odd_byte: None,
            block_out: vec![0.0; TTS_BLOCK_OUT],
            to_trim,
            in_total: 0,
            out_total: 0,
        })
    }

    /// The resampler's algorithmic delay in 8 kHz output samples (80 = 10 ms).
    ///
    /// This many samples of lookahead are needed before an output sample is final. The
    /// resampler hides the delay from the sample positions (the leading silence it would
    /// cause is trimmed and [`flush`](Self::flush) pushes the tail out), so callers only
    /// see it as latency: audio leaves here at most one block (20 ms) plus this delay after
    /// it arrived.
    pub fn delay_samples(&self) -> usize {
        self.fft.output_delay()
    }

    /// Accept the next chunk of 24 kHz s16le bytes (any length, including odd) and append
    /// every 8 kHz sample that is now complete to `out`.
    ///
    /// Never allocates except by growing `out`.
    pub fn push_bytes(&mut self, bytes: &[u8], out: &mut Vec<i16>) {
        let mut rest = bytes;
        if let Some(lo) = self.odd_byte {
            let Some((&hi, tail)) = rest.split_first() else {
                return;
            };
            self.odd_byte = None;
            self.push_sample(i16::from_le_bytes([lo, hi]), out);
            rest = tail;
        }
        let mut pairs = rest.chunks_exact(2);
        for pair in &mut pairs {
            self.push_sample(i16::from_le_bytes([pair[0], pair[1]]), out);
        }
        if let [last] = pairs.remainder() {
            self.odd_byte = Some(*last);
        }
    }

    fn push_sample(&mut self, s: i16, out: &mut Vec<i16>) {
        self.block_in[self.filled] = f32::from(s) / 32768.0;
        self.filled += 1;
        self.in_total += 1;
        if self.filled == TTS_BLOCK_IN {
            self.process_block(out, usize::MAX);
        }
    }

    /// Run one full input block (zero-padded past `filled`) and append at most `limit`
    /// samples of its output, after dropping what is left of the start-up delay.
    fn process_block(&mut self, out: &mut Vec<i16>, limit: usize) {
        self.block_in[self.filled..].fill(0.0);
        self.filled = 0;
        one_block(&mut self.fft, &self.block_in, &mut self.block_out);
        let skip = self.to_trim.min(TTS_BLOCK_OUT);
        self.to_trim -= skip;
        let ready = &self.block_out[skip..];
        let ready = &ready[..ready.len().min(limit)];
        out.extend(ready.iter().map(|&x| to_i16(x)));
        self.out_total += ready.len() as u64;
    }

    /// End of the utterance: push out the last real samples, then reset for the next one.
    ///
    /// The tail is padded with zeros so the audio still inside the filter comes out, and the
    /// output is cut at exactly `⌈n / 3⌉` samples for `n` input samples. A dangling odd byte
    /// (half a sample, i.e. a truncated stream) is dropped.
    pub fn flush(&mut self, out: &mut Vec<i16>) {
        let target = self.in_total.div_ceil(3);
        // At most two blocks: the partial one, plus the 80-sample delay still in the filter.
        while self.out_total < target {
            let missing = usize::try_from(target - self.out_total).unwrap_or(usize::MAX);
            self.process_block(out, missing);
        }
        self.reset();
    }

    /// Forget everything (e.g. on barge-in) without producing output.
    pub fn reset(&mut self) {
        self.fft.reset();
        self.filled = 0;
        self.odd_byte = None;
        self.to_trim = self.fft.output_delay();
        self.in_total = 0;
        self.out_total = 0;
    }
}

/// Float in [-1, 1) back to 16-bit, rounding and saturating (the filter can overshoot).
#[inline]
/// Runs one mono block through `resampler`: `input` and `output` are sized
/// to its fixed block, as checked when it was made, so rubato cannot refuse
/// them; if it ever did, a block of silence keeps the call's timing instead
/// of tearing the call down.
pub fn one_block(resampler: &mut Fft<f32>, input: &[f32], output: &mut [f32]) {
    let ok = match (
        InterleavedSlice::new(input, 1, input.len()),
        InterleavedSlice::new_mut(output, 1, output.len()),
    ) {
        (Ok(input), Ok(mut output)) => resampler
            .process_into_buffer(&input, &mut output, None)
            .is_ok(),
        _ => false,
    };
    debug_assert!(ok, "rubato rejected buffers sized from its own limits");
    if !ok {
        output.fill(0.0);
    }
}

/// A float sample (±1.0 full scale) as 16-bit PCM, clipped.
pub fn to_i16(x: f32) -> i16 {
    (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Lowest and highest input rates [`resample_to_8k`] accepts. Real audio files fall well
/// inside; the bounds stop a corrupt header from sizing a multi-gigabyte FFT.
pub const MIN_RATE: u32 = 1_000;
/// See [`MIN_RATE`].
pub const MAX_RATE: u32 = 384_000;

/// Convert a whole clip at `from_rate` to 8 kHz (for the simulator playing WAV files).
///
/// Output length is `⌈len · 8000 / from_rate⌉`, time-aligned with the input (rubato trims
/// its start-up delay). 8 kHz input is returned as a copy.
pub fn resample_to_8k(samples: &[i16], from_rate: u32) -> Result<Vec<i16>, ResampleError> {
    if !(MIN_RATE..=MAX_RATE).contains(&from_rate) {
        return Err(ResampleError::UnsupportedRate(from_rate));
    }
    if from_rate == SAMPLE_RATE {
        return Ok(samples.to_vec());
    }
    if samples.is_empty() {
        return Ok(Vec::new());
    }
    // One FFT block of about 1024 output samples (128 ms): a longer filter than the
    // streaming path can afford, so the passband reaches ~3.9 kHz. rubato rounds the block
    // up to a multiple of the rates' smallest common block.
    let chunk_in = (from_rate as usize * 1024).div_ceil(SAMPLE_RATE as usize);
    let mut fft = Fft::<f32>::new_custom(
        from_rate as usize,
        SAMPLE_RATE as usize,
        chunk_in,
        1,
        1,
        WindowFunction::BlackmanHarris2,
        FixedSync::Input,
    )?;
    let input: Vec<f32> = samples.iter().map(|&s| f32::from(s) / 32768.0).collect();
    let adapter = InterleavedSlice::new(&input[..], 1, input.len())
        .map_err(|e| ResampleError::Layout(e.to_string()))?;
    let output = fft.process_all(&adapter, input.len(), None)?;
    Ok(output.take_data().into_iter().map(to_i16).collect())
}
