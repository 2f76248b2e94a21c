//! Pronto: a self-hosted phone agent for Twilio Media Streams.
//!
//! The path of a call (DESIGN.md §1): `POST /voice` answers with TwiML that
//! connects a Media Stream to `/stream/{token}`; the upgrade starts one
//! [`call::session`] task that owns the call, decodes the caller's μ-law audio,
//! finds the ends of their turns ([`audio::vad`]) and plays back what a
//! [`call::responder::Responder`] produces. [`sim`] plays Twilio's part for
//! `pronto call` and the tests.

pub mod agent;
pub mod audio;
pub mod bench;
pub mod call;
pub mod check;
pub mod config;
pub mod fakes;
pub mod http;
pub mod providers;
pub mod recordings;
pub mod redact;
pub mod selftest;
pub mod server;
pub mod sim;
pub mod store;
pub mod twilio;
