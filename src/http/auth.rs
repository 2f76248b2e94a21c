//! Who may use `/api/*`: a client with `Authorization: Bearer $API_TOKEN`,
//! or a browser signed in to the dashboard with the session cookie.
//!
//! A browser's `EventSource` and `WebSocket` cannot send an Authorization
//! header, so the dashboard signs in once (`POST /api/session` with the API
//! token) and gets a cookie: `HttpOnly` (no script reads it),
//! `SameSite=Strict` (no other site's page sends it), with an expiry, and
//! signed with a key derived from `API_TOKEN`, so every replica accepts it
//! and changing the token signs everyone out. A cookie rides along with
//! any request the browser makes, so whatever changes something, and every
//! WebSocket upgrade (where CORS does not apply), must also come from this
//! server's own page: its `Origin` is checked against `Host`
//! (<https://cheatsheetseries.owasp.org/cheatsheets/Cross-Site_Request_Forgery_Prevention_Cheat_Sheet.html>).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::{info, warn};

use super::error::json_error;
use crate::http::AppState;
use crate::redact::Secret;

/// The cookie's name. Not `__Host-`: that prefix needs `Secure`, and the
/// dashboard is usually reached over plain HTTP on the LAN.
const COOKIE: &str = "pronto_session";

/// How long a sign-in lasts.
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Who made a request, for the log of what operators did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    /// A client with the API token.
    Bearer,
    /// A signed-in browser: the session's id (random, not secret).
    Session(String),
}

impl std::fmt::Display for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Operator::Bearer => f.write_str("api-token"),
            Operator::Session(id) => write!(f, "session {id}"),
        }
    }
}

/// The dashboard's sessions: the key that signs their cookies, and the ones
/// signed out before they expired (on this replica; the cookie itself is
/// cleared in the browser either way).
pub struct Sessions {
    key: Option<[u8; 32]>,
    signed_out: Mutex<HashMap<String, i64>>,
}

impl Sessions {
    /// Sessions signed with a key derived from `api_token` (none without
    /// one: then nobody can sign in, as nobody can use the API).
    pub fn new(api_token: Option<&Secret>) -> Sessions {
        let key = api_token.map(|token| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(token.expose().as_bytes())
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
            mac.update(b"pronto dashboard session key v1");
            mac.finalize().into_bytes().into()
        });
        Sessions {
            key,
            signed_out: Mutex::new(HashMap::new()),
        }
    }

    fn mac(key: &[u8; 32], body: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(body.as_bytes());
        mac
    }

    /// A new session's cookie value and what it is.
    pub fn issue(&self, now: DateTime<Utc>) -> Option<(String, SessionInfo)> {
        let key = self.key.as_ref()?;
        let expires = now.timestamp() + SESSION_LIFETIME.as_secs() as i64;
        let id = hex::encode(rand::random::<[u8; 8]>());
        let body = format!("v1.{expires}.{id}");
        let tag = hex::encode(Self::mac(key, &body).finalize().into_bytes());
        Some((format!("{body}.{tag}"), SessionInfo::new(id, expires)))
    }

    /// The session a cookie value names, if it is genuine, unexpired and
    /// not signed out. The tag is checked in constant time.
    fn check(&self, value: &str, now: DateTime<Utc>) -> Option<SessionInfo> {
        let key = self.key.as_ref()?;
        let (body, tag) = value.rsplit_once('.')?;
        let tag = hex::decode(tag).ok()?;
        Self::mac(key, body).verify_slice(&tag).ok()?;
        let mut parts = body.split('.');
        let (Some("v1"), Some(expires), Some(id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let expires: i64 = expires.parse().ok()?;
        if expires <= now.timestamp() {
            return None;
        }
        let signed_out = self.lock();
        if signed_out.contains_key(id) {
            return None;
        }
        Some(SessionInfo::new(id.to_string(), expires))
    }

    fn sign_out(&self, id: &str, expires: i64, now: DateTime<Utc>) {
        let mut signed_out = self.lock();
        // Forget what has expired anyway: the set stays as small as the
        // sessions signed out in the last 12 hours.
        signed_out.retain(|_, until| *until > now.timestamp());
        signed_out.insert(id.to_string(), expires);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.signed_out
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `GET /api/session` and the answer to a sign-in.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionInfo {
    pub signed_in: bool,
    pub expires_at: DateTime<Utc>,
    /// The session's id, as the log names it.
    pub session: String,
    #[serde(skip)]
    expires: i64,
}

impl SessionInfo {
    fn new(id: String, expires: i64) -> SessionInfo {
        SessionInfo {
            signed_in: true,
            expires_at: DateTime::from_timestamp(expires, 0).unwrap_or_default(),
            session: id,
            expires,
        }
    }
}

/// Body of `POST /api/session`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SignIn {
    /// The server's `API_TOKEN`.
    pub token: String,
}

/// Whether `presented` is the API token: digests are compared, so neither
/// the content nor the length of the token leaks through timing.
fn is_api_token(state: &AppState, presented: &str) -> bool {
    state.config.deployment.api_token.as_ref().is_some_and(|t| {
        bool::from(
            Sha256::digest(presented.as_bytes()).ct_eq(&Sha256::digest(t.expose().as_bytes())),
        )
    })
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// Whether the request comes from this server's own page: its `Origin`
/// names the host it was sent to (and `Sec-Fetch-Site`, when a browser
/// sends it, does not say otherwise). `None` when it has no `Origin`.
fn same_origin(headers: &HeaderMap) -> Option<bool> {
    let origin = headers.get(header::ORIGIN)?;
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest);
    let fetch_site_ok = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|site| site == "same-origin" || site == "none");
    Some(
        fetch_site_ok
            && matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h)),
    )
}

