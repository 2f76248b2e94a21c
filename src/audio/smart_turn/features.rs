//! The Smart Turn model's input: Whisper log-mel features of the turn's last 8 s.
//!
//! Pure computation, no I/O. The steps and constants are those of pipecat's numpy port of
//! `transformers.WhisperFeatureExtractor(chunk_length=8)` and of the code around it that
//! feeds the model (resample to 16 kHz, keep the last 8 s, zero-pad at the front):
//! <https://github.com/pipecat-ai/pipecat/blob/main/src/pipecat/audio/turn/smart_turn/_whisper_features.py>,
//! <https://github.com/pipecat-ai/pipecat/blob/main/src/pipecat/audio/turn/smart_turn/local_smart_turn_v3.py>.
//! The model was trained on exactly these features, so every detail matters: padding at
//! the end instead of the front, or skipping the waveform normalisation, changes its
//! answers without any error.
//!
//! `scripts/smart_turn_reference.py` is the same computation in numpy (checked to give
//! pipecat's numbers bit for bit); the unit tests below compare with its output in
//! `tests/fixtures/smart_turn_features.json`.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler, WindowFunction};

use crate::audio::SAMPLE_RATE;
use crate::audio::resample::ResampleError;

/// The model's sample rate.
pub const MODEL_RATE: usize = 16_000;
/// Samples the model sees: the last 8 s of the turn at [`MODEL_RATE`].
pub const WINDOW_SAMPLES: usize = 8 * MODEL_RATE;
/// STFT frame length (25 ms) and FFT size.
const N_FFT: usize = 400;
/// STFT hop (10 ms).
const HOP: usize = 160;
/// Frequency bins of one frame's spectrum.
const N_BINS: usize = N_FFT / 2 + 1;
/// Mel bands.
pub const N_MELS: usize = 80;
/// Frames given to the model: the STFT has 801 (centred), the last one is dropped.
pub const N_FRAMES: usize = WINDOW_SAMPLES / HOP;
/// Length of the feature array, `[N_MELS][N_FRAMES]` row-major.
pub const FEATURES_LEN: usize = N_MELS * N_FRAMES;
/// Input at 8 kHz that yields the window: 2 × this many samples after resampling.
const WINDOW_SAMPLES_8K: usize = WINDOW_SAMPLES / 2;
/// Extra 8 kHz input resampled before the window, so that the resampler's start-up
/// transient falls outside it (at least the resampler's 1024-sample FFT block): the
/// window then matches resampling the whole turn, as pipecat does, at a fraction of the
/// cost for long turns.
const RESAMPLE_CONTEXT_8K: usize = 2048;

/// One mel filter: its non-zero weights, which cover consecutive frequency bins.
#[derive(Debug, Clone)]
struct MelFilter {
    first_bin: usize,
    weights: Vec<f64>,
}

/// The constant parts of the feature extractor, built once per process and shared by
/// every call: the window, the mel filterbank and the FFT plan.
pub struct WhisperFeatures {
    window: [f64; N_FFT],
    filters: Vec<MelFilter>,
    fft: Arc<dyn RealToComplex<f64>>,
}

impl std::fmt::Debug for WhisperFeatures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperFeatures")
            .field("mels", &self.filters.len())
            .finish_non_exhaustive()
    }
}

impl Default for WhisperFeatures {
    fn default() -> Self {
        Self::new()
    }
}

