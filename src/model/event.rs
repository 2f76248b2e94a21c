//! Something that happened in a call. One type, written once: the session
//! and the webhooks produce a [`CallEvent`]; the store keeps it as a row
//! (`kind` and a JSON `detail`, [`EventRow`]) and the live view as a
//! [`LiveEvent`] stamped with the call's clock.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// Something that happened in a call, kept in its event list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CallEvent {
    /// A keypad key.
    Dtmf { digit: String },
    /// The caller spoke over the agent's answer to `turn`, which was cut.
    BargeIn { turn: u32 },
    /// A provider failed; the caller heard the fallback line.
    ProviderError { turn: u32, error: String },
    /// The agent ended or transferred the call (`action`: `end_call`,
    /// `transfer_call`); `outcome` says how the REST request went.
    Action { action: String, outcome: String },
    /// An operator acted on the live call from the dashboard (`action`:
    /// `listen`, `hang_up`, `transfer`, `say`); `by` names the session (or
    /// `api-token`), `outcome` what came of it when it was not done.
    Operator {
        action: String,
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outcome: Option<String>,
    },
    /// The webhook refused the call, and why.
    Rejected { why: String },
    /// What a speech-to-speech model billed for one response.
    Usage(TokenUsage),
    /// A Twilio status callback. A status Twilio does not document is
    /// `unknown`, with what was sent (escaped, cut short) in `raw`.
    StatusCallback {
        sequence: u32,
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        raw: Option<String>,
    },
}

impl CallEvent {
    /// The event's `kind`, as the store and the API name it.
    pub fn kind(&self) -> &'static str {
        match self {
            CallEvent::Dtmf { .. } => "dtmf",
            CallEvent::BargeIn { .. } => "barge_in",
            CallEvent::ProviderError { .. } => "provider_error",
            CallEvent::Action { .. } => "action",
            CallEvent::Operator { .. } => "operator",
            CallEvent::Rejected { .. } => "rejected",
            CallEvent::StatusCallback { .. } => "status_callback",
            CallEvent::Usage(_) => "usage",
        }
    }

    /// The event's fields without its `kind`: the store's `detail`.
    pub fn detail(&self) -> Value {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut fields)) => {
                fields.remove("kind");
                Value::Object(fields)
            }
            // Every variant is a struct of strings and numbers.
            _ => Value::Null,
        }
    }
}

/// The tokens a speech-to-speech model billed for one response (cached
/// input tokens are part of the input tokens), and what they cost at the
/// configured prices, in millionths of a US dollar.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct TokenUsage {
    pub text_in: u64,
    pub audio_in: u64,
    pub cached_in: u64,
    pub text_out: u64,
    pub audio_out: u64,
    pub cost_microusd: u64,
}

impl TokenUsage {
    /// The usage of a whole call: the sum of its `usage` events (`None`
    /// when it has none, as a cascade's calls do).
    pub fn of_call(events: &[EventRow]) -> Option<TokenUsage> {
        let mut total: Option<TokenUsage> = None;
        for event in events.iter().filter(|e| e.kind == "usage") {
            // A row another version wrote differently counts as nothing.
            let Ok(u) = serde_json::from_value::<TokenUsage>(event.detail.clone()) else {
                continue;
            };
            let t = total.get_or_insert_default();
            t.text_in += u.text_in;
            t.audio_in += u.audio_in;
            t.cached_in += u.cached_in;
            t.text_out += u.text_out;
            t.audio_out += u.audio_out;
            t.cost_microusd += u.cost_microusd;
        }
        total
    }
}

/// An event in the live view, at `at_ms` on the call's clock (since its
/// stream opened).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LiveEvent {
    pub at_ms: u64,
    #[serde(flatten)]
    pub event: CallEvent,
}

/// An event as the store keeps it, e.g. `{kind: "dtmf", detail: {"digit":"1"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EventRow {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub detail: Value,
}

impl EventRow {
    pub fn new(at: DateTime<Utc>, event: &CallEvent) -> EventRow {
        EventRow {
            at,
            kind: event.kind().to_string(),
            detail: event.detail(),
        }
    }
}

/// How an action of the agent's went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionOutcome {
    /// Twilio hung up the call.
    HungUp,
    /// Twilio no longer had the call: it had ended already.
    AlreadyEnded,
    /// Pronto closed the stream, which ends the call; the reason it did
    /// not hang up through the REST API.
    StreamClosed(String),
    /// Twilio now connects the caller to the transfer number.
    Transferred,
    /// The request failed; the call goes on.
    Failed(String),
}

impl ActionOutcome {
    /// Whether the call is over (or leaving Pronto) because of the action.
    pub fn ends_call(&self) -> bool {
        !matches!(self, ActionOutcome::Failed(_))
    }
}

impl std::fmt::Display for ActionOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActionOutcome::HungUp => f.write_str("hung up"),
            ActionOutcome::AlreadyEnded => f.write_str("the call had already ended"),
            ActionOutcome::StreamClosed(why) => write!(f, "{why}"),
            ActionOutcome::Transferred => f.write_str("transferred"),
            ActionOutcome::Failed(why) => f.write_str(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_event_serves_the_store_and_the_live_view() {
        let event = CallEvent::ProviderError {
            turn: 3,
            error: "stt: timeout".into(),
        };
        let row = EventRow::new(Utc::now(), &event);
        assert_eq!(row.kind, "provider_error");
        assert_eq!(row.detail, json!({"turn": 3, "error": "stt: timeout"}));
        let live = serde_json::to_value(LiveEvent { at_ms: 1500, event }).unwrap();
        assert_eq!(
            live,
            json!({"kind": "provider_error", "at_ms": 1500, "turn": 3, "error": "stt: timeout"})
        );
        let every = [
            CallEvent::Dtmf { digit: "1".into() },
            CallEvent::BargeIn { turn: 1 },
            CallEvent::Action {
                action: "end_call".into(),
                outcome: "hung up".into(),
            },
            CallEvent::Rejected { why: "x".into() },
            CallEvent::Usage(TokenUsage::default()),
            CallEvent::StatusCallback {
                sequence: 1,
                status: "ringing".into(),
                raw: None,
            },
            CallEvent::StatusCallback {
                sequence: 2,
                status: "unknown".into(),
                raw: Some("ringin\\n".into()),
            },
        ];
        for e in every {
            let tagged = serde_json::to_value(&e).unwrap();
            assert_eq!(tagged["kind"], e.kind(), "{tagged}");
        }
    }
}
