//! Properties of the WAV reader, for any bytes a user may hand the
//! simulator: an error or the audio, never a panic; never more samples than
//! the bytes can hold, whatever the header claims; and what Pronto writes,
//! or any file whose channels agree, reads back exactly.
//!
//! That a lying header is not believed when memory is reserved is checked
//! with a counting allocator in `tests/per_frame_alloc.rs`.

use proptest::prelude::*;

use super::{WavError, encode_wav_8k, parse};

/// The fields of a canonical 44-byte header, any of which may lie.
#[derive(Debug, Clone)]
struct Header {
    riff_len: u32,
    format: u16,
    channels: u16,
    rate: u32,
    byte_rate: u32,
    block_align: u16,
    bits: u16,
    /// Bytes after the 16 of a PCM `fmt ` chunk (`cbSize` and what follows).
    fmt_extra: Vec<u8>,
    /// `None`: the payload's real length.
    data_len: Option<u32>,
}

impl Header {
    fn bytes(&self, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + payload.len());
        out.extend(b"RIFF");
        out.extend(self.riff_len.to_le_bytes());
        out.extend(b"WAVEfmt ");
        out.extend(
            u32::try_from(16 + self.fmt_extra.len())
                .unwrap_or(16)
                .to_le_bytes(),
        );
        out.extend(self.format.to_le_bytes());
        out.extend(self.channels.to_le_bytes());
        out.extend(self.rate.to_le_bytes());
        out.extend(self.byte_rate.to_le_bytes());
        out.extend(self.block_align.to_le_bytes());
        out.extend(self.bits.to_le_bytes());
        out.extend(&self.fmt_extra);
        out.extend(b"data");
        let real = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        out.extend(self.data_len.unwrap_or(real).to_le_bytes());
        out.extend(payload);
        out
    }
}

/// Headers near the formats hound reads (PCM 1, float 3, extensible
/// 0xFFFE), with sizes that are right, wrong or huge.
fn header() -> impl Strategy<Value = Header> {
    (
        prop_oneof![Just(36u32), any::<u32>()],
        prop_oneof![Just(1u16), Just(3), Just(0xFFFE), any::<u16>()],
        prop_oneof![1..=8u16, any::<u16>()],
        prop_oneof![Just(8000u32), Just(44_100), any::<u32>()],
        prop::sample::select(vec![8u16, 16, 24, 32, 0, 1, 12, 64]),
        prop_oneof![
            Just(Vec::new()),
            prop::collection::vec(any::<u8>(), 2..=2),
            prop::collection::vec(any::<u8>(), 24..=24)
        ],
        prop_oneof![
            Just(None),
            Just(Some(u32::MAX)),
            any::<u32>().prop_map(Some)
        ],
        any::<bool>(),
    )
        .prop_map(
            |(riff_len, format, channels, rate, bits, fmt_extra, data_len, consistent)| {
                let block = u32::from(channels) * u32::from(bits).div_ceil(8);
                Header {
                    riff_len,
                    format,
                    channels,
                    rate,
                    byte_rate: if consistent {
                        rate.wrapping_mul(block)
                    } else {
                        rate
                    },
                    block_align: if consistent {
                        u16::try_from(block).unwrap_or(u16::MAX)
                    } else {
                        channels
                    },
                    bits,
                    fmt_extra,
                    data_len,
                }
            },
        )
}

fn lying_file() -> impl Strategy<Value = Vec<u8>> {
    (header(), prop::collection::vec(any::<u8>(), 0..256))
        .prop_map(|(h, payload)| h.bytes(&payload))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_are_audio_or_an_error(bytes in prop_oneof![
        lying_file(),
        prop::collection::vec(any::<u8>(), 0..128),
        // A valid file with a byte changed or cut short.
        (prop::collection::vec(any::<i16>(), 0..64), any::<prop::sample::Index>(), any::<u8>(), any::<bool>())
            .prop_map(|(samples, at, byte, cut)| {
                let mut bytes = encode_wav_8k(&samples).unwrap_or_default();
                let i = at.index(bytes.len());
                if cut { bytes.truncate(i) } else { bytes[i] = byte }
                bytes
            }),
    ]) {
        match parse(&bytes) {
            // Every sample takes at least a byte: no more frames than bytes,
            // and no more room reserved than that, whatever the header says.
            Ok((mono, rate)) => {
                prop_assert!(rate > 0);
                prop_assert!(mono.len() <= bytes.len());
                prop_assert!(mono.capacity() <= bytes.len());
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn what_pronto_writes_reads_back(samples in prop::collection::vec(any::<i16>(), 0..2000)) {
        let bytes = encode_wav_8k(&samples).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let read = parse(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(read, (samples, 8000));
    }

    #[test]
    fn channels_that_agree_mix_down_to_themselves(
        samples in prop::collection::vec(any::<i16>(), 0..500),
        channels in 1..=6u16,
        rate in 1..=192_000u32,
    ) {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut buf, spec).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for &s in &samples {
            for _ in 0..channels {
                w.write_sample(s).map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
        }
        w.finalize().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parse(&buf.into_inner()).map_err(|e: WavError| TestCaseError::fail(e.to_string()))?, (samples, rate));
    }
}
