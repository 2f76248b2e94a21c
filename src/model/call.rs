//! A call as Twilio describes it (who, which way), where it stands (Twilio's
//! status), why it ended (Pronto's words), and what the agent is told about it.

use chrono::{DateTime, Utc};

use super::string_enum_serde;

/// What the webhook (or the stream's `start` parameters) said about a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    pub call_sid: String,
    /// Full E.164 numbers (or what Twilio sent, e.g. `client:alice`). Kept
    /// in memory and the store only: logs and the API mask them.
    pub from: String,
    pub to: String,
    pub direction: Direction,
    /// The agent (persona) that answers it, by name: chosen by the routing
    /// when the call is admitted, and kept for the whole call.
    pub agent: String,
    pub started_at: DateTime<Utc>,
}

impl CallInfo {
    /// The other party's number: the caller of an inbound call, the called
    /// number of an outbound one. Caller memory and rate limits key on it.
    pub fn caller(&self) -> &str {
        if self.direction.is_outbound() {
            &self.to
        } else {
            &self.from
        }
    }
}

/// What the agent is told about a call when it starts: the call, an outbound
/// call's own greeting and instructions, and what it remembers of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallBrief {
    pub call: CallInfo,
    /// An outbound call's own greeting, instead of the configured one.
    pub greeting: Option<String>,
    /// An outbound call's instructions to the agent (why it calls).
    pub instructions: Option<String>,
    /// Caller memory: summaries of earlier calls with this number, newest first.
    pub memory: Vec<String>,
}

impl CallBrief {
    /// A brief with nothing beyond the call itself.
    pub fn of(call: CallInfo) -> CallBrief {
        CallBrief {
            call,
            greeting: None,
            instructions: None,
            memory: Vec::new(),
        }
    }
}

/// Which way a call goes, as Twilio's `Direction` parameter says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    /// Placed through the REST API (`POST /api/calls`).
    OutboundApi,
    /// Placed by `<Dial>`.
    OutboundDial,
    /// A test call from the dashboard: the browser plays Twilio's part.
    Browser,
    /// Known only from a status callback so far.
    Unknown,
    /// Any other value Twilio sends (e.g. `trunking-originating`), kept as is.
    Other(String),
}

impl Direction {
    /// The value a webhook sent; an empty one is an inbound call.
    pub fn parse(value: &str) -> Direction {
        match value {
            "" | "inbound" => Direction::Inbound,
            "outbound-api" => Direction::OutboundApi,
            "outbound-dial" => Direction::OutboundDial,
            "browser" => Direction::Browser,
            "unknown" => Direction::Unknown,
            other => Direction::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Direction::Inbound => "inbound",
            Direction::OutboundApi => "outbound-api",
            Direction::OutboundDial => "outbound-dial",
            Direction::Browser => "browser",
            Direction::Unknown => "unknown",
            Direction::Other(other) => other,
        }
    }

    /// Pronto (or a `<Dial>`) placed the call: the other party is `To`.
    pub fn is_outbound(&self) -> bool {
        match self {
            Direction::OutboundApi | Direction::OutboundDial => true,
            Direction::Other(other) => other.starts_with("outbound"),
            Direction::Inbound | Direction::Unknown | Direction::Browser => false,
        }
    }

    /// A call on the telephone network (Twilio's REST API knows it), not
    /// a test call from the dashboard.
    pub fn is_phone(&self) -> bool {
        *self != Direction::Browser
    }
}

string_enum_serde!(Direction);

impl From<&str> for Direction {
    fn from(value: &str) -> Direction {
        Direction::parse(value)
    }
}

/// Twilio's `CallStatus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallStatus {
    Queued,
    Initiated,
    Ringing,
    InProgress,
    Completed,
    Busy,
    Failed,
    NoAnswer,
    Canceled,
    /// A value this version does not know, kept as is.
    Other(String),
}

impl CallStatus {
    pub fn parse(value: &str) -> CallStatus {
        match value {
            "queued" => CallStatus::Queued,
            "initiated" => CallStatus::Initiated,
            "ringing" => CallStatus::Ringing,
            "in-progress" => CallStatus::InProgress,
            "completed" => CallStatus::Completed,
            "busy" => CallStatus::Busy,
            "failed" => CallStatus::Failed,
            "no-answer" => CallStatus::NoAnswer,
            "canceled" => CallStatus::Canceled,
            other => CallStatus::Other(other.to_string()),
        }
    }

    /// A status from Twilio's request: one of Twilio's, or `unknown` (the
    /// raw value is not kept here; see `CallEvent::StatusCallback`).
    pub fn from_twilio(value: &str) -> CallStatus {
        match CallStatus::parse(value) {
            CallStatus::Other(_) => CallStatus::Other("unknown".into()),
            known => known,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Initiated => "initiated",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in-progress",
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::Failed => "failed",
            CallStatus::NoAnswer => "no-answer",
            CallStatus::Canceled => "canceled",
            CallStatus::Other(other) => other,
        }
    }

    /// The call is over: nothing more will happen on it.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            CallStatus::Completed
                | CallStatus::Busy
                | CallStatus::Failed
                | CallStatus::NoAnswer
                | CallStatus::Canceled
        )
    }
}

