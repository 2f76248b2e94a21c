//! The call's decisions, input by input, on a clock the tests move: what
//! Twilio is sent, what the engine is told, what the record gets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::engine::TurnError;
use crate::model::{Timing, TokenUsage};
use crate::providers::ProviderError;

const SID: &str = "CA0123456789abcdef0123456789abcdef";

fn settings() -> Settings {
    Settings {
        max_playback_lead: Duration::from_millis(1000),
        start_timeout: Duration::from_secs(10),
        greeting_interruptible: false,
        dtmf_timeout: Duration::from_secs(2),
        max_duration: Some(Duration::from_secs(600)),
        idle_prompt: Some(Duration::from_secs(10)),
        idle_hangup: Some(Duration::from_secs(5)),
    }
}

const AGENT: Abilities = Abilities {
    greets: true,
    speaks: true,
    playback_lead: None,
};

const ECHO: Abilities = Abilities {
    greets: false,
    speaks: false,
    playback_lead: None,
};

/// A call, driven as the session drives it: each input, then a tick.
struct Test {
    call: Call,
    now: Instant,
}

impl Test {
    fn new(settings: Settings) -> Test {
        let now = Instant::now();
        Test {
            call: Call::new(Arc::new(settings), SID.into(), now),
            now,
        }
    }

    /// A call whose stream started and whose engine has `abilities`.
    fn live(settings: Settings, abilities: Abilities) -> (Test, Vec<Effect>) {
        let mut t = Test::new(settings);
        assert_eq!(t.step(Input::Start { call_sid: SID }), [Effect::Connect]);
        let effects = t.step(Input::Ready(abilities));
        (t, effects)
    }

    fn step(&mut self, input: Input<'_>) -> Vec<Effect> {
        let mut out = Vec::new();
        self.call.handle(input, self.now, &mut out);
        self.call.handle(Input::Tick, self.now, &mut out);
        out
    }

    fn engine(&mut self, event: Event) -> Vec<Effect> {
        self.step(Input::Engine(event))
    }

    fn output(&mut self, turn: u32, outputs: impl IntoIterator<Item = Output>) -> Vec<Effect> {
        outputs
            .into_iter()
            .flat_map(|output| self.engine(Event::Turn { turn, output }))
            .collect()
    }

    /// Moves the clock on, then ticks (as the session's timer would).
    fn wait(&mut self, d: Duration) -> Vec<Effect> {
        self.now += d;
        self.step(Input::Tick)
    }

    fn mark(&mut self, name: &str) -> Vec<Effect> {
        self.step(Input::Mark(name))
    }

    /// The caller's turn ends after `speech` (endpointed 600 ms later).
    fn caller_says(&mut self, speech: &[i16]) -> Vec<Effect> {
        self.engine(Event::TurnEnded {
            input: TurnInput::Speech(speech.to_vec()),
            timing: InputTiming {
                endpoint_wait: ms(600),
                decided_after: ms(600),
                utterance: ms(1500),
                ..InputTiming::default()
            },
        })
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `n` ms of agent audio.
fn audio(n: usize) -> Output {
    Output::Audio(Bytes::from(vec![0x55u8; n * 8]))
}

fn segment(text: &str) -> Output {
    Output::SegmentEnd { text: text.into() }
}

/// The media frames and marks sent, in order: "media" or the mark's name.
fn sent(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(Outbound::Media(_)) => Some("media".to_string()),
            Effect::Send(Outbound::Mark(name)) => Some(name.clone()),
            _ => None,
        })
        .collect()
}

fn media_frames(effects: &[Effect]) -> usize {
    sent(effects).iter().filter(|s| *s == "media").count()
}

/// The effects of one kind, in order.
macro_rules! picker {
    ($name:ident, $t:ty, $pattern:pat => $value:expr) => {
        fn $name(effects: &[Effect]) -> Vec<&$t> {
            effects
                .iter()
                .filter_map(|e| match e {
                    $pattern => Some($value),
                    _ => None,
                })
                .collect()
        }
    };
}

picker!(commands, Command, Effect::Engine(c) => c);
picker!(turns, TurnRecord, Effect::Record(Record::Turn(t)) => &**t);
picker!(events, CallEvent, Effect::Record(Record::Event(e)) => &e.event);

fn start(turn: u32, speak: Speak) -> Command {
    Command::Start { turn, speak }
}

/// A live agent call whose greeting ("Hello!") has been heard.
fn greeted() -> Test {
    let (mut t, _) = Test::live(settings(), AGENT);
    t.output(0, [audio(100), segment("Hello!"), Output::Finished]);
    t.mark("t0-s0");
    t
}

/// A greeted call in which the caller asked something and turn 1 answers
/// with two sentences, all of them sent.
fn answering() -> (Test, Vec<Effect>) {
    let mut t = greeted();
    t.caller_says(&[100; 800]);
    t.now += ms(300);
    let effects = t.output(
        1,
        [
            Output::Transcript("When do you open?".into()),
            Output::Planned("We open at nine.".into()),
            audio(200),
            segment("We open at nine."),
            Output::Planned("On Sundays we are closed.".into()),
            audio(200),
            segment("On Sundays we are closed."),
            Output::Finished,
        ],
    );
    (t, effects)
}

