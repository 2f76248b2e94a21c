//! Echo mode: after each pause the caller hears their own utterance played
//! back. It proves the whole phone path (Twilio → tunnel → Pronto → Twilio)
//! before any AI key is configured: no greeting, no announcements, no
//! provider, nothing to wait for.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;

use super::hearing::{Ears, Hearing};
use super::{
    Abilities, Command, Conversation, Engine, EngineStatus, Event, Output, Speak, TurnInput,
};
use crate::audio::mulaw;
use crate::audio::vad::VadError;
use crate::model::CallBrief;

/// The echo engine: how it hears turns. It has no speech-to-text, so it
/// hears by the local detectors (the turn model, else silence), which is
/// how a user hears the difference between them before adding any key.
pub struct Echo {
    ears: Ears,
}

impl Echo {
    /// Checks the endpointer settings once, so that opening a call cannot fail.
    pub fn new(ears: Ears) -> Result<Echo, VadError> {
        ears.check()?;
        Ok(Echo { ears })
    }
}

impl Engine for Echo {
    fn mode(&self) -> &'static str {
        "echo"
    }

    fn speaks(&self) -> bool {
        false
    }

    fn status(&self) -> EngineStatus {
        EngineStatus {
            turn_detector: self.ears.detector(false).as_str(),
            speech_to_text: "none",
            speculative_answers: 0,
            speculative_wasted: 0,
        }
    }

    fn open(&self, _brief: Arc<CallBrief>) -> Box<dyn Conversation> {
        let hearing = self.ears.open(None);
        Box::new(EchoCall {
            hearing,
            queued: VecDeque::new(),
        })
    }
}

struct EchoCall {
    hearing: Hearing,
    /// The output of the turn in progress (the echo is ready at once).
    queued: VecDeque<(u32, Output)>,
}

impl Conversation for EchoCall {
    fn abilities(&self) -> Abilities {
        Abilities {
            greets: false,
            speaks: false,
            playback_lead: None,
        }
    }

    fn hear(&mut self, mulaw: &[u8], events: &mut Vec<Event>) {
        self.hearing.hear(mulaw, events);
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Start { turn, speak } => {
                // Echo has no speech-to-text: its turns are audio.
                if let Speak::Answer(TurnInput::Speech(audio)) = speak {
                    let audio = Bytes::from(mulaw::encode(&audio));
                    self.queued.push_back((turn, Output::Audio(audio)));
                    self.queued.push_back((
                        turn,
                        Output::SegmentEnd {
                            text: String::new(),
                        },
                    ));
                }
                // Keypad digits have no sound to echo; echo says nothing else.
                self.queued.push_back((turn, Output::Finished));
            }
            Command::Cancel { turn, .. } => self.queued.retain(|(t, _)| *t != turn),
            Command::Heard(_) => {}
        }
    }

    fn poll_event(&mut self, cx: &mut Context<'_>, room: bool) -> Poll<Event> {
        // The turn model's verdicts first; then the echo, which waits for
        // room. The call polls again whenever it is woken, so the echo needs
        // no waker.
        if let Poll::Ready(event) = self.hearing.poll_event(cx) {
            return Poll::Ready(event);
        }
        match self.queued.pop_front() {
            Some((turn, output)) if room => Poll::Ready(Event::Turn { turn, output }),
            Some(item) => {
                self.queued.push_front(item);
                Poll::Pending
            }
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::vad::EndpointerConfig;
    use crate::engine::hearing::TurnSettings;
    use crate::model::CallInfo;
    use std::task::Waker;
    use std::time::Duration;

    fn open() -> Box<dyn Conversation> {
        let echo = Echo::new(Ears {
            vad: EndpointerConfig::default(),
            barge_in_min_ms: 300,
            turn: TurnSettings::default(),
            model: None,
        })
        .expect("valid");
        echo.open(Arc::new(CallBrief::of(CallInfo {
            call_sid: "CA1".into(),
            from: "+15550001111".into(),
            to: "+15550002222".into(),
            direction: "inbound".into(),
            agent: "default".into(),
            started_at: chrono::Utc::now(),
        })))
    }

    fn next(c: &mut dyn Conversation, room: bool) -> Option<Event> {
        match c.poll_event(&mut Context::from_waker(Waker::noop()), room) {
            Poll::Ready(e) => Some(e),
            Poll::Pending => None,
        }
    }

    #[test]
    fn echo_plays_the_utterance_back_as_one_segment() {
        let mut c = open();
        assert_eq!(c.abilities(), Abilities::default(), "no greeting, no voice");
        let audio: Vec<i16> = (0..800).map(|i| ((i % 50) * 300 - 7000) as i16).collect();
        c.command(Command::Start {
            turn: 3,
            speak: Speak::Answer(TurnInput::Speech(audio.clone())),
        });
        assert_eq!(next(c.as_mut(), false), None, "audio waits for room");
        let turn = |output| Some(Event::Turn { turn: 3, output });
        assert_eq!(
            next(c.as_mut(), true),
            turn(Output::Audio(Bytes::from(mulaw::encode(&audio))))
        );
        assert_eq!(
            next(c.as_mut(), true),
            turn(Output::SegmentEnd {
                text: String::new()
            })
        );
        assert_eq!(next(c.as_mut(), true), turn(Output::Finished));
        assert_eq!(next(c.as_mut(), true), None);
    }

    #[test]
    fn keypad_digits_have_nothing_to_echo_and_a_cancelled_echo_says_nothing() {
        let mut c = open();
        c.command(Command::Start {
            turn: 1,
            speak: Speak::Answer(TurnInput::Keypad("[keypad: 1]".into())),
        });
        assert_eq!(
            next(c.as_mut(), true),
            Some(Event::Turn {
                turn: 1,
                output: Output::Finished
            })
        );
        c.command(Command::Start {
            turn: 2,
            speak: Speak::Answer(TurnInput::Speech(vec![1000; 160])),
        });
        c.command(Command::Cancel {
            turn: 2,
            heard: Duration::ZERO,
        });
        assert_eq!(next(c.as_mut(), true), None);
    }
}
