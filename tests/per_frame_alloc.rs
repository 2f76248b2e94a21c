//! The streaming paths must not allocate per 20 ms frame: a call runs ~50 frames a second in
//! each direction for its whole life. A counting global allocator checks that directly, for
//! the audio core and for the Media Streams messages around it (inbound parse and base64
//! decode, outbound pacing and message writing).
//!
//! The same allocator also checks that the parsers of outside input allocate
//! in proportion to their input, whatever it claims: a WAV header announcing
//! gigabytes, or a Media Streams frame of any shape (issue 13).

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
    // Bytes asked for (frees not subtracted): what a parser cost at most.
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    ALLOCATIONS.with(|c| c.set(c.get() + 1));
    BYTES.with(|c| c.set(c.get() + bytes));
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
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

/// Bytes allocated by `f` on this thread, reallocations counted in full.
fn bytes_allocated(f: impl FnOnce()) -> usize {
    let before = BYTES.with(Cell::get);
    f();
    BYTES.with(Cell::get) - before
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

mod outside_input {
    //! Parsers of outside input allocate in proportion to what they are
    //! given: a few times its length and a few kilobytes, never what a field
    //! in it claims.

    use proptest::prelude::*;

    use super::bytes_allocated;
    use pronto::audio::wav::{encode_wav_8k, read_wav_mono_from};
    use pronto::twilio::media::{Inbound, parse};

    /// What a parser may allocate for `len` bytes of input.
    fn budget(len: usize) -> usize {
        4 * len + 4096
    }

    /// A valid WAV whose sizes, channel count and depth then lie, cut short.
    fn lying_wav() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::collection::vec(any::<i16>(), 0..64),
            prop_oneof![Just(u32::MAX), Just(u32::MAX / 2), any::<u32>()],
            any::<u32>(),
            1..=8u16,
            prop::sample::select(vec![8u16, 16, 24, 32]),
            any::<prop::sample::Index>(),
        )
            .prop_map(|(samples, data_len, riff_len, channels, bits, cut)| {
                let mut bytes = encode_wav_8k(&samples).unwrap_or_default();
                bytes[4..8].copy_from_slice(&riff_len.to_le_bytes());
                bytes[22..24].copy_from_slice(&channels.to_le_bytes());
                bytes[32..34].copy_from_slice(&(channels * bits / 8).to_le_bytes());
                bytes[34..36].copy_from_slice(&bits.to_le_bytes());
                bytes[40..44].copy_from_slice(&data_len.to_le_bytes());
                let keep = 44 + cut.index(bytes.len() - 43);
                bytes.truncate(keep);
                bytes
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn a_wav_header_is_not_believed(bytes in prop_oneof![
            lying_wav(),
            prop::collection::vec(any::<u8>(), 0..256),
        ]) {
            let mut result = None;
            let used = bytes_allocated(|| result = Some(read_wav_mono_from(bytes.as_slice())));
            prop_assert!(result.is_some());
            prop_assert!(used <= budget(bytes.len()), "{used} bytes for a {}-byte file", bytes.len());
        }

        #[test]
        fn a_media_streams_frame_costs_what_it_weighs(text in prop_oneof![
            any::<String>(),
            "\\{\"event\":\"(media|start|mark|dtmf)\",\"(media|start|mark|dtmf)\":\\{[ -~]{0,200}",
        ]) {
            let mut decoded = Vec::new();
            let mut parsed = false;
            let used = bytes_allocated(|| {
                if let Ok(p) = parse(&text) {
                    parsed = true;
                    if let Inbound::Media(media) = p.message {
                        let _ = media.decode_into(&mut decoded);
                    }
                }
            });
            prop_assert!(used <= budget(text.len()), "{used} bytes for a {}-byte frame (parsed: {parsed})", text.len());
        }
    }
}