#[test]
fn the_greeting_plays_the_moment_the_call_is_ready_and_is_recorded_once_heard() {
    let (mut t, ready) = Test::live(settings(), AGENT);
    assert_eq!(commands(&ready), [&start(0, Speak::Greeting)]);
    assert_eq!(t.call.state(), SessionState::Responding);
    let played = t.output(
        0,
        [
            Output::Planned("Hello!".into()),
            audio(100),
            segment("Hello!"),
            Output::Finished,
        ],
    );
    assert_eq!(media_frames(&played), 5, "100 ms of audio, 20 ms a frame");
    assert_eq!(sent(&played).last().map(String::as_str), Some("t0-s0"));
    assert_eq!(t.call.state(), SessionState::Speaking);
    assert!(turns(&played).is_empty(), "not heard yet");
    let heard = t.mark("t0-s0");
    let [record] = turns(&heard)[..] else {
        panic!("the greeting is recorded: {heard:?}")
    };
    assert_eq!((record.turn, record.agent_heard.as_str()), (0, "Hello!"));
    assert!(commands(&heard).contains(&&Command::Heard(Box::new(record.clone()))));
    assert_eq!(t.call.state(), SessionState::Listening);
    assert_eq!(t.call.greeting_ms(), Some(0), "sent the instant it came");
}

#[test]
fn echo_mode_has_no_greeting() {
    let (t, ready) = Test::live(settings(), ECHO);
    assert!(commands(&ready).is_empty());
    assert_eq!(t.call.state(), SessionState::Listening);
}

#[test]
fn a_greeting_can_be_interrupted_only_when_configured_so() {
    let (mut t, _) = Test::live(settings(), AGENT);
    t.output(0, [audio(500), segment("Hello, welcome to the clinic.")]);
    let ignored = t.engine(Event::Interrupting);
    assert!(!ignored.contains(&Effect::Clear), "{ignored:?}");

    let mut interruptible = settings();
    interruptible.greeting_interruptible = true;
    let (mut t, _) = Test::live(interruptible, AGENT);
    t.output(0, [audio(500), segment("Hello, welcome to the clinic.")]);
    let cut = t.engine(Event::Interrupting);
    assert!(cut.contains(&Effect::Clear));
    assert!(
        commands(&cut)
            .iter()
            .any(|c| matches!(c, Command::Cancel { turn: 0, .. }))
    );
    assert_eq!(events(&cut), [&CallEvent::BargeIn { turn: 0 }]);
}

#[test]
fn one_turn_from_the_callers_words_to_what_they_heard() {
    let mut t = greeted();
    let asked = t.caller_says(&[100; 800]);
    assert_eq!(
        commands(&asked),
        [&start(1, Speak::Answer(TurnInput::Speech(vec![100; 800])))]
    );
    assert_eq!(
        (t.call.state(), t.call.turns()),
        (SessionState::Responding, 1)
    );
    t.now += ms(900);
    let played = t.output(
        1,
        [
            Output::Transcript("When do you open?".into()),
            Output::Timing(Timing::Stt(300)),
            Output::Timing(Timing::FirstSentence(400)),
            Output::Timing(Timing::TtsFirstByte(150)),
            Output::Planned("We open at nine.".into()),
            audio(200),
            segment("We open at nine."),
            Output::Finished,
        ],
    );
    assert_eq!(sent(&played).len(), 11, "10 frames and the mark");
    t.now += ms(200);
    let heard = t.mark("t1-s0");
    let [record] = turns(&heard)[..] else {
        panic!("one turn: {heard:?}")
    };
    assert_eq!(record.caller.as_deref(), Some("When do you open?"));
    assert_eq!(record.agent_heard, "We open at nine.");
    assert!(!record.interrupted);
    let l = &record.latency;
    assert_eq!(
        (
            l.endpoint_wait_ms,
            l.voice_to_voice_ms,
            l.pipeline_overhead_ms
        ),
        (600, Some(1500), Some(50)),
        "voice to voice counts from the caller's last word"
    );
    assert_eq!(t.call.state(), SessionState::Listening);
}

#[test]
fn a_barge_in_clears_the_answer_and_keeps_what_was_heard_up_to_the_last_mark() {
    let (mut t, effects) = answering();
    assert_eq!(
        sent(&effects).iter().filter(|s| s.starts_with('t')).count(),
        2
    );
    t.now += ms(250);
    t.mark("t1-s0");
    let cut = t.engine(Event::Interrupting);
    let clear = cut.iter().position(|e| *e == Effect::Clear);
    let cancel = cut
        .iter()
        .position(|e| matches!(e, Effect::Engine(Command::Cancel { turn: 1, .. })));
    assert!(clear.is_some() && clear < cancel, "{cut:?}");
    assert_eq!(events(&cut), [&CallEvent::BargeIn { turn: 1 }]);
    let [record] = turns(&cut)[..] else {
        panic!("{cut:?}")
    };
    assert!(record.interrupted);
    assert_eq!(record.agent_heard, "We open at nine.");
    assert_eq!(
        record.agent_said,
        "We open at nine. On Sundays we are closed."
    );
    assert_eq!(t.call.state(), SessionState::Listening);
    // Twilio echoes the cleared mark at once: it was not heard.
    assert!(turns(&t.mark("t1-s1")).is_empty());
    // What the cancelled turn still sends is dropped.
    let late = t.output(1, [audio(200), segment("late"), Output::Finished]);
    assert!(sent(&late).is_empty() && turns(&late).is_empty());
}

