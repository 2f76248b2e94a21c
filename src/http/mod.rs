//! The HTTP edge: thin axum handlers that check and parse what arrives,
//! hand it to the switchboard or the store, and answer.

pub mod agents;
pub mod api;
pub mod auth;
pub mod body_deadline;
pub mod calls;
pub mod dashboard;
pub mod error;
pub mod live;
pub mod openapi;
pub mod scrape;
pub mod stream;
pub mod test_call;
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
    /// The dashboard's signed-in browsers.
    pub sessions: auth::Sessions,
}

/// Every route Pronto serves.
pub fn router(state: Arc<AppState>) -> Router {
    // `layer`, not `route_layer`: unknown /api paths need the token too, so the
    // API's shape is not visible without it.
    let guarded = Router::new()
        .route("/status", get(api::status))
        .route("/overview", get(api::overview))
        .route("/events", get(live::events))
        .route("/calls", get(calls::list).post(calls::create))
        .route("/calls/export.csv", get(calls::export_csv))
        .route("/calls/export.json", get(calls::export_json))
        .route("/calls/{sid}", get(calls::one).delete(calls::erase))
        .route("/calls/{sid}/recording.wav", get(calls::recording))
        .route("/calls/{sid}/listen", get(live::listen))
        .route("/calls/{sid}/hangup", post(live::hang_up))
        .route("/calls/{sid}/transfer", post(live::transfer))
        .route("/calls/{sid}/say", post(live::say))
        .route("/agents", get(agents::list))
        .route("/agents/reload", post(agents::reload))
        .route("/agents/{name}", get(agents::one))
        .route("/test-call", post(test_call::create))
        .route("/test-call/{token}", get(test_call::stream))
        .route("/openapi.json", get(openapi::document))
        .fallback(api::not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_operator,
        ));
    // Signing in is how a browser gets its cookie: it cannot need one.
    let api = Router::new()
        .route(
            "/session",
            get(auth::current)
                .post(auth::sign_in)
                .delete(auth::sign_out),
        )
        .merge(guarded);
    let body_timeout = Duration::from_secs(state.config.tunables.server.body_timeout_secs);
    Router::new()
        .route("/voice", post(voice::incoming))
        .route("/voice/status", post(voice::status))
        .route("/voice/{agent}", post(voice::incoming_at))
        .route("/stream/{token}", get(stream::upgrade))
        .route("/health", get(api::health))
        .route("/metrics", scrape::route(&state))
        .merge(dashboard::routes())
        .nest("/api", api)
        // Outermost, so that it times every body read, whichever handler.
        .layer(middleware::from_fn_with_state(
            body_timeout,
            body_deadline::limit,
        ))
        .with_state(state)
}
