//! The HTTP edge: thin axum handlers that check and parse what arrives,
//! hand it to the switchboard or the store, and answer.

pub mod api;
pub mod body_deadline;
pub mod calls;
pub mod dashboard;
pub mod error;
pub mod openapi;
pub mod stream;
pub mod twilio_request;
pub mod voice;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};

use crate::call::switchboard::Switchboard;
use crate::config::Config;
use crate::store::Store;

/// What every handler shares.
pub struct AppState {
    pub config: Config,
    /// The calls: admission, streams, outbound, those in progress.
    pub switchboard: Switchboard,
    /// The call history.
    pub store: Store,
}

/// Every route Pronto serves.
pub fn router(state: Arc<AppState>) -> Router {
    // `layer`, not `route_layer`: unknown /api paths need the token too, so the
    // API's shape is not visible without it.
    let api = Router::new()
        .route("/status", get(api::status))
        .route("/calls", get(calls::list).post(calls::create))
        .route("/calls/{sid}", get(calls::one).delete(calls::erase))
        .route("/calls/{sid}/recording.wav", get(calls::recording))
        .route("/openapi.json", get(openapi::document))
        .fallback(api::not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            api::require_bearer,
        ));
    let body_timeout = Duration::from_secs(state.config.tunables.server.body_timeout_secs);
    Router::new()
        .route("/voice", post(voice::incoming))
        .route("/voice/status", post(voice::status))
        .route("/stream/{token}", get(stream::upgrade))
        .route("/health", get(api::health))
        .merge(dashboard::routes())
        .nest("/api", api)
        // Outermost, so that it times every body read, whichever handler.
        .layer(middleware::from_fn_with_state(
            body_timeout,
            body_deadline::limit,
        ))
        .with_state(state)
}