#[test]
fn only_speech_the_engine_calls_an_interruption_cuts_the_agent() {
    let (mut t, _) = answering();
    // The caller starting to speak is not yet a barge-in: the engine says
    // when they have spoken long enough (a cough is shorter).
    let started = t.engine(Event::SpeechStarted);
    assert!(!started.contains(&Effect::Clear));
    // A short sound that ends while the agent answers is not a turn.
    let short = t.caller_says(&[1; 160]);
    assert!(commands(&short).is_empty(), "{short:?}");
    assert!(t.engine(Event::Interrupting).contains(&Effect::Clear));
}

#[test]
fn a_caller_who_only_paused_is_answered_for_both_parts_together() {
    let mut t = greeted();
    t.caller_says(&[1; 800]);
    // They speak again before hearing anything of the answer.
    let cut = t.engine(Event::Interrupting);
    assert!(cut.contains(&Effect::Clear));
    assert!(turns(&cut).is_empty(), "nothing heard: no turn recorded");
    let both = t.caller_says(&[2; 400]);
    let mut joined = vec![1; 800];
    joined.extend([2; 400]);
    assert_eq!(
        commands(&both),
        [&start(2, Speak::Answer(TurnInput::Speech(joined)))]
    );
}

#[test]
fn a_cough_that_transcribes_to_nothing_gets_no_answer_and_no_record() {
    let mut t = greeted();
    t.caller_says(&[1; 400]);
    let nothing = t.output(1, [Output::Finished]);
    assert!(turns(&nothing).is_empty() && sent(&nothing).is_empty());
    assert_eq!(t.call.state(), SessionState::Listening);
}

#[test]
fn a_failed_turn_is_recorded_and_the_caller_is_heard_again() {
    let mut t = greeted();
    t.caller_says(&[1; 400]);
    let error = ProviderError::protocol("openai", "bad");
    let failed = t.output(
        1,
        [
            audio(100),
            segment("Sorry, could you say that again?"),
            Output::Failed(TurnError::Provider(error)),
        ],
    );
    assert_eq!(
        events(&failed),
        [&CallEvent::ProviderError {
            turn: 1,
            error: "openai: bad".into()
        }]
    );
    let heard = t.mark("t1-s0");
    assert_eq!(turns(&heard).len(), 1, "the fallback line was heard");
    assert_eq!(t.call.state(), SessionState::Listening);
}

#[test]
fn keypad_digits_become_one_turn_on_hash_or_after_a_pause() {
    let mut t = greeted();
    let one = t.step(Input::Dtmf("1"));
    assert_eq!(events(&one), [&CallEvent::Dtmf { digit: "1".into() }]);
    t.now += ms(500);
    assert!(commands(&t.step(Input::Dtmf("2"))).is_empty());
    assert_eq!(
        t.call.next_deadline(t.now),
        Some(t.now + Duration::from_secs(2))
    );
    let due = t.wait(Duration::from_secs(2));
    assert_eq!(
        commands(&due),
        [&start(
            1,
            Speak::Answer(TurnInput::Keypad("[keypad: 1 2]".into()))
        )]
    );
    t.output(1, [Output::Finished]);
    t.step(Input::Dtmf("3"));
    let hash = t.step(Input::Dtmf("#"));
    assert_eq!(
        commands(&hash),
        [&start(
            2,
            Speak::Answer(TurnInput::Keypad("[keypad: 3 #]".into()))
        )]
    );
}

#[test]
fn keypad_digits_wait_for_a_greeting_that_cannot_be_interrupted() {
    let (mut t, _) = Test::live(settings(), AGENT);
    t.output(0, [audio(500), segment("Hello, and welcome.")]);
    assert!(commands(&t.step(Input::Dtmf("#"))).is_empty());
    assert!(commands(&t.wait(ms(250))).is_empty(), "still waiting");
    t.output(0, [Output::Finished]);
    t.now += ms(250);
    t.mark("t0-s0");
    let due = t.wait(ms(250));
    assert_eq!(
        commands(&due),
        [&start(
            1,
            Speak::Answer(TurnInput::Keypad("[keypad: #]".into()))
        )]
    );
}

#[test]
fn keypad_digits_interrupt_an_answer() {
    let (mut t, _) = answering();
    let cut = t.step(Input::Dtmf("#"));
    assert!(cut.contains(&Effect::Clear));
    assert_eq!(
        commands(&cut).last(),
        Some(&&start(
            2,
            Speak::Answer(TurnInput::Keypad("[keypad: #]".into()))
        ))
    );
}

