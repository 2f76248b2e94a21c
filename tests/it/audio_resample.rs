//! Streaming TTS resampler (24 kHz s16le → 8 kHz) and the one-shot `resample_to_8k`.

use std::f64::consts::PI;

use pronto::audio::resample::{ResampleError, TtsResampler, resample_to_8k};

fn sine(rate: u32, freq: f64, amplitude: f64, seconds: f64) -> Vec<i16> {
    let n = (f64::from(rate) * seconds).round() as usize;
    (0..n)
        .map(|i| (amplitude * (2.0 * PI * freq * i as f64 / f64::from(rate)).sin()).round() as i16)
        .collect()
}

fn le_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

fn rms(x: &[i16]) -> f64 {
    (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

fn db(ratio: f64) -> f64 {
    20.0 * ratio.log10()
}

/// Push `bytes` in chunks whose sizes cycle through `sizes`, then flush.
fn stream(r: &mut TtsResampler, bytes: &[u8], sizes: &[usize]) -> Vec<i16> {
    let mut out = Vec::new();
    let mut pos = 0;
    for &size in sizes.iter().cycle() {
        if pos >= bytes.len() {
            break;
        }
        let end = (pos + size).min(bytes.len());
        r.push_bytes(&bytes[pos..end], &mut out);
        pos = end;
    }
    r.flush(&mut out);
    out
}

/// A deterministic test signal with content across the band: a chirp plus a low tone.
fn test_signal(samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|i| {
            let t = i as f64 / 24_000.0;
            let chirp = (2.0 * PI * (200.0 * t + 3000.0 * t * t)).sin();
            let low = (2.0 * PI * 310.0 * t).sin();
            (9000.0 * chirp + 4000.0 * low).round() as i16
        })
        .collect()
}

/// Small xorshift generator, so "random" chunk sizes are the same on every run.
fn random_sizes(seed: u64, count: usize, max: usize) -> Vec<usize> {
    let mut x = seed;
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % max as u64) as usize + 1
        })
        .collect()
}

#[test]
fn whole_blocks_give_exactly_one_frame_each_after_flush() {
    for k in [1usize, 2, 7, 50] {
        let mut r = TtsResampler::new().expect("resampler");
        let out = stream(&mut r, &le_bytes(&test_signal(480 * k)), &[usize::MAX]);
        assert_eq!(out.len(), 160 * k, "{k} blocks of 480");
    }
    // A partial block still comes out, rounded up to whole output samples.
    let mut r = TtsResampler::new().expect("resampler");
    let out = stream(&mut r, &le_bytes(&test_signal(1000)), &[usize::MAX]);
    assert_eq!(out.len(), 334);
}

#[test]
fn output_does_not_depend_on_how_the_bytes_are_chunked() {
    let bytes = le_bytes(&test_signal(24_000 + 123));
    let mut r = TtsResampler::new().expect("resampler");
    let reference = stream(&mut r, &bytes, &[usize::MAX]);
    assert_eq!(reference.len(), 8041);
    for sizes in [
        vec![1],
        vec![3],
        vec![7, 1, 959, 2, 481],
        random_sizes(42, 1000, 2000),
        random_sizes(7, 1000, 5),
    ] {
        // The same resampler is reused after each flush, which also checks the reset.
        let out = stream(&mut r, &bytes, &sizes);
        assert!(
            out == reference,
            "output differs for chunk sizes {:?}",
            &sizes[..5]
        );
    }
}

#[test]
fn a_partial_first_push_produces_nothing_until_a_block_is_complete() {
    let mut r = TtsResampler::new().expect("resampler");
    let mut out = Vec::new();
    let bytes = le_bytes(&test_signal(960));
    r.push_bytes(&bytes[..959], &mut out);
    assert!(out.is_empty(), "nothing before the first 480 samples");
    r.push_bytes(&bytes[959..960], &mut out);
    // First block: 160 out minus the trimmed start-up delay.
    assert_eq!(out.len(), 160 - r.delay_samples());
    r.push_bytes(&bytes[960..], &mut out);
    assert_eq!(out.len(), 320 - r.delay_samples());
    r.flush(&mut out);
    assert_eq!(out.len(), 320);
}

