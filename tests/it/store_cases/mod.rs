//! The store's test cases, written once and run against SQLite
//! (`store_sqlite.rs`) and PostgreSQL (`store_postgres.rs`).
//!
//! Each case gets a database of its own (a fresh temp folder, or a fresh
//! PostgreSQL schema), so the cases run in parallel without seeing each
//! other's calls. `store_tests!` declares one `#[tokio::test]` per case.

mod agents;
mod cases;
mod history;
mod live;

pub use agents::*;
pub use cases::*;
pub use history::*;
pub use live::*;

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use pronto::model::{CallInfo, CallStatus, EventRow, TurnDecider, TurnLatency, TurnRecord};
use pronto::store::{CallFilter, NewCall, Store};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Executor};

/// A database for one case, and a way to reach it behind the store's back.
#[derive(Clone, Debug)]
pub struct TestDb {
    pub url: String,
    pub kind: Kind,
}

#[derive(Clone, Debug)]
pub enum Kind {
    /// `dir` is the case's own temp folder; `file` is inside subfolders of it
    /// that do not exist until the store is opened.
    Sqlite { dir: PathBuf, file: PathBuf },
    /// `base` is `TEST_DATABASE_URL`; `schema` is the case's own.
    Postgres { base: String, schema: String },
}

fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = Utc::now().timestamp_subsec_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{}_{n}_{nanos}", std::process::id())
}

/// A SQLite database in a new folder under the system's temp dir.
pub async fn sqlite() -> Option<TestDb> {
    let dir = std::env::temp_dir().join(unique("pronto-store"));
    let file = dir.join("data").join("nested").join("pronto.db");
    Some(TestDb {
        url: format!("sqlite://{}", file.display()),
        kind: Kind::Sqlite { dir, file },
    })
}

/// A fresh schema in `TEST_DATABASE_URL`'s database, or `None` (after saying
/// so, once, where `cargo test` shows it) when the variable is not set.
pub async fn postgres() -> Option<TestDb> {
    let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            // Straight to the stream: libtest captures `eprintln!`.
            let _ = writeln!(
                std::io::stderr(),
                "store_postgres: skipped (TEST_DATABASE_URL not set)"
            );
        });
        return None;
    };
    let schema = unique("pronto_test");
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&base)
        .await
        .expect("connect to TEST_DATABASE_URL");
    pool.execute(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .await
        .expect("create schema");
    pool.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(TestDb {
        url: format!("{base}{sep}options=-c%20search_path%3D{schema}"),
        kind: Kind::Postgres { base, schema },
    })
}

/// Runs `case` on a fresh database from `fixture` (skipped when there is
/// none), then removes the database.
pub async fn run<F, Fut>(fixture: Option<TestDb>, case: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = fixture else { return };
    case(db.clone()).await;
    db.remove().await;
}

/// Runs `$body` with `$pool` a pool of the case's database (behind the
/// store's back), for either driver, then closes it.
macro_rules! with_raw {
    ($db:expr, |$pool:ident| $body:expr) => {
        match &$db.kind {
            Kind::Sqlite { file, .. } => {
                let options = SqliteConnectOptions::new().filename(file);
                let $pool = SqlitePoolOptions::new()
                    .connect_with(options)
                    .await
                    .expect("raw");
                let out = $body;
                $pool.close().await;
                out
            }
            Kind::Postgres { .. } => {
                let $pool = PgPoolOptions::new().connect(&$db.url).await.expect("raw");
                let out = $body;
                $pool.close().await;
                out
            }
        }
    };
}

impl TestDb {
    pub async fn open(&self) -> Store {
        Store::open(&self.url).await.expect("open the store")
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.kind, Kind::Postgres { .. })
    }

    /// Runs raw SQL in the store's database (to plant bad data, or to look).
    pub async fn exec(&self, sql: &str) {
        with_raw!(self, |pool| {
            pool.execute(AssertSqlSafe(sql.to_owned()))
                .await
                .expect(sql);
        });
    }

    /// One integer from raw SQL.
    pub async fn count(&self, sql: &str) -> i64 {
        with_raw!(self, |pool| sqlx::query_scalar(AssertSqlSafe(
            sql.to_owned()
        ))
        .fetch_one(&pool)
        .await
        .expect(sql))
    }

    async fn remove(&self) {
        match &self.kind {
            Kind::Sqlite { dir, .. } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Kind::Postgres { base, schema } => {
                if let Ok(pool) = PgPoolOptions::new().connect(base).await {
                    let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                    let _ = pool.execute(AssertSqlSafe(drop)).await;
                    pool.close().await;
                }
            }
        }
    }
}

