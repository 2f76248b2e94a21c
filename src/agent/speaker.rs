//! Speaks a turn's sentences in order while later ones are synthesized ahead.
//!
//! Each sentence gets its own TTS request, started the moment the sentence is
//! complete, up to `1 + lookahead` at once; the head sentence's audio is
//! forwarded as it arrives, and the next one's audio is already waiting when
//! the head ends. Each request runs in its own task (aborted with the speaker,
//! i.e. on barge-in) so that a lookahead request fills its buffer while the
//! head plays.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::task::AbortOnDrop;
use crate::providers::{ProviderError, TextToSpeech};

/// Chunks a lookahead request may buffer before its HTTP stream waits (a few
/// seconds of audio at typical chunk sizes).
const BUFFERED_CHUNKS: usize = 256;

struct Job {
    text: String,
    audio: mpsc::Receiver<Result<Bytes, ProviderError>>,
    started: Instant,
    _task: AbortOnDrop,
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
        let Some(head) = self.jobs.front_mut() else {
            return std::future::pending().await;
        };
        match head.audio.recv().await {
            Some(Ok(audio)) => {
                let first_byte_ms = (!self.first_audio_seen).then(|| {
                    self.first_audio_seen = true;
                    u64::try_from(head.started.elapsed().as_millis()).unwrap_or(u64::MAX)
                });
                Ok(Spoken::Audio {
                    audio,
                    first_byte_ms,
                })
            }
            Some(Err(e)) => Err(e),
            None => {
                let text = self.jobs.pop_front().map(|j| j.text).unwrap_or_default();
                self.start_jobs();
                Ok(Spoken::SentenceEnd { text })
            }
        }
    }

    fn start_jobs(&mut self) {
        while self.jobs.len() < self.in_flight {
            let Some(text) = self.waiting.pop_front() else {
                return;
            };
            let (tx, rx) = mpsc::channel(BUFFERED_CHUNKS);
            let mut stream = self.tts.synthesize(text.clone());
            let task = tokio::spawn(async move {
                while let Some(item) = stream.next().await {
                    let failed = item.is_err();
                    if tx.send(item).await.is_err() || failed {
                        return;
                    }
                }
            });
            self.jobs.push_back(Job {
                text,
                audio: rx,
                started: Instant::now(),
                _task: AbortOnDrop(task),
            });
        }
    }
}
