//! What the streaming speech-to-text fakes share: hearing a caller in μ-law
//! as a real service would, without transcribing anything. An energy gate on
//! the decoded audio finds where speech starts and stops (counted in audio
//! time, 8 bytes per ms, so a test that sends faster than real time gets the
//! same answers); the words "heard" come from a script, one text per turn,
//! revealed word by word as speech goes on.
//!
//! Each fake ([`super::deepgram`], [`super::assemblyai`],
//! [`super::openai_realtime`]) turns these into its service's messages.

use std::sync::{Arc, Mutex};

use super::lock;
use crate::audio::mulaw;

/// A frame louder than this (mean absolute sample) is speech. The fixtures'
/// speech is thousands; their noise floor and μ-law silence are under 100.
const SPEECH_LEVEL: i32 = 500;
/// Audio time between two words revealed (ms).
const MS_PER_WORD: u64 = 250;

/// The texts the fakes "hear", turn after turn (the last one repeats).
#[derive(Clone)]
pub struct Script(Arc<Mutex<Vec<String>>>);

impl Default for Script {
    fn default() -> Script {
        Script::new(&["hello"])
    }
}

impl Script {
    pub fn new(texts: &[&str]) -> Script {
        Script(Arc::new(Mutex::new(
            texts.iter().map(|t| t.to_string()).collect(),
        )))
    }

    /// Replaces the texts for the turns to come.
    pub fn set(&self, texts: &[&str]) {
        *lock(&self.0) = texts.iter().map(|t| t.to_string()).collect();
    }

    /// The text of turn `index` (0-based).
    pub fn text(&self, index: usize) -> String {
        let texts = lock(&self.0);
        texts
            .get(index)
            .or(texts.last())
            .cloned()
            .unwrap_or_default()
    }
}

/// What happened in the audio just heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// Speech started (turn `turn`).
    Started { turn: usize },
    /// More of the turn's words: the transcript so far.
    Words { turn: usize, transcript: String },
    /// `silence_ms` of silence after speech: the turn may be over.
    Paused {
        turn: usize,
        transcript: String,
        silence_ms: u64,
    },
    /// Speech came back after a pause.
    Resumed { turn: usize },
}

/// One connection's listening state.
pub struct Hearing {
    script: Script,
    /// Audio heard (ms).
    at_ms: u64,
    /// Bytes of the frame being assembled (20 ms = 160 bytes).
    frame: Vec<u8>,
    turn: usize,
    speaking: bool,
    /// Speech heard in the current turn (ms), for revealing words.
    speech_ms: u64,
    /// Audio time of the last speech frame.
    last_speech_ms: u64,
    /// Silence marks already reported for this pause.
    reported_silence: Vec<u64>,
    /// In a turn (between its start and [`Hearing::end_turn`]).
    in_turn: bool,
    words_shown: usize,
    /// Silence lengths (ms) at which to report [`Heard::Paused`].
    marks: Vec<u64>,
}

impl Hearing {
    /// `pause_marks_ms`: the silences after speech at which the fake reports
    /// a pause (e.g. `[200, 260]` for an eager and a final end of turn).
    pub fn new(script: Script, pause_marks_ms: &[u64]) -> Hearing {
        Hearing {
            script,
            at_ms: 0,
            frame: Vec::with_capacity(160),
            turn: 0,
            speaking: false,
            speech_ms: 0,
            last_speech_ms: 0,
            reported_silence: Vec::new(),
            in_turn: false,
            words_shown: 0,
            marks: pause_marks_ms.to_vec(),
        }
    }

    /// Audio heard so far (ms).
    pub fn at_ms(&self) -> u64 {
        self.at_ms
    }

    /// The turn in progress or next (0-based).
    pub fn turn(&self) -> usize {
        self.turn
    }

    /// Whether a turn has started and not been ended.
    pub fn in_turn(&self) -> bool {
        self.in_turn
    }

    /// The whole text of the current turn (what a final transcript says).
    pub fn full_text(&self) -> String {
        self.script.text(self.turn)
    }

    /// The words revealed so far in the current turn.
    pub fn transcript(&self) -> String {
        self.words(self.words_shown)
    }

