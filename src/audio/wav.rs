//! WAV in and out, through `hound`.
//!
//! Writing: speech-to-text uploads are 8 kHz mono 16-bit WAV built in memory (Whisper takes
//! 8 kHz directly, so no upsampling step), and the simulator and tests save recordings.
//!
//! Reading: the Twilio simulator plays arbitrary user-supplied WAV files into a call, so the
//! reader accepts every PCM layout hound understands (8/16/24/32-bit integer, 32-bit float,
//! any channel count), mixes down to mono and reports the sample rate for the resampler.
//! Those files come from outside, so every malformed input is an error, never a panic.

use std::io::Read;
use std::path::Path;

use hound::{SampleFormat, WavReader, WavSpec, WavWriter};

use super::SAMPLE_RATE;

/// Why a WAV file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    /// The file could not be opened, read or written.
    #[error("WAV I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not a well-formed WAV file (includes truncated files).
    #[error("not a valid WAV file: {0}")]
    Malformed(String),
    /// A well-formed WAV file in an encoding we do not decode (e.g. ADPCM, 64-bit float).
    #[error("unsupported WAV format: {0}")]
    Unsupported(String),
    /// The header declares zero channels or a zero sample rate.
    #[error("WAV header declares {0}")]
    Empty(&'static str),
}

/// Map hound's errors for data that is already in memory: there, an I/O error can only mean
/// the bytes ran out, i.e. a truncated file.
fn parse_error(e: hound::Error) -> WavError {
    match e {
        hound::Error::IoError(_) => WavError::Malformed("file ends early".into()),
        hound::Error::FormatError(msg) if msg.contains("zero channels") => {
            WavError::Empty("zero channels")
        }
        hound::Error::FormatError(msg) => WavError::Malformed(msg.into()),
        hound::Error::Unsupported => WavError::Unsupported("compressed or unknown encoding".into()),
        other => WavError::Unsupported(other.to_string()),
    }
}

/// Map hound's errors while writing a file: I/O errors are real I/O errors there.
fn write_error(e: hound::Error) -> WavError {
    match e {
        hound::Error::IoError(io) => WavError::Io(io),
        other => WavError::Unsupported(other.to_string()),
    }
}

/// The format of every WAV Pronto writes: 8 kHz mono 16-bit PCM.
const SPEC_8K: WavSpec = WavSpec {
    channels: 1,
    sample_rate: SAMPLE_RATE,
    bits_per_sample: 16,
    sample_format: SampleFormat::Int,
};

/// Encode 8 kHz mono samples as WAV bytes in memory (for speech-to-text uploads).
///
/// Written through hound into a `Vec`, so the header is hound's, not ours. An
/// in-memory write cannot fail on I/O; the `Result` covers hound's own limits
/// (a RIFF file holds at most 4 GiB, about 74 hours of this format).
pub fn encode_wav_8k(samples: &[i16]) -> Result<Vec<u8>, WavError> {
    let mut out = std::io::Cursor::new(Vec::with_capacity(44 + samples.len() * 2));
    write_samples(
        WavWriter::new(&mut out, SPEC_8K).map_err(write_error)?,
        samples,
    )?;
    Ok(out.into_inner())
}

fn write_samples<W: std::io::Write + std::io::Seek>(
    mut w: WavWriter<W>,
    samples: &[i16],
) -> Result<(), WavError> {
    for &s in samples {
        w.write_sample(s).map_err(write_error)?;
    }
    w.finalize().map_err(write_error)
}

/// Write 8 kHz mono samples to a WAV file.
pub fn write_wav_8k(path: &Path, samples: &[i16]) -> Result<(), WavError> {
    write_samples(
        WavWriter::create(path, SPEC_8K).map_err(write_error)?,
        samples,
    )
}

/// Read a WAV file as mono 16-bit samples plus its sample rate.
pub fn read_wav_mono(path: &Path) -> Result<(Vec<i16>, u32), WavError> {
    parse(&std::fs::read(path)?)
}

/// Read WAV data from any reader as mono 16-bit samples plus its sample rate.
///
/// Channels are averaged (not summed), so a file never gets louder or clips by being mixed
/// down. Integer samples are scaled to 16 bits by shifting (8-bit up, 24/32-bit down);
/// float samples are clamped to [-1, 1] and scaled by 32767.
///
/// The whole input is read into memory first, so that a failing reader is reported as
/// [`WavError::Io`] and a short file as [`WavError::Malformed`], never confused.
pub fn read_wav_mono_from<R: Read>(mut reader: R) -> Result<(Vec<i16>, u32), WavError> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes)?;
    parse(&bytes)
}