impl WhisperFeatures {
    /// Build the window, the filterbank and the FFT plan.
    pub fn new() -> Self {
        // Periodic Hann (torch.hann_window, numpy's hanning(N + 1)[:-1]).
        let window = std::array::from_fn(|n| {
            0.5 - 0.5 * (std::f64::consts::TAU * n as f64 / N_FFT as f64).cos()
        });
        Self {
            window,
            filters: mel_filters(),
            fft: RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT),
        }
    }

    /// Features of a turn given as 8 kHz call audio: the turn is upsampled to 16 kHz and
    /// its last 8 s are used ([`Self::from_16k`]).
    ///
    /// Pipecat resamples with soxr's "HQ" filter; this uses rubato's FFT resampler at the
    /// exact 1:2 ratio. The two differ only near 4 kHz (the top of the phone band); the
    /// unit tests bound the difference in the features.
    pub fn from_pcm_8k(&self, pcm_8k: &[i16]) -> Result<Vec<f32>, ResampleError> {
        Ok(self.from_16k(&upsample_8k_to_16k(pcm_8k)?))
    }

    /// Features of a turn at 16 kHz (f32 in [-1, 1]): its last 8 s, zero-padded at the
    /// front if shorter, as `[N_MELS][N_FRAMES]` row-major.
    pub fn from_16k(&self, audio_16k: &[f32]) -> Vec<f32> {
        let tail = &audio_16k[audio_16k.len().saturating_sub(WINDOW_SAMPLES)..];
        let mut x = vec![0.0f32; WINDOW_SAMPLES];
        x[WINDOW_SAMPLES - tail.len()..].copy_from_slice(tail);
        normalise(&mut x);

        // Centred frames: reflect-pad N_FFT / 2 each side (numpy's "reflect", which does
        // not repeat the edge sample). In f64, as the reference computes the spectrum.
        let pad = N_FFT / 2;
        let mut padded = Vec::with_capacity(WINDOW_SAMPLES + N_FFT);
        padded.extend((1..=pad).rev().map(|i| f64::from(x[i])));
        padded.extend(x.iter().map(|&s| f64::from(s)));
        padded.extend(
            (WINDOW_SAMPLES - 1 - pad..WINDOW_SAMPLES - 1)
                .rev()
                .map(|i| f64::from(x[i])),
        );

        let mut frame = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = [0.0f64; N_BINS];
        let mut log_mel = vec![0.0f64; FEATURES_LEN];
        // The STFT's last frame (801st) is dropped by the reference, so it is not computed.
        for t in 0..N_FRAMES {
            let start = t * HOP;
            for ((f, &s), &w) in frame
                .iter_mut()
                .zip(&padded[start..start + N_FFT])
                .zip(&self.window)
            {
                *f = s * w;
            }
            // Lengths come from the plan itself, so this cannot fail; a zero spectrum (the
            // floor below) would be the harmless outcome if it ever did.
            if self
                .fft
                .process_with_scratch(&mut frame, &mut spectrum, &mut scratch)
                .is_err()
            {
                spectrum.fill(Complex::new(0.0, 0.0));
            }
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr();
            }
            for (m, filter) in self.filters.iter().enumerate() {
                let bins = &power[filter.first_bin..filter.first_bin + filter.weights.len()];
                let energy: f64 = filter.weights.iter().zip(bins).map(|(w, p)| w * p).sum();
                log_mel[m * N_FRAMES + t] = energy.max(1e-10).log10();
            }
        }

        // Dynamic range: at most 8 (80 dB) below the loudest value, then scaled to about
        // [-1, 1].
        let max = log_mel.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        log_mel
            .iter()
            .map(|&v| ((v.max(max - 8.0) + 4.0) / 4.0) as f32)
            .collect()
    }
}

/// Zero mean, unit variance over the whole padded window (padding included), with the
/// reference's 1e-7 added to the variance so silence stays finite. The statistics are
/// summed in f64; the result is rounded to f32, as the reference normalises in f32.
fn normalise(x: &mut [f32]) {
    let n = x.len() as f64;
    let mean = x.iter().map(|&s| f64::from(s)).sum::<f64>() / n;
    let var = x
        .iter()
        .map(|&s| (f64::from(s) - mean).powi(2))
        .sum::<f64>()
        / n;
    let scale = 1.0 / (var + 1e-7).sqrt();
    for s in x.iter_mut() {
        *s = ((f64::from(*s) - mean) * scale) as f32;
    }
}

/// Hertz to mels on the Slaney scale (linear below 1 kHz, logarithmic above), the scale
/// Whisper's filterbank uses (librosa's default, not HTK's).
fn hz_to_mel(f: f64) -> f64 {
    if f >= 1000.0 {
        15.0 + (f / 1000.0).ln() * (27.0 / 6.4f64.ln())
    } else {
        3.0 * f / 200.0
    }
}

fn mel_to_hz(m: f64) -> f64 {
    if m >= 15.0 {
        1000.0 * ((6.4f64.ln() / 27.0) * (m - 15.0)).exp()
    } else {
        200.0 * m / 3.0
    }
}

