//! The AI agent: the pipeline that answers a caller turn with STT, an LLM
//! and TTS, and what it needs (sentences, prompt, conversation).

pub mod sentences;
