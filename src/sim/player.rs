//! Twilio's playback queue for the audio the server sends (<https://www.twilio.com/docs/voice/media-streams/websocket-messages>).
//!
//! Pure bookkeeping, no I/O and no clock of its own: the caller drives it with
//! one [`Player::tick`] per 20 ms of real time, which is what makes marks and
//! barge-in honest (a mark comes back when the audio before it has actually
//! been played, not when it arrived).
//!
//! The rules, as documented by Twilio:
//! - `media` is queued and played in the order received, any size;
//! - a `mark` is queued after the audio sent before it and echoed when
//!   playback reaches it, or at once if nothing is queued;
//! - `clear` drops all queued audio at once and echoes every pending mark;
//! - more than ten minutes of queued audio is discarded (warning 31931).

use std::collections::VecDeque;

use super::codec::{FRAME_SAMPLES, SILENCE};

/// Twilio holds at most about ten minutes of queued audio (8000 bytes/s).
pub const MAX_QUEUED_BYTES: usize = 8000 * 600;

/// The playback queue of one stream.
#[derive(Debug, Default)]
pub struct Player {
    queue: VecDeque<u8>,
    /// Bytes that ever left the queue (played or cleared): the play position.
    head: u64,
    /// Bytes that ever entered the queue.
    tail: u64,
    /// Pending marks and the position they sit at (`tail` when they arrived).
    marks: VecDeque<(u64, String)>,
}

/// What one 20 ms tick played.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Played {
    /// The frame the caller heard: queued audio, padded with μ-law silence
    /// when the queue ran short, so that the heard track stays time-aligned.
    pub frame: [u8; FRAME_SAMPLES],
    /// How many bytes of `frame` came from the server (the rest is padding).
    pub audio_bytes: usize,
    /// Marks whose audio finished playing by the start of this tick, in order:
    /// echo them now.
    pub marks: Vec<String>,
}

/// What a `clear` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleared {
    /// Queued bytes dropped (8 per millisecond).
    pub dropped_bytes: usize,
    /// Every pending mark, in order: echo them now.
    pub marks: Vec<String>,
}

impl Player {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues audio. Returns how many bytes were discarded because the queue
    /// already held [`MAX_QUEUED_BYTES`].
    pub fn push_media(&mut self, mulaw: &[u8]) -> usize {
        let room = MAX_QUEUED_BYTES.saturating_sub(self.queue.len());
        let taken = mulaw.len().min(room);
        self.queue.extend(&mulaw[..taken]);
        self.tail += taken as u64;
        mulaw.len() - taken
    }

    /// Queues a mark behind the audio received so far. Returns the name back
    /// when it must be echoed at once: nothing is queued and no earlier mark
    /// is waiting (an earlier one must be echoed first, to keep the order).
    pub fn push_mark(&mut self, name: String) -> Option<String> {
        if self.queue.is_empty() && self.marks.is_empty() {
            Some(name)
        } else {
            self.marks.push_back((self.tail, name));
            None
        }
    }

    /// Drops all queued audio and hands back every pending mark.
    pub fn clear(&mut self) -> Cleared {
        let dropped_bytes = self.queue.len();
        self.queue.clear();
        self.head = self.tail;
        Cleared {
            dropped_bytes,
            marks: self.marks.drain(..).map(|(_, name)| name).collect(),
        }
    }

    /// Plays the next 20 ms. Marks are released first: a mark whose audio was
    /// all taken by earlier ticks is reached now, when that audio has finished
    /// playing (a tick starts a frame; the frame ends at the next tick).
    pub fn tick(&mut self) -> Played {
        let mut marks = Vec::new();
        while let Some((at, _)) = self.marks.front() {
            if *at > self.head {
                break;
            }
            if let Some((_, name)) = self.marks.pop_front() {
                marks.push(name);
            }
        }
        let mut frame = [SILENCE; FRAME_SAMPLES];
        let audio_bytes = self.queue.len().min(FRAME_SAMPLES);
        for (slot, byte) in frame.iter_mut().zip(self.queue.drain(..audio_bytes)) {
            *slot = byte;
        }
        self.head += audio_bytes as u64;
        Played {
            frame,
            audio_bytes,
            marks,
        }
    }

    /// Audio queued and not yet played, in bytes (8 per millisecond).
    pub fn queued_bytes(&self) -> usize {
        self.queue.len()
    }

    /// Marks waiting for playback to reach them.
    pub fn pending_marks(&self) -> usize {
        self.marks.len()
    }

