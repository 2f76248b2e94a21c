//! G.711 A-law (`audio/pcma`), the reference Sun `g711.c` formulas, for a
//! session that asks for it: the fake hears A-law callers and answers in
//! A-law. (Pronto itself uses μ-law, [`crate::audio::mulaw`].)

/// Segment ends of the 13-bit magnitude (`seg_aend` in g711.c).
const SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

/// `linear2alaw`.
pub(super) fn encode_sample(sample: i16) -> u8 {
    let mut pcm = i32::from(sample) >> 3;
    let mask = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    let Some(seg) = SEG_END.iter().position(|&end| pcm <= end) else {
        return 0x7F ^ mask;
    };
    let shift = if seg < 2 { 1 } else { seg };
    let value = ((seg as i32) << 4) | ((pcm >> shift) & 0x0F);
    (value as u8) ^ mask
}

/// `alaw2linear`.
pub(super) fn decode_sample(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mut t = i32::from(a & 0x0F) << 4;
    let seg = i32::from((a & 0x70) >> 4);
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_law_round_trips_within_a_step_and_knows_its_silence() {
        assert_eq!(encode_sample(0), 0xD5);
        assert_eq!(decode_sample(0xD5), 8);
        for sample in [-32768i16, -8000, -100, -1, 0, 1, 100, 8000, 32767] {
            let back = i32::from(decode_sample(encode_sample(sample)));
            let error = (back - i32::from(sample)).abs();
            assert!(
                error <= i32::from(sample).abs() / 16 + 16,
                "{sample} -> {back}"
            );
        }
    }
}
