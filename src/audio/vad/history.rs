//! Fixed-size state behind the endpointer: recent frames (for pre-roll) and the noise floor.
//!
//! Both are sized once at construction and never allocate afterwards.

use crate::audio::FRAME_SAMPLES;

/// The last `capacity` frames with their voiced flags, addressed by absolute frame index.
///
/// Holds the pre-roll plus the onset window: when an onset is confirmed, the utterance is
/// built from here, starting `pre_roll_ms` before the first voiced frame.
pub(super) struct History {
    samples: Box<[i16]>,
    voiced: Box<[bool]>,
    energy: Box<[f32]>,
    /// Number of frames ever pushed (the index of the next frame).
    pushed: u64,
}

impl History {
    pub(super) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            samples: vec![0; capacity * FRAME_SAMPLES].into_boxed_slice(),
            voiced: vec![false; capacity].into_boxed_slice(),
            energy: vec![0.0; capacity].into_boxed_slice(),
            pushed: 0,
        }
    }

    pub(super) fn capacity(&self) -> u64 {
        self.voiced.len() as u64
    }

    /// Ring slot of frame `index`, if it is still held.
    fn slot(&self, index: u64) -> Option<usize> {
        (index >= self.oldest() && index < self.pushed).then(|| (index % self.capacity()) as usize)
    }

    /// Store the next frame (`frame` must hold [`FRAME_SAMPLES`] samples).
    pub(super) fn push(&mut self, frame: &[i16], voiced: bool, dbfs: f32) {
        let slot = (self.pushed % self.capacity()) as usize;
        self.samples[slot * FRAME_SAMPLES..(slot + 1) * FRAME_SAMPLES].copy_from_slice(frame);
        self.voiced[slot] = voiced;
        self.energy[slot] = dbfs;
        self.pushed += 1;
    }

    /// Index of the oldest frame still held.
    pub(super) fn oldest(&self) -> u64 {
        self.pushed.saturating_sub(self.capacity())
    }

    /// Whether frame `index` was voiced (false if it is no longer held).
    pub(super) fn is_voiced(&self, index: u64) -> bool {
        self.slot(index).is_some_and(|s| self.voiced[s])
    }

    /// The energy of frame `index` in dBFS, if it is still held.
    pub(super) fn energy(&self, index: u64) -> Option<f32> {
        self.slot(index).map(|s| self.energy[s])
    }

    /// The samples of frame `index`, if it is still held.
    pub(super) fn frame(&self, index: u64) -> Option<&[i16]> {
        self.slot(index)
            .map(|s| &self.samples[s * FRAME_SAMPLES..(s + 1) * FRAME_SAMPLES])
    }
}

/// Frames in the noise-floor window: 1 s. Long enough that normal speech always dips below
/// its own level inside the window (between words, in stop consonants), short enough that a
/// step up in line noise is adopted within a second.
const NOISE_WINDOW: usize = 50;

/// Minimum frame energy over the last [`NOISE_WINDOW`] frames.
pub(super) struct NoiseFloor {
    energies: [f32; NOISE_WINDOW],
    filled: usize,
    next: usize,
}

impl NoiseFloor {
    pub(super) fn new() -> Self {
        Self {
            energies: [0.0; NOISE_WINDOW],
            filled: 0,
            next: 0,
        }
    }

    pub(super) fn push(&mut self, dbfs: f32) {
        if dbfs.is_nan() {
            return;
        }
        self.energies[self.next] = dbfs;
        self.next = (self.next + 1) % NOISE_WINDOW;
        self.filled = (self.filled + 1).min(NOISE_WINDOW);
    }

    /// The current noise floor in dBFS, or `None` before the first frame.
    pub(super) fn floor(&self) -> Option<f32> {
        self.energies[..self.filled]
            .iter()
            .copied()
            .reduce(f32::min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(v: i16) -> [i16; FRAME_SAMPLES] {
        [v; FRAME_SAMPLES]
    }

    #[test]
    fn history_keeps_the_last_frames_by_absolute_index() {
        let mut h = History::new(3);
        for i in 0..5i16 {
            h.push(&frame(i), i % 2 == 0, f32::from(i));
        }
        assert_eq!(h.oldest(), 2);
        assert_eq!(h.frame(1), None);
        assert_eq!(h.frame(2).map(|f| f[0]), Some(2));
        assert_eq!(h.frame(4).map(|f| f[159]), Some(4));
        assert_eq!(h.frame(5), None);
        assert!(h.is_voiced(4) && !h.is_voiced(3) && !h.is_voiced(0));
        assert_eq!((h.energy(3), h.energy(0)), (Some(3.0), None));
    }

    #[test]
    fn noise_floor_falls_at_once_and_rises_after_a_full_window() {
        let mut n = NoiseFloor::new();
        assert_eq!(n.floor(), None);
        n.push(-40.0);
        n.push(-60.0);
        assert_eq!(n.floor(), Some(-60.0));
        for _ in 0..NOISE_WINDOW - 1 {
            n.push(-30.0);
            assert_eq!(n.floor(), Some(-60.0));
        }
        n.push(-30.0);
        assert_eq!(n.floor(), Some(-30.0));
    }
}
