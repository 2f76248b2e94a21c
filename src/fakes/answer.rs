//! How the speech fakes answer, shared by the OpenAI and ElevenLabs fakes:
//! the part of a [`Fault`] that acts before the answer, JSON error answers,
//! and [`AudioScript`], the streamed audio answer (length, chunking, latency
//! or real-time pace, cut connections, bytes-sent counter).

use std::f64::consts::PI;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream;

use super::{Fault, lock};

/// The part of a fault that acts before the answer: a `Status` is the whole
/// answer (`Err`), `Hang` never returns, `Delay` waits. Returns the fault
/// still to apply to the body.
pub async fn before_answer(
    fault: Option<Fault>,
    error_body: fn(u16, &str) -> String,
) -> Result<Option<Fault>, Response> {
    match fault {
        Some(Fault::Status {
            status,
            body,
            retry_after,
        }) => {
            let mut answer = json_response(status, error_body(status, &body));
            if let Some(value) = retry_after.and_then(|v| v.parse().ok()) {
                answer.headers_mut().insert(header::RETRY_AFTER, value);
            }
            Err(answer)
        }
        Some(Fault::Hang) => Err(std::future::pending::<Response>().await),
        Some(Fault::Delay(wait)) => {
            tokio::time::sleep(wait).await;
            Ok(None)
        }
        other => Ok(other),
    }
}

/// A JSON answer; a status that is not one (a fault made up by a test) is
/// a 500.
pub fn json_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The error that makes hyper drop the connection mid-body.
pub fn cut() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "fake cut the connection",
    )
}

/// A clearly audible test tone: 440 Hz at −12 dBFS, `ms` long at `rate`.
pub fn tone(rate: u32, ms: u64) -> Vec<i16> {
    let amplitude = 32767.0 * 10f64.powf(-12.0 / 20.0);
    let n = u64::from(rate) * ms / 1000;
    (0..n)
        .map(|i| (amplitude * (2.0 * PI * 440.0 * i as f64 / f64::from(rate)).sin()).round() as i16)
        .collect()
}

#[derive(Clone, Copy)]
struct ScriptSettings {
    first_byte: Duration,
    per_chunk: Duration,
    /// Paces the chunks after the first at this multiple of real time
    /// instead of `per_chunk`.
    speed: Option<f64>,
    ms_per_char: u64,
    chunk_bytes: usize,
}

/// How a TTS fake streams its audio: `ms_per_char × characters` long, in
/// chunks of `chunk_bytes` (the second one split into two odd-length
/// pieces, as real servers do), paced by the latency settings.
#[derive(Clone)]
pub struct AudioScript {
    settings: Arc<Mutex<ScriptSettings>>,
    /// Of the audio format: 48 for 24 kHz s16le, 8 for 8 kHz μ-law.
    bytes_per_ms: usize,
    sent: Arc<AtomicUsize>,
}

impl AudioScript {
    /// `chunk_bytes` per body chunk, of audio with `bytes_per_ms`.
    pub fn new(chunk_bytes: usize, bytes_per_ms: usize) -> Self {
        let settings = ScriptSettings {
            first_byte: Duration::ZERO,
            per_chunk: Duration::ZERO,
            speed: None,
            ms_per_char: 60,
            chunk_bytes,
        };
        Self {
            settings: Arc::new(Mutex::new(settings)),
            bytes_per_ms: bytes_per_ms.max(1),
            sent: Arc::default(),
        }
    }

    pub fn set_latency(&self, first_byte: Duration, per_chunk: Duration) {
        let mut s = lock(&self.settings);
        s.first_byte = first_byte;
        s.per_chunk = per_chunk;
        s.speed = None;
    }

    /// The first chunk comes `first_byte` after the headers; each later one
    /// as a server producing audio at `speed` × real time sends it: after
    /// its own audio's duration ÷ `speed`.
    pub fn set_pace(&self, first_byte: Duration, speed: f64) {
        let mut s = lock(&self.settings);
        s.first_byte = first_byte;
        s.speed = Some(speed);
    }

    /// Chunks of `ms` of audio.
    pub fn set_chunk_ms(&self, ms: u64) {
        let bytes = usize::try_from(ms).unwrap_or(usize::MAX);
        self.set_chunk_bytes(bytes.saturating_mul(self.bytes_per_ms));
    }

    pub fn set_ms_per_char(&self, ms: u64) {
        lock(&self.settings).ms_per_char = ms;
    }

    pub fn set_chunk_bytes(&self, bytes: usize) {
        lock(&self.settings).chunk_bytes = bytes.max(1);
    }

    pub fn bytes_sent(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }

    pub fn duration_ms(&self, text: &str) -> u64 {
        lock(&self.settings).ms_per_char * text.chars().count() as u64
    }

    /// A 200 streaming `audio`, shaped by what is left of the fault:
    /// `Malformed` sends an empty body, `CutMidway`/`StreamError` half the
    /// chunks and then drop the connection.
    pub fn answer(&self, audio: Vec<u8>, fault: Option<Fault>, content_type: &str) -> Response {
        let s = *lock(&self.settings);
        let mut chunks = split(audio, s.chunk_bytes);
        let cut_midway = matches!(fault, Some(Fault::CutMidway | Fault::StreamError));
        if matches!(fault, Some(Fault::Malformed)) {
            chunks.clear();
        } else if cut_midway {
            chunks.truncate(chunks.len() / 2);
        }
        let sent = self.sent.clone();
        let bytes_per_ms = self.bytes_per_ms;
        let start = (chunks.into_iter(), true, cut_midway);
        let paced = stream::unfold(start, move |(mut rest, first, cut_pending)| {
            let sent = sent.clone();
            async move {
                let Some(chunk) = rest.next() else {
                    // One error after the last chunk, then the stream ends.
                    return cut_pending.then(|| (Err(cut()), (rest, false, false)));
                };
                let pause = match (first, s.speed) {
                    (true, _) => s.first_byte,
                    (false, None) => s.per_chunk,
                    (false, Some(speed)) => {
                        let audio_ms = chunk.len() as f64 / bytes_per_ms as f64;
                        Duration::from_secs_f64(audio_ms / 1000.0 / speed.max(0.01))
                    }
                };
                tokio::time::sleep(pause).await;
                sent.fetch_add(chunk.len(), Ordering::SeqCst);
                Some((Ok(chunk), (rest, false, cut_pending)))
            }
        });
        (
            [(header::CONTENT_TYPE, content_type.to_string())],
            Body::from_stream(paced),
        )
            .into_response()
    }
}

/// `audio` in chunks of `size`, the second one split in two odd halves
/// (for an even `size`), so clients meet a chunk ending mid-sample.
fn split(audio: Vec<u8>, size: usize) -> Vec<Bytes> {
    let audio = Bytes::from(audio);
    let mut chunks: Vec<Bytes> = audio
        .chunks(size.max(1))
        .map(|c| audio.slice_ref(c))
        .collect();
    if size.is_multiple_of(2) && size >= 4 && chunks.len() > 2 {
        let second = chunks.remove(1);
        let half = second.len() / 2 + 1;
        chunks.insert(1, second.slice(half..));
        chunks.insert(1, second.slice(..half));
    }
    chunks
}
