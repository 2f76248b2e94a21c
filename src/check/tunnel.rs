//! Does `PUBLIC_BASE_URL` reach this Pronto, the way Twilio will use it?
//!
//! Two requests through the tunnel: `GET /health`, which must be Pronto's own
//! JSON (and say the same `public_base_url`, or every signature fails), and an
//! unsigned WebSocket upgrade of `/stream/…`, which Pronto refuses with its
//! own 403. Anything else (a 404 or 502 from the tunnel, a Cloudflare page)
//! means Twilio's stream would fail with error 31920 even if the webhook
//! works.
//!
//! Limit: Pronto checks the signature before it looks at the upgrade headers,
//! so a proxy that drops those headers still gets Pronto's 403; this check
//! cannot tell that case apart.

use std::time::Duration;

use base64::Engine;
use reqwest::Client;
use serde_json::Value;

use super::finding::Finding;
use super::probe::{self, Answer, Failure};
use super::url;
use crate::config::Config;
use crate::redact::redact_userinfo;
use crate::twilio::signature::websocket_url;

/// The stream token of the probe: not a token Pronto issued, so it is refused.
const PROBE_PATH: &str = "/stream/pronto-check";

pub async fn check(client: &Client, config: &Config, timeout: Duration) -> Vec<Finding> {
    let d = &config.deployment;
    let public = d.public_base_url.trim_end_matches('/');
    if d.public_base_url_is_default || url::is_placeholder(&url::host(public)) {
        return vec![Finding::note(
            "skipped the tunnel checks: PUBLIC_BASE_URL is not a real address yet",
        )];
    }
    let health = probe::fetch(client.get(format!("{public}/health")), timeout);
    let upgrade = probe::fetch(websocket_upgrade(client, public), timeout);
    let (health, upgrade) = tokio::join!(health, upgrade);
    let unreachable = health.is_err();
    let mut out = judge_health(config, health);
    // One line is enough when the host cannot be reached at all.
    if !(unreachable && upgrade.is_err()) {
        out.push(judge_upgrade(public, upgrade));
    }
    out
}

/// An upgrade request as Twilio sends it, minus the signature. `https://` is
/// what `wss://` is on the wire.
fn websocket_upgrade(client: &Client, public: &str) -> reqwest::RequestBuilder {
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
    client
        .get(format!("{public}{PROBE_PATH}"))
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", key)
}

fn judge_health(config: &Config, result: Result<Answer, Failure>) -> Vec<Finding> {
    let public = redact_userinfo(&config.deployment.public_base_url);
    let url = format!("{public}/health");
    let port = config.tunables.server.port;
    let answer = match result {
        Ok(answer) => answer,
        Err(failure) => {
            return vec![Finding::error(format!(
                "{}: is the tunnel running, and is PUBLIC_BASE_URL its hostname?",
                failure.describe(&format!("PUBLIC_BASE_URL ({public})"))
            ))];
        }
    };
    let pronto = answer
        .json()
        .filter(|v| v.get("status").is_some() && v.get("version").is_some());
    match (answer.status, pronto) {
        (200, Some(health)) => compare(config, &url, &health),
        (status @ 300..=399, _) => vec![Finding::error(format!(
            "{url} redirects ({status} to {}): set PUBLIC_BASE_URL to the URL Twilio should call, with no redirect in between",
            answer.location()
        ))],
        (status, _) => {
            let cloudflare = if answer.is_cloudflare() {
                " from Cloudflare"
            } else {
                ""
            };
            let hint = match (status, answer.is_cloudflare()) {
                (530, true) => "no cloudflared is connected for this hostname; start the tunnel (cloudflared tunnel run …)".to_string(),
                (502 | 504, true) => format!(
                    "cloudflared runs but cannot reach Pronto; point the tunnel's service at Pronto (http://localhost:{port}, or http://<container name>:{port} from another container)"
                ),
                _ => format!(
                    "check that the tunnel's hostname routes to Pronto's port (http://localhost:{port})"
                ),
            };
            vec![Finding::error(format!(
                "{url} answered {status}{cloudflare} ({}), not Pronto: the tunnel does not reach Pronto; {hint}",
                answer.content_type()
            ))]
        }
    }
}

/// Pronto answered: is it running with this configuration?
fn compare(config: &Config, url: &str, health: &Value) -> Vec<Finding> {
    let d = &config.deployment;
    let text = |key: &str| health.get(key).and_then(Value::as_str).unwrap_or("?");
    let (status, version, mode) = (text("status"), text("version"), text("mode"));
    let mut out = vec![match status {
        "ok" => Finding::ok(format!("{url} reaches Pronto {version} ({mode} mode)")),
        other => Finding::note(format!(
            "{url} reaches Pronto {version}, which is {other} (shutting down?): new callers hear the busy message"
        )),
    }];
    let local = redact_userinfo(&d.public_base_url);
    match health.get("public_base_url").and_then(Value::as_str) {
        None => out.push(Finding::note(format!(
            "the Pronto behind PUBLIC_BASE_URL ({version}) does not say which PUBLIC_BASE_URL it checks signatures against (it is older than this check): update it to compare"
        ))),
        Some(remote) if remote != local => out.push(Finding::error(format!(
            "the Pronto behind PUBLIC_BASE_URL checks signatures against {remote}, but this configuration says {local}: it would refuse every call (403); make them the same and restart Pronto, or point the tunnel at the right Pronto"
        ))),
        Some(_) => {}
    }
    let local_mode = if config.ai.is_some() { "agent" } else { "echo" };
    if mode != local_mode {
        out.push(Finding::note(format!(
            "the running Pronto answers in {mode} mode, this configuration in {local_mode} mode: restart Pronto to apply it"
        )));
    }
    if health.get("signature_checks") == Some(&Value::Bool(false)) && !d.skip_signature {
        out.push(Finding::note(
            "the running Pronto does not check Twilio's signatures (TWILIO_SKIP_SIGNATURE=true there), this configuration does: restart Pronto to apply it",
        ));
    }
    out
}

fn judge_upgrade(public: &str, result: Result<Answer, Failure>) -> Finding {
    let shown = format!("{}{PROBE_PATH}", websocket_url(&redact_userinfo(public)));
    let answer = match result {
        Ok(answer) => answer,
        Err(failure) => {
            return Finding::error(format!(
                "{}: Twilio could not open the call's audio stream (error 31920)",
                failure.describe(&shown)
            ));
        }
    };
    let cloudflare = if answer.is_cloudflare() {
        " from Cloudflare"
    } else {
        ""
    };
    match answer.status {
        // Pronto's refusal: `forbidden()`, a plain "Forbidden".
        403 if answer.body.trim() == "Forbidden" => Finding::ok(format!(
            "{shown} reaches Pronto: it refused an unsigned upgrade (403), as it should"
        )),
        403 => Finding::error(format!(
            "{shown} was refused by something in front of Pronto (403{cloudflare}, {}): Twilio's stream would fail (error 31920); let WebSockets through to /stream (Cloudflare: Network → WebSockets on, no WAF rule or bot challenge for this hostname)",
            answer.content_type()
        )),
        101 => Finding::error(format!(
            "{shown} accepted an unsigned WebSocket upgrade: that is not Pronto, which refuses it; the tunnel sends /stream somewhere else"
        )),
        status => Finding::error(format!(
            "{shown} answered {status}{cloudflare} ({}) instead of Pronto's refusal: the tunnel does not pass the call's audio stream to Pronto (Twilio error 31920); check that it passes WebSockets and every path to Pronto",
            answer.content_type()
        )),
    }
}