/// Declares one `#[tokio::test]` per shared case, each on a fresh database
/// from `$fixture` (`store_cases::sqlite` or `store_cases::postgres`).
macro_rules! store_tests {
    ($fixture:path; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                store_cases::run($fixture().await, store_cases::$case).await;
            }
        )+
    };
}

/// One test per shared case (`#[macro_use] mod store_cases;` first).
macro_rules! all_store_tests {
    ($fixture:path) => {
        store_tests!($fixture;
            reopen_keeps_data_and_does_not_migrate_again,
            newer_schema_is_refused,
            call_lifecycle,
            writes_for_unknown_calls_fail_cleanly,
            turns_round_trip_exactly,
            status_callbacks_shuffled_and_repeated,
            status_callback_before_the_webhook,
            a_status_twilio_does_not_send_is_kept_as_unknown,
            paging_visits_each_call_once_in_order,
            page_limit_is_clamped,
            every_filter,
            bad_cursors_are_refused,
            delete_erases_everything_of_the_call,
            an_erased_call_stays_erased,
            live_calls_follow_heartbeats,
            end_abandoned_ends_dead_and_own_calls,
            summaries_and_call_counts,
            concurrent_writers_lose_nothing,
            bad_data_is_an_error_not_a_panic,
            the_record_keeps_its_agent,
            calls_filter_by_agent,
            a_call_from_before_agents_reads_as_default,
        );
    };
}

// ---- builders shared by the cases ----

/// 2025-05-01 12:00:00.123456 UTC: with microseconds, to catch rounding.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 5, 1, 12, 0, 0).unwrap() + TimeDelta::microseconds(123_456)
}

pub fn secs(s: i64) -> TimeDelta {
    TimeDelta::seconds(s)
}

pub fn new_call(sid: &str, from: &str, started_at: DateTime<Utc>, replica: &str) -> NewCall {
    NewCall {
        call: CallInfo {
            call_sid: sid.into(),
            direction: "inbound".into(),
            agent: "default".into(),
            from: from.into(),
            to: "+390212345678".into(),
            started_at,
        },
        status: Some(CallStatus::Ringing),
        replica: replica.into(),
    }
}

pub fn turn(n: u32, caller: Option<&str>, said: &str) -> TurnRecord {
    TurnRecord {
        turn: n,
        caller: caller.map(str::to_owned),
        agent_said: said.into(),
        agent_heard: said.into(),
        // Turns of three carry what speech-to-speech engines add.
        heard_approximate: n.is_multiple_of(3),
        by_operator: n.is_multiple_of(4),
        at_ms: (n > 0).then_some(u64::from(n) * 1000),
        interrupted: false,
        latency: TurnLatency {
            turn: n,
            utterance_ms: 1200 + u64::from(n),
            endpoint_wait_ms: 600,
            stt_ms: Some(310),
            llm_first_token_ms: Some(420),
            first_sentence_ms: Some(650),
            tts_first_byte_ms: Some(180),
            voice_to_voice_ms: Some(1790),
            model_first_audio_ms: n.is_multiple_of(3).then_some(900 + u64::from(n)),
            pipeline_overhead_ms: Some(50),
            // Odd turns carry the stages streaming speech-to-text adds, so
            // both kinds of row go through the store and back.
            decided_by: if n % 2 == 1 {
                TurnDecider::Provider
            } else {
                TurnDecider::Silence
            },
            turn_decided_ms: 260 + u64::from(n),
            stt_final_ms: (n % 2 == 1).then_some(30),
            speculative: n % 2 == 1,
            first_tts_request_ms: Some(520),
            interrupted: false,
        },
    }
}

pub fn event(at: DateTime<Utc>, kind: &str, n: u32) -> EventRow {
    EventRow {
        at,
        kind: kind.into(),
        detail: json!({ "n": n, "nested": { "list": [1, "two", null] } }),
    }
}

/// The SIDs of a page, in order.
pub async fn list_sids(store: &Store, filter: &CallFilter) -> Vec<String> {
    let page = store
        .list_calls(filter, 200, None)
        .await
        .expect("list")
        .expect("no cursor");
    page.calls.into_iter().map(|c| c.call_sid).collect()
}
