//! `/api/calls`: the call history (list, one call, erase, its recording) and
//! outbound calls. Bad input gets a 4xx with a JSON error body, never a 500;
//! a store that fails gets a 503.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use crate::call::outbound::{OutboundCall, PlaceError};
use crate::http::AppState;
use crate::model::EndReason;
use crate::model::is_e164;
use crate::recordings::{self, RecordingErased};
use crate::store::{CallDetail, CallFilter, CallRow, Erased, MAX_PAGE, Page};

/// Query of `GET /api/calls`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Calls per page, 1 to 200 (default 50).
    limit: Option<u32>,
    /// The `next` cursor of the previous page.
    before: Option<String>,
    /// Caller number, E.164 (write `+` as `%2B`).
    from: Option<String>,
    /// Called number, E.164.
    to: Option<String>,
    /// Calls started at or after this time (RFC 3339).
    since: Option<String>,
    /// Calls started before this time (RFC 3339).
    until: Option<String>,
    /// Twilio call status, e.g. `completed`.
    status: Option<String>,
    /// Pronto's end reason, e.g. `caller_hung_up`.
    end_reason: Option<String>,
    /// Words the caller or the agent said (any case).
    q: Option<String>,
    /// The agent that answered, by name.
    agent: Option<String>,
}

/// The most calls an export holds.
const MAX_EXPORT: usize = 10_000;

/// Body of `POST /api/calls`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutboundRequest {
    /// The number to call, E.164.
    pub to: String,
    /// The caller ID, E.164; default `TWILIO_PHONE_NUMBER`.
    pub from: Option<String>,
    /// What the agent says when the call is answered, instead of the configured greeting.
    pub greeting: Option<String>,
    /// What the agent is told about this call (why it calls, what to achieve).
    pub instructions: Option<String>,
    /// The agent that talks (see `GET /api/agents`); default: the routing's
    /// default agent.
    pub agent: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutboundCreated {
    pub call_sid: String,
    /// Twilio's status for the new call, usually `queued`.
    pub status: String,
}

type ApiResult = Result<Response, ApiError>;

/// A call SID in a path: `CA` and 32 hex digits.
fn call_sid(sid: &str) -> Result<&str, ApiError> {
    let ok = sid.len() == 34
        && sid.starts_with("CA")
        && sid.bytes().skip(2).all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(sid)
    } else {
        Err(ApiError::bad(
            "not a call SID (CA followed by 32 hex digits)",
        ))
    }
}

/// A number from a query string, where an unencoded `+` arrives as a space.
fn number(raw: Option<String>, name: &str) -> Result<Option<String>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let trimmed = raw.trim();
    let n = if raw.starts_with(' ') && !trimmed.starts_with('+') {
        format!("+{trimmed}")
    } else {
        trimmed.to_string()
    };
    if is_e164(&n) {
        Ok(Some(n))
    } else {
        Err(ApiError::bad(format!(
            "{name} must be an E.164 number such as +15551234567 (write + as %2B)"
        )))
    }
}

fn time(raw: Option<String>, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    raw.map(|t| {
        DateTime::parse_from_rfc3339(t.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                ApiError::bad(format!(
                    "{name} must be an RFC 3339 time such as 2026-11-21T09:00:00Z"
                ))
            })
    })
    .transpose()
}

/// The call history, newest first.
#[utoipa::path(get, path = "/api/calls", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = Page), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = query.map_err(|e| ApiError::bad(e.body_text()))?;
    let limit = q.limit.unwrap_or(50);
    let before = q.before.clone();
    let filter = filter(q)?;
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad("limit must be between 1 and 200"));
    }
    match state
        .store
        .list_calls(&filter, limit, before.as_deref())
        .await?
    {
        Ok(page) => Ok(Json(page).into_response()),
        Err(_) => Err(ApiError::bad("before: not a cursor from this API")),
    }
}

