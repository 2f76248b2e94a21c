//! Fakes of the services Pronto calls, each a real HTTP server on loopback
//! that speaks the service's wire format (reference/providers.md,
//! reference/twilio.md §5), with injectable latency and faults. Tests never
//! reach the internet.
//!
//! Conventions shared by every fake:
//! - `Fake::start().await` binds `127.0.0.1:0`; `base_url()` is what Pronto is
//!   configured with; the server stops when the fake is dropped.
//! - `push_fault(Fault)` makes the next request misbehave (faults queue up, one
//!   per request); afterwards requests behave normally again.
//! - `requests()` returns what was received, for assertions.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::task::JoinHandle;

pub mod anthropic;
pub mod elevenlabs;
pub mod llm_reply;
pub mod openai_audio;
pub mod openai_chat;
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

/// Faults waiting for the next requests.
#[derive(Clone, Default)]
pub struct Faults(Arc<Mutex<VecDeque<Fault>>>);

impl Faults {
    pub fn push(&self, fault: Fault) {
        self.0.lock().expect("faults lock").push_back(fault);
    }

    /// The fault for the request now being served, if any.
    pub fn next(&self) -> Option<Fault> {
        self.0.lock().expect("faults lock").pop_front()
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
        self.0.lock().expect("recorded lock").push(item);
    }

    pub fn all(&self) -> Vec<T> {
        self.0.lock().expect("recorded lock").clone()
    }

    pub fn len(&self) -> usize {
        self.0.lock().expect("recorded lock").len()
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
pub async fn serve(router: Router, path_prefix: &str) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("loopback port for a fake");
    let addr = listener.local_addr().expect("fake's address");
    // Like a real service's edge: small writes go out at once. Without it,
    // Nagle's algorithm holds a fake's second small chunk until the client's
    // delayed ACK, adding ~40 ms that no real provider adds.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Running {
        base_url: format!("http://{addr}{path_prefix}"),
        task,
    }
}
