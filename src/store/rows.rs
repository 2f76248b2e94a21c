//! Reading rows of either driver into the store's types, and SQL assembled
//! at run time (the list filters) with its parameters.
//!
//! Nothing read from the database is trusted: a NULL where a value belongs,
//! a number out of range or JSON that does not parse is a [`StoreError`].

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::types::Json;
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{CallRow, StoreError, from_micros};
use crate::model::{
    CallStatus, Direction, EndReason, EventRow, TurnDecider, TurnLatency, TurnRecord,
};

/// The columns every call query selects, in a fixed shape for [`call_row`]:
/// the call, its replica's heartbeat (for `live`) and its number of turns.
pub(super) const CALL_SELECT: &str = "SELECT c.sid, c.direction, c.agent, c.from_number, c.to_number, \
     c.from_masked, c.to_masked, c.started_at, c.answered_at, c.ended_at, c.status, \
     c.end_reason, c.duration_secs, r.heartbeat_at, \
     (SELECT COUNT(*) FROM turns t WHERE t.call_sid = c.sid) AS turn_count \
     FROM calls c LEFT JOIN replicas r ON r.id = c.replica";

/// Typed column access, the same for a `SqliteRow` and a `PgRow`: the few
/// column types the store uses, so the readers below need no driver bounds.
pub(super) trait StoreRow {
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn flag(&self, column: &str) -> Result<bool, StoreError>;
    fn json(&self, column: &str) -> Result<Value, StoreError>;

    /// A stored time.
    fn time(&self, column: &str) -> Result<DateTime<Utc>, StoreError> {
        from_micros(self.int(column)?)
    }

    /// A stored time that may be unset.
    fn opt_time(&self, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.opt_int(column)?.map(from_micros).transpose()
    }
}

/// Implements [`StoreRow`] for one driver's row type (the same body twice).
macro_rules! store_row {
    ($row:ty) => {
        impl StoreRow for $row {
            fn int(&self, column: &str) -> Result<i64, StoreError> {
                get(self, column)
            }
            fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
                get(self, column)
            }
            fn text(&self, column: &str) -> Result<String, StoreError> {
                get(self, column)
            }
            fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
                get(self, column)
            }
            fn flag(&self, column: &str) -> Result<bool, StoreError> {
                get(self, column)
            }
            fn json(&self, column: &str) -> Result<Value, StoreError> {
                get::<_, Json<Value>>(self, column).map(|Json(v)| v)
            }
        }
    };
}
store_row!(SqliteRow);
store_row!(PgRow);

fn get<'r, R, T>(row: &'r R, column: &str) -> Result<T, StoreError>
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get(column)
        .map_err(|e| StoreError::new(format!("column {column}: {e}")))
}

/// A stored non-negative count (milliseconds, a turn number).
fn unsigned<T: TryFrom<i64>>(value: i64, column: &str) -> Result<T, StoreError> {
    T::try_from(value)
        .map_err(|_| StoreError::new(format!("column {column}: {value} out of range")))
}

/// A count to store; `u64` milliseconds beyond `i64` are refused, not wrapped.
pub(super) fn signed(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::new(format!("{what}: {value} out of range")))
}

/// A row of [`CALL_SELECT`]. `live` is worked out here from the heartbeat,
/// against `cutoff` (µs): the same rule `live_calls` applies in SQL.
pub(super) fn call_row(row: &impl StoreRow, cutoff: i64) -> Result<CallRow, StoreError> {
    let ended_at = row.opt_time("ended_at")?;
    let heartbeat = row.opt_int("heartbeat_at")?;
    Ok(CallRow {
        call_sid: row.text("sid")?,
        direction: Direction::parse(&row.text("direction")?),
        agent: row.text("agent")?,
        from: row.text("from_masked")?,
        to: row.text("to_masked")?,
        started_at: row.time("started_at")?,
        answered_at: row.opt_time("answered_at")?,
        live: ended_at.is_none() && heartbeat.is_some_and(|hb| hb >= cutoff),
        ended_at,
        status: row.opt_text("status")?.map(|s| CallStatus::parse(&s)),
        end_reason: row
            .opt_text("end_reason")?
            .map(|r| {
                EndReason::parse(&r)
                    .ok_or_else(|| StoreError::new(format!("column end_reason: unknown {r:?}")))
            })
            .transpose()?,
        duration_secs: row.opt_int("duration_secs")?,
        turns: row.int("turn_count")?,
    })
}

