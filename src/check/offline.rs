//! The checks that need no network: what in the configuration would make a
//! call fail, each said with how to fix it.
//!
//! They read the loaded [`Config`] (structured values, never the text of its
//! warnings) and, for what the loader does not keep, the environment map. A
//! start-up warning this module does not explain better is passed on as a
//! note, so that a warning added to the loader later is never lost here.

use std::collections::HashMap;

use super::finding::Finding;
use super::url;
use crate::config::{Config, Deployment};
use crate::redact::redact_userinfo;

/// How to fix a `PUBLIC_BASE_URL`, said once.
const SET_PUBLIC_URL: &str =
    "set it to your tunnel's https URL, exactly as typed in the Twilio console, without /voice";

/// Start-up warnings explained by the checks below (each warning starts with
/// the name of its setting; the echo-mode one with these words).
const EXPLAINED: [&str; 4] = [
    "PUBLIC_BASE_URL",
    "TWILIO_AUTH_TOKEN",
    "API_TOKEN",
    "answering in echo mode",
];

/// Everything worth saying about `config`, topic by topic.
pub fn findings(config: &Config, env: &HashMap<String, String>) -> Vec<Finding> {
    let mut out = Vec::new();
    let d = &config.deployment;
    public_base_url(d, &mut out);
    signatures(d, &mut out);
    quoted_values(config, env, &mut out);
    twilio_account(d, env, &mut out);
    agent(config, &mut out);
    if d.api_token.is_none() {
        out.push(Finding::note(
            "API_TOKEN is not set: /api/* (call history, live status) answers 401, calls work without it; to use the API, set it to a random string (openssl rand -hex 32)",
        ));
    }
    out.extend(unexplained(config).map(Finding::note));
    out
}

/// The start-up warnings of `config` the checks here do not explain.
pub(super) fn unexplained(config: &Config) -> impl Iterator<Item = String> + '_ {
    config
        .warnings
        .iter()
        .filter(|w| !EXPLAINED.iter().any(|prefix| w.starts_with(prefix)))
        .cloned()
}

/// The URL Twilio calls, and the one every signature is checked against.
fn public_base_url(d: &Deployment, out: &mut Vec<Finding>) {
    let shown = redact_userinfo(&d.public_base_url);
    if d.public_base_url_is_default {
        out.push(Finding::error(format!(
            "PUBLIC_BASE_URL is not set (Pronto would use {shown}): {SET_PUBLIC_URL}"
        )));
        return;
    }
    let host = url::host(&d.public_base_url);
    if url::is_placeholder(&host) {
        out.push(Finding::error(format!(
            "PUBLIC_BASE_URL is {shown}, a placeholder address Twilio cannot reach: {SET_PUBLIC_URL}"
        )));
    } else if url::is_loopback(&host) {
        out.push(Finding::note(format!(
            "PUBLIC_BASE_URL is {shown}, an address of this machine that Twilio cannot reach: fine for trying Pronto with `pronto call`; for real calls {SET_PUBLIC_URL}"
        )));
    } else if d.public_base_url.starts_with("http://") {
        out.push(Finding::error(format!(
            "PUBLIC_BASE_URL is {shown}, not https: Twilio connects the call's audio stream only to wss:// on port 443, so calls would fail (Twilio error 31920 or 31910); {SET_PUBLIC_URL}"
        )));
    } else if let Some(port) = url::port(&d.public_base_url).filter(|p| *p != "443") {
        out.push(Finding::error(format!(
            "PUBLIC_BASE_URL is {shown}, with port {port}: Twilio connects the call's audio stream only to wss:// on port 443, so calls would fail (Twilio error 31920); use the tunnel's https URL without a port"
        )));
    }
    let path = url::path(&d.public_base_url);
    for suffix in ["/voice", "/voice/status"] {
        if let Some(base) = shown
            .strip_suffix(suffix)
            .filter(|_| path.ends_with(suffix))
        {
            out.push(Finding::error(format!(
                "PUBLIC_BASE_URL ends in {suffix}: leave that out, Pronto adds it (set PUBLIC_BASE_URL={base}; the console's \"A call comes in\" URL is {base}/voice)"
            )));
        }
    }
    if host.ends_with(".trycloudflare.com") {
        out.push(Finding::note(format!(
            "PUBLIC_BASE_URL is a Cloudflare quick tunnel ({host}): its hostname changes each time cloudflared restarts, and PUBLIC_BASE_URL and the Twilio console must then change with it; a named tunnel keeps one hostname"
        )));
    }
}

