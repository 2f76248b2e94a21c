//! Fake AI providers for `pronto bench`, with fixed latencies: an
//! OpenAI-compatible server answering transcription, chat (SSE) and speech
//! (24 kHz PCM), so the benchmark measures Pronto and not a provider. They
//! speak the real wire formats (reference/providers.md) minimally: the test
//! fakes in `tests/fakes/` are the thorough ones.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::StreamExt;
use tokio::net::TcpListener;

/// Fixed provider latencies.
#[derive(Debug, Clone, Copy)]
pub struct Latencies {
    pub stt: Duration,
    pub llm_first_token: Duration,
    pub llm_per_token: Duration,
    pub tts_first_byte: Duration,
    /// Audio produced per second of wall time (a real TTS runs several times
    /// faster than real time).
    pub tts_speed: f64,
    /// Audio per HTTP chunk.
    pub tts_chunk: Duration,
}

/// What the caller "says" (every transcription) and the agent answers.
pub const TRANSCRIPT: &str = "Hello, what are your opening hours?";
pub const ANSWER: &str = "We are open from nine to six. Is there anything else I can help with?";
/// Audio per character of a sentence spoken by the fake TTS.
const MS_PER_CHAR: u64 = 55;

/// Serves the fakes on an ephemeral loopback port; returns the base URL
/// (ending in `/v1`).
pub async fn start(latencies: Latencies) -> std::io::Result<String> {
    let l = Arc::new(latencies);
    let router = Router::new()
        .route(
            "/v1/audio/transcriptions",
            post({
                let l = l.clone();
                move |_body: Bytes| async move {
                    tokio::time::sleep(l.stt).await;
                    axum::Json(serde_json::json!({ "text": TRANSCRIPT }))
                }
            }),
        )
        .route(
            "/v1/chat/completions",
            post({
                let l = l.clone();
                move |_body: Bytes| async move { chat(*l) }
            }),
        )
        .route(
            "/v1/audio/speech",
            post({
                let l = l.clone();
                move |body: Bytes| async move { speech(*l, &body) }
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(format!("http://{addr}/v1"))
}

/// Chat completions SSE: the answer word by word, then `[DONE]`.
fn chat(l: Latencies) -> Response {
    let words: Vec<String> = ANSWER.split_inclusive(' ').map(str::to_string).collect();
    let events = futures_util::stream::iter(words.into_iter().enumerate()).then(move |(i, word)| async move {
        tokio::time::sleep(if i == 0 { l.llm_first_token } else { l.llm_per_token }).await;
        let chunk = serde_json::json!({
            "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0, "model": "bench",
            "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": null}]
        });
        Ok::<_, std::io::Error>(Bytes::from(format!("data: {chunk}\n\n")))
    });
    let end = futures_util::stream::once(async {
        let chunk = serde_json::json!({
            "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0, "model": "bench",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]
        });
        Ok(Bytes::from(format!("data: {chunk}\n\ndata: [DONE]\n\n")))
    });
    (
        [("content-type", "text/event-stream")],
        Body::from_stream(events.chain(end)),
    )
        .into_response()
}

/// Speech: a 300 Hz tone as 24 kHz s16le PCM, as long as the text asks, in
/// `tts_chunk` chunks at `tts_speed` × real time.
fn speech(l: Latencies, body: &[u8]) -> Response {
    let chars = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["input"].as_str().map(|t| t.chars().count()))
        .unwrap_or(20);
    let samples = (chars as u64 * MS_PER_CHAR * 24) as usize;
    let chunk_samples = (l.tts_chunk.as_millis() as usize * 24).max(1);
    let chunks = samples.div_ceil(chunk_samples);
    let pace = l.tts_chunk.div_f64(l.tts_speed.max(0.1));
    let stream = futures_util::stream::iter(0..chunks).then(move |i| async move {
        tokio::time::sleep(if i == 0 { l.tts_first_byte } else { pace }).await;
        let mut pcm = Vec::with_capacity(chunk_samples * 2);
        for n in 0..chunk_samples {
            let t = (i * chunk_samples + n) as f64 / 24_000.0;
            let v = (f64::sin(2.0 * std::f64::consts::PI * 300.0 * t) * 8000.0) as i16;
            pcm.extend_from_slice(&v.to_le_bytes());
        }
        Ok::<_, std::io::Error>(Bytes::from(pcm))
    });
    ([("content-type", "audio/pcm")], Body::from_stream(stream)).into_response()
}