/// The columns [`turn_record`] reads, in `SELECT` form.
pub(super) const TURN_COLUMNS: &str = "turn, caller, agent_said, agent_heard, interrupted, \
     utterance_ms, endpoint_wait_ms, stt_ms, llm_first_token_ms, first_sentence_ms, \
     tts_first_byte_ms, voice_to_voice_ms, pipeline_overhead_ms, decided_by, turn_decided_ms, \
     stt_final_ms, speculative, first_tts_request_ms, model_first_audio_ms, heard_approximate, \
     by_operator, at_ms";

/// A turn back. The latency's own `turn` and `interrupted` are the record's
/// (the session fills them from the same values), so they are stored once.
pub(super) fn turn_record(row: &impl StoreRow) -> Result<TurnRecord, StoreError> {
    let ms = |column: &str| -> Result<Option<u64>, StoreError> {
        row.opt_int(column)?
            .map(|v| unsigned(v, column))
            .transpose()
    };
    let turn: u32 = unsigned(row.int("turn")?, "turn")?;
    let interrupted = row.flag("interrupted")?;
    Ok(TurnRecord {
        turn,
        at_ms: ms("at_ms")?,
        caller: row.opt_text("caller")?,
        agent_said: row.text("agent_said")?,
        agent_heard: row.text("agent_heard")?,
        heard_approximate: row.flag("heard_approximate")?,
        by_operator: row.flag("by_operator")?,
        interrupted,
        latency: TurnLatency {
            turn,
            utterance_ms: unsigned(row.int("utterance_ms")?, "utterance_ms")?,
            endpoint_wait_ms: unsigned(row.int("endpoint_wait_ms")?, "endpoint_wait_ms")?,
            stt_ms: ms("stt_ms")?,
            llm_first_token_ms: ms("llm_first_token_ms")?,
            first_sentence_ms: ms("first_sentence_ms")?,
            tts_first_byte_ms: ms("tts_first_byte_ms")?,
            voice_to_voice_ms: ms("voice_to_voice_ms")?,
            pipeline_overhead_ms: row.opt_int("pipeline_overhead_ms")?,
            decided_by: decider(&row.text("decided_by")?),
            turn_decided_ms: unsigned(row.int("turn_decided_ms")?, "turn_decided_ms")?,
            stt_final_ms: ms("stt_final_ms")?,
            speculative: row.flag("speculative")?,
            first_tts_request_ms: ms("first_tts_request_ms")?,
            model_first_audio_ms: ms("model_first_audio_ms")?,
            interrupted,
        },
    })
}

/// Who decided a turn, from its stored name (an unknown name, from a newer
/// Pronto sharing the database, reads as the default).
fn decider(name: &str) -> TurnDecider {
    [
        TurnDecider::Silence,
        TurnDecider::Model,
        TurnDecider::Provider,
        TurnDecider::Ceiling,
        TurnDecider::Keypad,
    ]
    .into_iter()
    .find(|d| d.as_str() == name)
    .unwrap_or_default()
}

/// An event back (`at`, `kind`, `detail`).
pub(super) fn event_row(row: &impl StoreRow) -> Result<EventRow, StoreError> {
    Ok(EventRow {
        at: row.time("at")?,
        kind: row.text("kind")?,
        detail: row.json("detail")?,
    })
}

/// A parameter of SQL assembled at run time.
pub(super) enum Arg {
    Int(i64),
    Text(String),
}

/// SQL assembled at run time from constant pieces, with `$n` parameters
/// (both dialects number them the same way) bound in order.
#[derive(Default)]
pub(super) struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Sql {
            text: text.to_owned(),
            args: Vec::new(),
        }
    }

    /// Adds a parameter; returns its placeholder.
    pub fn arg(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    pub fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }
}

/// A `sqlx::query` of a [`Sql`], its parameters bound.
macro_rules! query_of {
    ($sql:expr) => {{
        let sql: $crate::store::rows::Sql = $sql;
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.text));
        for arg in sql.args {
            query = match arg {
                $crate::store::rows::Arg::Int(v) => query.bind(v),
                $crate::store::rows::Arg::Text(v) => query.bind(v),
            };
        }
        query
    }};
}
pub(super) use query_of;
