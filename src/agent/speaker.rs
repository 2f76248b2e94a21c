//! Speaks a turn's sentences in order while later ones are synthesized ahead.
//!
//! Each sentence gets its own TTS request, started the moment the sentence is
//! complete, up to `1 + lookahead` at once; the head sentence's audio is
//! forwarded as it arrives, and the next one's audio is already waiting when
//! the head ends. Every request is polled from here, each time the head is
//! (so a lookahead request is sent, and fills its buffer, while the head
//! plays): no task per request, and dropping the speaker (barge-in) drops
//! every request at once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::time::Instant;

use crate::providers::{BoxStream, ProviderError, TextToSpeech};

/// Chunks a lookahead request may buffer before it is left to wait (a few
/// seconds of audio at typical chunk sizes).
const BUFFERED_CHUNKS: usize = 256;

struct Job {
    text: String,
    audio: BoxStream<Result<Bytes, ProviderError>>,
    /// What a lookahead request received before it became the head.
    buffered: VecDeque<Result<Bytes, ProviderError>>,
    /// The request's stream has ended.
    ended: bool,
    started: Instant,
}

impl Job {
    /// Moves what the request has received into the buffer, up to its cap.
    fn fill(&mut self, cx: &mut Context<'_>) {
        while !self.ended && self.buffered.len() < BUFFERED_CHUNKS {
            match self.audio.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => {
                    self.ended = item.is_err();
                    self.buffered.push_back(item);
                }
                Poll::Ready(None) => self.ended = true,
                Poll::Pending => return,
            }
        }
    }
}

/// What the head sentence produced.
#[derive(Debug)]
pub enum Spoken {
    /// μ-law audio of the head sentence; `first_byte_ms` is set on the first
    /// chunk of the turn's first sentence.
    Audio {
        audio: Bytes,
        first_byte_ms: Option<u64>,
    },
    /// The head sentence is complete.
    SentenceEnd { text: String },
}

pub struct Speaker {
    tts: Arc<dyn TextToSpeech>,
    in_flight: usize,
    waiting: VecDeque<String>,
    jobs: VecDeque<Job>,
    first_audio_seen: bool,
}

impl Speaker {
    pub fn new(tts: Arc<dyn TextToSpeech>, lookahead: usize) -> Self {
        Speaker {
            tts,
            in_flight: 1 + lookahead,
            waiting: VecDeque::new(),
            jobs: VecDeque::new(),
            first_audio_seen: false,
        }
    }

    /// Queues a sentence; its synthesis starts now if the lookahead allows.
    pub fn say(&mut self, text: String) {
        self.waiting.push_back(text);
        self.start_jobs();
    }

    /// Whether anything is still to be spoken.
    pub fn busy(&self) -> bool {
        !self.jobs.is_empty()
    }

    /// The next thing the head sentence produced. Cancel-safe: nothing is lost
    /// if the future is dropped before it completes. Pending forever when idle.
    pub async fn next(&mut self) -> Result<Spoken, ProviderError> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Spoken, ProviderError>> {
        for job in self.jobs.iter_mut().skip(1) {
            job.fill(cx);
        }
        let Some(head) = self.jobs.front_mut() else {
            return Poll::Pending;
        };
        head.fill(cx);
        match head.buffered.pop_front() {
            Some(Ok(audio)) => {
                let first_byte_ms = (!self.first_audio_seen).then(|| {
                    self.first_audio_seen = true;
                    u64::try_from(head.started.elapsed().as_millis()).unwrap_or(u64::MAX)
                });
                Poll::Ready(Ok(Spoken::Audio {
                    audio,
                    first_byte_ms,
                }))
            }
            Some(Err(e)) => Poll::Ready(Err(e)),
            None if head.ended => {
                let text = self.jobs.pop_front().map(|j| j.text).unwrap_or_default();
                self.start_jobs();
                Poll::Ready(Ok(Spoken::SentenceEnd { text }))
            }
            None => Poll::Pending,
        }
    }

    fn start_jobs(&mut self) {
        while self.jobs.len() < self.in_flight {
            let Some(text) = self.waiting.pop_front() else {
                return;
            };
            let audio = self.tts.synthesize(text.clone());
            self.jobs.push_back(Job {
                text,
                audio,
                buffered: VecDeque::new(),
                ended: false,
                started: Instant::now(),
            });
        }
    }
}
