//! The simulated call the audio-path benchmarks loop over, the messages built
//! from it as Twilio and a TTS provider send them, and one pass of each path.

use std::hint::black_box;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use pronto::audio::framer::Framer;
use pronto::audio::resample::TtsResampler;
use pronto::audio::vad::{EndpointEvent, Endpointer, EndpointerConfig};
use pronto::audio::wav::read_wav_mono;
use pronto::audio::{FRAME_SAMPLES, SAMPLE_RATE, mulaw};
use pronto::twilio::media::{self, Inbound, OutboundWriter};

/// 20 ms frames in one second.
pub const FRAMES: usize = 50;
/// 8 kHz samples (and μ-law bytes) in one second.
pub const SECOND: usize = SAMPLE_RATE as usize;
/// Length of the simulated call the benchmarks loop over. 25 s of `hello.wav` cycled ends
/// 656 samples into the file's leading silence, so the loop's wrap is silence to silence.
const CALL_SECONDS: usize = 25;
/// TTS input: 24 kHz s16le, so one second is 48,000 bytes.
const TTS_BYTES_PER_SECOND: usize = 48_000;
/// How one second of TTS arrives: 960-byte chunks (20 ms, a typical HTTP body chunk), the
/// first one a byte long so that a half sample is carried across every second.
pub const TTS_CHUNKS: [usize; FRAMES] = {
    let mut sizes = [960; FRAMES];
    sizes[0] = 961;
    sizes[1] = 959;
    sizes
};
const _: () = {
    let mut sum = 0;
    let mut i = 0;
    while i < FRAMES {
        sum += TTS_CHUNKS[i];
        i += 1;
    }
    assert!(sum == TTS_BYTES_PER_SECOND);
};
pub const STREAM_SID: &str = "MZ18ad3ab5a668481ce02b83e7395059f0";

/// The simulated call, built once.
pub struct Call {
    /// 8 kHz speech, `CALL_SECONDS` long.
    pcm: Vec<i16>,
    /// The same audio as μ-law, as Twilio carries it.
    mulaw: Vec<u8>,
    /// One Twilio `media` message per 20 ms frame of `mulaw`.
    pub inbound: Vec<String>,
    /// The same speech at 24 kHz s16le, standing in for OpenAI TTS output.
    tts: Vec<u8>,
}

impl Call {
    pub fn load() -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hello.wav");
        let (speech, rate) = read_wav_mono(&path).expect("tests/fixtures/hello.wav");
        assert_eq!(rate, SAMPLE_RATE, "hello.wav is 8 kHz");
        let pcm: Vec<i16> = speech
            .iter()
            .copied()
            .cycle()
            .take(CALL_SECONDS * SECOND)
            .collect();
        let mulaw = mulaw::encode(&pcm);
        let inbound = mulaw
            .chunks_exact(FRAME_SAMPLES)
            .enumerate()
            .map(|(i, frame)| twilio_media_message(i, frame))
            .collect();
        Call {
            tts: upsample_3x_s16le(&pcm),
            pcm,
            mulaw,
            inbound,
        }
    }

    pub fn pcm_second(&self, s: usize) -> &[i16] {
        &self.pcm[s * SECOND..(s + 1) * SECOND]
    }

    pub fn mulaw_second(&self, s: usize) -> &[u8] {
        &self.mulaw[s * SECOND..(s + 1) * SECOND]
    }

    pub fn inbound_second(&self, s: usize) -> &[String] {
        &self.inbound[s * FRAMES..(s + 1) * FRAMES]
    }

    pub fn tts_second(&self, s: usize) -> &[u8] {
        &self.tts[s * TTS_BYTES_PER_SECOND..(s + 1) * TTS_BYTES_PER_SECOND]
    }
}

/// Frame `i` of the inbound track, exactly as Twilio sends it: `sequenceNumber` counts
/// from 1 for `connected` and 2 for `start`, so media starts at 3; `chunk` counts from 1;
/// `timestamp` is milliseconds since the stream started.
fn twilio_media_message(i: usize, mulaw: &[u8]) -> String {
    format!(
        r#"{{"event":"media","sequenceNumber":"{seq}","media":{{"track":"inbound","chunk":"{chunk}","timestamp":"{ts}","payload":"{payload}"}},"streamSid":"{STREAM_SID}"}}"#,
        seq = i + 3,
        chunk = i + 1,
        ts = i * 20,
        payload = STANDARD.encode(mulaw),
    )
}

