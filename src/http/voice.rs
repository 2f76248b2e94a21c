//! `POST /voice` (a call comes in) and `POST /voice/status` (status callbacks).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::{info, warn};

use crate::call::switchboard::Admission;
use crate::http::AppState;
use crate::http::twilio_request::TwilioForm;
use crate::metrics::{Webhook, WebhookResult};
use crate::model::{CallInfo, Direction};
use crate::redact::{mask_phone, outside};
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
/// with the busy message or `<Reject/>`, as the switchboard decides.
pub async fn incoming(State(state): State<Arc<AppState>>, form: TwilioForm) -> Response {
    counted(Webhook::Voice, answer(&state, &form, None).await)
}

/// `POST /voice/{name}`: the same, where the path can route the call to an
/// agent (a `path` rule, or an agent of that name). The signature covers
/// this exact URL, so the path is Twilio's, as configured in its console
/// or given by Pronto for an outbound call.
pub async fn incoming_at(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    form: TwilioForm,
) -> Response {
    counted(Webhook::Voice, answer(&state, &form, Some(&name)).await)
}

/// Records a call status callback; idempotent on (CallSid, SequenceNumber).
pub async fn status(State(state): State<Arc<AppState>>, form: TwilioForm) -> Response {
    counted(Webhook::Status, apply_status(&state, &form).await)
}

/// Counts a webhook answered (a bad signature never reaches the handlers:
/// `twilio_request.rs` counts it).
fn counted(endpoint: Webhook, response: Response) -> Response {
    let result = if response.status().is_success() {
        WebhookResult::Ok
    } else {
        WebhookResult::Error
    };
    crate::metrics::twilio_webhook(endpoint, result);
    response
}

async fn answer(state: &AppState, form: &TwilioForm, path: Option<&str>) -> Response {
    let Some(call_sid) = form.get("CallSid").filter(|s| is_sid(s)) else {
        return (StatusCode::BAD_REQUEST, "missing or malformed CallSid").into_response();
    };
    let (from, to) = (
        form.get("From").unwrap_or_default(),
        form.get("To").unwrap_or_default(),
    );
    let direction = Direction::parse(form.get("Direction").unwrap_or_default());
    let agent = state.switchboard.roster().route(&direction, to, from, path);
    let call = CallInfo {
        call_sid: call_sid.to_string(),
        from: from.to_string(),
        to: to.to_string(),
        direction,
        agent: agent.name.clone(),
        started_at: chrono::Utc::now(),
    };
    // For the log: numbers masked, and `Direction` may hold Twilio's raw text.
    let (from, to, direction) = (
        outside(&mask_phone(&call.from)),
        outside(&mask_phone(&call.to)),
        outside(call.direction.as_str()),
    );
    let params = [
        ("From", call.from.clone()),
        ("To", call.to.clone()),
        ("Direction", call.direction.to_string()),
    ];
    // The agent's own: its language and busy message.
    let twilio = &agent.config.tunables.twilio;
    let say_with = |text| Say {
        text,
        voice: Some(twilio.say_voice.as_str()),
        language: Some(twilio.say_language.as_str()),
    };
    let body = match state.switchboard.admit(call, &agent).await {
        Admission::Stream { token } => {
            let stream_url = format!(
                "{}/stream/{token}",
                websocket_url(&state.config.deployment.public_base_url)
            );
            let pre_stream = Some(twilio.pre_stream_say.as_str())
                .filter(|t| !t.trim().is_empty())
                .map(say_with);
            info!(call_sid, %from, %to, %direction, agent = %agent.name, "incoming call: streaming");
            let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            twiml::connect_stream(pre_stream.as_ref(), &stream_url, &params)
        }
        Admission::Busy => twiml::say_and_hang_up(&say_with(twilio.busy_message.as_str())),
        Admission::Rejected => twiml::reject(),
    };
    twiml_response(body)
}

async fn apply_status(state: &AppState, form: &TwilioForm) -> Response {
    let (Some(call_sid), Some(status)) = (
        form.get("CallSid").filter(|s| is_sid(s)),
        form.get("CallStatus"),
    ) else {
        return (StatusCode::BAD_REQUEST, "missing CallSid or CallStatus").into_response();
    };
    let sequence = form
        .get("SequenceNumber")
        .and_then(|s| s.trim().parse::<u32>().ok());
    let duration = form
        .get("CallDuration")
        .and_then(|d| d.trim().parse::<i64>().ok());
    match state
        .switchboard
        .status_callback(call_sid, sequence, status, duration)
        .await
    {
        Ok(_) => twiml_response(twiml::empty()),
        Err(e) => {
            warn!(call_sid, error = %e, "status callback not stored");
            (StatusCode::SERVICE_UNAVAILABLE, "not stored").into_response()
        }
    }
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
