//! Does each configured AI key work? One cheap, free request per distinct
//! key and server, at the configured base URL (so a test can point it at a
//! fake): `GET {base}/models` for OpenAI and compatible servers, `GET
//! {base}/v1/models` for Anthropic, `GET {base}/v1/user` for ElevenLabs.
//! Speech-to-text, the LLM and text-to-speech often share one OpenAI key, and
//! several agents the same keys: each key at each server is tried once, and
//! the line names every stage (and, with several agents, every agent) that
//! uses it.

use std::time::Duration;

use reqwest::Client;
use reqwest::header::HeaderValue;

use super::finding::Finding;
use super::probe::{self, Answer, Failure};
use super::url;
use crate::config::agent::{
    ANTHROPIC_BASE, AiStages, ELEVENLABS_BASE, LlmProvider, OPENAI_BASE, TtsProvider,
};
use crate::providers::http::is_quota_error;
use crate::redact::Secret;

/// Sent by Anthropic's SDKs (<https://docs.anthropic.com/en/api/versioning>).
const ANTHROPIC_VERSION: &str = "2023-06-01";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    OpenAi,
    Anthropic,
    ElevenLabs,
}

/// One key at one server, and the stages that use it.
#[derive(Debug, Clone)]
struct Target {
    kind: Kind,
    base_url: String,
    key_var: String,
    key: Secret,
    stages: Vec<&'static str>,
    /// The agents using it, when there are several.
    agents: Vec<String>,
}

/// The distinct (server, key) pairs of the agents' stages, in agent then
/// stage order.
fn targets(agents: &[(&str, &AiStages)]) -> Vec<Target> {
    let mut targets: Vec<Target> = Vec::new();
    for (name, ai) in agents {
        add_targets(&mut targets, name, ai);
    }
    if agents.len() < 2 {
        // One agent: the line is about the keys alone, as before agents.
        for target in &mut targets {
            target.agents.clear();
        }
    }
    targets
}

fn add_targets(targets: &mut Vec<Target>, agent: &str, ai: &AiStages) {
    let llm_kind = match ai.llm.provider {
        LlmProvider::Anthropic => Kind::Anthropic,
        LlmProvider::OpenAi => Kind::OpenAi,
    };
    let tts_kind = match ai.tts.provider {
        TtsProvider::ElevenLabs => Kind::ElevenLabs,
        TtsProvider::OpenAi => Kind::OpenAi,
    };
    let stages = [
        (
            Kind::OpenAi,
            &ai.stt.endpoint,
            &ai.stt.key_var,
            "speech-to-text",
        ),
        (llm_kind, &ai.llm.endpoint, &ai.llm.key_var, "LLM"),
        (
            tts_kind,
            &ai.tts.endpoint,
            &ai.tts.key_var,
            "text-to-speech",
        ),
    ];
    for (kind, endpoint, key_var, stage) in stages {
        let same = targets.iter_mut().find(|t| {
            t.kind == kind && t.base_url == endpoint.base_url && t.key == endpoint.api_key
        });
        match same {
            Some(target) => {
                if !target.stages.contains(&stage) {
                    target.stages.push(stage);
                }
                if !target.agents.iter().any(|a| a == agent) {
                    target.agents.push(agent.to_string());
                }
            }
            None => targets.push(Target {
                kind,
                base_url: endpoint.base_url.clone(),
                key_var: key_var.clone(),
                key: endpoint.api_key.clone(),
                stages: vec![stage],
                agents: vec![agent.to_string()],
            }),
        }
    }
}

/// One line per distinct key, in agent then stage order; the requests run
/// concurrently.
pub async fn check(
    client: &Client,
    agents: &[(&str, &AiStages)],
    timeout: Duration,
) -> Vec<Finding> {
    let checks = targets(agents)
        .into_iter()
        .map(|target| async move { check_one(client, &target, timeout).await });
    futures_util::future::join_all(checks).await
}

async fn check_one(client: &Client, target: &Target, timeout: Duration) -> Finding {
    let Ok(mut key) = HeaderValue::from_str(target.key.expose()) else {
        return Finding::error(format!(
            "{} contains characters that cannot be sent in an HTTP header: copy the key again",
            target.key_var
        ));
    };
    key.set_sensitive(true);
    let base = target.base_url.trim_end_matches('/');
    let (url, request) = match target.kind {
        Kind::OpenAi => {
            let url = format!("{base}/models");
            let bearer = HeaderValue::from_str(&format!("Bearer {}", target.key.expose()));
            let mut request = client.get(&url);
            if let Ok(mut bearer) = bearer {
                bearer.set_sensitive(true);
                request = request.header(reqwest::header::AUTHORIZATION, bearer);
            }
            (url, request)
        }
        Kind::Anthropic => {
            let url = format!("{base}/v1/models");
            let request = client
                .get(&url)
                .header("x-api-key", key)
                .header("anthropic-version", ANTHROPIC_VERSION);
            (url, request)
        }
        Kind::ElevenLabs => {
            let url = format!("{base}/v1/user");
            (url.clone(), client.get(&url).header("xi-api-key", key))
        }
    };
    judge(target, &url, probe::fetch(request, timeout).await)
}

