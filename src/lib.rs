//! Pronto: a self-hosted phone agent for Twilio Media Streams.

pub mod audio;
pub mod redact;
pub mod sim;
pub mod twilio;