/// Whether a request changes something or opens a WebSocket: what a
/// cookie alone must not be enough for.
fn acts(req: &Request) -> bool {
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    upgrade || !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
}

fn unauthorized(message: &str) -> Response {
    let mut response = json_error(StatusCode::UNAUTHORIZED, message);
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

fn cross_site() -> Response {
    json_error(
        StatusCode::FORBIDDEN,
        "refused: the request does not come from this server's own page (Origin)",
    )
}

/// Lets a request through with the API token or a signed-in session; the
/// [`Operator`] goes into the request's extensions. Without `API_TOKEN`
/// set, the API is closed and says how to open it.
pub async fn require_operator(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    if state.config.deployment.api_token.is_none() {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "the API is disabled because API_TOKEN is not set: set API_TOKEN in .env (or the environment) and send it as 'Authorization: Bearer <token>'",
        );
    }
    let headers = req.headers();
    let origin = same_origin(headers);
    let operator = if let Some(token) = bearer(headers) {
        if !is_api_token(&state, token) {
            return unauthorized("missing or wrong bearer token");
        }
        Operator::Bearer
    } else if let Some(session) = cookie(headers).and_then(|c| state.sessions.check(c, Utc::now()))
    {
        Operator::Session(session.session)
    } else {
        return unauthorized("missing or wrong bearer token");
    };
    // A page of another site cannot act with this server's cookie; with
    // the token (a script, not a browser) there is usually no Origin, but
    // one that names another site is refused all the same.
    let refused = match (&operator, origin) {
        (_, Some(false)) => acts(&req),
        (Operator::Session(_), None) => acts(&req),
        (Operator::Bearer, None) | (_, Some(true)) => false,
    };
    if refused {
        warn!(operator = %operator, method = %req.method(), path = req.uri().path(), "refused a cross-site request");
        return cross_site();
    }
    req.extensions_mut().insert(operator);
    next.run(req).await
}

/// `POST /api/session`: signs a browser in with the API token.
#[utoipa::path(post, path = "/api/session", request_body = SignIn,
    responses((status = 200, body = SessionInfo), (status = 401, body = crate::http::error::ErrorBody)))]