fn judge(target: &Target, url: &str, result: Result<Answer, Failure>) -> Finding {
    let host = url::authority(&target.base_url).to_string();
    let var = &target.key_var;
    let answer = match result {
        Ok(answer) => answer,
        Err(failure) => {
            return Finding::error(format!(
                "{var} could not be checked: {}; check this machine's network and the base URL ({})",
                failure.describe(&host),
                base_url_hint(target.kind)
            ));
        }
    };
    let status = answer.status;
    let code = code(&answer, &target.key);
    let reason = code.as_deref().map_or(String::new(), |c| format!(", {c}"));
    match status {
        200..=299 => {
            let agents = match target.agents.as_slice() {
                [] => String::new(),
                [one] => format!("; agent {one}"),
                several => format!("; agents {}", several.join(", ")),
            };
            Finding::ok(format!(
                "{var} works at {host} ({}{agents})",
                target.stages.join(", ")
            ))
        }
        401 | 403
            if target.kind == Kind::ElevenLabs
                && code.as_deref() == Some("missing_permissions") =>
        {
            Finding::note(format!(
                "{var} is a valid ElevenLabs key that may not read {} (401 missing_permissions): fine if it may use text-to-speech, which this check cannot try without spending characters",
                url::path(url)
            ))
        }
        401 | 403 => Finding::error(format!(
            "{var} was refused by {host} ({status}{reason}): {}",
            new_key_hint(target)
        )),
        429 if is_quota_error(&answer.body) => Finding::error(format!(
            "{var}'s account at {host} is out of credit or over its spend limit (429{reason}): add credit or raise the limit, or every turn gets the fallback line"
        )),
        429 => Finding::note(format!(
            "{host} is rate-limiting {var} right now (429{reason}): not a configuration problem, but calls hear the fallback line while it lasts"
        )),
        500..=599 => Finding::note(format!(
            "{host} answered {status} when checking {var}: a problem on their side, not in this configuration; try again later"
        )),
        404 => Finding::error(format!(
            "{url} answered 404: the base URL is probably wrong ({})",
            base_url_hint(target.kind)
        )),
        _ => Finding::error(format!(
            "{url} answered {status}{reason}: check {var} and the base URL ({})",
            base_url_hint(target.kind)
        )),
    }
}

/// The provider's error code (OpenAI `error.code`, Anthropic `error.type`,
/// ElevenLabs `detail.status`), else its message with the key taken out
/// (OpenAI quotes part of a wrong key back), shortened.
fn code(answer: &Answer, key: &Secret) -> Option<String> {
    let json = answer.json()?;
    let text = [
        "/error/code",
        "/error/type",
        "/detail/status",
        "/error/message",
        "/detail/message",
    ]
    .iter()
    .find_map(|p| json.pointer(p).and_then(|v| v.as_str()))?;
    let text = if key.expose().len() >= 4 {
        text.replace(key.expose(), "***")
    } else {
        text.to_string()
    };
    Some(text.chars().take(120).collect())
}

/// Where a valid key comes from.
fn new_key_hint(target: &Target) -> String {
    let var = &target.key_var;
    let official = match target.kind {
        Kind::OpenAi => OPENAI_BASE,
        Kind::Anthropic => ANTHROPIC_BASE,
        Kind::ElevenLabs => ELEVENLABS_BASE,
    };
    if target.base_url != official {
        let host = url::authority(&target.base_url);
        return format!("put the key {host} expects in {var}");
    }
    match target.kind {
        Kind::OpenAi => {
            format!("create a key at https://platform.openai.com/api-keys and put it in {var}")
        }
        Kind::Anthropic => {
            format!("create a key in the Claude Console (API keys) and put it in {var}")
        }
        Kind::ElevenLabs => format!(
            "create a key at https://elevenlabs.io/app/settings/api-keys and put it in {var}"
        ),
    }
}

/// Which settings name the base URL, and its shape.
fn base_url_hint(kind: Kind) -> &'static str {
    match kind {
        Kind::OpenAi => {
            "OPENAI_BASE_URL or base_url in [stt], [llm], [tts]; OpenAI-compatible URLs usually end in /v1"
        }
        Kind::Anthropic => "ANTHROPIC_BASE_URL or [llm] base_url, without /v1",
        Kind::ElevenLabs => "ELEVENLABS_BASE_URL or [tts] base_url, without /v1",
    }
}
