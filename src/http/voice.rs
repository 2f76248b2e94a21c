//! `POST /voice` (a call comes in) and `POST /voice/status` (status callbacks).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::info;

use crate::call::registry::{Busy, CallInfo};
use crate::http::twilio_request::TwilioForm;
use crate::redact::mask_phone;
use crate::server::AppState;
use crate::twilio::signature::websocket_url;
use crate::twilio::twiml::{self, Say};

fn twiml_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

/// A Twilio SID: two letters and 32 hex digits. Checked because the call SID
/// goes into the stream token and the logs.
fn is_sid(s: &str) -> bool {
    s.len() == 34
        && s.bytes().take(2).all(|b| b.is_ascii_alphabetic())
        && s.bytes().skip(2).all(|b| b.is_ascii_hexdigit())
}

/// Answers a call with `<Connect><Stream>` to a fresh per-call stream URL, or
/// with the busy message when the concurrency cap is reached or Pronto is
/// shutting down.
pub async fn incoming(State(state): State<Arc<AppState>>, form: TwilioForm) -> Response {
    let Some(call_sid) = form.get("CallSid").filter(|s| is_sid(s)) else {
        return (StatusCode::BAD_REQUEST, "missing or malformed CallSid").into_response();
    };
    let from = form.get("From").unwrap_or_default();
    let to = form.get("To").unwrap_or_default();
    let direction = form
        .get("Direction")
        .filter(|d| !d.is_empty())
        .unwrap_or("inbound");
    let tunables = &state.config.tunables;
    let say_with = |text| Say {
        text,
        voice: Some(tunables.twilio.say_voice.as_str()),
        language: Some(tunables.twilio.say_language.as_str()),
    };
    let busy = || {
        twiml_response(twiml::say_and_hang_up(&say_with(
            tunables.twilio.busy_message.as_str(),
        )))
    };

    if state.draining.load(Ordering::Relaxed) {
        info!(call_sid, from = %mask_phone(from), "shutting down: busy message");
        return busy();
    }
    let info = CallInfo {
        call_sid: call_sid.to_string(),
        from: from.to_string(),
        to: to.to_string(),
        direction: direction.to_string(),
        started_at: chrono::Utc::now(),
        ..Default::default()
    };
    let token_ttl = state.tokens.ttl();
    if let Err(Busy) = state.registry.reserve(
        info,
        tunables.server.max_concurrent_calls,
        token_ttl + Duration::from_secs(5),
    ) {
        info!(call_sid, from = %mask_phone(from), max = tunables.server.max_concurrent_calls, "at the concurrency cap: busy message");
        return busy();
    }
    let token = state.tokens.issue(call_sid, SystemTime::now());
    let stream_url = format!(
        "{}/stream/{token}",
        websocket_url(&state.config.deployment.public_base_url)
    );
    let pre_stream = Some(tunables.twilio.pre_stream_say.as_str())
        .filter(|t| !t.trim().is_empty())
        .map(say_with);
    info!(call_sid, from = %mask_phone(from), to = %mask_phone(to), direction, "incoming call: streaming");
    twiml_response(twiml::connect_stream(
        pre_stream.as_ref(),
        &stream_url,
        &[("From", from), ("To", to), ("Direction", direction)],
    ))
}

/// Records a call status callback; idempotent on (CallSid, SequenceNumber).
pub async fn status(State(state): State<Arc<AppState>>, form: TwilioForm) -> Response {
    let (Some(call_sid), Some(status)) = (
        form.get("CallSid").filter(|s| is_sid(s)),
        form.get("CallStatus"),
    ) else {
        return (StatusCode::BAD_REQUEST, "missing CallSid or CallStatus").into_response();
    };
    let sequence = form
        .get("SequenceNumber")
        .and_then(|s| s.trim().parse::<u32>().ok());
    let outcome = state.registry.apply_status(call_sid, sequence, status);
    info!(call_sid, status, sequence, outcome = ?outcome, "status callback");
    twiml_response(twiml::empty())
}

#[cfg(test)]
mod tests {
    use super::is_sid;

    #[test]
    fn sids() {
        assert!(is_sid("CA0123456789abcdef0123456789ABCDEF"));
        assert!(!is_sid("CA0123456789abcdef0123456789ABCDE"));
        assert!(!is_sid("CA0123456789abcdef0123456789ABCDEG"));
        assert!(!is_sid("C10123456789abcdef0123456789ABCDEF"));
        assert!(!is_sid(""));
    }
}