#[test]
fn a_silent_caller_is_asked_whether_they_are_still_there_then_the_call_ends() {
    let mut t = greeted();
    assert!(commands(&t.wait(Duration::from_secs(9))).is_empty());
    let asked = t.wait(Duration::from_secs(1));
    assert_eq!(
        commands(&asked),
        [&start(1, Speak::Announcement(Announcement::StillThere))]
    );
    t.output(
        1,
        [
            audio(100),
            segment("Are you still there?"),
            Output::Finished,
        ],
    );
    t.mark("t1-s1");
    t.mark("t1-s0");
    assert!(commands(&t.wait(Duration::from_secs(4))).is_empty());
    let closing = t.wait(Duration::from_secs(1));
    assert_eq!(
        commands(&closing),
        [&start(2, Speak::Announcement(Announcement::Closing))]
    );
    let said = t.output(2, [audio(100), segment("Goodbye!"), Output::Finished]);
    assert!(!said.iter().any(|e| matches!(e, Effect::Perform(_))));
    let heard = t.mark("t2-s0");
    assert!(
        heard.contains(&Effect::Perform(CallAction::EndCall)),
        "{heard:?}"
    );
    let hung_up = t.step(Input::Performed(CallAction::EndCall, ActionResult::HungUp));
    assert_eq!(
        events(&hung_up),
        [&CallEvent::Action {
            action: "end_call".into(),
            outcome: "hung up".into()
        }]
    );
    let stopped = t.step(Input::Stop);
    assert!(stopped.contains(&Effect::Record(Record::Ended(EndReason::Idle))));
    assert_eq!(t.call.ended(), Some(EndReason::Idle));
}

#[test]
fn the_silence_clock_restarts_when_the_caller_speaks() {
    let mut t = greeted();
    t.wait(Duration::from_secs(9));
    t.engine(Event::SpeechStarted);
    assert!(
        commands(&t.wait(Duration::from_secs(30))).is_empty(),
        "no prompt while the caller speaks"
    );
    t.caller_says(&[1; 100]);
    t.output(
        1,
        [
            Output::Transcript("Sorry, where was I?".into()),
            audio(100),
            segment("You asked about our hours."),
            Output::Finished,
        ],
    );
    t.mark("t1-s0");
    assert!(commands(&t.wait(Duration::from_secs(9))).is_empty());
    let asked = t.wait(Duration::from_secs(1));
    assert_eq!(
        commands(&asked),
        [&start(2, Speak::Announcement(Announcement::StillThere))],
        "ten seconds after the agent's answer was heard"
    );
}

#[test]
fn without_a_voice_the_silent_caller_is_hung_up_on_without_a_word() {
    let (mut t, _) = Test::live(settings(), ECHO);
    let prompted = t.wait(Duration::from_secs(10));
    assert!(commands(&prompted).is_empty(), "echo cannot ask");
    let ended = t.wait(Duration::from_secs(5));
    assert_eq!(commands(&ended), Vec::<&Command>::new());
    assert!(ended.contains(&Effect::Perform(CallAction::EndCall)));
}

#[test]
fn the_maximum_duration_cuts_the_agent_and_says_the_closing_line() {
    let mut s = settings();
    s.max_duration = Some(Duration::from_secs(60));
    s.idle_prompt = None;
    let (mut t, _) = Test::live(s, AGENT);
    t.output(0, [audio(100), segment("Hello!"), Output::Finished]);
    t.mark("t0-s0");
    t.now += Duration::from_secs(58);
    t.caller_says(&[1; 100]);
    t.output(1, [audio(3000), segment("A long answer.")]);
    let limit = t.wait(Duration::from_secs(2));
    assert!(limit.contains(&Effect::Clear));
    assert!(turns(&limit)[0].interrupted);
    assert_eq!(
        commands(&limit).last(),
        Some(&&start(2, Speak::Announcement(Announcement::Closing)))
    );
    assert!(t.call.ending());
    t.output(2, [audio(100), segment("Goodbye!"), Output::Finished]);
    assert!(
        t.mark("t2-s0")
            .contains(&Effect::Perform(CallAction::EndCall))
    );
    t.step(Input::Performed(CallAction::EndCall, ActionResult::HungUp));
    let ended = t.step(Input::Disconnected(Disconnect::Closed));
    assert!(ended.contains(&Effect::Record(Record::Ended(EndReason::MaxDuration))));
}

#[test]
fn stop_in_the_middle_of_a_turn_records_it_as_cut_and_ends_the_call() {
    let (mut t, _) = answering();
    t.mark("t1-s0");
    let stopped = t.step(Input::Stop);
    assert_eq!(stopped.first(), Some(&Effect::Close(1000, "")));
    assert!(
        commands(&stopped)
            .iter()
            .any(|c| matches!(c, Command::Cancel { turn: 1, .. }))
    );
    let [record] = turns(&stopped)[..] else {
        panic!("{stopped:?}")
    };
    assert!(record.interrupted);
    assert_eq!(record.agent_heard, "We open at nine.");
    assert_eq!(
        stopped.last(),
        Some(&Effect::Record(Record::Ended(EndReason::CallerHungUp)))
    );
    assert_eq!(t.call.ended(), Some(EndReason::CallerHungUp));
}