pub async fn sign_in(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Json<SignIn>, axum::extract::rejection::JsonRejection>,
) -> Response {
    // Another site must not sign a browser in to this one either.
    if same_origin(&headers) == Some(false) {
        return cross_site();
    }
    let Ok(Json(body)) = body else {
        return json_error(StatusCode::BAD_REQUEST, "expected {\"token\": \"...\"}");
    };
    if !is_api_token(&state, &body.token) {
        warn!("dashboard sign-in with a wrong token");
        return unauthorized("wrong token");
    }
    let Some((value, session)) = state.sessions.issue(Utc::now()) else {
        return unauthorized("the API is disabled because API_TOKEN is not set");
    };
    info!(session = %session.session, "dashboard signed in");
    // `Secure` when the page was loaded over HTTPS (through the tunnel):
    // then the cookie never travels in clear.
    let secure = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .is_some_and(|o| o.starts_with("https://"));
    let cookie = format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_LIFETIME.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    let mut response = Json(session).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// `GET /api/session`: whether this browser is signed in.
#[utoipa::path(get, path = "/api/session",
    responses((status = 200, body = SessionInfo), (status = 401, body = crate::http::error::ErrorBody)))]
pub async fn current(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match cookie(&headers).and_then(|c| state.sessions.check(c, Utc::now())) {
        Some(session) => Json(session).into_response(),
        None => json_error(StatusCode::UNAUTHORIZED, "not signed in"),
    }
}

/// `DELETE /api/session`: signs this browser out.
#[utoipa::path(delete, path = "/api/session", responses((status = 204)))]
pub async fn sign_out(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if same_origin(&headers) == Some(false) {
        return cross_site();
    }
    let now = Utc::now();
    if let Some(session) = cookie(&headers).and_then(|c| state.sessions.check(c, now)) {
        state
            .sessions
            .sign_out(&session.session, session.expires, now);
        info!(session = %session.session, "dashboard signed out");
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("pronto_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions() -> Sessions {
        Sessions::new(Some(&Secret::new(String::from("token-1234"))))
    }

    #[test]
    fn an_issued_cookie_is_accepted_until_it_expires() {
        let s = sessions();
        let now = Utc::now();
        let (value, info) = s.issue(now).expect("a key");
        assert_eq!(s.check(&value, now).map(|i| i.session), Some(info.session));
        let later = now + chrono::Duration::seconds(SESSION_LIFETIME.as_secs() as i64);
        assert!(s.check(&value, later).is_none(), "expired");
    }

    #[test]
    fn a_forged_or_foreign_cookie_is_refused() {
        let s = sessions();
        let now = Utc::now();
        let (value, _) = s.issue(now).expect("a key");
        // Another expiry with the old tag.
        let (body, tag) = value.rsplit_once('.').expect("a tag");
        let mut parts: Vec<&str> = body.split('.').collect();
        let longer = (now.timestamp() + 10 * 365 * 86400).to_string();
        parts[1] = &longer;
        assert!(
            s.check(&format!("{}.{tag}", parts.join(".")), now)
                .is_none()
        );
        // Signed with another token's key.
        let other = Sessions::new(Some(&Secret::new(String::from("another"))));
        assert!(other.check(&value, now).is_none());
        for junk in ["", ".", "v1.x.y.z", "v1.1.2.zz", "a.b.c.d.e"] {
            assert!(s.check(junk, now).is_none(), "{junk}");
        }
        assert!(Sessions::new(None).issue(now).is_none());
    }

    #[test]
    fn a_signed_out_session_is_refused() {
        let s = sessions();
        let now = Utc::now();
        let (value, info) = s.issue(now).expect("a key");
        s.sign_out(&info.session, info.expires, now);
        assert!(s.check(&value, now).is_none());
    }

    #[test]
    fn origin_must_name_the_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("pi.local:8080"));
        assert_eq!(same_origin(&h), None);
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://pi.local:8080"),
        );
        assert_eq!(same_origin(&h), Some(true));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert_eq!(same_origin(&h), Some(false));
        h.remove("sec-fetch-site");
        h.insert(header::ORIGIN, HeaderValue::from_static("http://evil.test"));
        assert_eq!(same_origin(&h), Some(false));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert_eq!(same_origin(&h), Some(false));
    }
}
