//! The durable call history: every call, its turns, its events and Twilio's
//! status callbacks, written as they happen, so a crash or a restart loses
//! nothing already said, and several replicas can share one history.
//!
//! SQLite by default (`DATABASE_URL=sqlite://data/pronto.db`), PostgreSQL for
//! a shared history (`postgres://…`). Every method is async, is one small
//! transaction (or one statement), and returns `Result<_, StoreError>`; the
//! server keeps running when the store fails (it logs and skips), so no method
//! may panic on bad data: a value from the database that does not parse is a
//! `StoreError`.
//!
//! # Two drivers, one set of SQL
//!
//! [`Store`] holds an enum over `SqlitePool` and `PgPool` rather than
//! `sqlx::Any`: each driver needs its own connect options (SQLite's WAL mode,
//! busy timeout, foreign keys and `synchronous`, which `Any`'s URL-only
//! options cannot set), SQLite writers need `BEGIN IMMEDIATE` to wait on the
//! busy timeout instead of failing, and `Any` only carries a handful of types
//! (no JSON). The SQL is still written once: both dialects take `$1`-style
//! parameters, `ON CONFLICT … DO UPDATE`, row-value comparisons and partial
//! indexes, and `on_db!` expands one body for each pool. Times are `BIGINT`
//! microseconds since the Unix epoch in both, which round-trips
//! `DateTime<Utc>` exactly to the microsecond, sorts and compares as plain
//! integers, and needs no per-driver date handling. Only the schema differs
//! (`migrations/sqlite`, `migrations/postgres`): identity columns and JSON.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use sqlx::{PgPool, SqlitePool};

use crate::model::{CallInfo, CallStatus, Direction, EndReason, EventRow, TurnRecord};

/// Expands `$body` once for each driver, with `$pool` bound to that driver's
/// pool and `$dialect` to its [`Dialect`], so one piece of SQL-running code
/// serves both (each arm is compiled against its own driver's types).
macro_rules! on_db {
    ($store:expr, |$pool:ident, $dialect:ident| $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite($pool) => {
                let $dialect = $crate::store::Dialect::Sqlite;
                let _ = $dialect;
                $body
            }
            $crate::store::Db::Postgres($pool) => {
                let $dialect = $crate::store::Dialect::Postgres;
                let _ = $dialect;
                $body
            }
        }
    };
}

mod calls;
mod cursor;
mod erase;
mod memory;
mod plans;
mod read;
mod replicas;
mod rows;
mod schema;

pub use erase::Erased;
pub use read::MAX_PAGE;
pub use replicas::LIVE_WINDOW;

#[derive(Debug, thiserror::Error)]
#[error("store: {message}")]
pub struct StoreError {
    message: String,
    /// The database could not be reached or could not write (disk full, a
    /// restart, a lock held too long): the same write may succeed later.
    /// Otherwise the write itself was refused (bad data, no such call).
    pub unavailable: bool,
}

impl StoreError {
    /// A refused write or a value that does not parse: retrying is useless.
    pub fn new(message: impl Into<String>) -> StoreError {
        StoreError {
            message: message.into(),
            unavailable: false,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    /// Database messages name tables and constraints, never the bound values,
    /// so a phone number cannot reach a log line through an error.
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation
        {
            return StoreError::new("no such call (foreign key)");
        }
        StoreError {
            unavailable: is_unavailable(&e),
            message: format!("database: {e}"),
        }
    }
}

/// Whether `e` says the database is out of reach or out of room rather
/// than that the statement was wrong. SQLite's primary result codes
/// (https://www.sqlite.org/rescode.html): BUSY 5, LOCKED 6, NOMEM 7,
/// READONLY 8, IOERR 10, FULL 13, CANTOPEN 14, PROTOCOL 15. PostgreSQL's
/// SQLSTATE classes (https://www.postgresql.org/docs/current/errcodes-appendix.html):
/// 08 connection exception, 53 insufficient resources (53100 disk full),
/// 57P operator intervention (a shutdown or restart), 40001 and 40P01.
fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code();
            let code = code.as_deref().unwrap_or("");
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // Extended codes keep the primary one in the low byte.
                code.parse::<u32>()
                    .is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 7 | 8 | 10 | 13 | 14 | 15))
            } else {
                code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57P")
                    || code == "40001"
                    || code == "40P01"
            }
        }
        _ => false,
    }
}

