//! `GET /stream/{token}`: the Media Streams WebSocket upgrade.
//!
//! Checked before upgrading, in this order: no query string (Twilio's stream
//! URLs have none), the `X-Twilio-Signature` over the `wss://` URL, a genuine
//! WebSocket request, then the stream token (issued by `/voice`, unexpired,
//! unused). Any failure is a 403 (Twilio reports error 31920) and one log line.

use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{OriginalUri, Path, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use tracing::warn;

use crate::http::AppState;
use crate::http::twilio_request::{SIGNATURE_HEADER, forbidden};
use crate::twilio::signature::{self, websocket_url};

/// The WebSocket read buffer per call.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// The most Pronto queues for one stream that Twilio has not taken: about
/// 40 s of the agent's audio as Media Streams messages, where a healthy
/// stream holds at most the playback lead (a second or so).
const MAX_WRITE_BUFFER_BYTES: usize = 1 << 20;

pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let reject = |reason: &str| {
        warn!(%reason, "rejected a stream upgrade");
        forbidden()
    };
    if uri.query().is_some() {
        return reject("the stream URL has a query string");
    }
    let deployment = &state.config.deployment;
    if !deployment.skip_signature {
        let url = format!(
            "{}{}",
            websocket_url(&deployment.public_base_url),
            uri.path()
        );
        let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
        let checked = match &deployment.twilio_auth_token {
            None => Err("TWILIO_AUTH_TOKEN is not set".to_string()),
            Some(t) => {
                signature::validate_websocket(t.expose(), &url, header).map_err(|e| e.to_string())
            }
        };
        if let Err(reason) = checked {
            return reject(&reason);
        }
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let stream = match state.switchboard.redeem(&token) {
        Ok(stream) => stream,
        Err(e) => return reject(&e.to_string()),
    };
    let limit = state.switchboard.max_message_bytes();
    // Twilio's messages are a few hundred bytes. tungstenite zero-fills its read
    // buffer up to this size on every read (128 KiB by default), which cost 17 %
    // of the server's CPU with 50 calls, and that buffer is per call.
    ws.read_buffer_size(READ_BUFFER_BYTES)
        // What Pronto has queued for a peer that does not read (a flood of
        // pings whose pongs pile up) is bounded: past this, the write fails
        // and the call ends, instead of the server's memory growing.
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_failed_upgrade(|e| warn!(error = %e, "stream upgrade failed"))
        .on_upgrade(move |socket| async move { state.switchboard.connect(socket, stream).await })
}