    /// Nothing queued and no mark pending: the server's side of the line is
    /// quiet.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.marks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(n: usize, byte: u8) -> Vec<u8> {
        vec![byte; n * FRAME_SAMPLES]
    }

    #[test]
    fn a_mark_is_echoed_only_after_the_audio_before_it_has_played() {
        let mut p = Player::new();
        p.push_media(&frames(2, 1));
        assert_eq!(p.push_mark("a".into()), None);
        p.push_media(&frames(1, 2));
        assert_eq!(p.push_mark("b".into()), None);

        let t1 = p.tick(); // plays frame 1 of "a"'s audio
        assert_eq!((t1.audio_bytes, t1.frame[0]), (160, 1));
        assert!(t1.marks.is_empty());
        let t2 = p.tick(); // plays frame 2: "a"'s audio is now playing its last 20 ms
        assert!(t2.marks.is_empty());
        let t3 = p.tick(); // frame 2 has finished: "a" reached; plays "b"'s audio
        assert_eq!(t3.marks, ["a"]);
        assert_eq!(t3.frame[0], 2);
        let t4 = p.tick();
        assert_eq!(t4.marks, ["b"]);
        assert_eq!(t4.audio_bytes, 0);
        assert!(p.is_idle());
    }

    #[test]
    fn a_mark_with_nothing_queued_is_echoed_at_once() {
        let mut p = Player::new();
        assert_eq!(p.push_mark("now".into()), Some("now".into()));
        assert_eq!(p.pending_marks(), 0);
        // Also after everything queued has been played.
        p.push_media(&frames(1, 1));
        p.tick();
        assert_eq!(p.push_mark("after".into()), Some("after".into()));
    }

    #[test]
    fn a_mark_behind_a_pending_mark_keeps_its_place() {
        let mut p = Player::new();
        p.push_media(&frames(1, 1));
        p.push_mark("first".into());
        p.tick(); // queue empty, "first" still waiting for its frame to end
        assert_eq!(p.push_mark("second".into()), None);
        assert_eq!(p.tick().marks, ["first", "second"]);
    }

    #[test]
    fn clear_drops_audio_and_echoes_every_pending_mark_in_order() {
        let mut p = Player::new();
        p.push_media(&frames(3, 1));
        p.push_mark("x".into());
        p.push_media(&frames(3, 2));
        p.push_mark("y".into());
        p.tick();
        let cleared = p.clear();
        assert_eq!(cleared.dropped_bytes, 5 * FRAME_SAMPLES);
        assert_eq!(cleared.marks, ["x", "y"]);
        assert!(p.is_idle());
        let next = p.tick();
        assert_eq!(next.audio_bytes, 0);
        assert!(next.marks.is_empty(), "cleared marks are not echoed twice");
        // Audio after a clear plays normally, and its marks work.
        p.push_media(&frames(1, 3));
        p.push_mark("z".into());
        assert_eq!(p.tick().frame[0], 3);
        assert_eq!(p.tick().marks, ["z"]);
    }

    #[test]
    fn heard_track_stays_time_aligned() {
        let mut p = Player::new();
        // 1.5 frames of audio: the second tick is padded with silence, the
        // third is all silence. Every tick yields a full frame.
        p.push_media(&vec![9u8; 240]);
        let heard: Vec<Played> = (0..3).map(|_| p.tick()).collect();
        assert_eq!(
            heard.iter().map(|t| t.audio_bytes).collect::<Vec<_>>(),
            [160, 80, 0]
        );
        assert!(heard[1].frame[..80].iter().all(|&b| b == 9));
        assert!(heard[1].frame[80..].iter().all(|&b| b == SILENCE));
        assert!(heard[2].frame.iter().all(|&b| b == SILENCE));
    }

    #[test]
    fn odd_sized_media_plays_back_to_back() {
        let mut p = Player::new();
        p.push_media(&[1; 100]);
        p.push_media(&[2; 100]);
        let t = p.tick();
        assert_eq!(t.audio_bytes, 160);
        assert_eq!((t.frame[99], t.frame[100], t.frame[159]), (1, 2, 2));
        assert_eq!(p.queued_bytes(), 40);
    }

    #[test]
    fn more_than_ten_minutes_is_discarded() {
        let mut p = Player::new();
        assert_eq!(p.push_media(&vec![0; MAX_QUEUED_BYTES - 10]), 0);
        assert_eq!(p.push_media(&[0; 30]), 20);
        assert_eq!(p.queued_bytes(), MAX_QUEUED_BYTES);
    }
}
