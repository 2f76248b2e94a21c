//! The caller's side of the line: what goes into each 20 ms `media` frame
//! Twilio sends, when DTMF digits are pressed, and the frames' timestamps.
//!
//! Pure bookkeeping; the session sends one frame per tick (or, in fast mode,
//! queued speech as fast as the socket takes it). Like a real line, audio
//! never stops: when the caller is not speaking, the frame is μ-law silence.

use std::collections::VecDeque;

use super::codec::{self, FRAME_MS, FRAME_SAMPLES, SILENCE};
use super::level::speech_bounds;

/// One frame to send and what it means for the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub mulaw: [u8; FRAME_SAMPLES],
    /// This is the first audible frame of caller turn N.
    pub speech_start: Option<usize>,
    /// This is the last audible frame of caller turn N: the speech ends when
    /// it has been sent.
    pub speech_end: Option<usize>,
    /// Queued by `say` (as opposed to the line's idle silence).
    pub from_speech: bool,
}

impl Frame {
    fn silence() -> Self {
        Frame {
            mulaw: [SILENCE; FRAME_SAMPLES],
            speech_start: None,
            speech_end: None,
            from_speech: false,
        }
    }
}

/// One `say()`: its frames and, if it has audible speech, its turn number and
/// first/last audible frames.
#[derive(Debug)]
struct Segment {
    frames: VecDeque<[u8; FRAME_SAMPLES]>,
    /// Index of the next frame to send.
    sent: usize,
    turn: Option<(usize, usize, usize)>,
}

#[derive(Debug, Default)]
pub(crate) struct Line {
    segments: VecDeque<Segment>,
    turns: usize,
    /// Scheduled DTMF, sorted by time (ms since the stream started).
    dtmf: Vec<(u64, char)>,
    last_timestamp: Option<u64>,
}

impl Line {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Queues an utterance (8 kHz PCM). Returns its turn number, or `None`
    /// when it has no audible frame (it is still sent, as silence, but is not
    /// a turn).
    pub(crate) fn push_speech(&mut self, pcm: &[i16]) -> Option<usize> {
        let turn = speech_bounds(pcm).map(|(first, last)| {
            self.turns += 1;
            (self.turns, first, last)
        });
        let frames = pcm
            .chunks(FRAME_SAMPLES)
            .map(|chunk| {
                let mut frame = [SILENCE; FRAME_SAMPLES];
                for (slot, byte) in frame.iter_mut().zip(codec::encode(chunk)) {
                    *slot = byte;
                }
                frame
            })
            .collect::<VecDeque<_>>();
        if !frames.is_empty() {
            self.segments.push_back(Segment {
                frames,
                sent: 0,
                turn,
            });
        }
        turn.map(|(n, _, _)| n)
    }

    /// Speech frames not yet sent.
    #[cfg(test)]
    pub(crate) fn queued_frames(&self) -> usize {
        self.segments.iter().map(|s| s.frames.len()).sum()
    }

    /// Whether any speech is waiting to be sent.
    pub(crate) fn has_speech(&self) -> bool {
        !self.segments.is_empty()
    }

    /// The next speech frame, if any.
    pub(crate) fn next_speech(&mut self) -> Option<Frame> {
        let segment = self.segments.front_mut()?;
        let mulaw = segment.frames.pop_front()?;
        let index = segment.sent;
        segment.sent += 1;
        let (speech_start, speech_end) = match segment.turn {
            Some((turn, first, last)) => (
                (index == first).then_some(turn),
                (index == last).then_some(turn),
            ),
            None => (None, None),
        };
        if segment.frames.is_empty() {
            self.segments.pop_front();
        }
        Some(Frame {
            mulaw,
            speech_start,
            speech_end,
            from_speech: true,
        })
    }

    /// The next frame on the line: speech if queued, silence otherwise.
    pub(crate) fn next_frame(&mut self) -> Frame {
        self.next_speech().unwrap_or_else(Frame::silence)
    }