fn parse(bytes: &[u8]) -> Result<(Vec<i16>, u32), WavError> {
    let reader = WavReader::new(bytes).map_err(parse_error)?;
    let spec = reader.spec();
    if spec.channels == 0 {
        return Err(WavError::Empty("zero channels"));
    }
    if spec.sample_rate == 0 {
        return Err(WavError::Empty("a sample rate of 0 Hz"));
    }
    let channels = usize::from(spec.channels);
    let to_i16: fn(f64) -> i16 = |v| v.round().clamp(-32768.0, 32767.0) as i16;
    let frames = match (spec.sample_format, spec.bits_per_sample) {
        (SampleFormat::Int, bits @ 1..=32) => {
            // Map every depth onto the 16-bit scale: 8-bit << 8, 24-bit >> 8, 32-bit >> 16.
            let scale = 2f64.powi(16 - i32::from(bits));
            mix_down(reader.into_samples::<i32>(), channels, bytes.len(), |s| {
                to_i16(f64::from(s) * scale)
            })?
        }
        (SampleFormat::Float, 32) => {
            mix_down(reader.into_samples::<f32>(), channels, bytes.len(), |s| {
                let s = if s.is_finite() { s } else { 0.0 };
                to_i16(f64::from(s.clamp(-1.0, 1.0)) * 32767.0)
            })?
        }
        (format, bits) => {
            return Err(WavError::Unsupported(format!(
                "{bits}-bit {}",
                match format {
                    SampleFormat::Int => "integer",
                    SampleFormat::Float => "float",
                }
            )));
        }
    };
    Ok((frames, spec.sample_rate))
}

