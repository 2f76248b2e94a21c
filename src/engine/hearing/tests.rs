use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::audio::mulaw;
use crate::audio::wav::read_wav_mono;
use crate::engine::turn_model::TurnModel;
use crate::providers::ProviderError;
use crate::providers::listen::TestProvider;

/// A speech fixture (8 kHz) from tests/fixtures.
fn fixture(name: &str) -> Vec<i16> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    read_wav_mono(&path).expect("fixture").0
}

/// A model that answers from a list, one verdict per judgement, and
/// remembers how much audio it was given.
struct Scripted {
    verdicts: Mutex<Vec<Result<f32, String>>>,
    heard: Mutex<Vec<usize>>,
}

impl Scripted {
    fn new(verdicts: Vec<Result<f32, String>>) -> Arc<Scripted> {
        Arc::new(Scripted {
            verdicts: Mutex::new(verdicts),
            heard: Mutex::new(Vec::new()),
        })
    }
}

impl TurnModel for Scripted {
    fn completion(&self, pcm_8k: &[i16]) -> Result<f32, String> {
        self.heard.lock().expect("lock").push(pcm_8k.len());
        let mut verdicts = self.verdicts.lock().expect("lock");
        if verdicts.is_empty() {
            Ok(0.0)
        } else {
            verdicts.remove(0)
        }
    }
}

fn ears(detector: Detector, model: Option<Arc<dyn TurnModel>>) -> Ears {
    Ears {
        vad: EndpointerConfig::default(),
        barge_in_min_ms: 300,
        turn: TurnSettings {
            detector,
            ..TurnSettings::default()
        },
        model,
    }
}

/// The call's side: feeds 20 ms frames and collects every event, waiting a
/// little for the model's verdict whenever one is being judged.
struct Caller {
    hearing: Hearing,
    events: Vec<Event>,
    /// Frames fed when each event came.
    at_frame: Vec<u64>,
    frames: u64,
}

impl Caller {
    fn new(hearing: Hearing) -> Caller {
        Caller {
            hearing,
            events: Vec::new(),
            at_frame: Vec::new(),
            frames: 0,
        }
    }

    async fn say(&mut self, pcm: &[i16]) {
        for frame in mulaw::encode(pcm).chunks(160) {
            let before = self.events.len();
            self.hearing.hear(frame, &mut self.events);
            self.frames += 1;
            let verdict = self
                .hearing
                .verdict(Duration::from_secs(2))
                .await
                .expect("a verdict within 2 s");
            self.events.extend(verdict);
            self.drain();
            for _ in before..self.events.len() {
                self.at_frame.push(self.frames);
            }
        }
    }

    /// Takes what the hearing learnt outside `hear`.
    fn drain(&mut self) {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        while let Poll::Ready(event) = self.hearing.poll_event(&mut cx) {
            self.events.push(event);
        }
    }

    fn silence(ms: usize) -> Vec<i16> {
        vec![0; ms * 8]
    }

    /// The turns reported, with their timing and the frame they came at.
    fn turns(&self) -> Vec<(TurnInput, InputTiming, u64)> {
        self.events
            .iter()
            .zip(&self.at_frame)
            .filter_map(|(e, &at)| match e {
                Event::TurnEnded { input, timing } => Some((input.clone(), *timing, at)),
                _ => None,
            })
            .collect()
    }
}

/// hello.wav's last voiced audio is at sample 16918 (frame 105).
const HELLO_END_FRAME: u64 = 16918 / 160;

/// hello.wav up to 100 ms after its last word (the file holds 1.7 s of
/// silence after it, longer than a hangover).
fn hello() -> Vec<i16> {
    let mut pcm = fixture("hello.wav");
    pcm.truncate(16918 + 800);
    pcm
}

#[tokio::test]
async fn silence_ends_the_turn_one_hangover_after_the_last_word() {
    let ears = ears(Detector::Silence, None);
    let mut caller = Caller::new(ears.open(None));
    caller.say(&hello()).await;
    caller.say(&Caller::silence(1500)).await;
    let turns = caller.turns();
    let [(TurnInput::Speech(_), timing, _)] = turns.as_slice() else {
        panic!("one spoken turn: {}", turns.len())
    };
    assert_eq!(timing.decided_by, TurnDecider::Silence);
    assert_eq!(timing.endpoint_wait, Duration::from_millis(600));
    assert!(!timing.streamed);
}