/// 24 kHz s16le from 8 kHz by linear interpolation: speech-like input for the resampler
/// (whose FFT cost does not depend on the content anyway).
fn upsample_3x_s16le(pcm: &[i16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pcm.len() * 6);
    for (i, &a) in pcm.iter().enumerate() {
        let b = pcm.get(i + 1).copied().unwrap_or(a);
        for j in 0..3 {
            let s = i32::from(a) + (i32::from(b) - i32::from(a)) * j / 3;
            out.extend_from_slice(&(s as i16).to_le_bytes());
        }
    }
    out
}

/// Endless walk through the call's seconds, one per iteration.
pub struct Clock(pub usize);

impl Clock {
    pub fn next(&mut self) -> usize {
        let s = self.0 % CALL_SECONDS;
        self.0 += 1;
        s
    }
}

/// The inbound path of `Session::on_message` / `on_audio` for one message: parse, base64,
/// μ-law decode and framing, endpointer.
pub fn inbound_message(
    text: &str,
    payload: &mut Vec<u8>,
    framer: &mut Framer,
    endpointer: &mut Endpointer,
    events: &mut Vec<EndpointEvent>,
) {
    let parsed = media::parse(text).expect("a Twilio media message");
    let Inbound::Media(m) = parsed.message else {
        panic!("not a media message");
    };
    m.decode_into(payload).expect("valid base64");
    framer.push_mulaw(payload, |frame| {
        if let Some(event) = endpointer.push_frame(frame) {
            events.push(event);
        }
    });
}

/// The outbound path for one TTS body chunk: `PcmToMulaw::push` in providers/openai_tts.rs
/// (resample, then `mulaw::encode` into a new buffer), then `Playback::poll` cutting
/// 160-byte `Bytes` frames and `OutboundWriter::media` for each. Returns messages written.
pub fn outbound_chunk(
    chunk: &[u8],
    resampler: &mut TtsResampler,
    pcm: &mut Vec<i16>,
    writer: &mut OutboundWriter,
) -> usize {
    resampler.push_bytes(chunk, pcm);
    let mut audio = Bytes::from(mulaw::encode(pcm));
    pcm.clear();
    let mut sent = 0;
    while !audio.is_empty() {
        let frame = audio.split_to(audio.len().min(FRAME_SAMPLES));
        black_box(writer.media(&frame));
        sent += 1;
    }
    sent
}

pub fn endpointer() -> Endpointer {
    Endpointer::new(&EndpointerConfig::default()).expect("default endpointer config")
}

/// Checks, outside the timings, that the fixture exercises what it should: the endpointer
/// finds utterances in the looped speech, and one second of TTS becomes 50 messages.
pub fn check_fixture(call: &Call) {
    let (mut payload, mut framer, mut ep, mut events) =
        (Vec::new(), Framer::new(), endpointer(), Vec::new());
    for text in &call.inbound {
        inbound_message(text, &mut payload, &mut framer, &mut ep, &mut events);
    }
    let utterances = events
        .iter()
        .filter(|e| matches!(e, EndpointEvent::UtteranceEnded(_)))
        .count();
    // hello.wav holds one utterance, and the loop plays it eight times.
    assert!(
        utterances >= 7,
        "endpointer found {utterances} utterances in {CALL_SECONDS} s of looped hello.wav"
    );
    let mut resampler = TtsResampler::new().expect("resampler");
    let mut writer = OutboundWriter::new(STREAM_SID);
    let mut pcm = Vec::new();
    let mut messages = Vec::new();
    for s in 0..3 {
        let mut sent = 0;
        let mut rest = call.tts_second(s);
        for size in TTS_CHUNKS {
            let (chunk, later) = rest.split_at(size);
            sent += outbound_chunk(chunk, &mut resampler, &mut pcm, &mut writer);
            rest = later;
        }
        messages.push(sent);
    }
    // The first second loses the resampler's 10 ms start-up delay; after that, 50 frames.
    assert_eq!(
        messages[1..],
        [FRAMES, FRAMES],
        "messages per second of TTS"
    );
}
