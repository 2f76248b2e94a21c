//! Pronto: a self-hosted phone agent for Twilio Media Streams.
//!
//! The path of a call, in the order ARCHITECTURE.md follows it: `POST /voice`
//! ([`http::voice`]) asks the [`call::switchboard`] to admit the call and
//! answers with TwiML that connects a Media Stream to `/stream/{token}`; the
//! upgrade ([`http::stream`]) starts one [`call::session`] task, which runs
//! the call's state machine ([`call::machine`]) between the socket and the
//! call's [`engine`] (echo mode, or the [`agent`]). [`sim`] plays Twilio's
//! part for `pronto call` and the tests.

pub mod agent;
pub mod audio;
pub mod bench;
pub mod call;
pub mod check;
pub mod config;
pub mod engine;
pub mod fakes;
pub mod http;
pub mod metrics;
pub mod model;
#[cfg(test)]
mod module_graph;
pub mod providers;
pub mod recordings;
pub mod redact;
pub mod s2s;
pub mod selftest;
pub mod server;
pub mod sim;
pub mod store;
pub mod twilio;
