//! The AI agent: the pipeline that answers a caller turn with STT, an LLM and
//! TTS, and what it needs (sentences, prompt, conversation, fixed lines, tools).

pub mod conversation;
pub mod lines;
pub mod memory;
pub mod pipeline;
pub mod prompt;
pub mod sentences;
pub mod setup;
pub mod speaker;
pub mod tools;

pub use pipeline::{Agent, AgentParts};
