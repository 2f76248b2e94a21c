//! The Moshi conversation against a scripted server on a detached pipe:
//! the handshake, Moshi's talk as turns, room, cancel and the session's end.

use std::task::Waker;

use tokio::sync::mpsc;

use super::*;
use crate::audio::ogg_opus::{OggOpusEncoder, PacketLength};

/// One Twilio frame of silence.
const SILENT_FRAME: [u8; 160] = [0xff; 160];

/// A scripted Moshi server on the other end of a detached pipe.
struct Server {
    tx: mpsc::UnboundedSender<Piped>,
    sent: mpsc::Receiver<Message>,
    encoder: OggOpusEncoder,
}

impl Server {
    fn send(&self, bytes: &[u8]) {
        self.tx
            .send(Piped::Binary(Bytes::copy_from_slice(bytes)))
            .expect("the call listens");
    }

    /// 80 ms of Moshi's audio: a tone when `loud`, else silence.
    fn audio(&mut self, loud: bool) {
        let pcm: Vec<i16> = (0..1920)
            .map(|i| {
                if loud {
                    ((i as f32 * 0.115).sin() * 9000.0) as i16
                } else {
                    0
                }
            })
            .collect();
        let mut message = vec![protocol::AUDIO];
        self.encoder.push(&pcm, &mut message).expect("encodes");
        self.send(&message);
    }

    fn text(&self, word: &str) {
        let mut message = vec![protocol::TEXT];
        message.extend_from_slice(word.as_bytes());
        self.send(&message);
    }

    /// What the call sent, as binary messages.
    fn received(&mut self) -> Vec<Bytes> {
        let mut all = Vec::new();
        while let Ok(message) = self.sent.try_recv() {
            if let Message::Binary(bytes) = message {
                all.push(bytes);
            }
        }
        all
    }
}

fn open() -> (MoshiCall, Server) {
    let (pipe, sent, tx) = Pipe::detached(PROVIDER);
    let call = MoshiCall::new(
        pipe,
        CallerVoice::new().expect("caller voice"),
        MoshiVoice::new().expect("moshi voice"),
        Duration::from_millis(200),
    );
    let server = Server {
        tx,
        sent,
        encoder: OggOpusEncoder::new(PacketLength::Ms40).expect("encoder"),
    };
    (call, server)
}

/// Everything the call reports now, `room` or not.
fn drain(call: &mut MoshiCall, room: bool) -> Vec<Event> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut events = Vec::new();
    while let Poll::Ready(event) = call.poll_event(&mut cx, room) {
        events.push(event);
    }
    events
}

/// A call that is past the Python server's one-byte handshake.
fn ready() -> (MoshiCall, Server) {
    let (mut call, server) = open();
    server.send(&[protocol::HANDSHAKE]);
    assert!(drain(&mut call, true).is_empty());
    (call, server)
}

/// 80 ms of the caller's silence and one step of Moshi (its audio, and a
/// word when given); what the call reported, the call answering a
/// reported turn end by starting turn `turn`.
fn step(call: &mut MoshiCall, server: &mut Server, word: Option<&str>, turn: u32) -> Vec<Event> {
    for _ in 0..4 {
        call.hear(&SILENT_FRAME, &mut Vec::new());
    }
    if let Some(word) = word {
        server.text(word);
    }
    server.audio(word.is_some());
    let events = drain(call, true);
    if events.iter().any(|e| matches!(e, Event::TurnEnded { .. })) {
        call.command(Command::Start {
            turn,
            speak: Speak::Answer(TurnInput::Spoken),
        });
    }
    let mut all = events;
    all.extend(drain(call, true));
    all
}

/// The outputs of `turn` among `events`.
fn outputs(events: &[Event], turn: u32) -> Vec<&Output> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Turn { turn: t, output } if *t == turn => Some(output),
            _ => None,
        })
        .collect()
}