/// Average interleaved channels into mono, converting each sample with `to_i16` first.
///
/// The header's sample count is attacker-controlled, so it sizes the reservation only up to
/// what the `input_len` bytes of the file can hold (a sample takes at least one byte): a
/// 44-byte file that claims 4 GiB of audio reserves 44 samples, not megabytes.
fn mix_down<S>(
    samples: impl Iterator<Item = hound::Result<S>>,
    channels: usize,
    input_len: usize,
    to_i16: impl Fn(S) -> i16,
) -> Result<Vec<i16>, WavError> {
    let (hint, _) = samples.size_hint();
    let mut out = Vec::with_capacity(hint.min(input_len) / channels);
    let mut sum: i32 = 0;
    let mut n = 0;
    for s in samples {
        sum += i32::from(to_i16(s.map_err(parse_error)?));
        n += 1;
        if n == channels {
            // |sum| <= 65535 * 32768 < 2^31: at most 65,535 channels of 16-bit values.
            out.push((f64::from(sum) / channels as f64).round() as i16);
            sum = 0;
            n = 0;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn wav_bytes<S: hound::Sample + Copy>(spec: WavSpec, interleaved: &[S]) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        let mut w = WavWriter::new(&mut buf, spec).expect("in-memory writer");
        for &s in interleaved {
            w.write_sample(s).expect("in-memory write");
        }
        w.finalize().expect("in-memory finalize");
        buf.into_inner()
    }

    fn spec(channels: u16, rate: u32, bits: u16, format: SampleFormat) -> WavSpec {
        WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: format,
        }
    }

    #[test]
    fn encode_then_read_round_trips_exactly() {
        let samples: Vec<i16> = (0..1000)
            .map(|i| ((i * 97) % 65536 - 32768) as i16)
            .collect();
        let bytes = encode_wav_8k(&samples).expect("in-memory WAV");
        assert_eq!(bytes.len(), 44 + 2000);
        let (back, rate) = read_wav_mono_from(Cursor::new(bytes)).expect("valid WAV");
        assert_eq!(rate, 8000);
        assert_eq!(back, samples);
    }

    #[test]
    fn write_then_read_file_round_trips() {
        let path = std::env::temp_dir().join(format!("pronto-wav-test-{}.wav", std::process::id()));
        let samples = [0i16, 1, -1, i16::MAX, i16::MIN];
        write_wav_8k(&path, &samples).expect("write");
        let read = read_wav_mono(&path);
        let _ = std::fs::remove_file(&path);
        assert_eq!(read.expect("read"), (samples.to_vec(), 8000));
    }

    #[test]
    fn stereo_is_averaged_to_mono() {
        let bytes = wav_bytes(
            spec(2, 16000, 16, SampleFormat::Int),
            &[100i16, 300, -32768, -32768, 1, 2],
        );
        let (mono, rate) = read_wav_mono_from(Cursor::new(bytes)).expect("valid WAV");
        assert_eq!(rate, 16000);
        // (1 + 2) / 2 = 1.5 rounds away from zero.
        assert_eq!(mono, [200, -32768, 2]);
    }

    #[test]
    fn other_bit_depths_are_scaled_to_16_bits() {
        let b8 = wav_bytes(spec(1, 8000, 8, SampleFormat::Int), &[-128i8, 0, 127]);
        assert_eq!(
            read_wav_mono_from(Cursor::new(b8)).expect("8-bit").0,
            [-32768, 0, 32512]
        );
        let b24 = wav_bytes(
            spec(1, 8000, 24, SampleFormat::Int),
            &[-8_388_608i32, 256, 8_388_607],
        );
        assert_eq!(
            read_wav_mono_from(Cursor::new(b24)).expect("24-bit").0,
            [-32768, 1, 32767]
        );
        let b32 = wav_bytes(
            spec(1, 8000, 32, SampleFormat::Int),
            &[i32::MIN, 65536, i32::MAX],
        );
        assert_eq!(
            read_wav_mono_from(Cursor::new(b32)).expect("32-bit").0,
            [-32768, 1, 32767]
        );
    }

    #[test]
    fn float_input_is_scaled_and_clamped() {
        let bytes = wav_bytes(
            spec(1, 44100, 32, SampleFormat::Float),
            &[0.0f32, 0.5, -1.0, 2.0, f32::NAN],
        );
        let (mono, rate) = read_wav_mono_from(Cursor::new(bytes)).expect("float WAV");
        assert_eq!(rate, 44100);
        assert_eq!(mono, [0, 16384, -32767, 32767, 0]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"RIFF",
            b"hello, this is not a wav file at all, just some text bytes",
            &[0u8; 100],
        ] {
            let err = read_wav_mono_from(Cursor::new(bad)).expect_err("garbage must be rejected");
            assert!(matches!(err, WavError::Malformed(_)), "{bad:?}: {err}");
        }
    }

    #[test]
    fn truncated_and_zero_channel_files_are_errors() {
        let good = encode_wav_8k(&[1, 2, 3, 4]).expect("in-memory WAV");
        // Cut inside the data chunk: hound reports the missing bytes when the samples are read.
        let err = read_wav_mono_from(Cursor::new(&good[..good.len() - 3])).expect_err("truncated");
        assert!(matches!(err, WavError::Malformed(_)), "{err}");
        let mut zero_channels = good.clone();
        zero_channels[22..24].copy_from_slice(&0u16.to_le_bytes());
        let err = read_wav_mono_from(Cursor::new(zero_channels)).expect_err("zero channels");
        assert!(matches!(err, WavError::Empty(_)), "{err}");
        assert!(err.to_string().contains("zero channels"), "{err}");
    }

    #[test]
    fn corrupted_headers_never_panic() {
        // Every header byte set to a few awkward values, plus a float file's header: each
        // parse must return (Ok or Err) rather than panic or try to allocate gigabytes.
        let headers = [
            encode_wav_8k(&[100, -100, 200, -200, 300, -300]).expect("in-memory WAV"),
            wav_bytes(spec(3, 48000, 32, SampleFormat::Float), &[0.25f32; 6]),
        ];
        for good in headers {
            for pos in 0..good.len().min(80) {
                for value in [0x00, 0x01, 0x03, 0x07, 0x10, 0x80, 0xFE, 0xFF] {
                    let mut bad = good.clone();
                    bad[pos] = value;
                    let _ = read_wav_mono_from(bad.as_slice());
                }
            }
        }
    }

    #[test]
    fn a_failing_reader_is_an_io_error() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk on fire"))
            }
        }
        let err = read_wav_mono_from(Broken).expect_err("broken reader");
        assert!(matches!(err, WavError::Io(_)), "{err}");
        let missing = read_wav_mono(Path::new("/nonexistent/pronto.wav")).expect_err("missing");
        assert!(matches!(missing, WavError::Io(_)), "{missing}");
    }

    #[test]
    fn unsupported_encodings_are_named() {
        let mut adpcm = encode_wav_8k(&[0; 8]).expect("in-memory WAV");
        adpcm[20..22].copy_from_slice(&2u16.to_le_bytes()); // WAVE_FORMAT_ADPCM
        let err = read_wav_mono_from(Cursor::new(adpcm)).expect_err("ADPCM");
        assert!(
            matches!(err, WavError::Unsupported(_) | WavError::Malformed(_)),
            "{err}"
        );
    }
}
