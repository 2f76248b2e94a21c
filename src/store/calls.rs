//! Writing a call as it happens: its start, answer and end, each turn, each
//! event and Twilio's status callbacks. Each method is one statement or one
//! short transaction, so what was written before a crash stays written.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::erase::unless_erased;
use super::rows::signed;
use super::{NewCall, Store, StoreError, micros};
use crate::model::{CallEvent, CallStatus, Direction, EndReason, EventRow, TurnRecord};
use crate::redact::mask_phone;

impl Store {
    /// Records the call. If a status callback got here first and created a
    /// minimal row, the row is completed, keeping the callback's status. An
    /// outbound call is recorded twice (when requested, and when answered at
    /// `/voice`): it keeps the earlier start.
    pub async fn call_started(&self, new: &NewCall) -> Result<(), StoreError> {
        const SQL: &str = concat!(
            "INSERT INTO calls (sid, direction, from_number, from_masked, \
             to_number, to_masked, started_at, status, replica, agent) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10",
            unless_erased!(),
            " ON CONFLICT (sid) DO UPDATE SET direction = excluded.direction, \
             agent = excluded.agent, \
             from_number = excluded.from_number, from_masked = excluded.from_masked, \
             to_number = excluded.to_number, to_masked = excluded.to_masked, \
             started_at = CASE WHEN excluded.started_at < calls.started_at \
             THEN excluded.started_at ELSE calls.started_at END, replica = excluded.replica, \
             status = CASE WHEN calls.status_seq IS NULL THEN excluded.status \
             ELSE calls.status END"
        );
        let NewCall {
            call,
            status,
            replica,
        } = new;
        on_db!(self, |pool, _d| {
            sqlx::query(SQL)
                .bind(&call.call_sid)
                .bind(call.direction.as_str())
                .bind(&call.from)
                .bind(mask_phone(&call.from))
                .bind(&call.to)
                .bind(mask_phone(&call.to))
                .bind(micros(call.started_at))
                .bind(status.as_ref().map(CallStatus::as_str))
                .bind(replica)
                .bind(&call.agent)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The media stream started: the caller is connected, and `agent`
    /// answers (the one the webhook chose, unless a reload removed it from a
    /// replica in between). The first time wins, so a repeated call changes
    /// nothing.
    pub async fn call_answered(
        &self,
        call_sid: &str,
        at: DateTime<Utc>,
        agent: &str,
    ) -> Result<(), StoreError> {
        const SQL: &str =
            "UPDATE calls SET answered_at = COALESCE(answered_at, $2), agent = $3 WHERE sid = $1";
        let done = on_db!(self, |pool, _d| sqlx::query(SQL)
            .bind(call_sid)
            .bind(micros(at))
            .bind(agent)
            .execute(pool)
            .await?
            .rows_affected());
        self.known(done, call_sid).await
    }

    /// Stores a turn; the same (call, turn number) again replaces it, as the
    /// session re-records a turn when the call ends.
    pub async fn add_turn(&self, call_sid: &str, turn: &TurnRecord) -> Result<(), StoreError> {
        const SQL: &str = concat!(
            "INSERT INTO turns (call_sid, turn, caller, agent_said, agent_heard, \
             interrupted, utterance_ms, endpoint_wait_ms, stt_ms, llm_first_token_ms, \
             first_sentence_ms, tts_first_byte_ms, voice_to_voice_ms, pipeline_overhead_ms, \
             decided_by, turn_decided_ms, stt_final_ms, speculative, first_tts_request_ms, \
             model_first_audio_ms, heard_approximate, by_operator, at_ms) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
             $15, $16, $17, $18, $19, $20, $21, $22, $23",
            unless_erased!(),
            " ON CONFLICT (call_sid, turn) DO UPDATE SET caller = excluded.caller, \
             agent_said = excluded.agent_said, agent_heard = excluded.agent_heard, \
             interrupted = excluded.interrupted, utterance_ms = excluded.utterance_ms, \
             endpoint_wait_ms = excluded.endpoint_wait_ms, stt_ms = excluded.stt_ms, \
             llm_first_token_ms = excluded.llm_first_token_ms, \
             first_sentence_ms = excluded.first_sentence_ms, \
             tts_first_byte_ms = excluded.tts_first_byte_ms, \
             voice_to_voice_ms = excluded.voice_to_voice_ms, \
             pipeline_overhead_ms = excluded.pipeline_overhead_ms, \
             decided_by = excluded.decided_by, turn_decided_ms = excluded.turn_decided_ms, \
             stt_final_ms = excluded.stt_final_ms, speculative = excluded.speculative, \
             first_tts_request_ms = excluded.first_tts_request_ms, \
             model_first_audio_ms = excluded.model_first_audio_ms, \
             heard_approximate = excluded.heard_approximate, \
             by_operator = excluded.by_operator, at_ms = excluded.at_ms"
        );
        let l = &turn.latency;
        let ms = |v: Option<u64>, what: &str| v.map(|v| signed(v, what)).transpose();
        let stt = ms(l.stt_ms, "stt_ms")?;
        let first_token = ms(l.llm_first_token_ms, "llm_first_token_ms")?;
        let first_sentence = ms(l.first_sentence_ms, "first_sentence_ms")?;
        let tts = ms(l.tts_first_byte_ms, "tts_first_byte_ms")?;
        let v2v = ms(l.voice_to_voice_ms, "voice_to_voice_ms")?;
        let utterance = signed(l.utterance_ms, "utterance_ms")?;
        let endpoint_wait = signed(l.endpoint_wait_ms, "endpoint_wait_ms")?;
        let decided = signed(l.turn_decided_ms, "turn_decided_ms")?;
        let stt_final = ms(l.stt_final_ms, "stt_final_ms")?;
        let first_tts_request = ms(l.first_tts_request_ms, "first_tts_request_ms")?;
        let model_first_audio = ms(l.model_first_audio_ms, "model_first_audio_ms")?;
        let at = ms(turn.at_ms, "at_ms")?;
        on_db!(self, |pool, _d| {
            sqlx::query(SQL)
                .bind(call_sid)
                .bind(i64::from(turn.turn))
                .bind(&turn.caller)
                .bind(&turn.agent_said)
                .bind(&turn.agent_heard)
                .bind(turn.interrupted)
                .bind(utterance)
                .bind(endpoint_wait)
                .bind(stt)
                .bind(first_token)
                .bind(first_sentence)
                .bind(tts)
                .bind(v2v)
                .bind(l.pipeline_overhead_ms)
                .bind(l.decided_by.as_str())
                .bind(decided)
                .bind(stt_final)
                .bind(l.speculative)
                .bind(first_tts_request)
                .bind(model_first_audio)
                .bind(turn.heard_approximate)
                .bind(turn.by_operator)
                .bind(at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    pub async fn add_event(&self, call_sid: &str, event: &EventRow) -> Result<(), StoreError> {
        const SQL: &str = concat!(
            "INSERT INTO events (call_sid, at, kind, detail) SELECT $1, $2, $3, $4",
            unless_erased!()
        );
        on_db!(self, |pool, _d| {
            sqlx::query(SQL)
                .bind(call_sid)
                .bind(micros(event.at))
                .bind(&event.kind)
                .bind(Json(&event.detail))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Idempotent on (call_sid, sequence): returns false for a duplicate, and
    /// for a call that was erased (nothing of it is written again).
    /// The call's status is the one of the highest sequence seen, whatever
    /// the arrival order; `duration_secs` from `CallDuration` when given.
    ///
    /// A final status ([`CallStatus::is_final`]) sets `ended_at` if unset. The
    /// callback is also kept as a `status_callback` event. A callback for a
    /// call not seen yet (it can race the `/voice` webhook) creates a minimal
    /// row that `call_started` completes.
    pub async fn status_callback(
        &self,
        call_sid: &str,
        sequence: u32,
        status: &str,
        duration_secs: Option<i64>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const CALL: &str = concat!(
            "INSERT INTO calls (sid, direction, from_number, from_masked, \
             to_number, to_masked, started_at) SELECT $1, $2, '', '', '', '', $3",
            unless_erased!(),
            " ON CONFLICT (sid) DO NOTHING"
        );
        // Not inserted for an erased call: then nothing else is written.
        const SEEN: &str = concat!(
            "INSERT INTO status_callbacks (call_sid, sequence, status, at) \
             SELECT $1, $2, $3, $4",
            unless_erased!(),
            " ON CONFLICT (call_sid, sequence) DO NOTHING"
        );
        const STATUS: &str = "UPDATE calls SET status = $2, status_seq = $3 \
             WHERE sid = $1 AND (status_seq IS NULL OR status_seq < $3)";
        const ENDED: &str = "UPDATE calls SET ended_at = COALESCE(ended_at, $2), \
             duration_secs = COALESCE($3, duration_secs) WHERE sid = $1";
        const EVENT: &str =
            "INSERT INTO events (call_sid, at, kind, detail) VALUES ($1, $2, $3, $4)";
        let seq = i64::from(sequence);
        let at = micros(at);
        // Only Twilio's statuses are kept as the call's; anything else is
        // `unknown`, its raw value only in the event, as outside text.
        let raw = matches!(CallStatus::parse(status), CallStatus::Other(_))
            .then(|| crate::redact::outside(status));
        let known = CallStatus::from_twilio(status);
        let status = known.as_str();
        let event = CallEvent::StatusCallback {
            sequence,
            status: status.to_string(),
            raw,
        };
        let is_final = known.is_final();
        on_db!(self, |pool, dialect| {
            let mut tx = pool.begin_with(dialect.begin_write()).await?;
            sqlx::query(CALL)
                .bind(call_sid)
                .bind(Direction::Unknown.as_str())
                .bind(at)
                .execute(&mut *tx)
                .await?;
            let new = sqlx::query(SEEN)
                .bind(call_sid)
                .bind(seq)
                .bind(status)
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if new == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query(STATUS)
                .bind(call_sid)
                .bind(status)
                .bind(seq)
                .execute(&mut *tx)
                .await?;
            if is_final {
                sqlx::query(ENDED)
                    .bind(call_sid)
                    .bind(at)
                    .bind(duration_secs)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(EVENT)
                .bind(call_sid)
                .bind(at)
                .bind(event.kind())
                .bind(Json(event.detail()))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// The call is over, for `end_reason` (in Pronto's words). The first end
    /// recorded stands (a status callback may have set `ended_at` already),
    /// except `abnormal`: a session still alive to say how its call ended
    /// proves its replica was not dead, so its word replaces the guess.
    pub async fn call_ended(
        &self,
        call_sid: &str,
        at: DateTime<Utc>,
        end_reason: EndReason,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE calls SET \
             ended_at = CASE WHEN ended_at IS NULL OR end_reason = $4 THEN $2 ELSE ended_at END, \
             end_reason = CASE WHEN end_reason IS NULL OR end_reason = $4 THEN $3 \
             ELSE end_reason END \
             WHERE sid = $1";
        let done = on_db!(self, |pool, _d| sqlx::query(SQL)
            .bind(call_sid)
            .bind(micros(at))
            .bind(end_reason.as_str())
            .bind(EndReason::Abnormal.as_str())
            .execute(pool)
            .await?
            .rows_affected());
        self.known(done, call_sid).await
    }
}