/// 80 triangular filters evenly spaced on the Slaney mel scale from 0 to 8 kHz over the
/// 201 FFT bins, each scaled to unit area (Slaney normalisation: 2 / bandwidth).
fn mel_filters() -> Vec<MelFilter> {
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(MODEL_RATE as f64 / 2.0));
    let edges: Vec<f64> = (0..N_MELS + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (N_MELS + 1) as f64))
        .collect();
    let bin_hz = |k: usize| k as f64 * (MODEL_RATE / 2) as f64 / (N_BINS - 1) as f64;
    (0..N_MELS)
        .map(|m| {
            let (left, centre, right) = (edges[m], edges[m + 1], edges[m + 2]);
            let norm = 2.0 / (right - left);
            let all: Vec<f64> = (0..N_BINS)
                .map(|k| {
                    let f = bin_hz(k);
                    let up = (f - left) / (centre - left);
                    let down = (right - f) / (right - centre);
                    up.min(down).max(0.0) * norm
                })
                .collect();
            let first_bin = all.iter().position(|&w| w > 0.0).unwrap_or(0);
            let end = all
                .iter()
                .rposition(|&w| w > 0.0)
                .map_or(first_bin, |k| k + 1);
            MelFilter {
                first_bin,
                weights: all[first_bin..end].to_vec(),
            }
        })
        .collect()
}

