//! A test call from the dashboard: the browser plays Twilio's part, with
//! its microphone, over the same Media Streams protocol, so the call takes
//! the path a phone call takes (admission, session, engine, record, live
//! view). Browsers allow the microphone only in a secure context (HTTPS or
//! `localhost`); the page says so when it cannot have it.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::auth::Operator;
use super::error::ApiError;
use crate::call::switchboard::Admission;
use crate::http::AppState;
use crate::metrics::{WatchKind, Watching};

/// The answer to `POST /api/test-call`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestCall {
    pub call_sid: String,
    /// Where the browser opens its Media Streams WebSocket (same origin).
    pub stream_url: String,
}

/// Body of `POST /api/test-call` (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCallRequest {
    /// The agent to talk to; default: the routing's default agent.
    pub agent: Option<String>,
}

/// `POST /api/test-call`: admits a test call and says where its stream goes.
#[utoipa::path(post, path = "/api/test-call", security(("bearer" = []), ("cookie" = [])),
    request_body(content = Option<TestCallRequest>),
    responses((status = 201, body = TestCall), (status = 400, body = crate::http::error::ErrorBody),
        (status = 503, body = crate::http::error::ErrorBody)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(operator): Extension<Operator>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: TestCallRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TestCallRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad(format!("expected {{\"agent\": \"...\"}}: {e}")))?
    };
    let roster = state.switchboard.roster();
    let agent = match request.agent.as_deref() {
        None => Arc::clone(roster.lineup().default_agent()),
        Some(name) => roster.get(name).ok_or_else(|| {
            ApiError::bad(format!(
                "agent {:?}: no such agent (GET /api/agents lists them)",
                crate::redact::outside(name)
            ))
        })?,
    };
    let (call_sid, admission) = state.switchboard.admit_test_call(&agent).await;
    match admission {
        Admission::Stream { token } => {
            info!(call_sid = %call_sid, operator = %operator, agent = %agent.name, "browser test call");
            let body = TestCall {
                call_sid,
                stream_url: format!("/api/test-call/{token}"),
            };
            Ok((StatusCode::CREATED, Json(body)).into_response())
        }
        Admission::Busy | Admission::Rejected => Err(ApiError::unavailable(
            "no room for a call now (at the concurrency cap, or shutting down)",
        )),
    }
}

/// `GET /api/test-call/{token}`: the test call's media stream, as Twilio's.
#[utoipa::path(get, path = "/api/test-call/{token}", security(("bearer" = []), ("cookie" = [])),
    params(("token" = String, Path, description = "The stream token from POST /api/test-call")),
    responses((status = 101, description = "WebSocket: Twilio Media Streams messages both ways"),
        (status = 403, body = crate::http::error::ErrorBody)))]
pub async fn stream(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let stream = state.switchboard.redeem(&token).map_err(|e| {
        warn!(reason = %e, "refused a test call's stream");
        ApiError(StatusCode::FORBIDDEN, "expired or used test call".into())
    })?;
    let limit = state.switchboard.max_message_bytes();
    Ok(ws
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_failed_upgrade(|e| warn!(error = %e, "test call upgrade failed"))
        .on_upgrade(move |socket| async move {
            let _watching = Watching::new(WatchKind::TestCall);
            state.switchboard.connect(socket, stream).await
        }))
}
