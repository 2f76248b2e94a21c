//! How the API says no: a status and `{"error": "..."}`, never a 500 for
//! bad input; a store that fails is a 503.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use tracing::warn;
use utoipa::ToSchema;

use crate::store::StoreError;

/// An error answer: `{"error": "..."}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

pub fn json_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// A refused request: its status and the message of its JSON body.
pub struct ApiError(pub StatusCode, pub String);

impl ApiError {
    pub fn bad(message: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, message.into())
    }

    /// Something this server needs is failing; the client may retry.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError(StatusCode::SERVICE_UNAVAILABLE, message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_error(self.0, &self.1)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        warn!(error = %e, "store request failed");
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the call history is unavailable right now".into(),
        )
    }
}
