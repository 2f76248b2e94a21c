//! `/health` (open) and `/api/*` (bearer token).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::json_error;
use crate::http::AppState;
use crate::model::CallSnapshot;
use crate::store::CallRow;

/// Lets a request through only with `Authorization: Bearer $API_TOKEN`.
/// Without `API_TOKEN` set, the API is closed and says how to open it.
pub async fn require_bearer(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(expected) = &state.config.deployment.api_token else {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "the API is disabled because API_TOKEN is not set: set API_TOKEN in .env (or the environment) and send it as 'Authorization: Bearer <token>'",
        );
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    // Compare digests so that neither the content nor the length of the token
    // leaks through timing.
    let matches = presented.is_some_and(|p| {
        bool::from(
            Sha256::digest(p.as_bytes()).ct_eq(&Sha256::digest(expected.expose().as_bytes())),
        )
    });
    if !matches {
        let mut response = json_error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    next.run(req).await
}

/// `GET /health`: liveness and mode, no token, no phone numbers, no secrets.
///
/// `public_base_url` is the URL every signature is checked against (a
/// password in it masked): `pronto check --online` compares it with its own
/// configuration, since a server running with another one refuses every call.
pub async fn health(State(state): State<Arc<AppState>>) -> Response {
    let d = &state.config.deployment;
    Json(json!({
        "status": if state.switchboard.draining() { "draining" } else { "ok" },
        "version": env!("CARGO_PKG_VERSION"),
        "mode": state.switchboard.mode(),
        // Who ends the caller's turns and who transcribes them; speculative
        // answers started and dropped unheard since start.
        "engine": state.switchboard.engine_status(),
        "public_base_url": crate::redact::redact_userinfo(&d.public_base_url),
        "signature_checks": !d.skip_signature,
        "active_calls": state.switchboard.active_calls(),
        // Call records the store could not take yet (it is full or down);
        // kept in memory and written when it is back.
        "unwritten_records": state.switchboard.unwritten_records(),
        // Tasks alive in the runtime: flat over a long run, or something leaks.
        "tasks": tokio::runtime::Handle::current().metrics().num_alive_tasks(),
        "warnings": state.config.warnings,
    }))
    .into_response()
}

/// `GET /api/status`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Status {
    /// Calls in progress on every replica.
    pub active_calls: usize,
    /// This replica's calls, live: state, turns, latencies, transcript.
    pub calls: Vec<CallSnapshot>,
    /// Connected calls on other replicas sharing the database (from the
    /// store; a replica silent for 15 s no longer counts).
    pub other_replicas: Vec<CallRow>,
}

/// The calls in progress: this replica's in detail, the others' from the store.
#[utoipa::path(get, path = "/api/status", security(("bearer" = [])),
    responses((status = 200, body = Status), (status = 401, body = crate::http::error::ErrorBody)))]
pub async fn status(State(state): State<Arc<AppState>>) -> Response {
    let calls = state.switchboard.calls();
    let other_replicas = match state.store.live_calls(chrono::Utc::now()).await {
        Ok(rows) => rows
            .into_iter()
            // In progress means connected: a call whose stream never
            // started is not live here, whatever its row says.
            .filter(|row| row.answered_at.is_some())
            .filter(|row| !calls.iter().any(|c| c.call_sid == row.call_sid))
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read other replicas' calls");
            Vec::new()
        }
    };
    Json(Status {
        active_calls: calls.len() + other_replicas.len(),
        calls,
        other_replicas,
    })
    .into_response()
}

pub async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "no such API route")
}
