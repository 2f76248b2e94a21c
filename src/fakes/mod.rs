//! Fakes of the services Pronto calls, for the tests and the benchmarks:
//! each a real HTTP server on loopback that speaks the service's wire format
//! (each fake names its service's API reference), with injectable latency
//! and faults, recording what it received. Nothing here is used to serve a
//! call: the integration tests configure Pronto with these as its providers,
//! `pronto bench` measures Pronto against [`openai::FakeOpenAi`] with fixed
//! latencies, and `pronto self-test` plays an agent call against it. None of
//! them reaches the internet.
//!
//! The wire formats, one module each:
//! - [`openai_audio`]: OpenAI `POST /v1/audio/transcriptions` (multipart WAV
//!   in, `{"text":…}` out) and `POST /v1/audio/speech` (JSON in, chunked
//!   24 kHz s16le PCM out);
//! - [`openai_chat`]: OpenAI Chat Completions streamed as SSE `data:` chunks
//!   ending in `[DONE]`, or what compatible servers (Ollama) send instead;
//! - [`anthropic`]: the Anthropic Messages API's SSE events;
//! - [`elevenlabs`]: ElevenLabs streaming text-to-speech (raw μ-law 8 kHz);
//! - [`twilio_rest`]: Twilio's REST call updates and account fetch;
//! - [`deepgram`], [`assemblyai`], [`openai_realtime`]: the streaming
//!   speech-to-text services' WebSockets (Deepgram Flux and `/v1/listen`,
//!   AssemblyAI Universal-Streaming v3, OpenAI Realtime transcription),
//!   hearing the caller through [`hearing`];
//! - [`moshi`] (the `moshi` feature): Kyutai Moshi's `/api/chat`, Ogg/Opus
//!   both ways, scripted words;
//! - [`realtime_voice`]: OpenAI Realtime speech-to-speech (GA), with barge-in and tools;
//! - [`openai`]: one OpenAI-compatible server answering speech-to-text, chat
//!   and text-to-speech at one base URL, as `OPENAI_BASE_URL` points all three
//!   at one server.
//!
//! Conventions shared by every fake:
//! - `Fake::start().await` binds `127.0.0.1:0`; `base_url()` is what Pronto is
//!   configured with; the server stops when the fake is dropped.
//! - `push_fault(Fault)` makes the next request misbehave (faults queue up, one
//!   per request); afterwards requests behave normally again.
//! - `requests()` returns what was received, for assertions.
//! - A request the real service would refuse (no key, a body that is not the
//!   service's format) gets the service's 4xx error, never a panic: the
//!   fakes ship in the binary, and what a client sends is outside data.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::task::JoinHandle;

mod answer;
pub mod anthropic;
pub mod assemblyai;
pub mod deepgram;
pub mod elevenlabs;
pub mod hearing;
pub mod llm_reply;
#[cfg(feature = "moshi")]
pub mod moshi;
pub mod openai;
pub mod openai_audio;
pub mod openai_chat;
pub mod openai_realtime;
mod openai_realtime_wire;
pub mod realtime_voice;
mod streaming;
pub mod twilio_rest;

/// How the next request to a fake goes wrong.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer with this status and JSON body (in the service's error shape),
    /// with a `retry-after` header when given.
    Status {
        status: u16,
        body: String,
        retry_after: Option<String>,
    },
    /// Accept the request and never answer.
    Hang,
    /// Start a normal streamed answer and close the connection halfway.
    CutMidway,
    /// Answer 200 with a body that breaks the format (bad SSE/JSON).
    Malformed,
    /// Start a streamed answer, then send the service's in-stream error
    /// (Anthropic `event: error` overloaded, an OpenAI `{"error":…}` payload).
    StreamError,
    /// Answer normally, but only after this delay.
    Delay(Duration),
}

/// Faults waiting for the next requests (a streaming fake's own fault type:
/// for the next connections).
#[derive(Clone)]
pub struct Faults<F = Fault>(Arc<Mutex<VecDeque<F>>>);

impl<F> Default for Faults<F> {
    fn default() -> Self {
        Faults(Arc::new(Mutex::new(VecDeque::new())))
    }
}

impl<F> Faults<F> {
    pub fn push(&self, fault: F) {
        lock(&self.0).push_back(fault);
    }

    /// The fault for the request now being served, if any.
    pub fn next(&self) -> Option<F> {
        lock(&self.0).pop_front()
    }
}

/// Requests a fake has received.
#[derive(Clone)]
pub struct Recorded<T>(Arc<Mutex<Vec<T>>>);

impl<T> Default for Recorded<T> {
    fn default() -> Self {
        Recorded(Arc::new(Mutex::new(Vec::new())))
    }
}

impl<T: Clone> Recorded<T> {
    pub fn push(&self, item: T) {
        lock(&self.0).push(item);
    }

    /// Records `item` and returns its index, for [`Recorded::update`]: a
    /// streaming fake records a connection as it goes on.
    pub(crate) fn add(&self, item: T) -> usize {
        let mut items = lock(&self.0);
        items.push(item);
        items.len() - 1
    }

    /// Changes the record at `index`.
    pub(crate) fn update(&self, index: usize, change: impl FnOnce(&mut T)) {
        if let Some(item) = lock(&self.0).get_mut(index) {
            change(item);
        }
    }

    pub fn all(&self) -> Vec<T> {
        lock(&self.0).clone()
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.0).len()
    }
}

/// A fake's HTTP server; stops when dropped.
pub struct Running {
    pub base_url: String,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `router` on an ephemeral loopback port; `path_prefix` is appended to
/// the base URL (e.g. `/v1` for OpenAI).
pub async fn try_serve(router: Router, path_prefix: &str) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // Like a real service's edge: small writes go out at once. Without it,
    // Nagle's algorithm holds a fake's second small chunk until the client's
    // delayed ACK, adding ~40 ms that no real provider adds.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(Running {
        base_url: format!("http://{addr}{path_prefix}"),
        task,
    })
}

/// [`try_serve`] for tests.
///
/// # Panics
/// When no loopback port can be bound.
pub async fn serve(router: Router, path_prefix: &str) -> Running {
    try_serve(router, path_prefix)
        .await
        .expect("a loopback port for a fake")
}

/// A fake's state, also after a handler panicked while holding it (the
/// state is plain data: nothing is left half-changed that matters).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