#[test]
fn passband_tone_keeps_its_level_and_timing() {
    let input = sine(24_000, 1000.0, 16_000.0, 0.5);
    let mut r = TtsResampler::new().expect("resampler");
    assert_eq!(r.delay_samples(), 80, "10 ms, as documented");
    let out = stream(&mut r, &le_bytes(&input), &[4096]);
    // Skip the filter's settling at both ends (one delay plus a frame).
    let steady = &out[240..out.len() - 240];
    let gain_db = db(rms(steady) / (16_000.0 / 2f64.sqrt()));
    assert!(gain_db.abs() <= 0.5, "1 kHz gain {gain_db:.3} dB");
    // Start-up delay trimmed: output sample i lines up with input sample 3i.
    let worst = (240..out.len() - 240)
        .map(|i| (f64::from(out[i]) - f64::from(input[3 * i])).abs())
        .fold(0.0, f64::max);
    assert!(worst < 16_000.0 * 0.05, "misaligned by up to {worst}");
}

#[test]
fn stopband_tone_is_attenuated_by_40_db() {
    for freq in [4_800.0, 6_000.0, 9_000.0] {
        let input = sine(24_000, freq, 16_000.0, 0.5);
        let mut r = TtsResampler::new().expect("resampler");
        let out = stream(&mut r, &le_bytes(&input), &[4096]);
        let attenuation = db(rms(&out[240..out.len() - 240]) / rms(&input));
        assert!(
            attenuation <= -40.0,
            "{freq} Hz only {attenuation:.1} dB down"
        );
    }
}

#[test]
fn tts_resampler_can_move_to_another_task() {
    fn assert_send<T: Send>() {}
    assert_send::<TtsResampler>();
}

/// Amplitude of the `freq` component of `x` (Goertzel), for a whole number of periods.
fn tone_amplitude(x: &[i16], rate: f64, freq: f64) -> f64 {
    let w = 2.0 * PI * freq / rate;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in x {
        let s0 = f64::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power.sqrt() / x.len() as f64
}

fn zero_crossings(x: &[i16]) -> usize {
    x.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count()
}

#[test]
fn one_shot_keeps_length_and_pitch_for_common_rates() {
    for rate in [11_025, 16_000, 22_050, 44_100, 48_000] {
        let input = sine(rate, 1000.0, 12_000.0, 1.0);
        let out = resample_to_8k(&input, rate).expect("supported rate");
        assert!(
            out.len().abs_diff(8000) <= 1,
            "{rate} Hz: {} samples",
            out.len()
        );
        // 1 s of 1 kHz: 2000 sign changes, give or take the ends.
        let zc = zero_crossings(&out);
        assert!(zc.abs_diff(2000) <= 2, "{rate} Hz: {zc} zero crossings");
        // 0.5 s in the middle is a whole number of 1 kHz periods at 8 kHz.
        let mid = &out[2000..6000];
        let level = db(tone_amplitude(mid, 8000.0, 1000.0) / 12_000.0);
        assert!(level.abs() <= 0.5, "{rate} Hz: 1 kHz level {level:.2} dB");
        let leak = db(tone_amplitude(mid, 8000.0, 1250.0) / 12_000.0);
        assert!(leak < -40.0, "{rate} Hz: energy at 1250 Hz {leak:.1} dB");
    }
}

#[test]
fn one_shot_removes_content_above_4_khz() {
    for rate in [16_000, 44_100, 48_000] {
        let input = sine(rate, 6000.0, 12_000.0, 0.5);
        let out = resample_to_8k(&input, rate).expect("supported rate");
        let attenuation = db(rms(&out[400..out.len() - 400]) / rms(&input));
        assert!(
            attenuation <= -40.0,
            "{rate} Hz: 6 kHz only {attenuation:.1} dB down"
        );
    }
}

#[test]
fn one_shot_edge_cases() {
    let input = sine(8000, 440.0, 1000.0, 0.1);
    assert_eq!(resample_to_8k(&input, 8000).expect("8 kHz"), input);
    assert!(resample_to_8k(&[], 16_000).expect("empty").is_empty());
    for bad in [0, 999, 384_001, u32::MAX] {
        assert!(
            matches!(resample_to_8k(&input, bad), Err(ResampleError::UnsupportedRate(r)) if r == bad),
            "{bad} Hz must be rejected"
        );
    }
}