#[tokio::test]
async fn a_complete_turn_ends_at_the_models_first_pause() {
    let model = Scripted::new(vec![Ok(0.9)]);
    let ears = ears(Detector::Model, Some(model.clone()));
    let mut caller = Caller::new(ears.open(None));
    assert_eq!(caller.hearing.detector(), Detector::Model);
    caller.say(&hello()).await;
    caller.say(&Caller::silence(1500)).await;
    let turns = caller.turns();
    let [(TurnInput::Speech(audio), timing, at)] = turns.as_slice() else {
        panic!("one spoken turn: {}", turns.len())
    };
    assert_eq!(timing.decided_by, TurnDecider::Model);
    // 200 ms of pause (stop_ms), not 600.
    assert_eq!(timing.endpoint_wait, Duration::from_millis(200));
    assert!(*at <= HELLO_END_FRAME + 12, "decided at frame {at}");
    assert!(
        audio.len() >= 16918 - 2400,
        "the whole utterance: {}",
        audio.len()
    );
    assert_eq!(
        model.heard.lock().expect("lock").len(),
        1,
        "judged once, at the pause"
    );
}

#[tokio::test]
async fn an_incomplete_turn_keeps_listening_until_the_ceiling() {
    let model = Scripted::new(vec![Ok(0.1)]);
    let ears = ears(Detector::Model, Some(model.clone()));
    let mut caller = Caller::new(ears.open(None));
    caller.say(&hello()).await;
    caller.say(&Caller::silence(2000)).await;
    assert!(caller.turns().is_empty(), "incomplete: no turn yet");
    caller.say(&Caller::silence(1200)).await;
    let turns = caller.turns();
    let [(_, timing, _)] = turns.as_slice() else {
        panic!("one turn: {}", turns.len())
    };
    assert_eq!(timing.decided_by, TurnDecider::Ceiling);
    assert_eq!(timing.endpoint_wait, Duration::from_millis(3000));
}

#[tokio::test]
async fn speech_after_an_incomplete_verdict_is_the_same_turn_judged_again() {
    let model = Scripted::new(vec![Ok(0.1), Ok(0.8)]);
    let ears = ears(Detector::Model, Some(model.clone()));
    let mut caller = Caller::new(ears.open(None));
    let hello = hello();
    caller.say(&hello).await;
    caller.say(&Caller::silence(500)).await;
    caller.say(&hello).await;
    caller.say(&Caller::silence(1000)).await;
    let turns = caller.turns();
    let [(TurnInput::Speech(audio), timing, _)] = turns.as_slice() else {
        panic!("one turn: {}", turns.len())
    };
    assert_eq!(timing.decided_by, TurnDecider::Model);
    assert!(audio.len() > hello.len(), "both parts: {}", audio.len());
    let judged = model.heard.lock().expect("lock").clone();
    assert_eq!(judged.len(), 2, "{judged:?}");
    assert!(judged[1] > judged[0], "the second judgement hears more");
}

#[tokio::test]
async fn a_failing_model_leaves_the_call_on_silence() {
    let model = Scripted::new(vec![Err("runtime gone".into())]);
    let ears = ears(Detector::Model, Some(model));
    let mut caller = Caller::new(ears.open(None));
    caller.say(&hello()).await;
    caller.say(&Caller::silence(1500)).await;
    let turns = caller.turns();
    let [(_, timing, _)] = turns.as_slice() else {
        panic!("one turn: {}", turns.len())
    };
    assert_eq!(timing.decided_by, TurnDecider::Silence);
    assert_eq!(timing.endpoint_wait, Duration::from_millis(600));
}

#[test]
fn without_a_model_or_a_stream_the_detectors_fall_back_to_silence() {
    assert_eq!(
        ears(Detector::Model, None).detector(false),
        Detector::Silence
    );
    assert_eq!(
        ears(Detector::Provider, None).detector(false),
        Detector::Silence
    );
    let model: Arc<dyn TurnModel> = Scripted::new(vec![]);
    assert_eq!(
        ears(Detector::Provider, Some(model.clone())).detector(false),
        Detector::Model,
        "echo mode hears provider-detected deployments with the model"
    );
    assert_eq!(
        ears(Detector::Provider, Some(model)).detector(true),
        Detector::Provider
    );
}

fn streaming(detector: Detector) -> (Caller, TestProvider) {
    let (listener, provider) = Listener::detached();
    (
        Caller::new(ears(detector, None).open(Some(listener))),
        provider,
    )
}

#[tokio::test]
async fn a_turn_decided_by_silence_waits_for_the_final_transcript() {
    let (mut caller, mut provider) = streaming(Detector::Silence);
    caller.say(&hello()).await;
    caller.say(&Caller::silence(700)).await;
    assert!(caller.turns().is_empty(), "waiting for the transcript");
    let (bytes, forced) = provider.received();
    assert_eq!(forced, 1, "the provider was asked to end the turn");
    assert_eq!(bytes, hello().len() + 700 * 8, "every byte went out");
    provider
        .heard
        .send(Heard::TurnEnded {
            text: "hello there".into(),
            forced: true,
        })
        .expect("listener");
    caller.say(&Caller::silence(20)).await;
    let turns = caller.turns();
    let [(TurnInput::Transcript(text), timing, _)] = turns.as_slice() else {
        panic!("one transcribed turn: {}", turns.len())
    };
    assert_eq!(text, "hello there");
    assert!(timing.streamed);
    assert_eq!(timing.decided_after, Duration::from_millis(600));
    assert_eq!(
        timing.endpoint_wait,
        Duration::from_millis(800),
        "decided at 600 ms; the final came with the audio heard 200 ms later"
    );
}

