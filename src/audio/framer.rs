//! Cuts inbound μ-law payloads of any size into 20 ms PCM frames.
//!
//! Twilio's inbound `media` payloads are 160 bytes (20 ms) in practice, but the size is not
//! documented, and the VAD only accepts exact 10/20/30 ms frames. So the session never
//! assumes a payload is a frame: it feeds every payload here, and the framer carries any
//! partial frame over to the next payload.

use super::FRAME_SAMPLES;
use super::mulaw;

/// Reassembles 160-sample frames from a stream of μ-law bytes.
///
/// The partial frame lives in a fixed array inside the struct, so framing never allocates.
#[derive(Clone, Debug)]
pub struct Framer {
    partial: [i16; FRAME_SAMPLES],
    filled: usize,
}

impl Default for Framer {
    fn default() -> Self {
        Self::new()
    }
}

impl Framer {
    /// An empty framer.
    pub fn new() -> Self {
        Self {
            partial: [0; FRAME_SAMPLES],
            filled: 0,
        }
    }

    /// Decode `mulaw` and call `on_frame` once for every complete 160-sample frame, in order.
    ///
    /// Bytes that do not complete a frame are kept for the next call. Any payload size works,
    /// including 0 bytes.
    pub fn push_mulaw(&mut self, mulaw: &[u8], mut on_frame: impl FnMut(&[i16])) {
        let mut rest = mulaw;
        while !rest.is_empty() {
            let take = (FRAME_SAMPLES - self.filled).min(rest.len());
            let (now, later) = rest.split_at(take);
            for (dst, &b) in self.partial[self.filled..self.filled + take]
                .iter_mut()
                .zip(now)
            {
                *dst = mulaw::decode_sample(b);
            }
            self.filled += take;
            rest = later;
            if self.filled == FRAME_SAMPLES {
                on_frame(&self.partial);
                self.filled = 0;
            }
        }
    }

    /// Samples waiting for the rest of their frame (0..160).
    pub fn pending(&self) -> usize {
        self.filled
    }

    /// Drop any partial frame, e.g. when a stream restarts.
    pub fn reset(&mut self) {
        self.filled = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// μ-law bytes whose decoded values are all different, so a test can tell whether a
    /// frame holds the right samples in the right order, not just the right count.
    fn ramp(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 256) as u8).collect()
    }

    /// Feed `input` in chunks of the given sizes (cycled) and collect every frame.
    fn frames_for(input: &[u8], chunk_sizes: &[usize]) -> (Vec<Vec<i16>>, usize) {
        let mut framer = Framer::new();
        let mut frames = Vec::new();
        let mut pos = 0;
        for &size in chunk_sizes.iter().cycle() {
            if pos >= input.len() {
                break;
            }
            let end = (pos + size).min(input.len());
            framer.push_mulaw(&input[pos..end], |f| frames.push(f.to_vec()));
            pos = end;
        }
        (frames, framer.pending())
    }

    #[test]
    fn odd_payload_sizes_give_the_same_frames_as_whole_frames() {
        let input = ramp(4000 + 37);
        let expected: Vec<Vec<i16>> = input
            .chunks_exact(FRAME_SAMPLES)
            .map(mulaw::decode)
            .collect();
        assert_eq!(expected.len(), 25);
        for sizes in [
            &[160][..],
            &[1],
            &[159],
            &[161],
            &[4000],
            &[0, 3, 0, 317, 160, 1],
        ] {
            let (frames, pending) = frames_for(&input, sizes);
            assert_eq!(frames, expected, "chunk sizes {sizes:?}");
            assert_eq!(pending, 37, "chunk sizes {sizes:?}");
        }
    }

    #[test]
    fn empty_and_short_payloads_emit_nothing_until_a_frame_is_complete() {
        let mut framer = Framer::new();
        let mut count = 0;
        framer.push_mulaw(&[], |_| count += 1);
        framer.push_mulaw(&ramp(159), |_| count += 1);
        assert_eq!((count, framer.pending()), (0, 159));
        framer.push_mulaw(&[0xFF], |_| count += 1);
        assert_eq!((count, framer.pending()), (1, 0));
    }

    #[test]
    fn reset_drops_the_partial_frame() {
        let mut framer = Framer::new();
        framer.push_mulaw(&[0x00; 100], |_| {});
        framer.reset();
        let mut frames = Vec::new();
        framer.push_mulaw(&[0xFF; 160], |f| frames.push(f.to_vec()));
        assert_eq!(
            frames,
            vec![vec![0i16; 160]],
            "no stale samples after reset"
        );
    }
}
