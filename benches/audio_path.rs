//! CPU cost of one call's audio path, per second of call audio.
//!
//! Every benchmark processes exactly one second of audio per iteration: 50 frames of 20 ms
//! (160 samples at 8 kHz), or 48,000 bytes (24,000 samples) of 24 kHz TTS PCM for the
//! resampler. Throughput is one element per iteration, so criterion's `elem/s` is how many
//! seconds of audio one core gets through per second: the number of calls one core could
//! carry if that stage were all it did. The time per iteration divided by 1 s is the
//! fraction of one core the stage costs per call.
//!
//! The audio is real speech: `tests/fixtures/hello.wav` (8 kHz, 3.1 s: silence, about two
//! seconds of speech with short pauses, a second of silence) cycled into a
//! 25-second call (`call::CALL_SECONDS`). Stateful stages (framer, endpointer, resampler, writer)
//! live across iterations and each iteration feeds the next second of the call, so the
//! endpointer goes through onsets, utterances and hangovers as on a real call, and the
//! average covers the whole loop. Inbound messages are built exactly as Twilio sends them
//! (every counter a JSON string, `streamSid` last).
//!
//! `cargo bench --bench audio_path` (short warm-up and measurement times are the default
//! here; criterion's `--warm-up-time` / `--measurement-time` override them). Results and
//! the machine they were taken on are in BENCHMARKS.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pronto::audio::framer::Framer;
use pronto::audio::resample::TtsResampler;
use pronto::audio::vad::frame_dbfs;
use pronto::audio::{FRAME_SAMPLES, mulaw};
use pronto::twilio::media::{self, Inbound, Media, OutboundWriter};
use webrtc_vad::{SampleRate, Vad, VadMode};

#[path = "audio_path/call.rs"]
mod call;

use call::{
    Call, Clock, FRAMES, SECOND, STREAM_SID, TTS_CHUNKS, check_fixture, endpointer,
    inbound_message, outbound_chunk,
};