/// The filter a query asks for, checked.
fn filter(q: ListQuery) -> Result<CallFilter, ApiError> {
    let text = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let end_reason = text(q.end_reason);
    if let Some(reason) = &end_reason
        && EndReason::parse(reason).is_none()
    {
        let known: Vec<&str> = EndReason::ALL.iter().map(|r| r.as_str()).collect();
        return Err(ApiError::bad(format!(
            "end_reason must be one of {}",
            known.join(", ")
        )));
    }
    Ok(CallFilter {
        from: number(q.from, "from")?,
        to: number(q.to, "to")?,
        since: time(q.since, "since")?,
        until: time(q.until, "until")?,
        status: text(q.status),
        end_reason,
        text: text(q.q),
        agent: match text(q.agent) {
            Some(name) if !crate::config::routing::is_name(&name) => {
                return Err(ApiError::bad(format!(
                    "agent must be an agent's name: {}",
                    crate::config::routing::NAME_RULE
                )));
            }
            agent => agent,
        },
    })
}

/// Every call the filter matches (up to [`MAX_EXPORT`]), newest first.
async fn export(state: &AppState, q: ListQuery) -> Result<Vec<CallRow>, ApiError> {
    let filter = filter(q)?;
    let mut calls = Vec::new();
    let mut before: Option<String> = None;
    while calls.len() < MAX_EXPORT {
        let page = match state
            .store
            .list_calls(&filter, MAX_PAGE, before.as_deref())
            .await?
        {
            Ok(page) => page,
            Err(_) => return Err(ApiError::bad("not a cursor from this API")),
        };
        calls.extend(page.calls);
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    calls.truncate(MAX_EXPORT);
    Ok(calls)
}

/// The calls a filter matches, as JSON (numbers masked), for download.
#[utoipa::path(get, path = "/api/calls/export.json", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<CallRow>), (status = 400, body = ErrorBody)))]
pub async fn export_json(
    State(state): State<Arc<AppState>>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = query.map_err(|e| ApiError::bad(e.body_text()))?;
    let calls = export(&state, q).await?;
    Ok((download("calls.json"), Json(calls)).into_response())
}

/// The calls a filter matches, as CSV (numbers masked), for download.
#[utoipa::path(get, path = "/api/calls/export.csv", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, content_type = "text/csv", body = String), (status = 400, body = ErrorBody)))]
pub async fn export_csv(
    State(state): State<Arc<AppState>>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = query.map_err(|e| ApiError::bad(e.body_text()))?;
    let calls = export(&state, q).await?;
    let mut out = String::from(
        "call_sid,direction,from,to,started_at,answered_at,ended_at,status,end_reason,duration_secs,turns,agent\r\n",
    );
    let time = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
    for c in &calls {
        let fields = [
            c.call_sid.clone(),
            c.direction.as_str().to_string(),
            c.from.clone(),
            c.to.clone(),
            c.started_at.to_rfc3339(),
            time(c.answered_at),
            time(c.ended_at),
            c.status
                .as_ref()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            c.end_reason
                .map(|r| r.as_str().to_string())
                .unwrap_or_default(),
            c.duration_secs.map(|d| d.to_string()).unwrap_or_default(),
            c.turns.to_string(),
            // Last: the column came with agents, after spreadsheets were built on the others.
            c.agent.clone(),
        ];
        let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    Ok((
        download("calls.csv"),
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        out,
    )
        .into_response())
}

fn download(name: &'static str) -> [(header::HeaderName, String); 1] {
    [(
        header::CONTENT_DISPOSITION,
        format!("attachment; filename=\"{name}\""),
    )]
}

/// One CSV field (RFC 4180: quoted, quotes doubled). A field a spreadsheet
/// would run as a formula gets a leading `'`
/// (<https://owasp.org/www-community/attacks/CSV_Injection>); a number
/// such as `+1555…` is left alone. Eleven plain columns: no crate needed.
fn csv_field(value: &str) -> String {
    let formula = match value.chars().next() {
        Some('=' | '@' | '\t' | '\r') => true,
        Some('+' | '-') => !value[1..].starts_with(|c: char| c.is_ascii_digit()),
        _ => false,
    };
    let quote = if formula { "'" } else { "" };
    format!("\"{quote}{}\"", value.replace('"', "\"\""))
}

/// One call: what was said and what was heard, events, per-turn latency.
#[utoipa::path(get, path = "/api/calls/{sid}", params(("sid" = String, Path, description = "Call SID")),
    security(("bearer" = [])),
    responses((status = 200, body = OneCall), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn one(State(state): State<Arc<AppState>>, Path(sid): Path<String>) -> ApiResult {
    let sid = call_sid(&sid)?.to_string();
    let Some(call) = state.store.get_call(&sid).await? else {
        return Err(ApiError(StatusCode::NOT_FOUND, "no such call".into()));
    };
    let recording = match state.switchboard.recordings().cloned() {
        Some(recordings) => tokio::task::spawn_blocking(move || recordings.open(&sid).is_some())
            .await
            .unwrap_or(false),
        None => false,
    };
    // Through a `Value`: the flattened row's `turns` (a count) and the
    // detail's `turns` (the list) share a key, and a JSON object must not
    // repeat one; the list, written last, is the one kept.
    let value = serde_json::to_value(OneCall { call, recording })
        .map_err(|_| ApiError::unavailable("the call could not be written out"))?;
    Ok(Json(value).into_response())
}

/// `GET /api/calls/{sid}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OneCall {
    #[serde(flatten)]
    pub call: CallDetail,
    /// A recording of the call can be fetched (`recording.wav`).
    pub recording: bool,
}

/// What `DELETE /api/calls/{sid}` erased.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErasedCall {
    pub call_sid: String,
    /// What the history held of the call, now gone. The SID is remembered
    /// as erased, so nothing of the call is written again (a late status
    /// callback, the rest of a live call, its caller-memory summary).
    pub history: Erased,
    /// The call's recording; `null` when recordings are off.
    pub recording: Option<RecordingErased>,
}

/// Erases a call for good (privacy requests): its row, turns, events, status
/// callbacks, caller-memory summary and recording, now; a call still live
/// keeps talking, but nothing more of it is kept, and its recording is
/// deleted the moment it ends.
#[utoipa::path(delete, path = "/api/calls/{sid}", params(("sid" = String, Path, description = "Call SID")),
    security(("bearer" = [])),
    responses((status = 200, body = ErasedCall), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn erase(State(state): State<Arc<AppState>>, Path(sid): Path<String>) -> ApiResult {
    let sid = call_sid(&sid)?.to_string();
    // The history first: once the SID is remembered as erased, nothing of
    // the call can be written again, so what is deleted next stays deleted.
    let history = state.store.erase_call(&sid, Utc::now()).await?;
    let recording = match state.switchboard.recordings().cloned() {
        Some(recordings) => {
            let for_sid = sid.clone();
            let erased = tokio::task::spawn_blocking(move || recordings.erase(&for_sid))
                .await
                .map_err(|_| ApiError::unavailable("the recording could not be erased"))?;
            Some(erased.map_err(|e| {
                warn!(call_sid = %sid, error = %e, "recording not erased");
                ApiError::unavailable("the recording could not be erased; try again")
            })?)
        }
        None => None,
    };
    let live = state.switchboard.is_live(&sid);
    let found = history.found() || live || recording.is_some_and(|r| r != RecordingErased::None);
    if !found {
        return Err(ApiError(StatusCode::NOT_FOUND, "no such call".into()));
    }
    info!(call_sid = %sid, ?history, ?recording, live, "call erased");
    Ok(Json(ErasedCall {
        call_sid: sid,
        history,
        recording,
    })
    .into_response())
}

/// The call's two-channel recording (caller left, agent right).
#[utoipa::path(get, path = "/api/calls/{sid}/recording.wav", params(("sid" = String, Path, description = "Call SID")),
    security(("bearer" = [])),
    responses((status = 200, content_type = "audio/wav", body = Vec<u8>), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn recording(State(state): State<Arc<AppState>>, Path(sid): Path<String>) -> ApiResult {
    let sid = call_sid(&sid)?.to_string();
    let not_found = |m: &str| ApiError(StatusCode::NOT_FOUND, m.into());
    let Some(recordings) = state.switchboard.recordings().cloned() else {
        return Err(not_found("recordings are off ([store] recordings)"));
    };
    // An erased call's recording is never served, whatever is on disk (one
    // left by a crash before the call ended, or erased on another replica).
    if state.store.is_erased(&sid).await? {
        return Err(not_found("this call was erased"));
    }
    let found = tokio::task::spawn_blocking(move || {
        recordings
            .open(&sid)
            .map(|path| recordings::playable(&path).map(|()| path))
    })
    .await
    .ok()
    .flatten();
    let path = match found {
        Some(Ok(path)) => path,
        // Never served as if it were a recording: say what is wrong with it.
        Some(Err(why)) => return Err(ApiError(StatusCode::CONFLICT, why)),
        None => return Err(not_found("no recording of this call (yet)")),
    };
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| not_found("no recording of this call"))?;
    let body = Body::from_stream(file_chunks(file));
    Ok(([(header::CONTENT_TYPE, "audio/wav")], body).into_response())
}

/// A file as a stream of chunks, so a long recording is never all in memory.
fn file_chunks(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> {
    use tokio::io::AsyncReadExt;
    futures_util::stream::unfold(file, |mut file| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    })
}

/// Places an outbound call; the agent talks when it is answered.
#[utoipa::path(post, path = "/api/calls", request_body = OutboundRequest, security(("bearer" = [])),
    responses((status = 201, body = OutboundCreated), (status = 400, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "Twilio refused the call"),
        (status = 502, body = ErrorBody, description = "Twilio is unreachable or refused Pronto's credentials")))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    body: Result<Json<OutboundRequest>, JsonRejection>,
) -> ApiResult {
    let Json(req) = body.map_err(|e| ApiError::bad(e.body_text()))?;
    if !is_e164(req.to.trim()) {
        return Err(ApiError::bad(
            "to must be an E.164 number such as +15551234567",
        ));
    }
    let from = match req
        .from
        .clone()
        .or_else(|| state.config.deployment.twilio_phone_number.clone())
    {
        Some(f) if is_e164(f.trim()) => f.trim().to_string(),
        Some(_) => return Err(ApiError::bad("from must be an E.164 number")),
        None => {
            return Err(ApiError::bad(
                "no from number: send one, or set TWILIO_PHONE_NUMBER",
            ));
        }
    };
    for (name, text) in [
        ("greeting", &req.greeting),
        ("instructions", &req.instructions),
    ] {
        if text.as_ref().is_some_and(|t| t.chars().count() > 4000) {
            return Err(ApiError::bad(format!(
                "{name} is longer than 4000 characters"
            )));
        }
    }
    let agent = match req.agent.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(name) if state.switchboard.roster().get(name).is_some() => Some(name.to_string()),
        Some(name) => {
            return Err(ApiError::bad(format!(
                "agent {:?}: no such agent (GET /api/agents lists them)",
                crate::redact::outside(name)
            )));
        }
    };
    let call = OutboundCall {
        to: req.to.trim().to_string(),
        from,
        greeting: req.greeting,
        instructions: req.instructions,
        agent,
    };
    let created = state.switchboard.place(call).await.map_err(|e| {
        let status = match e {
            PlaceError::NoAccount => StatusCode::SERVICE_UNAVAILABLE,
            PlaceError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            PlaceError::Unavailable(_) => StatusCode::BAD_GATEWAY,
        };
        ApiError(status, e.to_string())
    })?;
    Ok((
        StatusCode::CREATED,
        Json(OutboundCreated {
            call_sid: created.call_sid,
            status: created.status,
        }),
    )
        .into_response())
}

#[cfg(test)]
mod proptests;
