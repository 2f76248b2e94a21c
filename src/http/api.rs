//! `/health` (open) and `/api/*` (bearer token).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::json_error;
use crate::http::AppState;
use crate::model::{CallSnapshot, EndReason};
use crate::store::CallRow;

/// `GET /health`: liveness and mode, no token, no phone numbers, no secrets.
///
/// `public_base_url` is the URL every signature is checked against (a
/// password in it masked): `pronto check --online` compares it with its own
/// configuration, since a server running with another one refuses every call.
pub async fn health(State(state): State<Arc<AppState>>) -> Response {
    Json(health_facts(&state)).into_response()
}

/// What `/health` says (and the dashboard's overview shows).
fn health_facts(state: &AppState) -> serde_json::Value {
    let d = &state.config.deployment;
    let lineup = state.switchboard.roster().lineup();
    let default = lineup.default_agent();
    json!({
        "status": if state.switchboard.draining() { "draining" } else { "ok" },
        "version": env!("CARGO_PKG_VERSION"),
        // The default agent's (GET /api/agents has every agent's).
        "mode": default.engine.mode(),
        // Who ends the caller's turns and who transcribes them; speculative
        // answers started and dropped unheard since start.
        "engine": default.engine.status(),
        // How many; their names and routes are the API's (GET /api/agents).
        "agents": lineup.agents.len(),
        "public_base_url": crate::redact::redact_userinfo(&d.public_base_url),
        "signature_checks": !d.skip_signature,
        "active_calls": state.switchboard.active_calls(),
        // Call records the store could not take yet (it is full or down);
        // kept in memory and written when it is back.
        "unwritten_records": state.switchboard.unwritten_records(),
        // Tasks alive in the runtime: flat over a long run, or something leaks.
        "tasks": tokio::runtime::Handle::current().metrics().num_alive_tasks(),
        "warnings": state.config.warnings,
    })
}

/// `GET /api/overview`: the dashboard's health at a glance.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Overview {
    /// Exactly `GET /health`'s body.
    #[schema(value_type = Object)]
    pub health: serde_json::Value,
    pub today: Today,
    /// The voice-to-voice time a turn should stay under, for the latency
    /// waterfall (`[dashboard] latency_budget_ms`).
    pub budget_ms: u32,
    /// Some agent has a transfer number: calls can be transferred.
    pub transfer: bool,
    /// Calls are recorded: they can be replayed.
    pub recordings: bool,
    /// Some agent's engine speaks typed text (not echo mode, not Moshi).
    pub say: bool,
}

/// The calls started since midnight (UTC).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Today {
    pub since: chrono::DateTime<chrono::Utc>,
    pub calls: i64,
    /// Calls that ended because something failed (the stream, the engine,
    /// a replica, the stream never starting).
    pub failed: i64,
    /// Calls by end reason (`in_progress`: not ended).
    pub end_reasons: std::collections::BTreeMap<String, i64>,
}

/// The end reasons that mean something failed.
const FAILURES: [EndReason; 4] = [
    EndReason::StreamError,
    EndReason::EngineFailed,
    EndReason::Abnormal,
    EndReason::NoStream,
];

#[utoipa::path(get, path = "/api/overview", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Overview), (status = 401, body = crate::http::error::ErrorBody)))]
pub async fn overview(State(state): State<Arc<AppState>>) -> Response {
    let now = chrono::Utc::now();
    let since = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map_or(now, |midnight| midnight.and_utc());
    let mut today = Today {
        since,
        calls: 0,
        failed: 0,
        end_reasons: Default::default(),
    };
    match state.store.end_reasons_since(since).await {
        Ok(rows) => {
            for (reason, n) in rows {
                today.calls += n;
                if reason
                    .as_deref()
                    .and_then(EndReason::parse)
                    .is_some_and(|r| FAILURES.contains(&r))
                {
                    today.failed += n;
                }
                *today
                    .end_reasons
                    .entry(reason.unwrap_or_else(|| "in_progress".into()))
                    .or_default() += n;
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot count today's calls"),
    }
    let t = &state.config.tunables;
    let lineup = state.switchboard.roster().lineup();
    let agents = || lineup.agents.values();
    Json(Overview {
        health: health_facts(&state),
        today,
        budget_ms: t.dashboard.latency_budget_ms,
        transfer: agents().any(|a| a.transfer_number().is_some()),
        recordings: t.store.recordings,
        say: agents().any(|a| a.engine.speaks()),
    })
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