fn audio_path(c: &mut Criterion) {
    let call = Call::load();
    check_fixture(&call);
    let mut g = c.benchmark_group("per_second_of_audio");
    g.throughput(Throughput::Elements(1));

    g.bench_function("mulaw_decode_into", |b| {
        let mut out = Vec::with_capacity(FRAME_SAMPLES);
        let mut clock = Clock(0);
        b.iter(|| {
            for frame in call.mulaw_second(clock.next()).chunks_exact(FRAME_SAMPLES) {
                out.clear();
                mulaw::decode_into(black_box(frame), &mut out);
                black_box(&out);
            }
        });
    });
    g.bench_function("mulaw_decode_alloc", |b| {
        let mut clock = Clock(0);
        b.iter(|| {
            for frame in call.mulaw_second(clock.next()).chunks_exact(FRAME_SAMPLES) {
                black_box(mulaw::decode(black_box(frame)));
            }
        });
    });
    g.bench_function("mulaw_encode_into", |b| {
        let mut out = Vec::with_capacity(FRAME_SAMPLES);
        let mut clock = Clock(0);
        b.iter(|| {
            for frame in call.pcm_second(clock.next()).chunks_exact(FRAME_SAMPLES) {
                out.clear();
                mulaw::encode_into(black_box(frame), &mut out);
                black_box(&out);
            }
        });
    });
    g.bench_function("mulaw_encode_alloc", |b| {
        let mut clock = Clock(0);
        b.iter(|| {
            for frame in call.pcm_second(clock.next()).chunks_exact(FRAME_SAMPLES) {
                black_box(mulaw::encode(black_box(frame)));
            }
        });
    });
    g.bench_function("framer_push_mulaw", |b| {
        let mut framer = Framer::new();
        let mut clock = Clock(0);
        b.iter(|| {
            for payload in call.mulaw_second(clock.next()).chunks_exact(FRAME_SAMPLES) {
                framer.push_mulaw(black_box(payload), |frame| {
                    black_box(frame);
                });
            }
        });
    });
    g.bench_function("resample_tts_24k_to_8k", |b| {
        let mut resampler = TtsResampler::new().expect("resampler");
        let mut out = Vec::with_capacity(2 * SECOND);
        let mut clock = Clock(0);
        b.iter(|| {
            out.clear();
            let mut rest = call.tts_second(clock.next());
            for size in TTS_CHUNKS {
                let (chunk, later) = rest.split_at(size);
                resampler.push_bytes(black_box(chunk), &mut out);
                rest = later;
            }
            black_box(&out);
        });
    });
    g.bench_function("webrtc_vad", |b| {
        // Mode 1, the endpointer's default (`vad.aggressiveness`).
        let mut vad = Vad::new_with_rate_and_mode(SampleRate::Rate8kHz, VadMode::LowBitrate);
        let mut clock = Clock(0);
        b.iter(|| {
            for frame in call.pcm_second(clock.next()).chunks_exact(FRAME_SAMPLES) {
                black_box(vad.is_voice_segment(black_box(frame)).unwrap_or(false));
            }
        });
    });
    g.bench_function("frame_dbfs", |b| {
        let mut clock = Clock(0);
        b.iter(|| {
            for frame in call.pcm_second(clock.next()).chunks_exact(FRAME_SAMPLES) {
                black_box(frame_dbfs(black_box(frame)));
            }
        });
    });
    g.bench_function("endpointer_push_frame", |b| {
        let mut ep = endpointer();
        let mut clock = Clock(0);
        b.iter(|| {
            for frame in call.pcm_second(clock.next()).chunks_exact(FRAME_SAMPLES) {
                black_box(ep.push_frame(black_box(frame)));
            }
        });
    });
    g.bench_function("twilio_parse_media", |b| {
        let mut clock = Clock(0);
        b.iter(|| {
            for text in call.inbound_second(clock.next()) {
                black_box(media::parse(black_box(text)).expect("media message"));
            }
        });
    });
    g.bench_function("twilio_media_base64_decode", |b| {
        let parsed: Vec<Media<'_>> = call
            .inbound
            .iter()
            .map(|text| match media::parse(text).map(|p| p.message) {
                Ok(Inbound::Media(m)) => m,
                other => panic!("not a media message: {other:?}"),
            })
            .collect();
        let mut payload = Vec::with_capacity(FRAME_SAMPLES);
        let mut clock = Clock(0);
        b.iter(|| {
            let s = clock.next();
            for m in &parsed[s * FRAMES..(s + 1) * FRAMES] {
                m.decode_into(&mut payload).expect("valid base64");
                black_box(&payload);
            }
        });
    });
    g.bench_function("twilio_outbound_media", |b| {
        let mut writer = OutboundWriter::new(STREAM_SID);
        let mut clock = Clock(0);
        b.iter(|| {
            for frame in call.mulaw_second(clock.next()).chunks_exact(FRAME_SAMPLES) {
                black_box(writer.media(black_box(frame)));
            }
        });
    });
    g.bench_function("inbound_second", |b| {
        let (mut payload, mut framer, mut ep, mut events) =
            (Vec::new(), Framer::new(), endpointer(), Vec::new());
        let mut clock = Clock(0);
        b.iter(|| {
            for text in call.inbound_second(clock.next()) {
                inbound_message(
                    black_box(text),
                    &mut payload,
                    &mut framer,
                    &mut ep,
                    &mut events,
                );
            }
            // The session hands utterances on; dropping them here frees them as it would.
            events.clear();
        });
    });
    g.bench_function("outbound_second", |b| {
        let mut resampler = TtsResampler::new().expect("resampler");
        let mut writer = OutboundWriter::new(STREAM_SID);
        let mut pcm = Vec::with_capacity(2 * FRAME_SAMPLES);
        let mut clock = Clock(0);
        b.iter(|| {
            let mut rest = call.tts_second(clock.next());
            let mut sent = 0;
            for size in TTS_CHUNKS {
                let (chunk, later) = rest.split_at(size);
                sent += outbound_chunk(black_box(chunk), &mut resampler, &mut pcm, &mut writer);
                rest = later;
            }
            black_box(sent)
        });
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = audio_path
}
criterion_main!(benches);
