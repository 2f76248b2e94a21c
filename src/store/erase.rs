//! Erasing a call for good (a privacy request): its row, turns, events,
//! status callbacks, caller-memory summary and outbound plan go, and its SID
//! is remembered in `erased_calls`, so that nothing can bring the call back
//! afterwards: not a late status callback from Twilio, not its session still
//! writing turns and its end, not the summary written when it hangs up, on
//! this replica or any other sharing the database.
//!
//! The writes that could create a row for a call guard themselves with
//! [`unless_erased!`]; the updates of an existing row find none and say so
//! quietly ([`Store::known`]).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Store, StoreError, micros};

/// The SQL condition that the call `$1` was not erased, for the write
/// statements that would otherwise (re)create one of its rows.
macro_rules! unless_erased {
    () => {
        " WHERE NOT EXISTS (SELECT 1 FROM erased_calls WHERE erased_calls.sid = $1)"
    };
}
pub(super) use unless_erased;

/// What an erase removed from the history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Erased {
    /// The call's own row was there.
    pub call: bool,
    pub turns: u64,
    pub events: u64,
    pub status_callbacks: u64,
    /// Caller-memory summaries of this call.
    pub summaries: u64,
    /// An outbound call's own greeting and instructions.
    pub outbound_plan: bool,
}

impl Erased {
    /// Whether the history held anything of the call.
    pub fn found(&self) -> bool {
        *self != Erased::default()
    }
}

impl Store {
    /// Erases everything the history holds of `call_sid` and remembers the
    /// SID as erased (even when nothing was found: the call may be live and
    /// its row still queued), in one transaction.
    pub async fn erase_call(
        &self,
        call_sid: &str,
        at: DateTime<Utc>,
    ) -> Result<Erased, StoreError> {
        const REMEMBER: &str =
            "INSERT INTO erased_calls (sid, at) VALUES ($1, $2) ON CONFLICT (sid) DO NOTHING";
        // Children first, each counted; the call's row last (its foreign
        // keys would cascade, but then nothing would say how much went).
        const DELETE: [&str; 6] = [
            "DELETE FROM turns WHERE call_sid = $1",
            "DELETE FROM events WHERE call_sid = $1",
            "DELETE FROM status_callbacks WHERE call_sid = $1",
            "DELETE FROM summaries WHERE call_sid = $1",
            "DELETE FROM outbound_plans WHERE call_sid = $1",
            "DELETE FROM calls WHERE sid = $1",
        ];
        let n = on_db!(self, |pool, dialect| {
            let mut tx = pool.begin_with(dialect.begin_write()).await?;
            sqlx::query(REMEMBER)
                .bind(call_sid)
                .bind(micros(at))
                .execute(&mut *tx)
                .await?;
            let mut n = [0u64; DELETE.len()];
            for (sql, n) in DELETE.iter().zip(&mut n) {
                *n = sqlx::query(*sql)
                    .bind(call_sid)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            tx.commit().await?;
            n
        });
        let [turns, events, status_callbacks, summaries, plans, calls] = n;
        Ok(Erased {
            call: calls > 0,
            turns,
            events,
            status_callbacks,
            summaries,
            outbound_plan: plans > 0,
        })
    }

    /// Whether `call_sid` was erased.
    pub async fn is_erased(&self, call_sid: &str) -> Result<bool, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM erased_calls WHERE sid = $1";
        let n: i64 = on_db!(self, |pool, _d| sqlx::query_scalar(SQL)
            .bind(call_sid)
            .fetch_one(pool)
            .await?);
        Ok(n > 0)
    }

    /// Whether the call has ended or was erased: a webhook for it now is a
    /// replay, or a retry too late to matter.
    pub async fn call_is_over(&self, call_sid: &str) -> Result<bool, StoreError> {
        const SQL: &str = "SELECT \
             (SELECT COUNT(*) FROM calls WHERE sid = $1 AND ended_at IS NOT NULL) + \
             (SELECT COUNT(*) FROM erased_calls WHERE sid = $1)";
        let n: i64 = on_db!(self, |pool, _d| sqlx::query_scalar(SQL)
            .bind(call_sid)
            .fetch_one(pool)
            .await?);
        Ok(n > 0)
    }

    /// An update that touched no row: fine for a call erased meanwhile,
    /// otherwise it was about a call the store never saw.
    pub(super) async fn known(&self, rows: u64, call_sid: &str) -> Result<(), StoreError> {
        if rows == 0 && !self.is_erased(call_sid).await? {
            return Err(StoreError::new(format!("no call {call_sid}")));
        }
        Ok(())
    }
}
