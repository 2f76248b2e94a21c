//! What the agent may know about a caller from earlier calls: how often they
//! called (rate limits) and the summaries of their last calls (caller memory).
//! Looked up by the full number, which only the store holds.

use chrono::{DateTime, Utc};

use super::erase::unless_erased;
use super::{Store, StoreError, micros};

impl Store {
    /// Calls from `number` that started at or after `since` (rate limits).
    pub async fn calls_from_since(
        &self,
        number: &str,
        since: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM calls WHERE from_number = $1 AND started_at >= $2";
        let n: i64 = on_db!(self, |pool, _d| sqlx::query_scalar(SQL)
            .bind(number)
            .bind(micros(since))
            .fetch_one(pool)
            .await?);
        u64::try_from(n).map_err(|_| StoreError::new(format!("negative count {n}")))
    }

    /// Caller memory: the summary of a call, kept per caller number. One per
    /// call: saving again for the same call replaces it. Nothing is kept for
    /// an erased call.
    pub async fn save_summary(
        &self,
        call_sid: &str,
        number: &str,
        summary: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const SQL: &str = concat!(
            "INSERT INTO summaries (call_sid, number, at, summary) SELECT $1, $2, $3, $4",
            unless_erased!(),
            " ON CONFLICT (call_sid) DO UPDATE SET \
             number = excluded.number, at = excluded.at, summary = excluded.summary"
        );
        on_db!(self, |pool, _d| {
            sqlx::query(SQL)
                .bind(call_sid)
                .bind(number)
                .bind(micros(at))
                .bind(summary)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The newest `n` summaries for `number`, newest first.
    pub async fn recent_summaries(&self, number: &str, n: u32) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "SELECT summary FROM summaries WHERE number = $1 \
             ORDER BY at DESC, call_sid DESC LIMIT $2";
        let summaries: Vec<String> = on_db!(self, |pool, _d| sqlx::query_scalar(SQL)
            .bind(number)
            .bind(i64::from(n))
            .fetch_all(pool)
            .await?);
        Ok(summaries)
    }
}
