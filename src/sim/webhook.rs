//! The voice webhook as Twilio sends it ("A call comes in", <https://www.twilio.com/docs/voice/twiml#request-parameters>),
//! and the mapping of the TwiML stream URL back onto the server under test.

use std::time::{Duration, Instant};

use rand::Rng;

use super::twiml::{Twiml, TwimlError, parse_twiml};
use super::{SimConfig, SimError, random_sid};
use crate::twilio::signature;

/// Twilio waits at most 15 s for a webhook answer (<https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides>).
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(15);

/// What the server answered to `POST /voice`.
#[derive(Debug, Clone)]
pub struct VoiceAnswer {
    /// HTTP status of the answer.
    pub status: u16,
    /// `Content-Type` of the answer, if any (Twilio expects `text/xml` or
    /// `application/xml`).
    pub content_type: Option<String>,
    /// The raw body.
    pub body: String,
    /// The body read as TwiML; `Err(TwimlError::Status)` for a non-2xx answer,
    /// which Twilio does not run.
    pub twiml: Result<Twiml, TwimlError>,
    /// `CallSid` sent in the webhook.
    pub call_sid: String,
    /// `AccountSid` sent in the webhook.
    pub account_sid: String,
    /// Every form parameter sent, in the order sent.
    pub params: Vec<(String, String)>,
    /// How long the server took to answer.
    pub took: Duration,
    /// When the answer arrived, for the call's timeline.
    pub(crate) answered_at: Instant,
}

impl VoiceAnswer {
    /// The `<Connect><Stream url>` to open, if the answer has one (2xx and
    /// well-formed).
    pub fn stream_url(&self) -> Option<&str> {
        self.twiml.as_ref().ok()?.stream_url.as_deref()
    }

    /// One line saying what the answer amounts to, for errors and the CLI.
    pub fn summary(&self) -> String {
        match &self.twiml {
            Ok(t) if t.says.is_empty() => format!("verbs: {}", t.verbs.join(", ")),
            Ok(t) => format!("verbs: {}; says {:?}", t.verbs.join(", "), t.says),
            Err(e) => e.to_string(),
        }
    }
}

/// The form parameters of Twilio's inbound voice webhook, in the order of
/// a captured call (plus `CallToken`), then
/// `cfg.extra_params`. Several are empty, as in real traffic: a server must
/// sign empty values too.
pub fn voice_params(cfg: &SimConfig, call_sid: &str, account_sid: &str) -> Vec<(String, String)> {
    let p = |k: &str, v: &str| (k.to_string(), v.to_string());
    let mut params = vec![
        p("AccountSid", account_sid),
        p("ApiVersion", "2010-04-01"),
        p("CallSid", call_sid),
        p("CallStatus", "ringing"),
        p("Called", &cfg.to),
        p("CalledCity", ""),
        p("CalledCountry", "US"),
        p("CalledState", "CA"),
        p("CalledZip", ""),
        p("Caller", &cfg.from),
        p("CallerCity", ""),
        p("CallerCountry", "US"),
        p("CallerState", ""),
        p("CallerZip", ""),
        p("Direction", &cfg.direction),
        p("From", &cfg.from),
        p("FromCity", ""),
        p("FromCountry", "US"),
        p("FromState", ""),
        p("FromZip", ""),
        p("To", &cfg.to),
        p("ToCity", ""),
        p("ToCountry", "US"),
        p("ToState", "CA"),
        p("ToZip", ""),
        p("CallToken", &call_token()),
    ];
    params.extend(cfg.extra_params.iter().cloned());
    params
}

/// A `CallToken` shaped like Twilio's: a JSON document (quotes, braces,
/// brackets) that exercises the server's form decoding and signing.
fn call_token() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    let jwt: String = (0..120)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!(r#"{{"parentCallInfoToken":"eyJhbGciOiJFUzI1NiJ9.{jwt}","identityHeaderTokens":[]}}"#)
}

/// A random UUID-shaped token, as in Twilio's `I-Twilio-Idempotency-Token`.
/// A form POST to `{server}{path}` as Twilio sends one: its user agent, an
/// idempotency token, and, when an auth token is configured, signed over
/// `{public_base_url}{path}` (the URL Twilio has in its console, not the
/// loopback one the request goes to).
pub(super) fn signed_post(
    cfg: &SimConfig,
    path: &str,
    params: &[(String, String)],
) -> Result<reqwest::RequestBuilder, SimError> {
    let client = reqwest::Client::builder()
        .timeout(WEBHOOK_TIMEOUT)
        // Show a redirect as what it is rather than following it silently.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("TwilioProxy/1.1")
        .build()
        .map_err(SimError::Webhook)?;
    let mut request = client
        .post(format!("{}{path}", cfg.server_base()))
        // Twilio marks each webhook attempt so that retries can be spotted.
        .header("I-Twilio-Idempotency-Token", idempotency_token())
        .form(params);
    if let Some(token) = &cfg.auth_token {
        let signed_url = format!("{}{path}", cfg.public_base());
        request = request.header(
            "X-Twilio-Signature",
            signature::compute(token, &signed_url, params),
        );
    }
    Ok(request)
}

