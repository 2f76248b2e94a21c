//! Pronto's integration tests, as one test crate: each module below was its
//! own `tests/*.rs` binary, and each binary linked the whole library again,
//! which was most of CI's test stage. Run one module or test with
//! `cargo test --test it <filter>`, e.g. `cargo test --test it echo_calls::`.
//!
//! `tests/per_frame_alloc.rs` stays a binary of its own: its counting
//! `#[global_allocator]` is the allocator of the whole process it is linked
//! into, so here it would be every test's allocator.
//!
//! Fixtures are in `tests/fixtures/`.

mod agent_calls;
mod agent_faults;
mod agent_greeting;
mod agent_streaming;
mod agent_world;
mod agents;
mod audio_endpointer;
mod audio_endpointer_noise;
mod audio_mulaw;
mod audio_resample;
mod bad_input;
mod bench_smoke;
mod browser;
mod check;
mod cli;
mod common;
mod dashboard;
mod deployment;
mod echo_calls;
mod harness;
mod http_limits;
mod kept_and_erased;
mod listen_assemblyai;
mod listen_common;
mod listen_deepgram;
mod listen_openai;
mod metrics;
mod moshi;
mod operations;
mod properties;
mod providers_llm;
mod providers_speech;
mod realtime;
mod records_api;
mod records_durability;
mod selftest;
// Before its users: `#[macro_use]` makes its macros visible to the modules
// declared after it.
#[macro_use]
mod store_cases;
mod store_postgres;
mod store_sqlite;
mod stream_security;
mod turn_model;
mod webhooks;