/// A greeted call in which the agent answers the caller with `line` and
/// asks for `action`; returns what happens once the caller heard the line.
fn agent_acts(line: &str, action: CallAction) -> (Test, Vec<Effect>) {
    let mut t = greeted();
    t.caller_says(&[1; 100]);
    let said = t.output(
        1,
        [
            Output::Transcript("That's all.".into()),
            audio(100),
            segment(line),
            Output::Action(action.clone()),
            Output::Finished,
        ],
    );
    assert!(
        !said.contains(&Effect::Perform(action)),
        "not before it is heard"
    );
    let heard = t.mark("t1-s0");
    (t, heard)
}

fn transfer() -> CallAction {
    CallAction::Transfer {
        to: "+15551234567".into(),
    }
}

#[test]
fn the_agent_hangs_up_once_its_goodbye_is_heard() {
    let (mut t, heard) = agent_acts("Goodbye!", CallAction::EndCall);
    assert!(heard.contains(&Effect::Perform(CallAction::EndCall)));
    // Without REST access, closing the stream ends the call.
    let closed = t.step(Input::Performed(
        CallAction::EndCall,
        ActionResult::NoAccount,
    ));
    assert_eq!(
        events(&closed),
        [&CallEvent::Action {
            action: "end_call".into(),
            outcome: "closed the stream (no TWILIO_ACCOUNT_SID for REST)".into()
        }]
    );
    assert!(closed.contains(&Effect::Close(1000, "")));
    assert_eq!(t.call.ended(), Some(EndReason::AgentHungUp));
}

#[test]
fn a_failed_hang_up_closes_the_stream_instead() {
    let (mut t, _) = agent_acts("Goodbye!", CallAction::EndCall);
    let closed = t.step(Input::Performed(
        CallAction::EndCall,
        ActionResult::Failed("Twilio REST: HTTP 500".into()),
    ));
    assert_eq!(
        events(&closed),
        [&CallEvent::Action {
            action: "end_call".into(),
            outcome: "Twilio REST: HTTP 500; closed the stream".into()
        }]
    );
    assert_eq!(t.call.ended(), Some(EndReason::AgentHungUp));
}

#[test]
fn a_transfer_happens_after_the_handover_line_and_ends_as_transferred() {
    let (mut t, heard) = agent_acts("One moment please.", transfer());
    assert!(heard.contains(&Effect::Perform(transfer())));
    let done = t.step(Input::Performed(transfer(), ActionResult::Redirected));
    assert_eq!(
        events(&done),
        [&CallEvent::Action {
            action: "transfer_call".into(),
            outcome: "transferred".into()
        }]
    );
    assert_eq!(t.call.ended(), None, "Twilio sends stop");
    let stopped = t.step(Input::Stop);
    assert!(stopped.contains(&Effect::Record(Record::Ended(EndReason::Transferred))));
}

#[test]
fn a_transfer_that_fails_leaves_the_call_going() {
    let (mut t, _) = agent_acts("One moment.", transfer());
    let failed = t.step(Input::Performed(transfer(), ActionResult::NoAccount));
    assert_eq!(
        events(&failed),
        [&CallEvent::Action {
            action: "transfer_call".into(),
            outcome: "not possible without TWILIO_ACCOUNT_SID".into()
        }]
    );
    assert!(!t.call.ending());
    let stopped = t.step(Input::Stop);
    assert!(stopped.contains(&Effect::Record(Record::Ended(EndReason::CallerHungUp))));
}

#[test]
fn the_server_closing_ends_a_live_call_politely() {
    let (mut t, _) = answering();
    let closing = t.step(Input::ServerClosing);
    assert!(closing.contains(&Effect::Clear));
    assert_eq!(
        commands(&closing).last(),
        Some(&&start(2, Speak::Announcement(Announcement::Closing)))
    );
    assert!(t.call.ending());
    let ended = t.step(Input::Stop);
    assert!(ended.contains(&Effect::Record(Record::Ended(EndReason::Shutdown))));
}

#[test]
fn a_stream_that_never_starts_is_closed_at_its_deadline_without_a_record() {
    let mut t = Test::new(settings());
    assert_eq!(t.call.state(), SessionState::Connecting);
    assert!(t.step(Input::Media { timestamp_ms: None }).is_empty());
    assert!(t.wait(Duration::from_secs(9)).is_empty());
    let closed = t.wait(Duration::from_secs(1));
    assert_eq!(closed, [Effect::Close(1008, "no start message")]);
    assert_eq!(t.call.ended(), Some(EndReason::NoStream));
}

#[test]
fn a_start_for_another_call_closes_the_stream() {
    let mut t = Test::new(settings());
    let closed = t.step(Input::Start {
        call_sid: "CAffffffffffffffffffffffffffffffff",
    });
    assert_eq!(
        closed,
        [Effect::Close(1008, "callSid does not match the stream")]
    );
    assert_eq!(t.call.ended(), Some(EndReason::StreamError));
}