fn idempotency_token() -> String {
    let h = hex::encode(rand::random::<[u8; 16]>());
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Sends the voice webhook for a new call: `POST {server}{voice_path}`
/// (`/voice` unless the call is for a named agent's URL), form-encoded,
/// signed over `{public_base_url}{voice_path}` when an auth token is
/// configured (the URL Twilio has in its console, not the loopback one the
/// request goes to).
///
/// Any HTTP answer is `Ok`, including 403 and busy TwiML: that is the
/// server's behaviour, for the caller to assert on.
pub async fn post_voice(cfg: &SimConfig) -> Result<VoiceAnswer, SimError> {
    let call_sid = cfg.call_sid.clone().unwrap_or_else(|| random_sid("CA"));
    let account_sid = cfg.account_sid.clone().unwrap_or_else(|| random_sid("AC"));
    let params = voice_params(cfg, &call_sid, &account_sid);
    let request = signed_post(cfg, &cfg.voice_path, &params)?;
    let sent = Instant::now();
    let response = request.send().await.map_err(SimError::Webhook)?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.text().await.map_err(SimError::Webhook)?;
    let answered_at = Instant::now();
    let twiml = if (200..300).contains(&status) {
        parse_twiml(&body)
    } else {
        Err(TwimlError::Status(status))
    };
    Ok(VoiceAnswer {
        status,
        content_type,
        body,
        twiml,
        call_sid,
        account_sid,
        params,
        took: answered_at - sent,
        answered_at,
    })
}

/// Where to really connect for a TwiML stream URL.
///
/// The TwiML names the public URL (`wss://voice.example.com/stream/{token}`);
/// the server under test listens on `server`. A URL under the WebSocket form
/// of `public_base` gets that prefix replaced by the WebSocket form of
/// `server`; any other absolute URL keeps only its path (and query); a
/// relative one is resolved against the webhook's directory (`/`), as Twilio
/// resolves relative URLs against the document's URL.
pub fn map_stream_url(twiml_url: &str, public_base: &str, server: &str) -> String {
    let ws_public = signature::websocket_url(public_base.trim_end_matches('/'));
    let ws_server = signature::websocket_url(server.trim_end_matches('/'));
    if let Some(rest) = twiml_url.strip_prefix(&ws_public)
        && (rest.is_empty() || rest.starts_with(['/', '?']))
    {
        return format!("{ws_server}{rest}");
    }
    let path = match twiml_url.split_once("://") {
        Some((_, after)) => after.find(['/', '?']).map_or("", |i| &after[i..]),
        None => twiml_url,
    };
    if path.is_empty() || path.starts_with(['/', '?']) {
        format!("{ws_server}{path}")
    } else {
        format!("{ws_server}/{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: &str = "http://127.0.0.1:8080";

    #[test]
    fn public_prefix_is_replaced_by_the_server() {
        assert_eq!(
            map_stream_url(
                "wss://voice.example.com/stream/abc",
                "https://voice.example.com",
                SERVER
            ),
            "ws://127.0.0.1:8080/stream/abc"
        );
        // A public base with a path prefix (reverse proxy) keeps the rest only.
        assert_eq!(
            map_stream_url(
                "wss://h.example/pronto/stream/abc",
                "https://h.example/pronto/",
                "http://127.0.0.1:9000/pronto"
            ),
            "ws://127.0.0.1:9000/pronto/stream/abc"
        );
    }

    #[test]
    fn other_hosts_keep_their_path() {
        assert_eq!(
            map_stream_url(
                "wss://elsewhere.example:443/stream/x",
                "https://voice.example.com",
                SERVER
            ),
            "ws://127.0.0.1:8080/stream/x"
        );
        // `https://voice.example.community` must not count as under `…example.com`.
        assert_eq!(
            map_stream_url(
                "wss://voice.example.community/s",
                "https://voice.example.com",
                SERVER
            ),
            "ws://127.0.0.1:8080/s"
        );
        assert_eq!(
            map_stream_url("/stream/y", "https://p", SERVER),
            "ws://127.0.0.1:8080/stream/y"
        );
        assert_eq!(
            map_stream_url("stream/y", "https://p", SERVER),
            "ws://127.0.0.1:8080/stream/y"
        );
        assert_eq!(
            map_stream_url("wss://h", "https://p", SERVER),
            "ws://127.0.0.1:8080"
        );
    }

    #[test]
    fn loopback_public_url_maps_to_itself() {
        assert_eq!(
            map_stream_url("ws://127.0.0.1:8080/stream/t", SERVER, SERVER),
            "ws://127.0.0.1:8080/stream/t"
        );
    }

    #[test]
    fn webhook_params_are_twilios_set() {
        let mut cfg = SimConfig::new(SERVER);
        cfg.extra_params = vec![("StirVerstat".into(), "TN-Validation-Passed-A".into())];
        let params = voice_params(&cfg, "CA00", "AC00");
        let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
        for required in [
            "AccountSid",
            "ApiVersion",
            "CallSid",
            "CallStatus",
            "Called",
            "CalledCity",
            "CalledCountry",
            "CalledState",
            "CalledZip",
            "Caller",
            "CallerCity",
            "CallerCountry",
            "CallerState",
            "CallerZip",
            "Direction",
            "From",
            "FromCity",
            "FromCountry",
            "FromState",
            "FromZip",
            "To",
            "ToCity",
            "ToCountry",
            "ToState",
            "ToZip",
            "CallToken",
            "StirVerstat",
        ] {
            assert!(names.contains(&required), "{required} missing");
        }
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("Direction"), Some("inbound"));
        assert_eq!(get("CallStatus"), Some("ringing"));
        assert_eq!(get("ApiVersion"), Some("2010-04-01"));
        assert_eq!(get("Caller"), get("From"));
        assert_eq!(get("Called"), Some("+15551230002"));
        assert!(
            params.iter().any(|(_, v)| v.is_empty()),
            "empty values are part of the set"
        );
        assert!(get("CallToken").is_some_and(|t| t.starts_with('{') && t.contains('"')));
    }
}
