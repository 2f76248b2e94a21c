//! Per-deployment values from the environment: the public URL Twilio calls,
//! Twilio credentials, the API token (every name is in `.env.example`).

use std::collections::HashMap;

use super::{ConfigError, Deployment, agent, err, non_empty, parse_bool};
use crate::redact::Secret;

pub(super) fn deployment(
    env: &HashMap<String, String>,
    port: u16,
    warnings: &mut Vec<String>,
) -> Result<Deployment, ConfigError> {
    let (public_base_url, public_base_url_is_default) = match non_empty(env, "PUBLIC_BASE_URL") {
        Some(url) => (public_base_url(url)?, false),
        None => {
            warnings.push(format!(
                "PUBLIC_BASE_URL is not set; using http://localhost:{port}. Twilio's requests will fail their signature check until it equals the URL in the Twilio console"
            ));
            (format!("http://localhost:{port}"), true)
        }
    };
    let local = ["http://localhost", "http://127.", "http://[::1]"];
    if public_base_url.starts_with("http://")
        && !local.iter().any(|l| public_base_url.starts_with(l))
    {
        warnings.push(format!(
            "PUBLIC_BASE_URL={public_base_url} is not https: Twilio connects Media Streams only to wss:// on port 443, so calls will fail (error 31920/31910). Use the https URL of your tunnel"
        ));
    }
    let skip_signature = match env.get("TWILIO_SKIP_SIGNATURE") {
        Some(raw) => parse_bool(raw.trim()).ok_or_else(|| {
            ConfigError(format!(
                "TWILIO_SKIP_SIGNATURE={raw}: must be true or false"
            ))
        })?,
        None => false,
    };
    let twilio_auth_token = non_empty(env, "TWILIO_AUTH_TOKEN").map(Secret::new);
    if twilio_auth_token.is_none() && !skip_signature {
        warnings.push(
            "TWILIO_AUTH_TOKEN is not set: every Twilio request will be refused (403) until it is"
                .into(),
        );
    }
    let api_token = non_empty(env, "API_TOKEN").map(Secret::new);
    if api_token.is_none() {
        warnings.push("API_TOKEN is not set: /api/* answers 401 until it is".into());
    }
    Ok(Deployment {
        public_base_url,
        public_base_url_is_default,
        twilio_auth_token,
        api_token,
        skip_signature,
        stream_token_secret: non_empty(env, "STREAM_TOKEN_SECRET").map(Secret::new),
        twilio_account_sid: non_empty(env, "TWILIO_ACCOUNT_SID").map(str::to_string),
        twilio_api_base_url: agent::base_url(
            non_empty(env, "TWILIO_API_BASE_URL").unwrap_or("https://api.twilio.com"),
            "TWILIO_API_BASE_URL",
        )?,
        twilio_api_key: match (
            non_empty(env, "TWILIO_API_KEY_SID"),
            non_empty(env, "TWILIO_API_KEY_SECRET"),
        ) {
            (Some(sid), Some(secret)) => Some((sid.to_string(), Secret::new(secret))),
            _ => None,
        },
        twilio_phone_number: non_empty(env, "TWILIO_PHONE_NUMBER").map(str::to_string),
        database_url: non_empty(env, "DATABASE_URL")
            .unwrap_or("sqlite://data/pronto.db")
            .to_string(),
        replica_id: match non_empty(env, "PRONTO_REPLICA_ID") {
            Some(id) => id.to_string(),
            None => format!("{}:{port}", host_name(env)),
        },
    })
}

/// Checks `PUBLIC_BASE_URL` and drops one trailing slash (the console URL is
/// this + `/voice`). It is kept byte for byte otherwise: Twilio signs it so.
fn public_base_url(raw: &str) -> Result<String, ConfigError> {
    let url = raw.strip_suffix('/').unwrap_or(raw);
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    let host = url.split_once("://").map_or("", |(_, rest)| rest);
    if !scheme_ok || host.is_empty() || host.starts_with('/') {
        return err(format!(
            "PUBLIC_BASE_URL={raw}: must be an http(s) URL such as https://voice.example.com"
        ));
    }
    if url.contains(['?', '#']) || url.contains(char::is_whitespace) {
        return err(format!(
            "PUBLIC_BASE_URL={raw}: must not contain a query, a fragment or spaces"
        ));
    }
    Ok(url.to_string())
}

/// The machine's name: `HOSTNAME`, else `/etc/hostname` (a container's id
/// under Docker), else `localhost`.
fn host_name(env: &HashMap<String, String>) -> String {
    if let Some(name) = non_empty(env, "HOSTNAME") {
        return name.to_string();
    }
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
