//! The streaming paths must not allocate per 20 ms frame: a call runs ~50 frames a second in
//! each direction for its whole life. A counting global allocator checks that directly, for
//! the audio core and for the Media Streams messages around it (inbound parse and base64
//! decode, outbound pacing and message writing).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use pronto::audio::framer::Framer;
use pronto::audio::resample::TtsResampler;
use pronto::audio::vad::{EndpointEvent, Endpointer, EndpointerConfig};
use pronto::audio::{FRAME_SAMPLES, mulaw, wav::read_wav_mono};

struct Counting;

thread_local! {
    // Per thread, so the test harness's own threads do not disturb the count.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

fn fixture(name: &str) -> Vec<i16> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    read_wav_mono(&path).expect("fixture").0
}

#[test]
fn mulaw_into_a_reused_buffer_does_not_allocate() {
    let pcm = vec![1234i16; FRAME_SAMPLES];
    let mut bytes = Vec::with_capacity(FRAME_SAMPLES);
    let mut back = Vec::with_capacity(FRAME_SAMPLES);
    let n = allocations(|| {
        for _ in 0..100 {
            bytes.clear();
            mulaw::encode_into(&pcm, &mut bytes);
            back.clear();
            mulaw::decode_into(&bytes, &mut back);
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn framer_does_not_allocate() {
    let payload = mulaw::encode(&fixture("hello.wav"));
    let mut framer = Framer::new();
    let mut frames = 0;
    let n = allocations(|| {
        for chunk in payload.chunks(161) {
            framer.push_mulaw(chunk, |_| frames += 1);
        }
    });
    assert!(frames > 100);
    assert_eq!(n, 0);
}

#[test]
fn tts_resampler_does_not_allocate_after_new() {
    let bytes: Vec<u8> = (0..48_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut resampler = TtsResampler::new().expect("resampler");
    let mut out = Vec::with_capacity(20_000);
    let n = allocations(|| {
        for chunk in bytes.chunks(333) {
            resampler.push_bytes(chunk, &mut out);
        }
        resampler.flush(&mut out);
    });
    assert_eq!(out.len(), 8000);
    assert_eq!(n, 0);
}

#[test]
fn endpointer_allocates_only_for_utterances() {
    let mut ep = Endpointer::new(&EndpointerConfig::default()).expect("default config");
    // Steady noise: frames are processed, nothing is said, nothing is allocated.
    let noise = fixture("steady_noise.wav");
    let idle = allocations(|| {
        for frame in noise.chunks_exact(FRAME_SAMPLES) {
            assert_eq!(ep.push_frame(frame), None);
        }
    });
    assert_eq!(idle, 0, "idle frames allocated");
    // A 1.8 s sentence: the utterance buffer is reserved once at the onset (2 s) and may
    // grow once; nothing else allocates. (The `Some(event)` is moved out, not allocated.)
    let speech = fixture("hello.wav");
    let mut utterances = 0;
    let talking = allocations(|| {
        for frame in speech.chunks_exact(FRAME_SAMPLES) {
            if let Some(EndpointEvent::UtteranceEnded(_)) = ep.push_frame(frame) {
                utterances += 1;
            }
        }
    });
    assert_eq!(utterances, 1);
    assert!(talking <= 2, "{talking} allocations for one utterance");
}

#[test]
fn an_inbound_media_message_is_parsed_and_decoded_without_allocating() {
    use pronto::twilio::media::{Inbound, parse};
    let payload = mulaw::encode(&fixture("hello.wav")[4000..4160]);
    let text = format!(
        r#"{{"event":"media","sequenceNumber":"42","media":{{"track":"inbound","chunk":"41","timestamp":"820","payload":"{}"}},"streamSid":"MZ0123"}}"#,
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &payload)
    );
    let mut decoded = Vec::with_capacity(512);
    let mut framer = Framer::new();
    let mut endpointer = Endpointer::new(&EndpointerConfig::default()).expect("endpointer");
    let mut frames = 0;
    let n = allocations(|| {
        for _ in 0..200 {
            let Ok(parsed) = parse(&text) else {
                panic!("parses")
            };
            let Inbound::Media(media) = parsed.message else {
                panic!("media")
            };
            media.decode_into(&mut decoded).expect("base64");
            framer.push_mulaw(&decoded, |frame| {
                frames += 1;
                let _ = endpointer.push_frame(frame);
            });
        }
    });
    assert_eq!(frames, 200);
    assert_eq!(n, 0, "allocations for 200 inbound frames");
}

#[test]
fn outbound_frames_are_paced_and_written_without_allocating_per_frame() {
    use std::time::{Duration, Instant};

    use pronto::call::playback::{Outbound, Playback};
    use pronto::twilio::media::OutboundWriter;

    let audio = bytes::Bytes::from(mulaw::encode(&fixture("hello.wav")));
    let frames_in_audio = audio.len().div_ceil(FRAME_SAMPLES);
    let mut playback = Playback::new(Duration::from_secs(1));
    let mut writer = OutboundWriter::new("MZ0123");
    let t0 = Instant::now();
    // Messages in flight: the socket holds a few until written, then drops them.
    let mut in_flight = std::collections::VecDeque::with_capacity(16);
    let mut sent = 0;
    let n = allocations(|| {
        playback.push_audio(audio.clone());
        // Step the clock through the whole utterance, 20 ms at a time, as the session does.
        for step in 0..(frames_in_audio as u32 + 60) {
            let now = t0 + Duration::from_millis(20) * step;
            while let Some(out) = playback.poll(now) {
                if let Outbound::Media(frame) = out {
                    if in_flight.len() == 8 {
                        in_flight.pop_front();
                    }
                    in_flight.push_back(writer.media(&frame));
                    sent += 1;
                }
            }
        }
    });
    assert_eq!(sent, frames_in_audio);
    // The queue entry, and the writer's 16 KiB buffer being replaced (two
    // allocations) about once a second of audio: 7 here, not one per frame.
    assert!(
        n <= frames_in_audio / 10,
        "{n} allocations for {frames_in_audio} outbound frames"
    );
}
