//! `pronto health` ([`health`]), the Docker health check.
//!
//! It starts no logging, opens no database and prints no secret.

use std::collections::HashMap;

pub mod health;
pub mod probe;

/// The process environment as `serve` reads it (`.env` already applied by
/// `main`). A variable that is not UTF-8 is left out rather than panicking.
pub fn process_env() -> HashMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}
