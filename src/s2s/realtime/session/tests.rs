use super::*;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

fn fixed() -> Fixed {
    Fixed {
        greeting: "Hello, Pronto here.".into(),
        still_there: "Are you still there?".into(),
        closing: "Goodbye!".into(),
        prices: [4.0, 32.0, 0.4, 16.0, 64.0],
        vad_silence_ms: 200,
    }
}

struct T {
    s: Session,
    out: Outbox,
    t0: Instant,
}

impl T {
    fn new() -> T {
        let tools = Tools {
            end_call: true,
            transfer_to: None,
        };
        let mut t = T {
            s: Session::new(fixed(), tools, 20),
            out: Outbox::default(),
            t0: Instant::now(),
        };
        t.s.opened("update".into(), &mut t.out);
        t.server(json!({"type": "session.updated", "session": {"audio": {
            "input": {"format": {"type": "audio/pcmu"}},
            "output": {"format": {"type": "audio/pcmu"}}}}}));
        t.take();
        t
    }

    fn server(&mut self, event: Value) -> Option<Ending> {
        self.at(0, event)
    }

    fn at(&mut self, ms: u64, event: Value) -> Option<Ending> {
        let now = self.t0 + Duration::from_millis(ms);
        self.s.on_text(&event.to_string(), now, &mut self.out)
    }

    fn command(&mut self, ms: u64, command: Command) {
        let now = self.t0 + Duration::from_millis(ms);
        self.s.command(command, now, &mut self.out);
    }

