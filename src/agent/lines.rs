//! The fixed lines the agent says (greeting, fallback, goodbye, transfer),
//! synthesized once and kept as μ-law so the greeting plays the instant a
//! stream starts and the fallback plays even while the providers are failing.
//!
//! They are synthesized at start-up; a line whose synthesis failed then (TTS
//! down) is tried again the first time a call needs it.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use std::sync::Arc;
use tokio::sync::OnceCell;
use tracing::{info, warn};

use crate::config::agent::Lines;
use crate::providers::{ProviderError, TextToSpeech};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    Greeting,
    Fallback,
    Goodbye,
    Transfer,
    StillThere,
    Closing,
}

const ALL: [Line; 6] = [
    Line::Greeting,
    Line::Fallback,
    Line::Goodbye,
    Line::Transfer,
    Line::StillThere,
    Line::Closing,
];

impl Line {
    /// Its key in `[lines.<language>]`.
    pub fn name(self) -> &'static str {
        match self {
            Line::Greeting => "greeting",
            Line::Fallback => "fallback",
            Line::Goodbye => "goodbye",
            Line::Transfer => "transfer",
            Line::StillThere => "still_there",
            Line::Closing => "closing",
        }
    }
}

pub struct SpokenLines {
    texts: Lines,
    tts: Arc<dyn TextToSpeech>,
    cache: [OnceCell<Bytes>; 6],
}

impl SpokenLines {
    pub fn new(texts: Lines, tts: Arc<dyn TextToSpeech>) -> Self {
        SpokenLines {
            texts,
            tts,
            cache: Default::default(),
        }
    }

    pub fn text(&self, line: Line) -> &str {
        match line {
            Line::Greeting => &self.texts.greeting,
            Line::Fallback => &self.texts.fallback,
            Line::Goodbye => &self.texts.goodbye,
            Line::Transfer => &self.texts.transfer,
            Line::StillThere => &self.texts.still_there,
            Line::Closing => &self.texts.closing,
        }
    }

    /// The line's μ-law audio, synthesized now if it is not cached yet.
    pub async fn audio(&self, line: Line) -> Result<Bytes, ProviderError> {
        let text = self.text(line).to_string();
        self.cache[line as usize]
            .get_or_try_init(|| synthesize(self.tts.as_ref(), text))
            .await
            .cloned()
    }

    /// Synthesizes every line, logging any that cannot be synthesized yet.
    pub async fn warm_up(&self) {
        for line in ALL {
            if self.text(line).trim().is_empty() {
                continue;
            }
            match self.audio(line).await {
                Ok(audio) => info!(line = ?line, ms = audio.len() / 8, "line synthesized"),
                Err(e) => {
                    warn!(line = ?line, error = %e, "cannot synthesize a line now; it will be synthesized when a call needs it")
                }
            }
        }
    }
}

/// The whole audio of `text`.
pub async fn synthesize(tts: &dyn TextToSpeech, text: String) -> Result<Bytes, ProviderError> {
    let mut stream = tts.synthesize(text);
    let mut audio = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        audio.extend_from_slice(&chunk?);
    }
    Ok(audio.freeze())
}
