//! The extractor for signed Twilio webhooks.
//!
//! It reads the raw body, rebuilds the URL Twilio signed as `PUBLIC_BASE_URL` +
//! the raw path and query as received (never from `Host` or `X-Forwarded-*`),
//! checks `X-Twilio-Signature`, and only then hands the form parameters to the
//! handler. A failure answers 403 with no TwiML and logs one line saying why.

use std::sync::Arc;

use crate::redact::Outside;
use axum::body::to_bytes;
use axum::extract::{FromRequest, OriginalUri, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::warn;

use crate::http::AppState;
use crate::metrics::{Webhook, WebhookResult};
use crate::twilio::signature::{self, SignatureError};

/// Twilio's webhooks are a few kilobytes; anything far larger is not Twilio.
const MAX_WEBHOOK_BYTES: usize = 64 * 1024;

pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// The form parameters of a webhook whose signature checked out, repeats kept.
pub struct TwilioForm(pub Vec<(String, String)>);

impl TwilioForm {
    /// The first value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl FromRequest<Arc<AppState>> for TwilioForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let uri = req
            .extensions()
            .get::<OriginalUri>()
            .map_or_else(|| req.uri().clone(), |u| u.0.clone());
        let target = uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_string();
        let headers = req.headers().clone();
        let endpoint = webhook(uri.path());
        let body = to_bytes(req.into_body(), MAX_WEBHOOK_BYTES)
            .await
            .map_err(|_| {
                crate::metrics::twilio_webhook(endpoint, WebhookResult::Error);
                (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response()
            })?;
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let is_form = is_form_type(content_type) || body.is_empty();
        let params: Vec<(String, String)> = if is_form {
            form_urlencoded::parse(&body).into_owned().collect()
        } else {
            Vec::new()
        };

        let deployment = &state.config.deployment;
        if deployment.skip_signature {
            return Ok(TwilioForm(params));
        }
        let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
        let url = format!("{}{}", deployment.public_base_url, target);
        let checked = match &deployment.twilio_auth_token {
            None => Err("TWILIO_AUTH_TOKEN is not set".to_string()),
            Some(token) if is_form => {
                signature::validate_form(token.expose(), &url, &params, header)
                    .map_err(|e: SignatureError| e.to_string())
            }
            Some(token) => signature::validate_body(token.expose(), &url, &body, header)
                .map_err(|e| e.to_string()),
        };
        match checked {
            Ok(()) => Ok(TwilioForm(params)),
            Err(reason) => {
                warn!(path = %Outside(uri.path()), %reason, "rejected a webhook: bad signature");
                crate::metrics::twilio_webhook(endpoint, WebhookResult::BadSignature);
                Err(forbidden())
            }
        }
    }
}

/// Which webhook a path is, for the metrics: the extractor serves two.
fn webhook(path: &str) -> Webhook {
    if path.ends_with("/status") {
        Webhook::Status
    } else {
        Webhook::Voice
    }
}

pub fn forbidden() -> Response {
    (StatusCode::FORBIDDEN, "Forbidden").into_response()
}

/// Whether a `Content-Type` is a form. Media types are case-insensitive
/// (RFC 9110, section 8.3.1), and parameters such as `charset` follow a `;`.
fn is_form_type(content_type: &str) -> bool {
    content_type.split(';').next().is_some_and(|essence| {
        essence
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    })
}

#[cfg(test)]
mod proptests;
