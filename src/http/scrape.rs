//! `GET /metrics`: Pronto's metrics in the Prometheus text format, for a
//! scraper on the LAN (never through the tunnel, which passes only Twilio's
//! paths). It lets in whoever `/api` lets in (the bearer token, or a
//! dashboard signed in), unless `[metrics] public = true`.

use std::sync::Arc;

use axum::http::header;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};

use super::AppState;
use super::auth::require_operator;
use crate::metrics::Metrics;

/// The text format's media type (version 0.0.4, what Prometheus scrapes).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The route: behind the API's check unless the metrics are public.
pub fn route(state: &Arc<AppState>) -> MethodRouter<Arc<AppState>> {
    let route = get(serve);
    if state.config.tunables.metrics.public {
        route
    } else {
        route.route_layer(middleware::from_fn_with_state(
            Arc::clone(state),
            require_operator,
        ))
    }
}

async fn serve() -> Response {
    // Rendering is a few hundred series: cheap enough for the handler.
    let body = Metrics::global().render();
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}