#[test]
fn every_caller_frame_of_a_live_call_is_heard_on_twilios_clock() {
    let (mut t, _) = Test::live(settings(), ECHO);
    assert_eq!(
        t.step(Input::Media {
            timestamp_ms: Some(1234)
        }),
        [Effect::Hear { at_ms: 1234 }]
    );
    t.now += ms(40);
    assert_eq!(
        t.step(Input::Media { timestamp_ms: None }),
        [Effect::Hear { at_ms: 40 }],
        "without Twilio's timestamp, the call's own clock"
    );
}

#[test]
fn a_mark_that_never_comes_back_counts_as_heard_after_a_grace_period() {
    let mut t = greeted();
    t.caller_says(&[1; 100]);
    t.output(
        1,
        [
            Output::Transcript("Hi".into()),
            audio(100),
            segment("Hello."),
            Output::Finished,
        ],
    );
    assert!(turns(&t.wait(Duration::from_secs(1))).is_empty());
    let assumed = t.wait(Duration::from_secs(5));
    assert_eq!(turns(&assumed)[0].agent_heard, "Hello.");
}

#[test]
fn agent_audio_is_paced_and_waits_in_the_engine_beyond_two_seconds() {
    let mut t = greeted();
    t.caller_says(&[1; 100]);
    assert!(t.call.room_for_audio());
    let first = t.output(1, [audio(3000)]);
    assert_eq!(media_frames(&first), 50, "one second ahead of playback");
    assert!(!t.call.room_for_audio(), "two seconds queued");
    assert_eq!(
        media_frames(&t.wait(ms(200))),
        0,
        "not yet: sent in batches"
    );
    let later = t.wait(ms(20));
    assert_eq!(
        media_frames(&later),
        11,
        "a batch as playback moves on, up to a second ahead again"
    );
    assert!(t.call.room_for_audio());
}

#[test]
fn a_peer_that_keeps_the_stream_after_the_hang_up_is_closed() {
    let (mut t, heard) = agent_acts("Goodbye.", CallAction::EndCall);
    assert!(heard.contains(&Effect::Perform(CallAction::EndCall)));
    t.step(Input::Performed(CallAction::EndCall, ActionResult::HungUp));
    assert_eq!(t.call.ended(), None, "Twilio sends stop");
    let waited = t.wait(Duration::from_secs(4));
    assert!(!waited.iter().any(|e| matches!(e, Effect::Close(..))));
    let closed = t.wait(Duration::from_secs(1));
    assert!(closed.contains(&Effect::Close(1000, "")), "{closed:?}");
    assert!(closed.contains(&Effect::Record(Record::Ended(EndReason::AgentHungUp))));
    assert_eq!(t.call.ended(), Some(EndReason::AgentHungUp));
}

#[test]
fn a_media_timestamp_far_ahead_of_the_call_is_held_to_its_clock() {
    let (mut t, _) = Test::live(settings(), ECHO);
    t.wait(Duration::from_secs(3));
    let heard = |effects: Vec<Effect>| {
        effects.iter().find_map(|e| match e {
            Effect::Hear { at_ms } => Some(*at_ms),
            _ => None,
        })
    };
    let normal = t.step(Input::Media {
        timestamp_ms: Some(2_980),
    });
    assert_eq!(heard(normal), Some(2_980), "Twilio's clock is kept");
    let jumped = t.step(Input::Media {
        timestamp_ms: Some(3_600_000),
    });
    assert_eq!(heard(jumped), Some(3_000 + MEDIA_AHEAD_MS));
    let untimed = t.step(Input::Media { timestamp_ms: None });
    assert_eq!(heard(untimed), Some(3_000));
}

/// A speech-to-speech engine's turn: the model heard the caller itself.
fn spoken_turn(t: &mut Test) -> Vec<Effect> {
    t.engine(Event::TurnEnded {
        input: TurnInput::Spoken,
        timing: InputTiming {
            endpoint_wait: ms(500),
            decided_after: ms(500),
            decided_by: TurnDecider::Provider,
            streamed: true,
            utterance: Duration::ZERO,
        },
    })
}

#[test]
fn a_barge_in_tells_the_engine_how_much_of_the_turn_was_heard() {
    let mut t = greeted();
    let started = spoken_turn(&mut t);
    assert!(commands(&started).contains(&&Command::Start {
        turn: 1,
        speak: Speak::Answer(TurnInput::Spoken)
    }));
    // Two seconds of the model's audio, a mark every 100 ms.
    for _ in 0..20 {
        t.output(1, [audio(100), segment("")]);
    }
    t.wait(ms(350));
    let cut = t.engine(Event::Interrupting);
    let heard = commands(&cut).iter().find_map(|c| match c {
        Command::Cancel { turn: 1, heard } => Some(*heard),
        _ => None,
    });
    // Played for 350 ms, but no mark has come back: the position waits at
    // the first unechoed mark (100 ms), and the frame playing is taken as
    // heard to its middle (10 ms more).
    assert_eq!(heard, Some(ms(110)), "{cut:?}");

    let mut t = greeted();
    spoken_turn(&mut t);
    for _ in 0..20 {
        t.output(1, [audio(100), segment("")]);
    }
    t.wait(ms(100));
    t.mark("t1-s0");
    t.wait(ms(60));
    let cut = t.engine(Event::Interrupting);
    assert!(
        commands(&cut).contains(&&Command::Cancel {
            turn: 1,
            heard: ms(170)
        }),
        "the echo corrects the clock, which runs on to the next mark: {cut:?}"
    );
    t.mark("t1-s1");
    let late = t.engine(Event::Interrupting);
    assert!(commands(&late).is_empty(), "nothing left to cancel");
}

