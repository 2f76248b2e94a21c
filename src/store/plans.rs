//! Outbound calls' plans: the greeting and instructions given to `POST
//! /api/calls`, read when the call's stream starts. Kept in the store rather
//! than in memory because the answer may reach another replica.

use super::{Store, StoreError};

impl Store {
    pub async fn save_outbound_plan(
        &self,
        call_sid: &str,
        greeting: Option<&str>,
        instructions: Option<&str>,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO outbound_plans (call_sid, greeting, instructions) \
             VALUES ($1, $2, $3) ON CONFLICT (call_sid) DO UPDATE SET \
             greeting = excluded.greeting, instructions = excluded.instructions";
        on_db!(self, |pool, _d| {
            sqlx::query(SQL)
                .bind(call_sid)
                .bind(greeting)
                .bind(instructions)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// `(greeting, instructions)` of an outbound call, if it has a plan.
    pub async fn outbound_plan(
        &self,
        call_sid: &str,
    ) -> Result<Option<(Option<String>, Option<String>)>, StoreError> {
        const SQL: &str = "SELECT greeting, instructions FROM outbound_plans WHERE call_sid = $1";
        let row: Option<(Option<String>, Option<String>)> =
            on_db!(self, |pool, _d| sqlx::query_as(SQL)
                .bind(call_sid)
                .fetch_optional(pool)
                .await?);
        Ok(row)
    }
}
