//! The call model: what a call is, how each turn of it went, what happened
//! in it and why it ended. These are the types every other layer shares (the
//! session, the store, the API, the live view), so they live here, below all
//! of them, and depend on nothing of Pronto's but `redact`.
//!
//! Values that Twilio or the database spell as strings (a direction, a call
//! status, an end reason) are enums here with one stable string form each:
//! [`Direction::as_str`], [`CallStatus::as_str`], [`EndReason::as_str`]. The
//! API and the database use those strings; nothing else compares them.

mod call;
mod event;
mod live;
mod turn;

pub use call::{CallAction, CallBrief, CallInfo, CallStatus, Direction, EndReason, is_e164};
pub use event::{ActionOutcome, CallEvent, EventRow, LiveEvent, TokenUsage};
pub use live::{CallSnapshot, LiveState, MAX_EVENTS, MAX_TURN_RECORDS, SessionState};
pub use turn::{StageTimings, Timing, TurnDecider, TurnLatency, TurnRecord, millis};

/// Serializes, displays, compares with strings and documents (as a string)
/// an enum by its `as_str()`, so that one `match` holds its spellings.
macro_rules! string_enum_serde {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// Compares with the string form, e.g. `status == "completed"`.
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl utoipa::PartialSchema for $t {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                String::schema()
            }
        }

        impl utoipa::ToSchema for $t {}
    };
}
use string_enum_serde;