#[test]
fn an_amended_record_replaces_a_turn_that_is_over_and_only_such_a_turn() {
    let mut t = greeted();
    spoken_turn(&mut t);
    let mut record = turns(&t.output(1, [audio(100), segment("Yes."), Output::Finished]))
        .first()
        .map(|r| (*r).clone());
    assert!(record.is_none(), "not over before it is heard");
    let over = t.mark("t1-s0");
    record = turns(&over).first().map(|r| (*r).clone());
    let mut record = record.expect("the turn's record");
    record.caller = Some("Do you repair bikes?".into());
    let amended = t.engine(Event::Amended(Box::new(record.clone())));
    assert_eq!(turns(&amended), [&record]);
    // The turn in progress records itself when it is over.
    spoken_turn(&mut t);
    let mut early = record.clone();
    early.turn = 2;
    assert!(turns(&t.engine(Event::Amended(Box::new(early)))).is_empty());
    // A turn that never started is not invented.
    let mut unknown = record;
    unknown.turn = 9;
    assert!(turns(&t.engine(Event::Amended(Box::new(unknown)))).is_empty());
}

#[test]
fn an_engine_that_is_gone_ends_the_call_politely() {
    let mut t = greeted();
    let gone = t.engine(Event::Gone("the session closed".into()));
    assert!(commands(&gone).contains(&&Command::Start {
        turn: 1,
        speak: Speak::Announcement(Announcement::Closing)
    }));
    t.output(1, [audio(100), segment("Goodbye!"), Output::Finished]);
    let heard = t.mark("t1-s0");
    assert!(
        heard.contains(&Effect::Perform(CallAction::EndCall)),
        "{heard:?}"
    );
    let mut ended = t.step(Input::Performed(CallAction::EndCall, ActionResult::HungUp));
    ended.extend(t.step(Input::Stop));
    let reasons: Vec<_> = ended
        .iter()
        .filter_map(|e| match e {
            Effect::Record(Record::Ended(r)) => Some(*r),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, [EndReason::EngineFailed]);
}

#[test]
fn usage_is_recorded_and_a_short_playback_lead_is_kept() {
    let (mut t, _) = Test::live(
        settings(),
        Abilities {
            greets: false,
            speaks: false,
            playback_lead: Some(ms(200)),
        },
    );
    let usage = TokenUsage {
        audio_out: 40,
        cost_microusd: 2560,
        ..TokenUsage::default()
    };
    let recorded = t.engine(Event::Usage(usage));
    assert_eq!(events(&recorded), [&CallEvent::Usage(usage)]);
    spoken_turn(&mut t);
    let sent = t.output(1, [audio(1000)]);
    assert_eq!(media_frames(&sent), 10, "200 ms ahead, not the call's 1000");
}

fn order(order: Order) -> Input<'static> {
    Input::Operator(Ordered {
        order,
        by: "session ab12".into(),
    })
}

fn operator_event(action: &str, outcome: Option<&str>) -> CallEvent {
    CallEvent::Operator {
        action: action.into(),
        by: "session ab12".into(),
        outcome: outcome.map(Into::into),
    }
}

#[test]
fn an_operators_line_waits_for_a_pause_and_is_recorded_as_theirs() {
    let (mut t, _) = answering();
    let ordered = t.step(order(Order::Say("A human will call you back.".into())));
    assert_eq!(events(&ordered), [&operator_event("say", None)]);
    assert!(commands(&ordered).is_empty(), "not over the agent's answer");
    t.mark("t1-s0");
    let paused = t.mark("t1-s1");
    assert_eq!(
        commands(&paused)[1..],
        [&start(
            2,
            Speak::Operator("A human will call you back.".into())
        )],
        "once the answer was heard"
    );
    let said = t.output(
        2,
        [
            Output::Planned("A human will call you back.".into()),
            audio(100),
            segment("A human will call you back."),
            Output::Finished,
        ],
    );
    assert!(media_frames(&said) > 0);
    let heard = t.mark("t2-s0");
    let record = turns(&heard);
    assert_eq!(record.len(), 1);
    assert!(record[0].by_operator);
    assert_eq!(record[0].agent_heard, "A human will call you back.");
}

#[test]
fn an_operators_line_waits_for_the_caller_to_finish_speaking() {
    let mut t = greeted();
    t.engine(Event::SpeechStarted);
    let ordered = t.step(order(Order::Say("Hello from a human.".into())));
    assert!(commands(&ordered).is_empty(), "the caller is speaking");
    let answered = t.caller_says(&[100; 800]);
    assert_eq!(
        commands(&answered)
            .iter()
            .filter(|c| matches!(c, Command::Start { .. }))
            .count(),
        1,
        "the caller's turn is answered first"
    );
}

