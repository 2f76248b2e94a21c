//! Do Pronto's Twilio credentials belong to the account? `GET
//! {TWILIO_API_BASE_URL}/2010-04-01/Accounts/{sid}.json` with HTTP Basic auth
//! (<https://www.twilio.com/docs/iam/api/account#fetch-an-account-resource>):
//! with `sid:TWILIO_AUTH_TOKEN`, a 200 means the
//! token is the account's, and a 401 means it is not, so Twilio's signatures
//! would never match and every webhook would get 403. With an API key
//! configured, the same request with `key:secret` checks the credentials
//! Pronto's REST calls (hang up, transfer, outbound calls) use.

use std::time::Duration;

use reqwest::Client;
use serde_json::Value;

use super::finding::Finding;
use super::offline::is_account_sid;
use super::probe::{self, Answer, Failure};
use super::url;
use crate::config::Deployment;
use crate::redact::Secret;

pub async fn check(client: &Client, d: &Deployment, timeout: Duration) -> Vec<Finding> {
    // Without a token, or with a malformed SID, the offline check has said it.
    let Some(token) = &d.twilio_auth_token else {
        return Vec::new();
    };
    let Some(sid) = &d.twilio_account_sid else {
        return vec![Finding::note(
            "cannot check TWILIO_AUTH_TOKEN with Twilio: TWILIO_ACCOUNT_SID is not set; set it (AC…, on the Twilio console's home page) to enable this check",
        )];
    };
    if !is_account_sid(sid) {
        return Vec::new();
    }
    let url = format!(
        "{}/2010-04-01/Accounts/{sid}.json",
        d.twilio_api_base_url.trim_end_matches('/')
    );
    let fetch = |user: &str, password: &Secret| {
        let request = client.get(&url).basic_auth(user, Some(password.expose()));
        probe::fetch(request, timeout)
    };
    let host = url::authority(&d.twilio_api_base_url).to_string();
    match &d.twilio_api_key {
        None => vec![judge(&host, sid, &AUTH_TOKEN, fetch(sid, token).await)],
        Some((key_sid, secret)) => {
            let (by_token, by_key) = tokio::join!(fetch(sid, token), fetch(key_sid, secret));
            vec![
                judge(&host, sid, &AUTH_TOKEN, by_token),
                judge(&host, sid, &API_KEY, by_key),
            ]
        }
    }
}

/// Which credentials a request tried, and what their refusal means.
struct Credentials {
    name: &'static str,
    verb: &'static str,
    refused: &'static str,
}

const AUTH_TOKEN: Credentials = Credentials {
    name: "TWILIO_AUTH_TOKEN",
    verb: "is",
    refused: "it is not this account's Auth Token, so Twilio's signatures would not match and every call would get 403; copy the primary Auth Token of the account TWILIO_ACCOUNT_SID names (Twilio console → Account → API keys & tokens)",
};

const API_KEY: Credentials = Credentials {
    name: "TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET",
    verb: "are",
    refused: "Pronto's REST calls use them, so the agent could not hang up or transfer and outbound calls would fail; create a new API key (Twilio console → Account → API keys & tokens), or remove both to use the Auth Token",
};

fn judge(host: &str, sid: &str, who: &Credentials, result: Result<Answer, Failure>) -> Finding {
    let name = who.name;
    let answer = match result {
        Ok(answer) => answer,
        Err(failure) => {
            return Finding::error(format!(
                "{name} could not be checked: {}; Pronto needs {host} to hang up, transfer and place calls, so check this machine's network (and TWILIO_API_BASE_URL)",
                failure.describe(host)
            ));
        }
    };
    let json = answer.json();
    let field = |key: &str| json.as_ref().and_then(|j| j.get(key).cloned());
    // Twilio's error JSON: {"code": 20003, "message": …, "status": 401}.
    let code = field("code")
        .and_then(|c| c.as_u64())
        .map_or(String::new(), |c| format!(", Twilio error {c}"));
    match answer.status {
        200 => match field("status").as_ref().and_then(Value::as_str) {
            Some(status @ ("suspended" | "closed")) => Finding::error(format!(
                "Twilio account {sid} is {status}: Twilio will not pass calls to Pronto; see the Twilio console"
            )),
            _ => Finding::ok(format!(
                "{name} {} accepted by {host} for account {sid}",
                who.verb
            )),
        },
        401 | 403 => Finding::error(format!(
            "{name} {} refused by {host} for account {sid} ({}{code}): {}",
            if who.verb == "is" { "was" } else { "were" },
            answer.status,
            who.refused
        )),
        404 => Finding::error(format!(
            "{host} does not know account {sid} (404{code}): check TWILIO_ACCOUNT_SID (AC…, on the Twilio console's home page)"
        )),
        status @ (429 | 500..=599) => Finding::note(format!(
            "{host} answered {status}: could not check {name} now; try again later"
        )),
        status => {
            let message = field("message")
                .and_then(|m| m.as_str().map(str::to_string))
                .map_or(String::new(), |m| format!(": {m}"));
            Finding::error(format!(
                "{host} answered {status}{code} when checking {name}{message}"
            ))
        }
    }
}
