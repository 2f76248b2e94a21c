//! SPEC STUB — the store's public API, to be implemented in full (see the
//! issue "Call records and the REST API"). Every method is async and returns
//! `Result<_, StoreError>`; the server keeps running when the store fails
//! (it logs and skips), so no method may panic on bad data.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::call::registry::TurnRecord;

#[derive(Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(pub String);

/// A call as `/voice` (or an outbound request) first knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCall {
    pub call_sid: String,
    /// `inbound`, `outbound-api`, ...
    pub direction: String,
    /// Full E.164 numbers (kept in the store; masked copies are derived).
    pub from: String,
    pub to: String,
    pub started_at: DateTime<Utc>,
    /// Twilio's `CallStatus` at that moment, if known.
    pub status: Option<String>,
    /// The replica that answered (its id), for the heartbeat.
    pub replica: String,
}

/// One event of a call, e.g. `{kind: "dtmf", detail: {"digit":"1"}}`,
/// `status_callback`, `action` (tool call), `provider_error`, `barge_in`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRow {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub detail: Value,
}

/// A call in lists: numbers masked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRow {
    pub call_sid: String,
    pub direction: String,
    pub from: String,
    pub to: String,
    pub started_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Twilio's latest call status (from the highest status-callback
    /// SequenceNumber), e.g. `completed`.
    pub status: Option<String>,
    /// Why the call ended, in Pronto's words: `caller_hung_up`, `agent_hung_up`,
    /// `transferred`, `max_duration`, `idle`, `shutdown`, `abnormal` (the
    /// replica died), `rejected`, `busy`...
    pub end_reason: Option<String>,
    pub duration_secs: Option<i64>,
    /// In progress: not ended, and its replica's heartbeat is fresh.
    pub live: bool,
    pub turns: i64,
}

/// One call with everything: full numbers, turns, events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallDetail {
    #[serde(flatten)]
    pub call: CallRow,
    pub from_number: String,
    pub to_number: String,
    pub turns: Vec<TurnRecord>,
    pub events: Vec<EventRow>,
}

/// Filters of `GET /api/calls` (all optional; `from`/`to` are full numbers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFilter {
    pub from: Option<String>,
    pub to: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub status: Option<String>,
}

/// A page of calls, newest first; `next` is the opaque cursor for `before`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    pub calls: Vec<CallRow>,
    pub next: Option<String>,
}

/// Why a cursor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad cursor")]
pub struct BadCursor;

#[derive(Clone)]
pub struct Store;

#[allow(unused_variables, clippy::unused_async)]
impl Store {
    /// Opens `sqlite://path` (creating the folder and file, WAL mode) or
    /// `postgres://…`, and applies the migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Ok(Store)
    }
    pub async fn call_started(&self, call: &NewCall) -> Result<(), StoreError> {
        Ok(())
    }
    pub async fn call_answered(&self, call_sid: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        Ok(())
    }
    pub async fn add_turn(&self, call_sid: &str, turn: &TurnRecord) -> Result<(), StoreError> {
        Ok(())
    }
    pub async fn add_event(&self, call_sid: &str, event: &EventRow) -> Result<(), StoreError> {
        Ok(())
    }
    /// Idempotent on (call_sid, sequence): returns false for a duplicate.
    /// The call's status is the one of the highest sequence seen, whatever
    /// the arrival order; `duration_secs` from `CallDuration` when given.
    pub async fn status_callback(
        &self,
        call_sid: &str,
        sequence: u32,
        status: &str,
        duration_secs: Option<i64>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(true)
    }
    pub async fn call_ended(
        &self,
        call_sid: &str,
        at: DateTime<Utc>,
        end_reason: &str,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    /// This replica is alive and has these calls in progress.
    pub async fn heartbeat(&self, replica: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        Ok(())
    }
    /// Calls in progress on every replica (live = not ended, heartbeat fresh).
    pub async fn live_calls(&self, now: DateTime<Utc>) -> Result<Vec<CallRow>, StoreError> {
        Ok(Vec::new())
    }
    /// Ends (`abnormal`) the calls of replicas whose heartbeat is stale,
    /// including this replica's own calls from before a restart.
    pub async fn end_abandoned(
        &self,
        now: DateTime<Utc>,
        own_replica: &str,
    ) -> Result<u64, StoreError> {
        Ok(0)
    }
    pub async fn list_calls(
        &self,
        filter: &CallFilter,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Result<Page, BadCursor>, StoreError> {
        Ok(Ok(Page {
            calls: Vec::new(),
            next: None,
        }))
    }
    pub async fn get_call(&self, call_sid: &str) -> Result<Option<CallDetail>, StoreError> {
        Ok(None)
    }
    /// Erases the call, its turns and events (and its caller-memory summary).
    pub async fn delete_call(&self, call_sid: &str) -> Result<bool, StoreError> {
        Ok(false)
    }
    /// Calls from `number` that started at or after `since` (rate limits).
    pub async fn calls_from_since(
        &self,
        number: &str,
        since: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(0)
    }
    /// Caller memory: the summary of a call, kept per caller number.
    pub async fn save_summary(
        &self,
        call_sid: &str,
        number: &str,
        summary: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    /// An outbound call's own greeting and instructions, kept from `POST
    /// /api/calls` until the call's stream starts (possibly on another replica).
    pub async fn save_outbound_plan(
        &self,
        call_sid: &str,
        greeting: Option<&str>,
        instructions: Option<&str>,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    pub async fn outbound_plan(
        &self,
        call_sid: &str,
    ) -> Result<Option<(Option<String>, Option<String>)>, StoreError> {
        Ok(None)
    }
    /// The newest `n` summaries for `number`, newest first.
    pub async fn recent_summaries(&self, number: &str, n: u32) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
}