/// Twilio's signatures: without them checked, anyone can call in; without the
/// auth token, nobody can.
fn signatures(d: &Deployment, out: &mut Vec<Finding>) {
    if d.skip_signature {
        out.push(Finding::error(
            "TWILIO_SKIP_SIGNATURE=true: Twilio's signatures are not checked, so anyone who finds PUBLIC_BASE_URL can place calls into Pronto and spend your AI credit (development only); remove it, or set it to false, and set TWILIO_AUTH_TOKEN",
        ));
    } else if d.twilio_auth_token.is_none() {
        out.push(Finding::error(
            "TWILIO_AUTH_TOKEN is not set: Pronto would refuse every call (403); set it to your account's primary Auth Token (Twilio console → Account → API keys & tokens)",
        ));
    }
}

/// Credentials wrapped in quotes. Pronto's own `.env` reading drops them, but
/// `docker run --env-file` keeps them as part of the value, and then the key
/// is refused.
fn quoted_values(config: &Config, env: &HashMap<String, String>, out: &mut Vec<Finding>) {
    let mut vars: Vec<String> = [
        "TWILIO_AUTH_TOKEN",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_API_KEY_SID",
        "TWILIO_API_KEY_SECRET",
        "API_TOKEN",
        "STREAM_TOKEN_SECRET",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "ELEVENLABS_API_KEY",
    ]
    .map(String::from)
    .to_vec();
    for var in key_vars(config) {
        if !vars.contains(&var) {
            vars.push(var);
        }
    }
    out.extend(vars.iter().filter_map(|var| quoted(var, env)));
}

/// The variables holding the keys of `config`'s AI stages.
pub(super) fn key_vars(config: &Config) -> Vec<String> {
    config.ai.as_ref().map_or_else(Vec::new, |ai| {
        vec![
            ai.stt.key_var.clone(),
            ai.llm.key_var.clone(),
            ai.tts.key_var.clone(),
        ]
    })
}

/// `var`'s value wrapped in quotes, said with the fix.
pub(super) fn quoted(var: &str, env: &HashMap<String, String>) -> Option<Finding> {
    let value = env.get(var).map_or("", |v| v.trim());
    let quoted = value.len() >= 2
        && ['"', '\'']
            .iter()
            .any(|q| value.starts_with(*q) && value.ends_with(*q));
    quoted.then(|| {
        Finding::error(format!(
            "{var} is wrapped in quotes: remove them (`docker run --env-file` keeps quotes as part of the value, and the value is then refused)"
        ))
    })
}

/// The Account SID: the REST calls need it, and `--online` checks the auth
/// token with it.
fn twilio_account(d: &Deployment, env: &HashMap<String, String>, out: &mut Vec<Finding>) {
    match &d.twilio_account_sid {
        None => out.push(Finding::note(
            "TWILIO_ACCOUNT_SID is not set: the agent cannot hang up or transfer calls, and outbound calls are off; set it to your Account SID (AC…, on the Twilio console's home page)",
        )),
        Some(sid) if sid.starts_with("SK") => out.push(Finding::error(format!(
            "TWILIO_ACCOUNT_SID={sid} is an API key SID (SK…), not an Account SID: put it in TWILIO_API_KEY_SID, and your Account SID (AC…, on the Twilio console's home page) in TWILIO_ACCOUNT_SID"
        ))),
        Some(sid) if !is_account_sid(sid) => out.push(Finding::error(format!(
            "TWILIO_ACCOUNT_SID={sid} is not an Account SID (AC followed by 32 hexadecimal digits): copy it from the Twilio console's home page"
        ))),
        Some(_) => {}
    }
    let set = |var: &str| env.get(var).is_some_and(|v| !v.trim().is_empty());
    if set("TWILIO_API_KEY_SID") != set("TWILIO_API_KEY_SECRET") {
        out.push(Finding::note(
            "only one of TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET is set: Pronto's REST calls use TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN instead; set both, or neither",
        ));
    }
}

/// `AC` and 32 hexadecimal digits (Twilio's `^AC[0-9a-fA-F]{32}$`).
pub fn is_account_sid(sid: &str) -> bool {
    sid.strip_prefix("AC")
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A half-set agent, and what `serve` reads when the agent runs.
pub(super) fn agent(config: &Config, out: &mut Vec<Finding>) {
    let missing = &config.agent_missing_keys;
    if !missing.is_empty() {
        let them = if missing.len() == 1 { "it" } else { "them" };
        out.push(Finding::error(format!(
            "Pronto would answer in echo mode: the agent also needs {}; set {them} in .env (or the environment) to run the agent",
            missing.join(", ")
        )));
    }
    // The cascade's agent and OpenAI Realtime both read the prompt at start.
    let realtime = matches!(
        config.speech_to_speech,
        Some(crate::config::engine::SpeechToSpeech::OpenAiRealtime { .. })
    );
    if (config.ai.is_some() || realtime)
        && let Err(e) = crate::agent::prompt::Prompt::load(&config.tunables.agent)
    {
        out.push(Finding::fatal(format!(
            "{e}: `pronto serve` would not start until it is fixed"
        )));
    }
}

#[cfg(test)]
mod tests;