/// 8 kHz call audio to f32 at 16 kHz, time-aligned (input sample `i` is output sample
/// `2i`), keeping only what the window needs: the last 4 s plus
/// [`RESAMPLE_CONTEXT_8K`] samples of lead-in for the filter.
pub fn upsample_8k_to_16k(pcm_8k: &[i16]) -> Result<Vec<f32>, ResampleError> {
    let keep = WINDOW_SAMPLES_8K + RESAMPLE_CONTEXT_8K;
    let tail = &pcm_8k[pcm_8k.len().saturating_sub(keep)..];
    if tail.is_empty() {
        return Ok(Vec::new());
    }
    let input: Vec<f32> = tail.iter().map(|&s| f32::from(s) / 32768.0).collect();
    // The filter is chosen to roll off near 4 kHz where soxr's "HQ" filter (pipecat's)
    // does: the block is split in 3 (about 341 samples per FFT block), which puts rubato's
    // cutoff at about 3.84 kHz. Measured against soxr on the reference fixtures: with one
    // 1024-sample block (cutoff ~3.95 kHz) the mel band at 3.7-4 kHz differs by 0.033 on
    // average; split in 3, by 0.013, the least of 1 to 6 sub-blocks.
    // Built per call: its state is mutable, and the plan costs little next to the model.
    let mut fft = Fft::<f32>::new_custom(
        SAMPLE_RATE as usize,
        MODEL_RATE,
        1024,
        3,
        1,
        WindowFunction::BlackmanHarris2,
        FixedSync::Input,
    )?;
    let adapter = InterleavedSlice::new(&input[..], 1, input.len())
        .map_err(|e| ResampleError::Layout(e.to_string()))?;
    let output = fft.process_all(&adapter, input.len(), None)?;
    Ok(output.take_data())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde::Deserialize;

    use super::*;
    use crate::audio::wav::read_wav_mono;

    /// One case of tests/fixtures/smart_turn_features.json (scripts/smart_turn_reference.py).
    #[derive(Deserialize)]
    struct Case {
        name: String,
        files: Vec<String>,
        band_means: Vec<f32>,
        frame_means: Vec<f32>,
        stride: usize,
        samples: Vec<f32>,
    }

    #[derive(Deserialize)]
    struct Reference {
        cases: Vec<Case>,
    }

    fn root() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    fn reference() -> Vec<Case> {
        let path = root().join("tests/fixtures/smart_turn_features.json");
        let text = std::fs::read_to_string(&path).expect("reference fixture readable");
        serde_json::from_str::<Reference>(&text)
            .expect("reference fixture parses")
            .cases
    }

    /// The case's audio, concatenated, and its rate.
    fn audio(case: &Case) -> (Vec<i16>, u32) {
        let mut all = Vec::new();
        let mut rate = 0;
        for file in &case.files {
            let (pcm, r) = read_wav_mono(&root().join(file)).expect("fixture WAV");
            all.extend(pcm);
            rate = r;
        }
        (all, rate)
    }

    fn features(extractor: &WhisperFeatures, case: &Case) -> Vec<f32> {
        let (pcm, rate) = audio(case);
        match rate {
            16_000 => {
                let x: Vec<f32> = pcm.iter().map(|&s| f32::from(s) / 32768.0).collect();
                extractor.from_16k(&x)
            }
            8_000 => extractor.from_pcm_8k(&pcm).expect("resampling"),
            other => panic!("{}: unexpected rate {other}", case.name),
        }
    }

    /// The largest difference between ours and the reference: over every stored value,
    /// the mel bands' means and the frames' means.
    fn max_differences(ours: &[f32], case: &Case) -> (f32, f32, f32) {
        let samples = case
            .samples
            .iter()
            .enumerate()
            .map(|(i, &want)| (ours[i * case.stride] - want).abs())
            .fold(0.0, f32::max);
        let bands = (0..N_MELS)
            .map(|m| {
                let mean =
                    ours[m * N_FRAMES..(m + 1) * N_FRAMES].iter().sum::<f32>() / N_FRAMES as f32;
                (mean - case.band_means[m]).abs()
            })
            .fold(0.0, f32::max);
        let frames = (0..N_FRAMES)
            .map(|t| {
                let mean = (0..N_MELS).map(|m| ours[m * N_FRAMES + t]).sum::<f32>() / N_MELS as f32;
                (mean - case.frame_means[t]).abs()
            })
            .fold(0.0, f32::max);
        (samples, bands, frames)
    }

    /// The feature math alone (16 kHz input, no resampler) matches numpy to rounding.
    /// Measured: max difference 1.8e-6 (the fixture keeps 6 decimals).
    #[test]
    fn features_of_16k_audio_match_the_reference() {
        let extractor = WhisperFeatures::new();
        let case = reference()
            .into_iter()
            .find(|c| c.name == "hello_16k")
            .expect("case hello_16k");
        let ours = features(&extractor, &case);
        assert_eq!(ours.len(), FEATURES_LEN);
        let (samples, bands, frames) = max_differences(&ours, &case);
        eprintln!(
            "hello_16k: max differences: values {samples}, band means {bands}, frame means {frames}"
        );
        assert!(
            samples < 1e-4 && bands < 1e-4 && frames < 1e-4,
            "hello_16k: max differences: values {samples}, band means {bands}, frame means {frames}"
        );
    }

    /// 8 kHz input: rubato's resampler instead of soxr's. The difference is confined to
    /// the bands around 4 kHz where the two filters roll off differently (and, through
    /// the clamp at the loudest value minus 8, a small shift of the floor). Measured:
    /// hello_8k: values 0.049, band means 0.0046, frame means 0.0059;
    /// long_8k: 0.049, 0.013, 0.010. The bounds are about twice that.
    #[test]
    fn features_of_8k_audio_match_the_reference() {
        let extractor = WhisperFeatures::new();
        for case in reference().iter().filter(|c| c.name != "hello_16k") {
            let ours = features(&extractor, case);
            let (samples, bands, frames) = max_differences(&ours, case);
            eprintln!(
                "{}: max differences: values {samples}, band means {bands}, frame means {frames}",
                case.name
            );
            assert!(
                samples < 0.1 && bands < 0.02 && frames < 0.02,
                "{}: max differences: values {samples}, band means {bands}, frame means {frames}",
                case.name
            );
        }
    }

    /// The reference's trap: a short turn is padded at the front, so its sound ends at
    /// the last frame and the first frames are the padding's floor.
    #[test]
    fn a_short_turn_is_padded_at_the_front() {
        let extractor = WhisperFeatures::new();
        // One second of broadband noise (a fixed linear congruential sequence).
        let mut state = 12345u32;
        let noise: Vec<f32> = (0..MODEL_RATE)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect();
        let f = extractor.from_16k(&noise);
        let frame_mean =
            |t: usize| (0..N_MELS).map(|m| f[m * N_FRAMES + t]).sum::<f32>() / N_MELS as f32;
        assert!(frame_mean(N_FRAMES - 10) > frame_mean(10) + 0.5);
    }

    #[test]
    fn silence_gives_finite_features() {
        let extractor = WhisperFeatures::new();
        let f = extractor.from_pcm_8k(&[]).expect("empty input");
        assert_eq!(f.len(), FEATURES_LEN);
        assert!(f.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn upsampling_doubles_the_length_and_keeps_only_what_the_window_needs() {
        let pcm = vec![1000i16; 1234];
        assert_eq!(upsample_8k_to_16k(&pcm).expect("resample").len(), 2468);
        let long = vec![1000i16; 10 * 8000];
        assert_eq!(
            upsample_8k_to_16k(&long).expect("resample").len(),
            2 * (WINDOW_SAMPLES_8K + RESAMPLE_CONTEXT_8K)
        );
    }
}
