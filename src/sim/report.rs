//! The end-of-call report: the timeline, the caller's turns with their
//! voice-to-voice latency, and the audio the caller heard.

use std::fmt;
use std::path::Path;

use super::SimError;
use super::codec::{self, SAMPLE_RATE};
use super::event::{CloseInfo, Event, TimedEvent};
use super::protocol::ProtocolError;

/// Everything observed on one call.
#[derive(Debug, Clone)]
pub struct Report {
    /// The call's `CallSid`.
    pub call_sid: String,
    /// The stream's `streamSid`.
    pub stream_sid: String,
    /// Every event in the order it was recorded. Mostly chronological;
    /// `MediaReceived` and `AudioHeardEnd` are recorded when known and carry
    /// an earlier time. [`Report::timeline`] sorts by time.
    pub events: Vec<TimedEvent>,
    /// The caller's turns, in order.
    pub turns: Vec<Turn>,
    /// What the caller heard, 8 kHz PCM, one 20 ms frame per playback tick,
    /// silence included: frame `k` (samples `160k..160k+160`) played at
    /// about `20·(k+1)` ms, the first tick being 20 ms after the start. See
    /// [`Report::heard_between`].
    pub heard: Vec<i16>,
    /// How the WebSocket ended, if it did.
    pub close: Option<CloseInfo>,
}

/// One caller utterance and the server's reply to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// 1-based turn number.
    pub turn: usize,
    /// When its first audible frame was sent (ms since the stream started).
    pub speech_start_ms: i64,
    /// When its last audible frame was sent.
    pub speech_end_ms: Option<i64>,
    /// The first onset of heard audio (after ≥ 200 ms of quiet) at or after
    /// the speech end: the start of the reply.
    pub reply_start_ms: Option<i64>,
    /// `reply_start_ms − speech_end_ms`: what the caller waits between
    /// stopping talking and hearing the answer begin.
    pub voice_to_voice_ms: Option<i64>,
}

impl Report {
    /// Builds the turns from the events.
    pub(crate) fn new(
        call_sid: String,
        stream_sid: String,
        events: Vec<TimedEvent>,
        heard: Vec<i16>,
    ) -> Self {
        let turns = turns(&events);
        let close = events.iter().find_map(|e| match &e.event {
            Event::Closed(c) => Some(c.clone()),
            _ => None,
        });
        Report {
            call_sid,
            stream_sid,
            events,
            turns,
            heard,
            close,
        }
    }

    /// Events sorted by time (stable: equal times keep recording order).
    pub fn timeline(&self) -> Vec<&TimedEvent> {
        let mut sorted: Vec<&TimedEvent> = self.events.iter().collect();
        sorted.sort_by_key(|e| e.at_ms);
        sorted
    }

    /// Every protocol error recorded, in order.
    pub fn protocol_errors(&self) -> Vec<&ProtocolError> {
        self.events
            .iter()
            .filter_map(|e| match &e.event {
                Event::ProtocolError(p) => Some(p),
                _ => None,
            })
            .collect()
    }