    /// Everything that came out: client events (parsed), caller events,
    /// turn output.
    fn take(&mut self) -> (Vec<Value>, Vec<Event>, Vec<Output>) {
        let sent = self
            .out
            .send
            .drain(..)
            .map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s)))
            .collect();
        let events = self.out.events.drain(..).collect();
        let outputs = self
            .out
            .output
            .drain(..)
            .map(|e| match e {
                Event::Turn { output, .. } => output,
                other => panic!("not turn output: {other:?}"),
            })
            .collect();
        (sent, events, outputs)
    }

    /// The caller speaks `ms` of audio (appended), and the model's voice
    /// detection ends the turn `silence` later; the call starts turn `turn`.
    fn caller_turn(&mut self, turn: u32, item: &str, ms: u64) {
        for _ in 0..ms / 20 {
            self.s.hear(&[0x12; 160], &mut self.out);
        }
        self.server(json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": item}));
        self.server(json!({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": ms - 300, "item_id": item}));
        self.command(
            ms,
            Command::Start {
                turn,
                speak: Speak::Answer(TurnInput::Spoken),
            },
        );
    }

    /// The model answers with `audio` in one item, in 800-byte deltas.
    fn reply(&mut self, response: &str, item: &str, audio: &[u8], text: &str, done: bool) {
        self.server(json!({"type": "response.created", "response": {"id": response, "status": "in_progress"}}));
        self.server(
            json!({"type": "response.output_item.added", "response_id": response, "output_index": 0,
            "item": {"id": item, "type": "message", "role": "assistant"}}),
        );
        for (i, chunk) in audio.chunks(800).enumerate() {
            self.at(
                1400 + i as u64,
                json!({"type": "response.output_audio.delta", "response_id": response, "item_id": item,
                "output_index": 0, "content_index": 0, "delta": STANDARD.encode(chunk)}),
            );
        }
        self.server(json!({"type": "response.output_audio_transcript.delta", "response_id": response, "item_id": item, "delta": text}));
        if done {
            self.server(json!({"type": "response.output_audio.done", "response_id": response, "item_id": item}));
            self.server(json!({"type": "response.output_audio_transcript.done", "response_id": response, "item_id": item, "transcript": text}));
            self.server(json!({"type": "response.done", "response": {"id": response, "status": "completed",
                "usage": {"input_token_details": {"text_tokens": 100, "audio_tokens": 50, "cached_tokens": 0},
                          "output_token_details": {"text_tokens": 10, "audio_tokens": 40}}}}));
        }
    }
}

fn record(turn: u32, heard: &str) -> TurnRecord {
    TurnRecord {
        turn,
        caller: None,
        agent_said: String::new(),
        agent_heard: heard.into(),
        heard_approximate: false,
        by_operator: false,
        at_ms: None,
        interrupted: true,
        latency: crate::call::turn::Turn::new(turn, Instant::now(), InputTiming::default())
            .latency(),
    }
}

#[test]
fn no_audio_goes_out_before_the_session_confirms_mulaw() {
    let mut s = Session::new(fixed(), Tools::default(), 20);
    let mut out = Outbox::default();
    s.opened("update".into(), &mut out);
    assert!(!s.hear(&[0xff; 160], &mut out));
    assert_eq!(out.send, ["update"]);
    // The greeting waits for the session too.
    s.command(
        Command::Start {
            turn: 0,
            speak: Speak::Greeting,
        },
        Instant::now(),
        &mut out,
    );
    assert_eq!(out.send.len(), 1);
    let kept_pcm = json!({"type": "session.updated", "session": {"audio": {
        "input": {"format": {"type": "audio/pcmu"}},
        "output": {"format": {"type": "audio/pcm", "rate": 24000}}}}});
    let ending = s.on_text(&kept_pcm.to_string(), Instant::now(), &mut out);
    assert!(
        matches!(&ending, Some(Ending::Gone(why)) if why.contains("audio/pcm")),
        "{ending:?}"
    );
    assert!(s.is_gone());
    assert!(!s.hear(&[0xff; 160], &mut out), "never forwarded");
}

#[test]
fn a_refused_session_update_ends_the_conversation() {
    let mut s = Session::new(fixed(), Tools::default(), 20);
    let mut out = Outbox::default();
    s.opened("update".into(), &mut out);
    let refused = json!({"type": "error", "error": {"type": "invalid_request_error",
        "code": "unknown_parameter", "message": "Unknown parameter: 'session.x'",
        "param": "session.x", "event_id": protocol::SESSION_UPDATE_ID}});
    let ending = s.on_text(&refused.to_string(), Instant::now(), &mut out);
    assert!(matches!(ending, Some(Ending::Gone(why)) if why.contains("unknown_parameter")));
}

#[test]
fn the_greeting_is_asked_for_once_ready_and_said_by_the_model() {
    let mut t = T::new();
    t.command(
        0,
        Command::Start {
            turn: 0,
            speak: Speak::Greeting,
        },
    );
    let (sent, _, _) = t.take();
    assert_eq!(sent[0]["type"], "response.create");
    assert!(
        sent[0]["response"]["instructions"]
            .as_str()
            .unwrap()
            .contains("\"Hello, Pronto here.\"")
    );
}

#[test]
fn a_caller_turn_is_answered_with_the_models_audio_unchanged() {
    let mut t = T::new();
    t.caller_turn(1, "item_u1", 1000);
    let (sent, events, _) = t.take();
    assert_eq!(sent.len(), 50, "every frame appended");
    assert_eq!(sent[0]["type"], "input_audio_buffer.append");
    assert_eq!(events[..2], [Event::SpeechStarted, Event::Interrupting]);
    let Event::TurnEnded { input, timing } = &events[2] else {
        panic!("{events:?}")
    };
    assert_eq!(*input, TurnInput::Spoken);
    // 1000 ms appended; the voice detection judged audio up to 700 ms, its
    // 200 ms of silence included: the last word was at 500, 500 ms ago.
    assert_eq!(timing.endpoint_wait, Duration::from_millis(500));
    assert_eq!(timing.decided_by, TurnDecider::Provider);

    let audio: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
    t.reply("resp_1", "item_a1", &audio, "We open at nine.", true);
    let (_, events, outputs) = t.take();
    let heard: Vec<u8> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Audio(a) => Some(a.to_vec()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(heard, audio, "the model's bytes, as they came");
    assert_eq!(outputs[0], Output::Timing(Timing::ModelFirstAudio(400)));
    let marks = outputs
        .iter()
        .filter(|o| matches!(o, Output::SegmentEnd { text } if text.is_empty()))
        .count();
    assert_eq!(marks, 2, "a mark after each 100 ms");
    let n = outputs.len();
    assert_eq!(
        outputs[n - 3..],
        [
            Output::Planned("We open at nine.".into()),
            Output::SegmentEnd {
                text: "We open at nine.".into()
            },
            Output::Finished
        ]
    );
    let [Event::Usage(usage)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(
        (usage.audio_in, usage.audio_out, usage.text_in),
        (50, 40, 100)
    );
    // 100×4 + 50×32 + 10×16 + 40×64 = 4720 per million tokens.
    assert_eq!(usage.cost_microusd, 4720);
}

#[test]
fn a_barge_in_truncates_the_playing_item_at_what_was_heard() {
    let mut t = T::new();
    t.caller_turn(1, "item_u1", 1000);
    let text = "We open at nine and close at six every day.";
    t.reply("resp_1", "item_a1", &[0x55; 3200], text, false);
    t.take();
    // The caller speaks over it after 150 ms of it were heard.
    t.server(json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": 1500, "item_id": "item_u2"}));
    t.command(
        600,
        Command::Cancel {
            turn: 1,
            heard: Duration::from_millis(150),
        },
    );
    let (sent, _, _) = t.take();
    assert_eq!(
        sent,
        [
            json!({"type": "conversation.item.truncate", "item_id": "item_a1", "content_index": 0, "audio_end_ms": 150}),
            json!({"type": "response.cancel", "response_id": "resp_1"}),
        ]
    );
    // Deltas still in flight for the cancelled response are dropped.
    t.server(json!({"type": "response.output_audio.delta", "response_id": "resp_1", "item_id": "item_a1", "delta": STANDARD.encode([1u8; 800])}));
    assert!(t.take().2.is_empty());
    // The call's record has nothing heard (no mark came back); the engine
    // knows better: 150 of 400 ms of its text, at a word, approximate.
    t.command(600, Command::Heard(Box::new(record(1, ""))));
    let (_, events, _) = t.take();
    let [Event::Amended(amended)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(amended.agent_heard, "We open at nine");
    assert!(amended.heard_approximate);
    assert_eq!(amended.agent_said, text);
}

#[test]
fn nothing_is_truncated_when_everything_received_was_heard() {
    let mut t = T::new();
    t.caller_turn(1, "item_u1", 1000);
    t.reply("resp_1", "item_a1", &[0x55; 1600], "Sure.", false);
    t.take();
    t.command(
        600,
        Command::Cancel {
            turn: 1,
            heard: Duration::from_millis(200),
        },
    );
    let (sent, _, _) = t.take();
    assert_eq!(
        sent,
        [json!({"type": "response.cancel", "response_id": "resp_1"})],
        "the model would repeat itself after a needless truncate"
    );
}

#[test]
fn the_callers_words_go_to_their_turn_even_after_it_is_recorded() {
    let mut t = T::new();
    t.caller_turn(1, "item_u1", 1000);
    t.reply("resp_1", "item_a1", &[0x55; 800], "Sure.", true);
    t.take();
    t.command(2000, Command::Heard(Box::new(record(1, "Sure."))));
    assert!(t.take().1.is_empty(), "nothing to correct yet");
    t.server(
        json!({"type": "conversation.item.input_audio_transcription.completed",
        "item_id": "item_u1", "content_index": 0, "transcript": " When do you open? "}),
    );
    let (_, events, _) = t.take();
    let [Event::Amended(amended)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(
        (amended.turn, amended.caller.as_deref()),
        (1, Some("When do you open?"))
    );
    // While the turn is in progress, the words are its output instead.
    t.caller_turn(2, "item_u2", 800);
    t.server(
        json!({"type": "conversation.item.input_audio_transcription.completed",
        "item_id": "item_u2", "content_index": 0, "transcript": "Thanks"}),
    );
    let (_, _, outputs) = t.take();
    assert_eq!(outputs, [Output::Transcript("Thanks".into())]);
}

#[test]
fn a_response_nobody_asked_for_is_cancelled_unheard() {
    let mut t = T::new();
    t.command(
        0,
        Command::Start {
            turn: 0,
            speak: Speak::Greeting,
        },
    );
    t.reply(
        "resp_g",
        "item_g",
        &[0x55; 800],
        "Hello, Pronto here.",
        true,
    );
    t.take();
    // The caller spoke over a greeting that goes on: the call started no
    // turn, but the model answers by itself.
    t.server(json!({"type": "response.created", "response": {"id": "resp_x"}}));
    let (sent, _, _) = t.take();
    assert_eq!(
        sent,
        [json!({"type": "response.cancel", "response_id": "resp_x"})]
    );
    t.server(json!({"type": "response.output_audio.delta", "response_id": "resp_x", "item_id": "i", "delta": STANDARD.encode([1u8; 160])}));
    assert!(t.take().2.is_empty());
}

#[test]
fn end_call_is_the_turns_action_and_its_result_goes_back() {
    let mut t = T::new();
    t.caller_turn(1, "item_u1", 1000);
    t.take();
    t.reply("resp_1", "item_a1", &[0x55; 800], "Goodbye!", false);
    t.server(json!({"type": "response.function_call_arguments.done", "response_id": "resp_1",
        "item_id": "item_f", "output_index": 1, "call_id": "call_1", "name": "end_call", "arguments": "{}"}));
    let (sent, _, outputs) = t.take();
    assert_eq!(sent[0]["item"]["type"], "function_call_output");
    assert_eq!(sent[0]["item"]["call_id"], "call_1");
    assert!(outputs.contains(&Output::Action(CallAction::EndCall)));
}

#[test]
fn keypad_digits_go_in_as_the_callers_text_after_the_running_response() {
    let mut t = T::new();
    t.caller_turn(1, "item_u1", 1000);
    t.reply("resp_1", "item_a1", &[0x55; 800], "Your number?", false);
    t.command(
        500,
        Command::Cancel {
            turn: 1,
            heard: Duration::ZERO,
        },
    );
    t.take();
    t.command(
        500,
        Command::Start {
            turn: 2,
            speak: Speak::Answer(TurnInput::Keypad("[keypad: 4 2 #]".into())),
        },
    );
    let (sent, _, _) = t.take();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["item"]["content"][0]["text"], "[keypad: 4 2 #]");
    t.server(json!({"type": "response.done", "response": {"id": "resp_1", "status": "cancelled"}}));
    let (sent, _, _) = t.take();
    assert_eq!(sent, [json!({"type": "response.create"})]);
}

#[test]
fn a_dropped_session_fails_the_turn_and_reconnects_with_the_conversation() {
    use crate::providers::socket::Ending as Socket;
    let mut t = T::new();
    t.caller_turn(1, "item_u1", 1000);
    t.reply("resp_1", "item_a1", &[0x55; 800], "Sure.", true);
    t.command(900, Command::Heard(Box::new(record(1, "Sure."))));
    t.caller_turn(2, "item_u2", 1000);
    t.take();
    let ending = t.s.ended(
        Socket::ClosedBy(Some(1001), "maximum duration".into()),
        &mut t.out,
    );
    assert!(matches!(ending, Ending::Reconnect(_)));
    let (_, _, outputs) = t.take();
    assert!(matches!(outputs[..], [Output::Failed(_)]), "{outputs:?}");
    assert!(
        !t.s.hear(&[0; 160], &mut t.out),
        "not before the new session is ready"
    );
    t.s.opened("update".into(), &mut t.out);
    let (sent, _, _) = t.take();
    assert_eq!(sent[0], Value::String("update".into()));
    assert_eq!(sent[1]["item"]["role"], "assistant");
    assert_eq!(sent[1]["item"]["content"][0]["text"], "Sure.");
    // A refusal is not retried.
    let ending =
        t.s.ended(Socket::ClosedBy(Some(4000), "beta".into()), &mut t.out);
    assert!(matches!(ending, Ending::Gone(_)));
}

#[test]
fn text_is_cut_at_a_whole_word() {
    assert_eq!(cut_at_word("We open at nine.", 0.5), "We open");
    assert_eq!(cut_at_word("We open at nine.", 0.0), "");
    assert_eq!(cut_at_word("We open at nine.", 1.0), "We open at nine.");
    assert_eq!(cut_at_word("Buongiorno, città", 0.7), "Buongiorno,");
}