    /// The `media.timestamp` for a frame sent `elapsed_ms` after the stream
    /// started: the real time, but never less than 20 ms after the previous
    /// frame, so presentation times stay monotonic and never overlap (in fast
    /// mode they run ahead of the clock, as the audio does).
    pub(crate) fn timestamp(&mut self, elapsed_ms: u64) -> u64 {
        let ts = match self.last_timestamp {
            Some(last) => elapsed_ms.max(last + FRAME_MS),
            None => elapsed_ms,
        };
        self.last_timestamp = Some(ts);
        ts
    }

    /// Schedules a key press at `at_ms` since the stream started.
    pub(crate) fn schedule_dtmf(&mut self, at_ms: u64, digit: char) {
        let i = self.dtmf.partition_point(|(t, _)| *t <= at_ms);
        self.dtmf.insert(i, (at_ms, digit));
    }

    /// Digits due at `now_ms`, in schedule order.
    pub(crate) fn due_dtmf(&mut self, now_ms: u64) -> Vec<char> {
        let n = self.dtmf.partition_point(|(t, _)| *t <= now_ms);
        self.dtmf.drain(..n).map(|(_, d)| d).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loud(samples: usize) -> Vec<i16> {
        (0..samples)
            .map(|i| if i % 2 == 0 { 6000 } else { -6000 })
            .collect()
    }

    #[test]
    fn speech_is_framed_and_its_bounds_marked() {
        let mut line = Line::new();
        let mut pcm = vec![0i16; FRAME_SAMPLES]; // quiet lead-in
        pcm.extend(loud(2 * FRAME_SAMPLES));
        pcm.extend(vec![0i16; 100]); // partial quiet tail
        assert_eq!(line.push_speech(&pcm), Some(1));
        assert_eq!(line.queued_frames(), 4);
        let frames: Vec<Frame> = std::iter::from_fn(|| line.next_speech()).collect();
        assert_eq!(frames.len(), 4);
        assert_eq!(
            frames
                .iter()
                .map(|f| (f.speech_start, f.speech_end))
                .collect::<Vec<_>>(),
            [(None, None), (Some(1), None), (None, Some(1)), (None, None)]
        );
        // The partial last frame is padded with silence.
        assert_eq!(frames[3].mulaw[100..], [SILENCE; 60]);
        assert!(!line.has_speech());
        assert_eq!(line.next_frame(), Frame::silence());
    }

    #[test]
    fn silent_segments_are_sent_but_are_not_turns() {
        let mut line = Line::new();
        assert_eq!(line.push_speech(&[0; 320]), None);
        assert_eq!(line.push_speech(&loud(160)), Some(1));
        assert_eq!(line.queued_frames(), 3);
        let f = line.next_frame();
        assert_eq!(f.speech_start, None);
        line.next_frame();
        let last = line.next_frame();
        assert_eq!((last.speech_start, last.speech_end), (Some(1), Some(1)));
    }

    #[test]
    fn timestamps_follow_the_clock_but_never_overlap() {
        let mut line = Line::new();
        assert_eq!(line.timestamp(3), 3);
        assert_eq!(line.timestamp(22), 23); // early tick: pushed to 20 ms after
        assert_eq!(line.timestamp(50), 50); // late tick: real time
        assert_eq!(line.timestamp(50), 70); // fast mode: runs ahead
    }

    #[test]
    fn dtmf_fires_when_due_in_order() {
        let mut line = Line::new();
        line.schedule_dtmf(3000, '#');
        line.schedule_dtmf(1500, '5');
        line.schedule_dtmf(1500, '6');
        assert!(line.due_dtmf(1499).is_empty());
        assert_eq!(line.due_dtmf(1500), ['5', '6']);
        assert!(line.due_dtmf(2000).is_empty());
        assert_eq!(line.due_dtmf(9000), ['#']);
    }
}