#[tokio::test]
async fn no_final_in_time_goes_on_with_the_words_heard() {
    let (mut caller, provider) = streaming(Detector::Silence);
    let hello = hello();
    caller.say(&hello[..8000]).await;
    provider
        .heard
        .send(Heard::Partial("hello the".into()))
        .expect("listener");
    caller.say(&hello[8000..]).await;
    assert!(
        caller
            .events
            .contains(&Event::CallerWords("hello the".into())),
        "the words so far reach the call"
    );
    caller.say(&Caller::silence(2500)).await;
    let turns = caller.turns();
    let [(TurnInput::Transcript(text), timing, _)] = turns.as_slice() else {
        panic!("one turn with the partial words: {}", turns.len())
    };
    assert_eq!(text, "hello the");
    assert_eq!(timing.endpoint_wait, Duration::from_millis(600 + 1500));
}

#[tokio::test]
async fn a_stream_that_heard_no_words_makes_an_empty_turn() {
    let (mut caller, _provider) = streaming(Detector::Silence);
    caller.say(&hello()).await;
    caller.say(&Caller::silence(2200)).await;
    let turns = caller.turns();
    let [(TurnInput::Transcript(text), _, _)] = turns.as_slice() else {
        panic!("one turn: {}", turns.len())
    };
    assert!(text.is_empty(), "nothing was said: no audio to transcribe");
}

#[tokio::test]
async fn the_provider_decides_and_the_turn_carries_its_words() {
    let (mut caller, provider) = streaming(Detector::Provider);
    assert_eq!(caller.hearing.detector(), Detector::Provider);
    caller.say(&hello()).await;
    caller.say(&Caller::silence(260)).await;
    provider
        .heard
        .send(Heard::TurnEnded {
            text: "hello".into(),
            forced: false,
        })
        .expect("listener");
    caller.say(&Caller::silence(20)).await;
    let turns = caller.turns();
    let [(TurnInput::Transcript(text), timing, _)] = turns.as_slice() else {
        panic!("one turn: {}", turns.len())
    };
    assert_eq!(text, "hello");
    assert_eq!(timing.decided_by, TurnDecider::Provider);
    assert!(timing.streamed);
    // The local endpointer's hangover (600 ms) did not end it first.
    assert!(
        timing.endpoint_wait < Duration::from_millis(400),
        "{:?}",
        timing.endpoint_wait
    );
}

#[tokio::test]
async fn a_failed_stream_leaves_the_turns_to_a_silence() {
    let (mut caller, provider) = streaming(Detector::Provider);
    provider
        .heard
        .send(Heard::Failed(ProviderError::protocol("test", "gone")))
        .expect("listener");
    caller.say(&hello()).await;
    assert!(!caller.hearing.streaming());
    caller.say(&Caller::silence(700)).await;
    let turns = caller.turns();
    let [(TurnInput::Speech(_), timing, _)] = turns.as_slice() else {
        panic!("one spoken turn: {}", turns.len())
    };
    assert_eq!(
        timing.decided_by,
        TurnDecider::Silence,
        "with the stream gone a silence ends turns again"
    );
    assert_eq!(timing.endpoint_wait, Duration::from_millis(600));
}

#[tokio::test]
async fn a_backchannel_does_not_interrupt_but_words_do() {
    let (mut caller, provider) = streaming(Detector::Provider);
    provider
        .heard
        .send(Heard::Partial("mm-hm".into()))
        .expect("listener");
    let hello = hello();
    // hello.wav has ~1.8 s of speech: long past the barge-in minimum.
    caller.say(&hello[..2400 + 8 * 600]).await;
    assert!(
        !caller.events.contains(&Event::Interrupting),
        "mm-hm does not stop the agent"
    );
    provider
        .heard
        .send(Heard::Partial("wait a second".into()))
        .expect("listener");
    caller.say(&hello[2400 + 8 * 600..]).await;
    assert!(caller.events.contains(&Event::Interrupting));
}

#[test]
fn backchannels_are_short_listening_words() {
    for words in ["mm-hm", "Okay.", "yeah, right", "sì sì", "uh-huh"] {
        assert!(is_backchannel(words), "{words}");
    }
    for words in [
        "",
        "wait",
        "ok so my number is",
        "no",
        "yes I want to cancel",
    ] {
        assert!(!is_backchannel(words), "{words}");
    }
}
