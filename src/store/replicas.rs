//! Which calls are really in progress. A call is written as it starts and as
//! it ends, but a replica that dies (killed, power cut) never writes the end.
//! So each replica beats a heartbeat, a call counts as live only while its
//! replica's heartbeat is fresh, and a replica starting up ends the calls of
//! dead replicas, and its own from before the restart, as `abnormal`.

use chrono::{DateTime, TimeDelta, Utc};

use super::rows::{CALL_SELECT, call_row};
use super::{Store, StoreError, delta_micros, micros};
use crate::model::EndReason;

/// How old a replica's last heartbeat may be for its calls to count as live.
/// Replicas beat every few seconds (5 s is the intent), so 15 s tolerates two
/// missed beats (a slow disk, a busy host, a brief database
/// hiccup) while a dead replica's calls stop showing as live within 15 s.
pub const LIVE_WINDOW: TimeDelta = TimeDelta::seconds(15);

/// The oldest heartbeat (µs) that is still fresh at `now`.
pub(super) fn live_cutoff(now: DateTime<Utc>) -> i64 {
    micros(now).saturating_sub(delta_micros(LIVE_WINDOW))
}

impl Store {
    /// This replica is alive and has these calls in progress.
    /// Upserts `at` as its last beat: its unended calls count as live until
    /// [`LIVE_WINDOW`] after it.
    pub async fn heartbeat(&self, replica: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO replicas (id, heartbeat_at) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at";
        on_db!(self, |pool, _d| {
            sqlx::query(SQL)
                .bind(replica)
                .bind(micros(at))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Calls in progress on every replica (live = not ended, heartbeat fresh
    /// within [`LIVE_WINDOW`] of `now`), newest first.
    pub async fn live_calls(&self, now: DateTime<Utc>) -> Result<Vec<super::CallRow>, StoreError> {
        let sql = format!(
            "{CALL_SELECT} WHERE c.ended_at IS NULL AND r.heartbeat_at >= $1 \
             ORDER BY c.started_at DESC, c.sid DESC"
        );
        let cutoff = live_cutoff(now);
        on_db!(self, |pool, _d| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(cutoff)
                .fetch_all(pool)
                .await?;
            rows.iter().map(|row| call_row(row, cutoff)).collect()
        })
    }

    /// Ends (`abnormal`) the calls of replicas whose heartbeat is stale,
    /// including this replica's own calls from before a restart.
    ///
    /// Meant for start-up, before this replica takes calls: every call not
    /// ended whose replica is `own_replica`, or has no heartbeat within
    /// [`LIVE_WINDOW`] of `now`, gets `ended_at = now`. A row made only by a
    /// status callback (no replica yet) is ended once it is older than the
    /// window, so one whose `/voice` webhook is just arriving is spared.
    /// Returns how many calls were ended.
    pub async fn end_abandoned(
        &self,
        now: DateTime<Utc>,
        own_replica: &str,
    ) -> Result<u64, StoreError> {
        const SQL: &str = "UPDATE calls SET ended_at = $1, end_reason = $4 \
             WHERE ended_at IS NULL AND (replica = $2 \
             OR (replica IS NULL AND started_at < $3) \
             OR (replica IS NOT NULL AND NOT EXISTS (SELECT 1 FROM replicas r \
             WHERE r.id = calls.replica AND r.heartbeat_at >= $3)))";
        self.end_as_abnormal(SQL, now, own_replica).await
    }

    /// Ends (`abnormal`) the calls of *other* replicas whose heartbeat is
    /// stale: a replica that died and never came back. Safe to run
    /// periodically (unlike [`Store::end_abandoned`], it never touches this
    /// replica's own calls); returns how many.
    pub async fn end_stale(
        &self,
        now: DateTime<Utc>,
        own_replica: &str,
    ) -> Result<u64, StoreError> {
        const SQL: &str = "UPDATE calls SET ended_at = $1, end_reason = $4 \
             WHERE ended_at IS NULL AND replica IS NOT NULL AND replica <> $2 \
             AND NOT EXISTS (SELECT 1 FROM replicas r \
             WHERE r.id = calls.replica AND r.heartbeat_at >= $3)";
        self.end_as_abnormal(SQL, now, own_replica).await
    }

    /// Runs one of the `abnormal`-ending updates: `$1` now, `$2` this
    /// replica, `$3` the oldest heartbeat that still counts as alive, `$4`
    /// the end reason.
    async fn end_as_abnormal(
        &self,
        sql: &'static str,
        now: DateTime<Utc>,
        own_replica: &str,
    ) -> Result<u64, StoreError> {
        let ended = on_db!(self, |pool, _d| sqlx::query(sql)
            .bind(micros(now))
            .bind(own_replica)
            .bind(live_cutoff(now))
            .bind(EndReason::Abnormal.as_str())
            .execute(pool)
            .await?
            .rows_affected());
        Ok(ended)
    }
}