fn segments(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Turn {
                output: Output::SegmentEnd { text },
                ..
            } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn audio_bytes(events: &[Event]) -> usize {
    events
        .iter()
        .map(|e| match e {
            Event::Turn {
                output: Output::Audio(a),
                ..
            } => a.len(),
            _ => 0,
        })
        .sum()
}

#[test]
fn abilities_say_no_greeting_no_voice_and_a_short_lead() {
    let (call, _server) = open();
    assert_eq!(
        call.abilities(),
        Abilities {
            greets: false,
            speaks: false,
            playback_lead: Some(Duration::from_millis(200)),
        }
    );
}

#[test]
fn the_callers_audio_waits_for_the_handshake_then_goes_as_ogg() {
    let (mut call, mut server) = open();
    call.hear(&SILENT_FRAME, &mut Vec::new());
    assert!(drain(&mut call, true).is_empty());
    assert!(server.received().is_empty(), "nothing before the handshake");

    // The Rust servers: metadata, then nine bytes.
    let mut metadata = vec![protocol::METADATA];
    metadata.extend_from_slice(br#"{"instance_name":"test"}"#);
    server.send(&metadata);
    assert!(drain(&mut call, true).is_empty());
    call.hear(&SILENT_FRAME, &mut Vec::new());
    assert!(
        server.received().is_empty(),
        "metadata is not the handshake"
    );
    server.send(&[0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert!(drain(&mut call, true).is_empty());

    for _ in 0..3 {
        call.hear(&SILENT_FRAME, &mut Vec::new());
    }
    let sent = server.received();
    assert_eq!(sent.len(), 3, "one message per Twilio frame");
    assert!(
        sent.iter()
            .all(|m| m[0] == protocol::AUDIO && &m[1..5] == b"OggS")
    );
    let first = &sent[0];
    let find = |needle: &[u8]| first.windows(needle.len()).any(|w| w == needle);
    assert!(
        find(b"OpusHead") && find(b"OpusTags"),
        "headers in the first message"
    );
    assert!(!sent[1].windows(8).any(|w| w == b"OpusHead"));
    // Moshi decodes it: a second of it is a second of audio.
    let mut moshi = MoshiVoice::new().expect("voice");
    let mut back = Vec::new();
    let ogg: Vec<u8> = sent.iter().flat_map(|m| m[1..].iter().copied()).collect();
    let heard = moshi.push(&ogg, &mut back);
    assert_eq!(heard.pushed.packets, 3, "{heard:?}");
}

#[test]
fn moshi_talking_is_a_turn_with_its_sentences_then_finished_after_a_pause() {
    let (mut call, mut server) = ready();
    let mut events = Vec::new();
    // Silence first: nothing.
    for _ in 0..5 {
        events.extend(step(&mut call, &mut server, None, 1));
    }
    assert!(events.is_empty(), "{events:?}");
    for word in [" Hello", " there.", " How", " are", " you?"] {
        events.extend(step(&mut call, &mut server, Some(word), 1));
    }
    // Quiet until the turn is over, then more silence.
    for _ in 0..25 {
        events.extend(step(&mut call, &mut server, None, 2));
    }
    let ended = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::TurnEnded {
                    input: TurnInput::Spoken,
                    ..
                }
            )
        })
        .count();
    assert_eq!(ended, 1, "{events:?}");
    assert_eq!(segments(&events), ["Hello there.", "How are you?"]);
    let out = outputs(&events, 1);
    assert_eq!(out.last(), Some(&&Output::Finished), "{out:?}");
    assert_eq!(
        out.iter().filter(|o| matches!(o, Output::Finished)).count(),
        1
    );
    assert!(!events.iter().any(|e| matches!(e, Event::Interrupting)));
    // Five words of 80 ms and the quiet pause (1.2 s) at 8 kHz, give or
    // take the pre-roll and the codec's delays.
    let audio = audio_bytes(&events);
    let expected = (5 * 80 + QUIET_MS as usize) * 8;
    assert!(
        audio > expected * 8 / 10 && audio < expected * 13 / 10,
        "{audio} bytes of audio, expected about {expected}"
    );
    // After the turn, Moshi's silence is dropped.
    let after = step(&mut call, &mut server, None, 2);
    assert!(after.is_empty(), "{after:?}");
}

#[test]
fn loud_audio_without_words_is_a_turn_too() {
    let (mut call, mut server) = ready();
    let mut events = Vec::new();
    for _ in 0..3 {
        for _ in 0..4 {
            call.hear(&SILENT_FRAME, &mut Vec::new());
        }
        server.audio(true);
        let reported = drain(&mut call, true);
        if reported
            .iter()
            .any(|e| matches!(e, Event::TurnEnded { .. }))
        {
            call.command(Command::Start {
                turn: 1,
                speak: Speak::Answer(TurnInput::Spoken),
            });
        }
        events.extend(reported);
    }
    for _ in 0..20 {
        events.extend(step(&mut call, &mut server, None, 2));
    }
    assert_eq!(segments(&events), [""], "{events:?}");
    assert_eq!(outputs(&events, 1).last(), Some(&&Output::Finished));
    assert!(audio_bytes(&events) > 1000);
}

#[test]
fn turn_output_waits_for_room_but_turn_ends_and_the_end_do_not() {
    let (mut call, mut server) = ready();
    for _ in 0..4 {
        call.hear(&SILENT_FRAME, &mut Vec::new());
    }
    server.text(" Hi.");
    server.audio(true);
    let events = drain(&mut call, false);
    assert!(
        matches!(events.as_slice(), [Event::TurnEnded { .. }]),
        "{events:?}"
    );
    call.command(Command::Start {
        turn: 1,
        speak: Speak::Answer(TurnInput::Spoken),
    });
    server.audio(true);
    server.send(b"\x05out of steps");
    let held = drain(&mut call, false);
    assert_eq!(
        held,
        [Event::Gone(
            "moshi: the server's error: out of steps".into()
        )]
    );
    let later = drain(&mut call, true);
    assert!(
        !later.is_empty()
            && later
                .iter()
                .all(|e| matches!(e, Event::Turn { turn: 1, .. }))
    );
    // The socket closing after the error is not a second end.
    server
        .tx
        .send(Piped::Ended(Ending::ClosedBy(Some(1000), String::new())))
        .ok();
    assert!(drain(&mut call, true).is_empty());
}

#[test]
fn a_cancelled_turn_drops_moshi_until_it_has_paused() {
    let (mut call, mut server) = ready();
    let mut events = Vec::new();
    for word in [" One", " two"] {
        events.extend(step(&mut call, &mut server, Some(word), 1));
    }
    assert!(audio_bytes(&events) > 0);
    call.command(Command::Cancel {
        turn: 1,
        heard: Duration::ZERO,
    });
    let mut later = Vec::new();
    for word in [" three", " four."] {
        later.extend(step(&mut call, &mut server, Some(word), 2));
    }
    assert!(later.is_empty(), "muted until Moshi pauses: {later:?}");
    for _ in 0..16 {
        later.extend(step(&mut call, &mut server, None, 2));
    }
    later.extend(step(&mut call, &mut server, Some(" Five."), 2));
    assert!(
        later.iter().any(|e| matches!(e, Event::TurnEnded { .. })),
        "{later:?}"
    );
}

#[test]
fn a_turn_not_started_is_asked_for_again_and_keeps_moshis_first_words() {
    let (mut call, mut server) = ready();
    // The call does not start a turn at once (it is finishing the last).
    let mut asked = 0;
    for word in [" Well", " now"] {
        for _ in 0..4 {
            call.hear(&SILENT_FRAME, &mut Vec::new());
        }
        server.text(word);
        server.audio(true);
        asked += drain(&mut call, true)
            .iter()
            .filter(|e| matches!(e, Event::TurnEnded { .. }))
            .count();
    }
    for _ in 0..12 {
        call.hear(&SILENT_FRAME, &mut Vec::new());
    }
    server.text(" then.");
    server.audio(true);
    asked += drain(&mut call, true)
        .iter()
        .filter(|e| matches!(e, Event::TurnEnded { .. }))
        .count();
    assert!(asked >= 2, "asked {asked} times");
    call.command(Command::Start {
        turn: 4,
        speak: Speak::Answer(TurnInput::Spoken),
    });
    let mut events = drain(&mut call, true);
    for _ in 0..20 {
        events.extend(step(&mut call, &mut server, None, 5));
    }
    assert_eq!(segments(&events), ["Well now then."]);
    assert!(
        audio_bytes(&events) > 3 * 640,
        "the waiting audio came first"
    );
}

#[test]
fn other_turns_have_nothing_to_say() {
    let (mut call, _server) = ready();
    call.command(Command::Start {
        turn: 0,
        speak: Speak::Greeting,
    });
    call.command(Command::Start {
        turn: 1,
        speak: Speak::Answer(TurnInput::Keypad("[keypad: 1]".into())),
    });
    assert_eq!(
        drain(&mut call, true),
        [
            Event::Turn {
                turn: 0,
                output: Output::Finished
            },
            Event::Turn {
                turn: 1,
                output: Output::Finished
            }
        ]
    );
}

#[test]
fn the_sessions_end_is_reported_once_with_its_reason() {
    let cases = [
        (
            Ending::ClosedBy(Some(1000), "time is up\r\n".into()),
            "moshi: the server closed the session (code 1000: time is up\\r\\n)",
        ),
        (
            Ending::Dropped("reset".into()),
            "moshi: the connection dropped: reset",
        ),
        (
            Ending::NotOpened(Closed::Fatal(crate::providers::ProviderError::Status {
                provider: PROVIDER,
                status: 403,
                message: "no".into(),
            })),
            "moshi: cannot connect:",
        ),
    ];
    for (ending, why) in cases {
        let (mut call, server) = ready();
        server.tx.send(Piped::Ended(ending)).ok();
        drop(server);
        let events = drain(&mut call, true);
        assert_eq!(events.len(), 1, "{events:?}");
        let Event::Gone(reason) = &events[0] else {
            panic!("{events:?}");
        };
        assert!(reason.starts_with(why), "{reason}");
        call.hear(&SILENT_FRAME, &mut Vec::new());
        assert!(drain(&mut call, true).is_empty());
    }
}

#[test]
fn a_server_that_never_says_ready_is_given_up_on() {
    let (mut call, _server) = open();
    let frames = HANDSHAKE_WAIT_MS / 20;
    for _ in 0..frames - 1 {
        call.hear(&SILENT_FRAME, &mut Vec::new());
    }
    assert!(drain(&mut call, true).is_empty());
    call.hear(&SILENT_FRAME, &mut Vec::new());
    let events = drain(&mut call, true);
    assert!(
        matches!(events.as_slice(), [Event::Gone(why)] if why.contains("ready")),
        "{events:?}"
    );
}

#[test]
fn garbage_from_the_server_is_skipped() {
    let (mut call, server) = ready();
    server.send(&[]);
    server.send(&[9, 1, 2, 3]);
    server.send(b"\x01OggS garbage that is no page at all");
    server.send(&[2, 0xff, 0xfe]);
    server.tx.send(Piped::Text("hello".into())).ok();
    let events = drain(&mut call, true);
    // The bad text still counts as Moshi saying something.
    assert!(
        events.iter().all(|e| matches!(e, Event::TurnEnded { .. })),
        "{events:?}"
    );
}

#[test]
fn the_engine_reports_moshi_and_refuses_a_bad_url() {
    let settings = MoshiSection {
        playback_lead_ms: 200,
    };
    let engine = Moshi::build("ws://localhost:8998".into(), settings.clone()).expect("builds");
    assert_eq!(engine.mode(), "moshi");
    assert_eq!(engine.status().turn_detector, "moshi");
    assert_eq!(engine.status().speech_to_text, "none");
    assert!(Moshi::build("not a url".into(), settings).is_err());
}

#[test]
fn the_callers_speech_is_reported_started_but_never_interrupts() {
    let (mut call, _server) = ready();
    let loud: Vec<u8> = crate::audio::mulaw::encode(
        &(0..160)
            .map(|i| ((i as f32 * 0.35).sin() * 8000.0) as i16)
            .collect::<Vec<_>>(),
    );
    let mut events = Vec::new();
    for _ in 0..20 {
        call.hear(&loud, &mut events);
    }
    assert_eq!(events, [Event::SpeechStarted], "once per stretch of speech");
    for _ in 0..(QUIET_MS / 20) {
        call.hear(&SILENT_FRAME, &mut events);
    }
    call.hear(&loud, &mut events);
    assert_eq!(events, [Event::SpeechStarted, Event::SpeechStarted]);
    assert!(drain(&mut call, true).is_empty());
}
