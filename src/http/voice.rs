//! `POST /voice` (a call comes in) and `POST /voice/status` (status callbacks).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::{info, warn};

use crate::call::registry::Busy;
use crate::http::twilio_request::TwilioForm;
use crate::model::{CallEvent, CallInfo, Direction, EndReason};
use crate::redact::mask_phone;
use crate::server::AppState;
use crate::store::NewCall;
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
    let direction = Direction::parse(form.get("Direction").unwrap_or_default());
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
    // The call's row is written before answering: the per-number limit
    // counts it (so a burst of calls cannot all slip under the limit), and
    // the record exists before the stream starts.
    let info = CallInfo {
        call_sid: call_sid.to_string(),
        from: from.to_string(),
        to: to.to_string(),
        direction,
        started_at: chrono::Utc::now(),
    };
    record_call(&state, new_call(&state, info.clone())).await;
    let inbound = !info.direction.is_outbound();
    if let Some(why) = refusal(&state, from).await.filter(|_| inbound) {
        info!(call_sid, from = %mask_phone(from), why, "call rejected");
        state
            .journal
            .call_ended(call_sid, chrono::Utc::now(), EndReason::Rejected);
        state.journal.event(
            call_sid,
            &CallEvent::Rejected {
                why: why.to_string(),
            },
        );
        return twiml_response(twiml::reject());
    }
    let direction = info.direction.clone();
    let token_ttl = state.tokens.ttl();
    if let Err(Busy) = state.registry.reserve(
        info,
        tunables.server.max_concurrent_calls,
        token_ttl + Duration::from_secs(5),
    ) {
        info!(call_sid, from = %mask_phone(from), max = tunables.server.max_concurrent_calls, "at the concurrency cap: busy message");
        state
            .journal
            .call_ended(call_sid, chrono::Utc::now(), EndReason::Busy);
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
    info!(call_sid, from = %mask_phone(from), to = %mask_phone(to), direction = %direction, "incoming call: streaming");
    twiml_response(twiml::connect_stream(
        pre_stream.as_ref(),
        &stream_url,
        &[
            ("From", from),
            ("To", to),
            ("Direction", direction.as_str()),
        ],
    ))
}

/// Why a caller is refused before the call is answered, if they are: a deny
/// list, an allow list they are not on, or too many calls this hour.
async fn refusal(state: &AppState, caller: &str) -> Option<&'static str> {
    let limits = &state.config.tunables.limits;
    if limits.deny_numbers.iter().any(|n| n == caller) {
        return Some("denied number");
    }
    if !limits.allow_numbers.is_empty() && !limits.allow_numbers.iter().any(|n| n == caller) {
        return Some("not on the allow list");
    }
    let per_hour = limits.calls_per_hour_per_number;
    if per_hour == 0 || caller.is_empty() {
        return None;
    }
    let store = state.store.as_ref()?;
    let since = chrono::Utc::now() - chrono::Duration::hours(1);
    // The count includes this call, written just before.
    match store.calls_from_since(caller, since).await {
        Ok(n) if n > u64::from(per_hour) => Some("too many calls this hour"),
        Ok(_) => None,
        Err(e) => {
            // Better to answer than to refuse everyone while the store is down.
            warn!(error = %e, "cannot count the caller's calls; not limiting");
            None
        }
    }
}

/// Writes the call's row now, or (the store failing) queues it.
async fn record_call(state: &AppState, call: NewCall) {
    if let Some(store) = &state.store {
        match store.call_started(&call).await {
            Ok(()) => return,
            Err(e) => {
                warn!(call_sid = %call.call.call_sid, error = %e, "call row not written; queued")
            }
        }
    }
    state.journal.call_started(call);
}

fn new_call(state: &AppState, call: CallInfo) -> NewCall {
    NewCall {
        call,
        status: None,
        replica: state.config.deployment.replica_id.clone(),
    }
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
    if let (Some(store), Some(sequence)) = (&state.store, sequence) {
        let duration = form
            .get("CallDuration")
            .and_then(|d| d.trim().parse::<i64>().ok());
        // Written before answering, so that Twilio retries what was not kept.
        if let Err(e) = store
            .status_callback(call_sid, sequence, status, duration, chrono::Utc::now())
            .await
        {
            warn!(call_sid, error = %e, "status callback not stored");
            return (StatusCode::SERVICE_UNAVAILABLE, "not stored").into_response();
        }
    }
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
