//! The call status callback Twilio sends when a call changes state
//! (<https://www.twilio.com/docs/voice/api/call-resource#statuscallback>):
//! on a real number it is what finally marks the
//! call `completed` in Pronto's history, so a simulated call that should leave
//! a finished record must send it too.

use std::time::Duration;

use super::webhook::{signed_post, voice_params};
use super::{SimConfig, SimError};

/// One status change of a call, as Twilio reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallStatus<'a> {
    /// The call's `CallSid` (from the voice webhook).
    pub call_sid: &'a str,
    /// The call's `AccountSid` (from the voice webhook).
    pub account_sid: &'a str,
    /// `CallStatus`: `initiated`, `ringing`, `in-progress`, `completed`, …
    pub status: &'a str,
    /// `SequenceNumber`: the order of this call's callbacks, from 0.
    pub sequence: u32,
    /// How long the call lasted; sent as `CallDuration` (seconds) and
    /// `Duration` (billed minutes) on the terminal event only, as Twilio does.
    pub duration: Option<Duration>,
}

/// The form parameters of a status callback: the voice webhook's base set
/// (without its `CallToken`, which only the incoming-call webhook carries),
/// then the event parameters.
pub fn status_params(cfg: &SimConfig, event: &CallStatus<'_>) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = voice_params(cfg, event.call_sid, event.account_sid)
        .into_iter()
        .filter(|(k, _)| k != "CallToken")
        .map(|(k, v)| match k.as_str() {
            "CallStatus" => (k, event.status.to_string()),
            _ => (k, v),
        })
        .collect();
    let p = |k: &str, v: String| (k.to_string(), v);
    params.push(p("Timestamp", chrono::Utc::now().to_rfc2822()));
    params.push(p("CallbackSource", "call-progress-events".into()));
    params.push(p("SequenceNumber", event.sequence.to_string()));
    if let Some(d) = event.duration {
        params.push(p("CallDuration", d.as_secs().to_string()));
        params.push(p("Duration", d.as_secs().div_ceil(60).max(1).to_string()));
    }
    params
}

/// Sends a status callback: `POST {server}/voice/status`, form-encoded,
/// signed over `{public_base_url}/voice/status` when an auth token is
/// configured. Returns the HTTP status answered (any answer is `Ok`: what the
/// server says is for the caller to judge).
pub async fn post_status(cfg: &SimConfig, event: &CallStatus<'_>) -> Result<u16, SimError> {
    let params = status_params(cfg, event);
    let request = signed_post(cfg, "/voice/status", &params)?;
    let response = request.send().await.map_err(SimError::Webhook)?;
    Ok(response.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completed_callback_has_the_event_parameters() {
        let cfg = SimConfig::new("http://127.0.0.1:8080");
        let event = CallStatus {
            call_sid: "CA00",
            account_sid: "AC00",
            status: "completed",
            sequence: 0,
            duration: Some(Duration::from_secs(61)),
        };
        let params = status_params(&cfg, &event);
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("CallSid"), Some("CA00"));
        assert_eq!(get("CallStatus"), Some("completed"));
        assert_eq!(get("CallbackSource"), Some("call-progress-events"));
        assert_eq!(get("SequenceNumber"), Some("0"));
        assert_eq!(get("CallDuration"), Some("61"));
        assert_eq!(get("Duration"), Some("2"), "billed minutes round up");
        assert_eq!(get("CallToken"), None);
        assert!(get("Timestamp").is_some_and(|t| t.ends_with("+0000")));
        assert_eq!(params.iter().filter(|(k, _)| k == "CallStatus").count(), 1);

        let ringing = CallStatus {
            status: "ringing",
            duration: None,
            ..event
        };
        let params = status_params(&cfg, &ringing);
        assert!(!params.iter().any(|(k, _)| k == "CallDuration"));
    }
}
