//! One OpenAI-compatible server answering all three of Pronto's AI stages
//! at one base URL, as `OPENAI_BASE_URL` points speech-to-text, chat and
//! text-to-speech at one server: [`openai_audio`]'s transcription and speech
//! and [`openai_chat`]'s chat completions (and its `GET /v1/models`, which
//! lists the chat, transcription and speech models). Each half keeps all of
//! its fake's settings, faults and recorded requests.
//!
//! `pronto bench` runs Pronto against it with fixed latencies, and
//! `pronto self-test` plays one agent call through it.
//!
//! [`openai_audio`]: super::openai_audio
//! [`openai_chat`]: super::openai_chat

use std::sync::Arc;

use super::openai_audio::FakeOpenAiAudio;
use super::openai_chat::FakeOpenAiChat;
use super::try_serve;

/// The server; it stops when both halves are dropped.
pub struct FakeOpenAi {
    /// `POST /v1/audio/transcriptions` and `POST /v1/audio/speech`.
    pub audio: FakeOpenAiAudio,
    /// `POST /v1/chat/completions` and `GET /v1/models`.
    pub chat: FakeOpenAiChat,
}

impl FakeOpenAi {
    /// Serves on an ephemeral loopback port, accepting any non-empty key.
    pub async fn start() -> std::io::Result<FakeOpenAi> {
        let (audio_routes, audio) = FakeOpenAiAudio::routes(false);
        let (chat_routes, chat) = FakeOpenAiChat::routes(None);
        let running = Arc::new(try_serve(audio_routes.merge(chat_routes), "/v1").await?);
        Ok(FakeOpenAi {
            audio: audio(running.clone()),
            chat: chat(running),
        })
    }

    /// Ends in `/v1`, like `https://api.openai.com/v1`: Pronto's
    /// `OPENAI_BASE_URL`.
    pub fn base_url(&self) -> &str {
        self.audio.base_url()
    }
}
