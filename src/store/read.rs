//! Reading the history back: pages of calls for `GET /api/calls`, and one
//! call with everything for `GET /api/calls/{sid}`.

use chrono::Utc;

use super::cursor::Cursor;
use super::replicas::live_cutoff;
use super::rows::{
    Arg, CALL_SELECT, Sql, StoreRow, TURN_COLUMNS, call_row, event_row, query_of, turn_record,
};
use super::{BadCursor, CallDetail, CallFilter, Page, Store, StoreError, micros};
use crate::model::{EventRow, TokenUsage};

/// The most calls one page holds, whatever the client asks.
pub const MAX_PAGE: u32 = 200;

impl Store {
    /// Calls newest first by (started_at, sid), `limit` (clamped to
    /// 1..=[`MAX_PAGE`]) at a time; `before` is the `next` of the previous
    /// page. A cursor this store did not make is `Ok(Err(BadCursor))`, for a
    /// 400, never a server error.
    pub async fn list_calls(
        &self,
        filter: &CallFilter,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Result<Page, BadCursor>, StoreError> {
        let before = match before.map(Cursor::decode).transpose() {
            Ok(before) => before,
            Err(bad) => return Ok(Err(bad)),
        };
        let limit = limit.clamp(1, MAX_PAGE);
        let cutoff = live_cutoff(Utc::now());

        let mut sql = Sql::new(CALL_SELECT);
        sql.push(" WHERE 1 = 1");
        equals(&mut sql, "c.from_number", filter.from.as_ref());
        equals(&mut sql, "c.to_number", filter.to.as_ref());
        equals(&mut sql, "c.status", filter.status.as_ref());
        equals(&mut sql, "c.end_reason", filter.end_reason.as_ref());
        equals(&mut sql, "c.agent", filter.agent.as_ref());
        if let Some(text) = &filter.text {
            let p = sql.arg(Arg::Text(format!(
                "%{}%",
                like_escaped(&text.to_lowercase())
            )));
            sql.push(&format!(
                " AND EXISTS (SELECT 1 FROM turns t WHERE t.call_sid = c.sid \
                 AND (LOWER(t.caller) LIKE {p} ESCAPE '\\' OR LOWER(t.agent_said) LIKE {p} ESCAPE '\\'))"
            ));
        }
        if let Some(since) = filter.since {
            let p = sql.arg(Arg::Int(micros(since)));
            sql.push(&format!(" AND c.started_at >= {p}"));
        }
        if let Some(until) = filter.until {
            let p = sql.arg(Arg::Int(micros(until)));
            sql.push(&format!(" AND c.started_at < {p}"));
        }
        if let Some(cursor) = before {
            let at = sql.arg(Arg::Int(cursor.started_at));
            let sid = sql.arg(Arg::Text(cursor.sid));
            sql.push(&format!(" AND (c.started_at, c.sid) < ({at}, {sid})"));
        }
        // One more than asked: whether it comes back says if a next page exists.
        let n = sql.arg(Arg::Int(i64::from(limit) + 1));
        sql.push(&format!(
            " ORDER BY c.started_at DESC, c.sid DESC LIMIT {n}"
        ));

        let mut calls = on_db!(self, |pool, _d| {
            let rows = query_of!(sql).fetch_all(pool).await?;
            rows.iter()
                .map(|row| call_row(row, cutoff))
                .collect::<Result<Vec<_>, _>>()?
        });
        let next = if calls.len() > limit as usize {
            calls.truncate(limit as usize);
            calls.last().map(|last| {
                Cursor {
                    started_at: micros(last.started_at),
                    sid: last.call_sid.clone(),
                }
                .encode()
            })
        } else {
            None
        };
        Ok(Ok(Page { calls, next }))
    }

    /// The calls started since `since`, by end reason (`None`: not ended):
    /// the dashboard's day at a glance.
    pub async fn end_reasons_since(
        &self,
        since: chrono::DateTime<Utc>,
    ) -> Result<Vec<(Option<String>, i64)>, StoreError> {
        const SQL: &str = "SELECT end_reason, COUNT(*) AS n FROM calls \
             WHERE started_at >= $1 GROUP BY end_reason";
        on_db!(self, |pool, _d| {
            let rows = sqlx::query(SQL).bind(micros(since)).fetch_all(pool).await?;
            rows.iter()
                .map(|row| Ok((row.opt_text("end_reason")?, row.int("n")?)))
                .collect()
        })
    }

    /// The call with its full numbers, its turns by turn number and its
    /// events in the order they happened; `None` for an unknown SID. Read in
    /// one transaction, so the turns and events match the row.
    pub async fn get_call(&self, call_sid: &str) -> Result<Option<CallDetail>, StoreError> {
        let call_sql = format!("{CALL_SELECT} WHERE c.sid = $1");
        let turns_sql =
            format!("SELECT {TURN_COLUMNS} FROM turns WHERE call_sid = $1 ORDER BY turn");
        const EVENTS: &str =
            "SELECT at, kind, detail FROM events WHERE call_sid = $1 ORDER BY at, id";
        let cutoff = live_cutoff(Utc::now());
        on_db!(self, |pool, _d| {
            let mut tx = pool.begin().await?;
            let Some(row) = sqlx::query(sqlx::AssertSqlSafe(call_sql))
                .bind(call_sid)
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Ok(None);
            };
            let turns = sqlx::query(sqlx::AssertSqlSafe(turns_sql))
                .bind(call_sid)
                .fetch_all(&mut *tx)
                .await?;
            let events = sqlx::query(EVENTS)
                .bind(call_sid)
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            let events: Vec<EventRow> = events.iter().map(event_row).collect::<Result<_, _>>()?;
            Ok(Some(CallDetail {
                call: call_row(&row, cutoff)?,
                from_number: row.text("from_number")?,
                to_number: row.text("to_number")?,
                turns: turns.iter().map(turn_record).collect::<Result<_, _>>()?,
                usage: TokenUsage::of_call(&events),
                events,
            }))
        })
    }
}

/// `AND column = $n` when the filter has a value.
/// `text` matched literally by `LIKE ... ESCAPE '\'`: its wildcards escaped.
fn like_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn equals(sql: &mut Sql, column: &str, value: Option<&String>) {
    if let Some(v) = value {
        let p = sql.arg(Arg::Text(v.clone()));
        sql.push(&format!(" AND {column} = {p}"));
    }
}