    /// Names of the marks echoed to the server, in order.
    pub fn marks_echoed(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|e| match &e.event {
                Event::MarkEchoed { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Milliseconds of heard audio that carried sound.
    pub fn audible_ms(&self) -> u64 {
        self.heard
            .chunks(codec::FRAME_SAMPLES)
            .filter(|f| super::level::is_audible(f))
            .count() as u64
            * codec::FRAME_MS
    }

    /// The heard audio played between two timeline times (ms since the
    /// stream started), e.g. from a reply's `AudioHeardStart` to its
    /// `AudioHeardEnd`, to compare with what was expected.
    pub fn heard_between(&self, from_ms: i64, to_ms: i64) -> &[i16] {
        let index = |ms: i64| {
            let after_first_tick = ms.saturating_sub(codec::FRAME_MS as i64).max(0);
            usize::try_from(after_first_tick.saturating_mul(8))
                .unwrap_or(0)
                .min(self.heard.len())
        };
        let (from, to) = (index(from_ms), index(to_ms));
        &self.heard[from..to.max(from)]
    }

    /// Writes the heard audio as an 8 kHz mono 16-bit WAV file.
    pub fn write_heard_wav(&self, path: &Path) -> Result<(), SimError> {
        codec::write_wav_8k(path, &self.heard)
    }
}

fn turns(events: &[TimedEvent]) -> Vec<Turn> {
    let onsets: Vec<i64> = events
        .iter()
        .filter(|e| e.event == Event::AudioHeardStart)
        .map(|e| e.at_ms)
        .collect();
    let mut turns: Vec<Turn> = Vec::new();
    for e in events {
        match e.event {
            Event::SpeechStart { turn } => turns.push(Turn {
                turn,
                speech_start_ms: e.at_ms,
                speech_end_ms: None,
                reply_start_ms: None,
                voice_to_voice_ms: None,
            }),
            Event::SpeechEnd { turn } => {
                if let Some(t) = turns.iter_mut().find(|t| t.turn == turn) {
                    t.speech_end_ms = Some(e.at_ms);
                    t.reply_start_ms = onsets.iter().copied().find(|&o| o >= e.at_ms);
                    t.voice_to_voice_ms = t.reply_start_ms.map(|r| r - e.at_ms);
                }
            }
            _ => {}
        }
    }
    turns
}

fn ms(v: Option<i64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "call {}  stream {}", self.call_sid, self.stream_sid)?;
        writeln!(f, "{:>9}  event", "t (ms)")?;
        for e in self.timeline() {
            writeln!(f, "{:>9}  {}", e.at_ms, e.event)?;
        }
        writeln!(f)?;
        if self.turns.is_empty() {
            writeln!(f, "no caller turns")?;
        } else {
            writeln!(
                f,
                "{:>4}  {:>12}  {:>10}  {:>11}  {:>14}",
                "turn", "speech start", "speech end", "reply start", "voice-to-voice"
            )?;
            for t in &self.turns {
                writeln!(
                    f,
                    "{:>4}  {:>12}  {:>10}  {:>11}  {:>14}",
                    t.turn,
                    t.speech_start_ms,
                    ms(t.speech_end_ms),
                    ms(t.reply_start_ms),
                    ms(t.voice_to_voice_ms)
                )?;
            }
        }
        let errors = self.protocol_errors().len();
        writeln!(
            f,
            "heard {:.1} s ({:.1} s of sound), {} marks echoed, {} protocol error{}",
            self.heard.len() as f64 / f64::from(SAMPLE_RATE),
            self.audible_ms() as f64 / 1000.0,
            self.marks_echoed().len(),
            errors,
            if errors == 1 { "" } else { "s" }
        )?;
        match &self.close {
            Some(c) => writeln!(f, "{c}"),
            None => writeln!(f, "not closed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::event::Closer;

    fn at(at_ms: i64, event: Event) -> TimedEvent {
        TimedEvent { at_ms, event }
    }

    fn sample() -> Report {
        let events = vec![
            at(-40, Event::WebhookAnswered { status: 200 }),
            at(0, Event::StreamConnected),
            at(20, Event::AudioHeardStart), // the greeting
            at(900, Event::SpeechStart { turn: 1 }),
            at(1500, Event::SpeechEnd { turn: 1 }),
            at(1200, Event::AudioHeardEnd), // recorded late, earlier time
            at(2300, Event::AudioHeardStart),
            at(2500, Event::SpeechStart { turn: 2 }),
            at(2900, Event::SpeechEnd { turn: 2 }),
            at(
                3000,
                Event::Closed(CloseInfo {
                    by: Closer::Server,
                    code: Some(1000),
                    reason: String::new(),
                    unplayed_ms: 0,
                }),
            ),
        ];
        Report::new("CA1".into(), "MZ1".into(), events, vec![0; 8000])
    }

    #[test]
    fn voice_to_voice_is_measured_from_speech_end_to_the_next_onset() {
        let r = sample();
        assert_eq!(r.turns.len(), 2);
        assert_eq!(r.turns[0].speech_end_ms, Some(1500));
        assert_eq!(r.turns[0].reply_start_ms, Some(2300));
        assert_eq!(r.turns[0].voice_to_voice_ms, Some(800));
        // No reply after the second turn.
        assert_eq!(r.turns[1].voice_to_voice_ms, None);
    }

    #[test]
    fn heard_audio_is_indexed_by_timeline_time() {
        let mut r = sample();
        r.heard = (0..800).map(|i| i as i16).collect(); // 100 ms
        // Frame 0 played at 20 ms: sample 0 is heard at 20 ms.
        assert_eq!(r.heard_between(20, 40), &r.heard[0..160]);
        assert_eq!(r.heard_between(60, 70)[0], 320);
        assert_eq!(r.heard_between(0, 10), &[] as &[i16]);
        assert_eq!(r.heard_between(100, 5000).len(), 800 - 640);
        assert_eq!(r.heard_between(500, 100), &[] as &[i16]);
        assert_eq!(r.heard_between(i64::MIN, i64::MAX).len(), 800);
    }

    #[test]
    fn timeline_is_sorted_and_display_has_the_table() {
        let r = sample();
        let times: Vec<i64> = r.timeline().iter().map(|e| e.at_ms).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        let text = r.to_string();
        assert!(text.contains("webhook answered HTTP 200"), "{text}");
        assert!(text.contains("voice-to-voice"), "{text}");
        assert!(text.contains("closed by server: 1000"), "{text}");
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with("1 "))
            .unwrap();
        assert!(row.trim_end().ends_with("800"), "{row}");
    }
}