/// A call as `/voice` (or an outbound request) first knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCall {
    pub call: CallInfo,
    /// Twilio's `CallStatus` at that moment, if known.
    pub status: Option<CallStatus>,
    /// The replica that answered (its id), for the heartbeat.
    pub replica: String,
}

/// A call in lists: numbers masked.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CallRow {
    pub call_sid: String,
    pub direction: Direction,
    /// The agent that answered it (`default`: the agent of
    /// `config/pronto.toml`, and every call from before agents).
    pub agent: String,
    pub from: String,
    pub to: String,
    pub started_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Twilio's latest call status (from the highest status-callback
    /// SequenceNumber), e.g. `completed`.
    pub status: Option<CallStatus>,
    /// Why the call ended, in Pronto's words: `caller_hung_up`, `agent_hung_up`,
    /// `transferred`, `max_duration`, `idle`, `shutdown`, `abnormal` (the
    /// replica died), `rejected`, `busy`...
    pub end_reason: Option<EndReason>,
    pub duration_secs: Option<i64>,
    /// In progress: not ended, and its replica's heartbeat is fresh.
    pub live: bool,
    pub turns: i64,
}

/// One call with everything: full numbers, turns, events.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CallDetail {
    #[serde(flatten)]
    pub call: CallRow,
    pub from_number: String,
    pub to_number: String,
    pub turns: Vec<TurnRecord>,
    pub events: Vec<EventRow>,
    /// A speech-to-speech engine's tokens over the whole call and their
    /// estimated cost (the sum of its `usage` events); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<crate::model::TokenUsage>,
}

/// Filters of `GET /api/calls` (all optional; `from`/`to` are full numbers).
/// `since` is inclusive and `until` exclusive (both on `started_at`), so
/// consecutive windows neither overlap nor leave a gap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFilter {
    pub from: Option<String>,
    pub to: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub status: Option<String>,
    /// Pronto's end reason, e.g. `caller_hung_up`.
    pub end_reason: Option<String>,
    /// Words in the transcript (what the caller or the agent said), any case.
    pub text: Option<String>,
    /// The agent that answered, by name.
    pub agent: Option<String>,
}

/// A page of calls, newest first; `next` is the opaque cursor for `before`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Page {
    pub calls: Vec<CallRow>,
    pub next: Option<String>,
}

/// Why a cursor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad cursor")]
pub struct BadCursor;

/// The call history. Cheap to clone: it is a connection pool.
#[derive(Clone)]
pub struct Store {
    db: Db,
}

/// The pool of whichever database `DATABASE_URL` names.
#[derive(Clone)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// What little of the SQL differs between the two drivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// How a writing transaction starts. SQLite's default (deferred) `BEGIN`
    /// takes the write lock only at the first write, and a transaction that
    /// has read before it writes cannot wait for that lock (its snapshot may
    /// be stale): it fails at once with `SQLITE_BUSY`, busy timeout or not.
    /// `IMMEDIATE` takes the lock up front, so concurrent writers queue
    /// whatever order a transaction's statements come in. PostgreSQL locks
    /// rows, not the database.
    fn begin_write(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }
}

impl Store {
    /// Opens `sqlite://path` (creating the folder and file, WAL mode) or
    /// `postgres://…`, and applies the migrations.
    ///
    /// `sqlite://data/pronto.db` and `sqlite:data/pronto.db` are relative to
    /// the working directory, `sqlite:///abs/path.db` is absolute. A database
    /// whose schema is newer than this binary knows is refused.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let db = schema::connect(url).await?;
        let store = Store { db };
        store.migrate().await?;
        Ok(store)
    }

    /// `sqlite` or `postgres`, for `/health` and the start-up log line.
    pub fn backend(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Closes the pool, waiting for the connections to finish their work
    /// (SQLite checkpoints its WAL into the main file on the last close).
    pub async fn close(&self) {
        on_db!(self, |pool, _d| pool.close().await)
    }
}

/// Microseconds since the Unix epoch: how every time is stored.
fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A stored time back; a value out of chrono's range is bad data, not a panic.
fn from_micros(us: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| StoreError::new(format!("time out of range: {us} µs")))
}

/// `TimeDelta` in microseconds, for comparisons with stored times.
fn delta_micros(d: TimeDelta) -> i64 {
    d.num_microseconds().unwrap_or(i64::MAX)
}