#[test]
fn an_engine_that_cannot_speak_refuses_an_operators_line() {
    let (mut t, _) = Test::live(settings(), ECHO);
    let refused = t.step(order(Order::Say("Hi".into())));
    assert_eq!(
        events(&refused),
        [&operator_event(
            "say",
            Some("this engine cannot speak typed text")
        )]
    );
    assert!(commands(&refused).is_empty());
}

#[test]
fn an_operator_hangs_up_at_once_cutting_the_agent() {
    let (mut t, _) = answering();
    let hung_up = t.step(order(Order::HangUp));
    assert_eq!(events(&hung_up), [&operator_event("hang_up", None)]);
    assert!(hung_up.contains(&Effect::Clear), "the agent stops talking");
    assert!(hung_up.contains(&Effect::Perform(CallAction::EndCall)));
    assert_eq!(turns(&hung_up).len(), 1, "the cut answer is recorded");
    assert!(turns(&hung_up)[0].interrupted);
    t.step(Input::Performed(CallAction::EndCall, ActionResult::HungUp));
    let stopped = t.step(Input::Stop);
    assert!(stopped.contains(&Effect::Record(Record::Ended(EndReason::OperatorHungUp))));
    // A second order once the call is ending is recorded and refused.
    let (mut t, _) = answering();
    t.step(order(Order::HangUp));
    let again = t.step(order(Order::Transfer("+15551234567".into())));
    assert_eq!(
        events(&again),
        [&operator_event(
            "transfer",
            Some("the call is already ending")
        )]
    );
    assert!(!again.iter().any(|e| matches!(e, Effect::Perform(_))));
}

#[test]
fn an_operator_transfers_the_caller_and_listening_is_only_recorded() {
    let mut t = greeted();
    let listening = t.step(order(Order::Listening));
    assert_eq!(listening, [event(0, operator_event("listen", None))]);
    let moved = t.step(order(Order::Transfer("+15551234567".into())));
    assert!(moved.contains(&Effect::Perform(transfer())));
    t.step(Input::Performed(transfer(), ActionResult::Redirected));
    let stopped = t.step(Input::Stop);
    assert!(stopped.contains(&Effect::Record(Record::Ended(EndReason::Transferred))));
}

#[test]
fn a_test_call_is_hung_up_by_closing_its_stream_and_cannot_be_transferred() {
    let (mut t, _) = agent_acts("One moment.", transfer());
    let failed = t.step(Input::Performed(transfer(), ActionResult::NotPhone));
    assert_eq!(
        events(&failed),
        [&CallEvent::Action {
            action: "transfer_call".into(),
            outcome: "a test call cannot be transferred".into()
        }]
    );
    assert!(!t.call.ending());
    let (mut t, _) = agent_acts("Goodbye!", CallAction::EndCall);
    let closed = t.step(Input::Performed(
        CallAction::EndCall,
        ActionResult::NotPhone,
    ));
    assert!(closed.contains(&Effect::Close(1000, "")));
    assert_eq!(t.call.ended(), Some(EndReason::AgentHungUp));
}

#[test]
fn a_sentence_that_comes_after_the_last_one_played_out_is_an_underrun() {
    let mut t = greeted();
    let greeting = t.call.take_playback_sample();
    assert_eq!(
        greeting.roundtrips(),
        [Duration::ZERO],
        "its mark came back at once"
    );
    t.caller_says(&[100; 800]);
    let first = t.output(1, [audio(200), segment("We open at nine.")]);
    assert_eq!(media_frames(&first), 10);
    // The next sentence's audio comes 500 ms later: 300 ms of silence heard.
    t.now += ms(500);
    t.output(1, [audio(200), segment("On Sundays we are closed.")]);
    // The one after it comes while that one plays: no gap.
    t.now += ms(100);
    t.output(1, [audio(200), segment("Bye."), Output::Finished]);
    let sample = t.call.take_playback_sample();
    assert_eq!(sample.underruns(), 1);
    assert!(sample.roundtrips().is_empty(), "no mark echoed since");
    // A new turn's first audio after a silence is no underrun.
    for mark in ["t1-s0", "t1-s1", "t1-s2"] {
        t.mark(mark);
    }
    t.now += ms(2000);
    t.caller_says(&[100; 800]);
    t.output(2, [audio(200), segment("Yes."), Output::Finished]);
    assert_eq!(t.call.take_playback_sample().underruns(), 0);
}

#[test]
fn an_order_before_the_call_is_live_is_recorded_as_refused_not_lost() {
    let mut t = Test::new(settings());
    t.step(Input::Start { call_sid: SID });
    let early = t.step(order(Order::HangUp));
    assert_eq!(
        events(&early),
        [&operator_event("hang_up", Some("the call is not live yet"))]
    );
    assert!(!early.iter().any(|e| matches!(e, Effect::Perform(_))));
    let listening = t.step(order(Order::Listening));
    assert_eq!(events(&listening), [&operator_event("listen", None)]);
}
