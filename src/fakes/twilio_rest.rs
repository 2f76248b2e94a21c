//! Fake Twilio REST API: call updates, `POST
//! /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` with a form body
//! and HTTP Basic auth
//! (<https://www.twilio.com/docs/voice/api/call-resource#update-a-call-resource>).
//! It answers like Twilio: 200
//! with the Call resource, 401 (20003) without the right credentials, 404
//! (20404) for a call it was told has ended.
//!
//! `GET /2010-04-01/Accounts/{AccountSid}.json` (what `pronto check` uses to
//! try the credentials) answers the Account resource, which carries the
//! account's `auth_token` as Twilio's does, under the same auth; a user that
//! is an Account SID reads only its own account (404 20404 for another).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::json;
use tokio::sync::Notify;

use super::{Fault, Faults, Recorded, Running, lock, serve};

/// One call update received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallUpdate {
    pub account_sid: String,
    pub call_sid: String,
    /// The form fields, in order.
    pub form: Vec<(String, String)>,
}

impl CallUpdate {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    user: String,
    password: String,
    updates: Recorded<CallUpdate>,
    /// Forms of `POST …/Calls.json` (outbound calls), in order.
    created: Recorded<Vec<(String, String)>>,
    faults: Faults,
    ended: Mutex<HashSet<String>>,
    arrived: Notify,
    /// The Account resource's `status`.
    account_status: Mutex<String>,
    /// The `authorization` header of each account fetch.
    account_fetches: Recorded<String>,
}

pub struct FakeTwilioRest {
    running: Running,
    shared: Arc<Shared>,
}

impl FakeTwilioRest {
    /// Accepts Basic auth `user:password` only.
    pub async fn start(user: &str, password: &str) -> Self {
        let shared = Arc::new(Shared {
            user: user.into(),
            password: password.into(),
            updates: Recorded::default(),
            created: Recorded::default(),
            faults: Faults::default(),
            ended: Mutex::new(HashSet::new()),
            arrived: Notify::new(),
            account_status: Mutex::new("active".into()),
            account_fetches: Recorded::default(),
        });
        let router = Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Calls/{call}",
                post(update_call),
            )
            .route(
                "/2010-04-01/Accounts/{account}/Calls.json",
                post(create_call),
            )
            .route("/2010-04-01/Accounts/{account}", get(fetch_account))
            .with_state(shared.clone());
        FakeTwilioRest {
            running: serve(router, "").await,
            shared,
        }
    }

    /// Like `https://api.twilio.com`: what `TWILIO_API_BASE_URL` is set to.
    pub fn base_url(&self) -> &str {
        &self.running.base_url
    }

    pub fn push_fault(&self, fault: Fault) {
        self.shared.faults.push(fault);
    }

    /// Updates to this call answer 404 / 20404 from now on.
    pub fn mark_ended(&self, call_sid: &str) {
        lock(&self.shared.ended).insert(call_sid.to_string());
    }

    /// The account's status from now on: `active`, `suspended`, `closed`.
    pub fn set_account_status(&self, status: &str) {
        *lock(&self.shared.account_status) = status.into();
    }

    /// The `authorization` header of each account fetch so far.
    pub fn account_fetches(&self) -> Vec<String> {
        self.shared.account_fetches.all()
    }

    /// The forms of the outbound calls requested so far.
    pub fn created_calls(&self) -> Vec<Vec<(String, String)>> {
        self.shared.created.all()
    }

    /// The SID the fake gives the `n`th outbound call (0-based).
    pub fn created_sid(n: usize) -> String {
        format!("CA{n:032x}")
    }

    pub fn updates(&self) -> Vec<CallUpdate> {
        self.shared.updates.all()
    }

    /// Waits until at least `n` updates have arrived (bounded by `within`).
    pub async fn wait_updates(&self, n: usize, within: std::time::Duration) -> Vec<CallUpdate> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.shared.arrived.notified();
            let updates = self.updates();
            if updates.len() >= n {
                return updates;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.updates();
            }
        }
    }
}

fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, axum::Json(body)).into_response()
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", shared.user, shared.password))
    );
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected)
}

/// `GET /2010-04-01/Accounts/{sid}.json`: the Account resource.
async fn fetch_account(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    headers: HeaderMap,
) -> Response {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    shared.account_fetches.push(authorization.to_string());
    if !authorized(&shared, &headers) {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let Some(sid) = account.strip_suffix(".json") else {
        return twilio_error(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        );
    };
    if shared.user.starts_with("AC") && sid != shared.user {
        let message =
            format!("The requested resource /2010-04-01/Accounts/{account} was not found");
        return twilio_error(StatusCode::NOT_FOUND, 20404, &message);
    }
    if let Some(Fault::Status { status, body, .. }) = shared.faults.next() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (status, body).into_response();
    }
    let status = lock(&shared.account_status).clone();
    let resource = json!({
        "sid": sid,
        "owner_account_sid": sid,
        "friendly_name": "fake@example.com's Account",
        "status": status,
        "type": "Full",
        "auth_token": if shared.user == sid { shared.password.clone() } else { "0".repeat(32) },
        "date_created": "Thu, 30 Jul 2015 20:00:00 +0000",
        "uri": format!("/2010-04-01/Accounts/{sid}.json"),
    });
    (StatusCode::OK, axum::Json(resource)).into_response()
}

/// `POST …/Calls.json`: 201 with the new Call resource, or Twilio's error
/// (e.g. 21211 for a `To` that is not a valid number, via `push_fault`).
async fn create_call(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&shared, &headers) {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let n = shared.created.len();
    shared.created.push(form.clone());
    shared.arrived.notify_waiters();
    if let Some(Fault::Status { status, body, .. }) = shared.faults.next() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        return (status, body).into_response();
    }
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let sid = FakeTwilioRest::created_sid(n);
    let resource = json!({
        "account_sid": account,
        "sid": sid,
        "status": "queued",
        "direction": "outbound-api",
        "from": field("From"),
        "to": field("To"),
        "api_version": "2010-04-01",
        "uri": format!("/2010-04-01/Accounts/{account}/Calls/{sid}.json"),
    });
    (StatusCode::CREATED, axum::Json(resource)).into_response()
}

async fn update_call(
    State(shared): State<Arc<Shared>>,
    Path((account, call)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&shared, &headers) {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let Some(call_sid) = call.strip_suffix(".json") else {
        return twilio_error(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        );
    };
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    shared.updates.push(CallUpdate {
        account_sid: account.clone(),
        call_sid: call_sid.to_string(),
        form,
    });
    shared.arrived.notify_waiters();
    match shared.faults.next() {
        Some(Fault::Status { status, body, .. }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, body).into_response();
        }
        Some(Fault::Hang) => std::future::pending::<()>().await,
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        _ => {}
    }
    if lock(&shared.ended).contains(call_sid) {
        return twilio_error(
            StatusCode::NOT_FOUND,
            20404,
            &format!(
                "The requested resource /2010-04-01/Accounts/{account}/Calls/{call} was not found"
            ),
        );
    }
    let resource = json!({
        "account_sid": account,
        "sid": call_sid,
        "status": "in-progress",
        "direction": "inbound",
        "api_version": "2010-04-01",
        "uri": format!("/2010-04-01/Accounts/{account}/Calls/{call}"),
    });
    (StatusCode::OK, axum::Json(resource)).into_response()
}
