//! Turn detection by silence, on Pronto's own machine: the caller's μ-law
//! through the framer and the endpointer (`audio::vad`), as [`Event`]s. The
//! turn is over after `hangover_ms` of silence; the caller interrupts the
//! agent once they have spoken `barge_in_min_ms` (a cough or a "mm-hm" is
//! shorter). Echo mode and the agent hear the caller this way.

use tracing::debug;

use super::{Event, InputTiming, TurnInput};
use crate::audio::framer::Framer;
use crate::audio::vad::{EndpointEvent, Endpointer, EndpointerConfig, Utterance, VadError};
use crate::audio::{FRAME_MS, FRAME_SAMPLES};
use crate::model::TurnDecider;
use std::time::Duration;

pub struct Endpointing {
    framer: Framer,
    endpointer: Endpointer,
    /// Speech that interrupts the agent (ms of voiced audio).
    barge_in_min_ms: u32,
    /// Reused for every payload: the endpointer's events before they become
    /// the engine's.
    found: Vec<EndpointEvent>,
}

impl Endpointing {
    pub fn new(vad: &EndpointerConfig, barge_in_min_ms: u32) -> Result<Endpointing, VadError> {
        Ok(Endpointing {
            framer: Framer::default(),
            endpointer: Endpointer::new(vad)?,
            barge_in_min_ms,
            found: Vec::with_capacity(4),
        })
    }

    /// Hears one media payload. [`Event::Interrupting`] comes first, once
    /// per payload in which the caller has spoken long enough; then the
    /// starts and ends of their utterances in order.
    pub fn hear(&mut self, mulaw: &[u8], events: &mut Vec<Event>) {
        let Endpointing {
            framer,
            endpointer,
            barge_in_min_ms,
            found,
        } = self;
        let mut interrupting = false;
        framer.push_mulaw(mulaw, |frame| {
            if let Some(event) = endpointer.push_frame(frame) {
                found.push(event);
            }
            interrupting |= endpointer.in_speech() && endpointer.speech_ms() >= *barge_in_min_ms;
        });
        if interrupting {
            events.push(Event::Interrupting);
        }
        for event in found.drain(..) {
            match event {
                EndpointEvent::SpeechStarted { .. } => events.push(Event::SpeechStarted),
                EndpointEvent::UtteranceEnded(utterance) => {
                    debug!(speech_ms = utterance.speech_ms, end = ?utterance.end, "utterance ended");
                    events.push(ended(endpointer, utterance, TurnDecider::Silence));
                }
            }
        }
    }

    /// The silence that ends an utterance (ms).
    pub fn hangover_ms(&self) -> u32 {
        self.endpointer.hangover_ms()
    }

    /// Changes the silence that ends an utterance (a detector that ended
    /// turns sooner is gone).
    pub fn set_hangover_ms(&mut self, ms: u32) {
        self.endpointer.set_hangover_ms(ms);
    }

    /// The endpointer, for a turn detector that decides sooner than its
    /// hangover.
    pub fn endpointer(&mut self) -> &mut Endpointer {
        &mut self.endpointer
    }

    /// Ends the utterance in progress now, decided by `by`.
    pub fn end_now(&mut self, by: TurnDecider) -> Option<Event> {
        let utterance = self.endpointer.end_utterance()?;
        Some(ended(&self.endpointer, utterance, by))
    }
}

/// The turn `utterance` makes, timed by the audio heard since its last
/// voiced frame.
fn ended(endpointer: &Endpointer, utterance: Utterance, by: TurnDecider) -> Event {
    let frames_since_speech = endpointer
        .frames_seen()
        .saturating_sub(utterance.last_voiced_frame + 1);
    let wait = frames(frames_since_speech);
    let timing = InputTiming {
        endpoint_wait: wait,
        decided_after: wait,
        decided_by: by,
        streamed: false,
        utterance: frames((utterance.samples.len() / FRAME_SAMPLES) as u64),
    };
    Event::TurnEnded {
        input: TurnInput::Speech(utterance.samples),
        timing,
    }
}

/// The length of `n` frames.
pub fn frames(n: u64) -> Duration {
    Duration::from_millis(u64::from(FRAME_MS)).saturating_mul(u32::try_from(n).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::mulaw;
    use crate::audio::wav::read_wav_mono;

    /// A speech fixture (8 kHz) from tests/fixtures.
    fn fixture(name: &str) -> Vec<i16> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        read_wav_mono(&path).expect("fixture").0
    }

    fn hear_all(e: &mut Endpointing, pcm: &[i16]) -> Vec<Event> {
        let mut events = Vec::new();
        for payload in mulaw::encode(pcm).chunks(160) {
            e.hear(payload, &mut events);
        }
        events
    }

    #[test]
    fn speech_then_silence_is_one_turn_and_long_speech_interrupts() {
        let config = EndpointerConfig::default();
        let mut e = Endpointing::new(&config, 300).expect("valid config");
        let mut pcm = fixture("hello.wav");
        pcm.extend(vec![0i16; 8 * 1500]);
        let events = hear_all(&mut e, &pcm);
        let position = |f: fn(&Event) -> bool| events.iter().position(f);
        let started = position(|e| *e == Event::SpeechStarted);
        let interrupting = position(|e| *e == Event::Interrupting);
        let ended = position(|e| matches!(e, Event::TurnEnded { .. }));
        assert!(started.is_some() && started < interrupting && interrupting < ended);
        let turns: Vec<&Event> = events
            .iter()
            .filter(|e| matches!(e, Event::TurnEnded { .. }))
            .collect();
        let [Event::TurnEnded { input, timing }] = turns[..] else {
            panic!("one turn: {}", turns.len())
        };
        let TurnInput::Speech(audio) = input else {
            panic!("speech in, speech out")
        };
        // hello.wav speaks from sample 2400 to 16918: the utterance holds all of it.
        assert!(audio.len() >= 16918 - 2400, "{}", audio.len());
        assert_eq!(
            timing.endpoint_wait,
            Duration::from_millis(u64::from(config.hangover_ms)),
            "the turn ends one hangover after the last word"
        );
        assert_eq!(timing.utterance.as_millis() as usize, audio.len() / 8);
    }

    #[test]
    fn a_cough_never_interrupts_nor_ends_a_turn() {
        let mut e = Endpointing::new(&EndpointerConfig::default(), 300).expect("valid config");
        let events = hear_all(&mut e, &fixture("short_cough.wav"));
        assert!(events.is_empty(), "{events:?}");
    }
}