    fn words(&self, n: usize) -> String {
        self.full_text()
            .split_whitespace()
            .take(n)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Hears μ-law audio of any length.
    pub fn hear(&mut self, mulaw: &[u8], out: &mut Vec<Heard>) {
        for &byte in mulaw {
            self.frame.push(byte);
            if self.frame.len() == 160 {
                let frame = std::mem::take(&mut self.frame);
                self.frame_heard(&frame, out);
                self.frame = frame;
                self.frame.clear();
            }
        }
    }

    fn frame_heard(&mut self, frame: &[u8], out: &mut Vec<Heard>) {
        self.at_ms += 20;
        let pcm = mulaw::decode(frame);
        let level = pcm.iter().map(|&s| i32::from(s).abs()).sum::<i32>() / pcm.len().max(1) as i32;
        if level >= SPEECH_LEVEL {
            if !self.in_turn {
                self.in_turn = true;
                self.speech_ms = 0;
                self.words_shown = 0;
                out.push(Heard::Started { turn: self.turn });
            } else if !self.speaking && !self.reported_silence.is_empty() {
                out.push(Heard::Resumed { turn: self.turn });
            }
            self.speaking = true;
            self.reported_silence.clear();
            self.speech_ms += 20;
            self.last_speech_ms = self.at_ms;
            let total = self.full_text().split_whitespace().count();
            let due = ((self.speech_ms / MS_PER_WORD) as usize + 1).min(total);
            if due > self.words_shown {
                self.words_shown = due;
                out.push(Heard::Words {
                    turn: self.turn,
                    transcript: self.transcript(),
                });
            }
        } else if self.in_turn {
            self.speaking = false;
            let silence = self.at_ms - self.last_speech_ms;
            for &mark in &self.marks {
                if silence >= mark && !self.reported_silence.contains(&mark) {
                    self.reported_silence.push(mark);
                    // At a turn's end every word is in.
                    self.words_shown = self.full_text().split_whitespace().count();
                    out.push(Heard::Paused {
                        turn: self.turn,
                        transcript: self.transcript(),
                        silence_ms: mark,
                    });
                }
            }
        }
    }

    /// The fake has ended the turn (its end-of-turn message is sent): the
    /// next speech is the next turn. Returns the turn's whole text.
    pub fn end_turn(&mut self) -> String {
        let text = self.full_text();
        self.in_turn = false;
        self.speaking = false;
        self.reported_silence.clear();
        self.turn += 1;
        self.words_shown = 0;
        text
    }
}

/// Audio for the fakes' tests: what the gate hears as speech, and μ-law
/// silence.
#[cfg(test)]
pub(super) mod test_audio {
    use crate::audio::mulaw;

    /// A loud square wave, `ms` long.
    pub fn tone(ms: usize) -> Vec<u8> {
        let pcm: Vec<i16> = (0..ms * 8)
            .map(|i| if (i / 4) % 2 == 0 { 6000 } else { -6000 })
            .collect();
        mulaw::encode(&pcm)
    }

    pub fn silence(ms: usize) -> Vec<u8> {
        vec![0xFF; ms * 8]
    }
}

#[cfg(test)]
mod tests {
    use super::test_audio::{silence, tone};
    use super::*;

    #[test]
    fn speech_reveals_words_then_a_pause_reports_the_whole_turn() {
        let mut hearing = Hearing::new(Script::new(&["one two three"]), &[200, 300]);
        let mut out = Vec::new();
        hearing.hear(&tone(600), &mut out);
        hearing.hear(&silence(400), &mut out);
        assert_eq!(out[0], Heard::Started { turn: 0 });
        assert!(out.contains(&Heard::Words {
            turn: 0,
            transcript: "one two three".into()
        }));
        let pauses: Vec<u64> = out
            .iter()
            .filter_map(|h| match h {
                Heard::Paused { silence_ms, .. } => Some(*silence_ms),
                _ => None,
            })
            .collect();
        assert_eq!(pauses, vec![200, 300]);
        assert_eq!(hearing.end_turn(), "one two three");
        assert_eq!(hearing.turn(), 1);
    }

    #[test]
    fn speech_after_a_reported_pause_resumes_the_turn() {
        let mut hearing = Hearing::new(Script::default(), &[200]);
        let mut out = Vec::new();
        hearing.hear(&tone(200), &mut out);
        hearing.hear(&silence(250), &mut out);
        hearing.hear(&tone(100), &mut out);
        assert!(out.contains(&Heard::Resumed { turn: 0 }), "{out:?}");
        assert!(hearing.in_turn());
    }
}