string_enum_serde!(CallStatus);

/// Why a call ended, in Pronto's words: the `end_reason` of the API and the
/// database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The caller hung up (Twilio sent `stop` or closed the stream).
    CallerHungUp,
    /// The agent ended the call (`end_call`).
    AgentHungUp,
    /// The agent transferred the caller (`transfer_call`).
    Transferred,
    /// `[limits] max_call_duration_secs` was reached.
    MaxDuration,
    /// The caller stayed silent after "are you still there?".
    Idle,
    /// Pronto shut down while the call was live.
    Shutdown,
    /// The webhook was answered but the media stream never started.
    NoStream,
    /// The stream broke: a wrong call, an oversized message, a socket error.
    StreamError,
    /// Refused at the webhook (deny or allow list, rate limit).
    Rejected,
    /// Refused at the webhook: at the concurrency cap, or shutting down.
    Busy,
    /// The replica handling it stopped without ending it.
    Abnormal,
    /// The engine could not go on (a speech-to-speech model's session was
    /// refused, failed or closed): Pronto ended the call politely.
    EngineFailed,
    /// An operator ended the call from the dashboard.
    OperatorHungUp,
}

impl EndReason {
    pub const ALL: [EndReason; 13] = [
        EndReason::CallerHungUp,
        EndReason::AgentHungUp,
        EndReason::Transferred,
        EndReason::MaxDuration,
        EndReason::Idle,
        EndReason::Shutdown,
        EndReason::NoStream,
        EndReason::StreamError,
        EndReason::Rejected,
        EndReason::Busy,
        EndReason::Abnormal,
        EndReason::EngineFailed,
        EndReason::OperatorHungUp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::CallerHungUp => "caller_hung_up",
            EndReason::AgentHungUp => "agent_hung_up",
            EndReason::Transferred => "transferred",
            EndReason::MaxDuration => "max_duration",
            EndReason::Idle => "idle",
            EndReason::Shutdown => "shutdown",
            EndReason::NoStream => "no_stream",
            EndReason::StreamError => "stream_error",
            EndReason::Rejected => "rejected",
            EndReason::Busy => "busy",
            EndReason::Abnormal => "abnormal",
            EndReason::EngineFailed => "engine_failed",
            EndReason::OperatorHungUp => "operator_hung_up",
        }
    }

    /// The reason a stored string names; `None` for one this version does not know.
    pub fn parse(value: &str) -> Option<EndReason> {
        EndReason::ALL.into_iter().find(|r| r.as_str() == value)
    }
}

string_enum_serde!(EndReason);

/// `+` then 8 to 15 digits.
pub fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|d| {
        (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

/// Something the agent asked to do once its words have been heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallAction {
    /// Hang up (after the goodbye).
    EndCall,
    /// Connect the caller to this number (after the handover line).
    Transfer { to: String },
}

impl CallAction {
    /// The tool that asks for it, as the call's events name it.
    pub fn name(&self) -> &'static str {
        match self {
            CallAction::EndCall => "end_call",
            CallAction::Transfer { .. } => "transfer_call",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Twilio's `CallStatus` values.
    const STATUSES: [&str; 9] = [
        "queued",
        "initiated",
        "ringing",
        "in-progress",
        "completed",
        "busy",
        "failed",
        "no-answer",
        "canceled",
    ];

    #[test]
    fn strings_round_trip() {
        for d in [
            "inbound",
            "outbound-api",
            "outbound-dial",
            "unknown",
            "trunking-originating",
        ] {
            assert_eq!(Direction::parse(d).as_str(), d);
        }
        assert_eq!(Direction::parse(""), Direction::Inbound);
        for s in STATUSES.into_iter().chain(["something-new"]) {
            assert_eq!(CallStatus::parse(s).as_str(), s);
        }
        for r in EndReason::ALL {
            assert_eq!(EndReason::parse(r.as_str()), Some(r));
        }
        assert_eq!(EndReason::parse("nope"), None);
    }

    #[test]
    fn outbound_calls_are_told_apart_and_name_their_caller() {
        assert!(!Direction::Inbound.is_outbound());
        assert!(Direction::OutboundApi.is_outbound());
        assert!(Direction::OutboundDial.is_outbound());
        assert!(Direction::parse("outbound-something").is_outbound());
        assert!(!Direction::Unknown.is_outbound());
        let mut call = CallInfo {
            call_sid: "CA1".into(),
            from: "+15550001111".into(),
            to: "+15550002222".into(),
            direction: Direction::Inbound,
            agent: "default".into(),
            started_at: Utc::now(),
        };
        assert_eq!(call.caller(), "+15550001111");
        call.direction = Direction::OutboundApi;
        assert_eq!(call.caller(), "+15550002222");
    }

    #[test]
    fn only_the_ends_of_a_call_are_final() {
        let finals: Vec<&str> = STATUSES
            .into_iter()
            .filter(|s| CallStatus::parse(s).is_final())
            .collect();
        assert_eq!(
            finals,
            ["completed", "busy", "failed", "no-answer", "canceled"]
        );
    }
}
