//! When is there sound? Frame energy, the audible part of a caller's
//! utterance, and the onsets and ends of what the caller hears. The report's
//! latencies are measured from these, so they live in one place with one
//! threshold.

use super::codec::FRAME_SAMPLES;

/// RMS level (of 32768) above which a 20 ms frame counts as sound: about
/// −50 dBFS. Far above μ-law's quietest steps and resampling noise, far below
/// any speech.
pub(crate) const AUDIBLE_RMS: f64 = 100.0;

/// Quiet this long (in frames, 200 ms) before a sound counts as a new onset,
/// so the short pauses inside a sentence do not.
pub(crate) const QUIET_FRAMES: u32 = 10;

/// Root-mean-square level of a block of samples.
pub(crate) fn rms(pcm: &[i16]) -> f64 {
    if pcm.is_empty() {
        return 0.0;
    }
    let sum: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / pcm.len() as f64).sqrt()
}

/// Whether a frame carries sound.
pub(crate) fn is_audible(pcm: &[i16]) -> bool {
    rms(pcm) >= AUDIBLE_RMS
}

/// Indices of the first and last audible 20 ms frame of an utterance (the
/// last frame may be partial), or `None` if it is silent throughout. The end
/// of speech is the end of the last audible frame, so the trailing silence of
/// a WAV file does not count as speaking.
pub(crate) fn speech_bounds(pcm: &[i16]) -> Option<(usize, usize)> {
    let audible: Vec<usize> = pcm
        .chunks(FRAME_SAMPLES)
        .enumerate()
        .filter(|(_, frame)| is_audible(frame))
        .map(|(i, _)| i)
        .collect();
    Some((*audible.first()?, *audible.last()?))
}

/// A change in what the caller hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Heard<T> {
    /// The first audible frame after at least [`QUIET_FRAMES`] of quiet (or
    /// the first of the call) started playing at this frame's time.
    Start,
    /// Sound has been followed by [`QUIET_FRAMES`] of quiet; it ended at `T`,
    /// the time the first quiet frame started.
    End(T),
}

/// Follows the played frames and reports onsets and ends of sound. Generic
/// over the time type so that tests can use plain numbers.
#[derive(Debug)]
pub(crate) struct HeardTracker<T> {
    /// Quiet frames since the last audible one (saturating).
    quiet: u32,
    sounding: bool,
    /// When the current run of quiet frames started.
    quiet_since: Option<T>,
}

impl<T: Copy> HeardTracker<T> {
    pub(crate) fn new() -> Self {
        HeardTracker {
            quiet: QUIET_FRAMES,
            sounding: false,
            quiet_since: None,
        }
    }

    /// One frame was played at `at`.
    pub(crate) fn frame(&mut self, audible: bool, at: T) -> Option<Heard<T>> {
        if audible {
            let onset = self.quiet >= QUIET_FRAMES;
            self.quiet = 0;
            self.sounding = true;
            self.quiet_since = None;
            return onset.then_some(Heard::Start);
        }
        if self.quiet == 0 {
            self.quiet_since = Some(at);
        }
        self.quiet = self.quiet.saturating_add(1);
        if self.sounding && self.quiet >= QUIET_FRAMES {
            self.sounding = false;
            return self.quiet_since.map(Heard::End);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(frames: usize, amplitude: f64) -> Vec<i16> {
        (0..frames * FRAME_SAMPLES)
            .map(|i| {
                (amplitude * (i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 8000.0).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn speech_end_ignores_trailing_silence() {
        // 100 ms lead-in silence, 500 ms tone, 1 s silence with faint noise.
        let mut pcm = vec![0i16; 5 * FRAME_SAMPLES];
        pcm.extend(tone(25, 8000.0));
        pcm.extend(tone(50, 20.0));
        assert_eq!(speech_bounds(&pcm), Some((5, 29)));
    }

    #[test]
    fn speech_bounds_of_the_recorded_fixtures() {
        // fixtures.json: hello.wav has speech in samples [2400, 16918),
        // i.e. frames 15..=105; the 16 kHz twin gives the same after
        // resampling. One frame of slack for quiet onsets and offsets.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        for name in ["hello.wav", "hello_16k.wav"] {
            let pcm = crate::sim::codec::read_wav_8k(&dir.join(name)).unwrap();
            let (first, last) = speech_bounds(&pcm).unwrap();
            assert!((14..=16).contains(&first), "{name}: first {first}");
            assert!((104..=106).contains(&last), "{name}: last {last}");
        }
    }

    #[test]
    fn a_quiet_segment_has_no_speech() {
        assert_eq!(speech_bounds(&vec![0i16; 1600]), None);
        assert_eq!(speech_bounds(&tone(10, 50.0)), None);
        assert_eq!(speech_bounds(&[]), None);
    }

    #[test]
    fn a_partial_last_frame_counts() {
        let mut pcm = vec![0i16; FRAME_SAMPLES];
        pcm.extend(tone(1, 8000.0).iter().take(80));
        assert_eq!(speech_bounds(&pcm), Some((1, 1)));
    }

    #[test]
    fn onsets_need_200_ms_of_quiet_before_them() {
        let mut t = HeardTracker::new();
        let mut changes = Vec::new();
        // sound 0-1, quiet 2-6 (100 ms: a pause inside speech), sound 7,
        // quiet 8-17 (200 ms: the end), sound 18.
        let pattern = [1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        for (i, &a) in pattern.iter().enumerate() {
            if let Some(c) = t.frame(a == 1, i) {
                changes.push((i, c));
            }
        }
        assert_eq!(
            changes,
            [(0, Heard::Start), (17, Heard::End(8)), (18, Heard::Start)]
        );
    }
}
