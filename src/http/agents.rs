//! `/api/agents`: the agents this Pronto answers as, what routes calls to
//! each, and `POST /api/agents/reload` (as SIGHUP does).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tracing::info;

use super::auth::Operator;
use super::error::ApiError;
use crate::call::roster::{Lineup, Persona, Reloaded};
use crate::config::routing::Condition;
use crate::http::AppState;

/// One agent, as `GET /api/agents` lists it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentInfo {
    /// Its name: its file's (`agents/<name>.toml`), or `default`.
    pub name: String,
    pub description: String,
    /// Its file, relative to the working directory; absent for the agent of
    /// `config/pronto.toml`.
    pub file: Option<String>,
    /// The language it speaks (ISO 639-1).
    pub language: String,
    /// What answers: `agent` (speech-to-text, an LLM, text-to-speech),
    /// `echo` (its keys are missing), `openai-realtime` or `moshi`.
    pub engine: &'static str,
    /// The voice it speaks with (the TTS voice, or the speech-to-speech
    /// model's); absent in echo mode and for Moshi.
    pub voice: Option<String>,
    /// It can end calls (`[agent] end_call`).
    pub end_call: bool,
    /// It can transfer calls (`[agent] transfer_number` is set).
    pub transfer: bool,
    /// It remembers callers (`[store] caller_memory`).
    pub caller_memory: bool,
    /// What routes calls to it.
    pub routes: Routes,
    /// The URL to paste in the Twilio console ("A call comes in") for a
    /// number that should reach this agent: `PUBLIC_BASE_URL/voice` for the
    /// default agent, `PUBLIC_BASE_URL/voice/<name>` for the others.
    pub webhook_url: String,
}

/// The routing rules that lead to an agent, in the order they are tried.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Routes {
    /// Numbers called (`to` rules).
    pub numbers: Vec<String>,
    /// Webhook paths (`path` rules), each reached at `/voice/<path>`; its
    /// own name always reaches it too, after the rules.
    pub paths: Vec<String>,
    /// Callers' prefixes (`from_prefix` rules).
    pub from_prefixes: Vec<String>,
    /// It answers every call no rule matches.
    pub default: bool,
}

/// `GET /api/agents`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentList {
    pub agents: Vec<AgentInfo>,
    /// The agent of a call no rule matches.
    pub default: String,
}

/// `GET /api/agents/{name}`: an agent with what it is made of.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentDetail {
    #[serde(flatten)]
    pub agent: AgentInfo,
    /// Its system prompt and knowledge files.
    pub prompt_file: String,
    pub knowledge_files: Vec<String>,
    /// What it says when a call starts (its `[lines.<language>] greeting`).
    pub greeting: String,
}

/// Every agent, and what routes calls to each.
#[utoipa::path(get, path = "/api/agents", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = AgentList), (status = 401, body = crate::http::error::ErrorBody)))]
pub async fn list(State(state): State<Arc<AppState>>) -> Response {
    let lineup = state.switchboard.roster().lineup();
    let agents = lineup
        .agents
        .values()
        .map(|a| info(&state, &lineup, a))
        .collect();
    Json(AgentList {
        agents,
        default: lineup.routing.default.clone(),
    })
    .into_response()
}

/// One agent.
#[utoipa::path(get, path = "/api/agents/{name}", security(("bearer" = []), ("cookie" = [])),
    params(("name" = String, Path, description = "The agent's name")),
    responses((status = 200, body = AgentDetail), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn one(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let lineup = state.switchboard.roster().lineup();
    let Some(agent) = lineup.agents.get(&name) else {
        return Err(ApiError(StatusCode::NOT_FOUND, "no such agent".into()));
    };
    let t = &agent.config.tunables;
    Ok(Json(AgentDetail {
        agent: info(&state, &lineup, agent),
        prompt_file: t.agent.prompt_file.clone(),
        knowledge_files: t.agent.knowledge_files.clone(),
        greeting: t.lines().greeting,
    })
    .into_response())
}

/// Reads the agent files and `[routing]` again: new calls get the new
/// agents, calls in progress keep theirs. A file with a mistake refuses the
/// whole reload (422, naming the file) and the agents stay as they were.
#[utoipa::path(post, path = "/api/agents/reload", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Reloaded),
        (status = 422, body = crate::http::error::ErrorBody, description = "A file has a mistake; nothing changed")))]
pub async fn reload(
    State(state): State<Arc<AppState>>,
    Extension(operator): Extension<Operator>,
) -> Result<Response, ApiError> {
    info!(operator = %operator, "reload asked");
    match state.switchboard.roster().reload().await {
        Ok(report) => Ok(Json(report).into_response()),
        Err(e) => Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.0)),
    }
}

fn info(state: &AppState, lineup: &Lineup, agent: &Persona) -> AgentInfo {
    let config = &agent.config;
    let t = &config.tunables;
    let mode = agent.engine.mode();
    let voice = match (&config.speech_to_speech, &config.ai) {
        _ if mode == "echo" || mode == "moshi" => None,
        (Some(_), _) => Some(t.realtime.voice.clone()),
        (None, Some(ai)) => Some(ai.tts.settings.voice.clone()),
        (None, None) => None,
    };
    let mut routes = Routes {
        default: lineup.routing.default == agent.name,
        ..Routes::default()
    };
    for rule in lineup
        .routing
        .rules
        .iter()
        .filter(|r| r.agent == agent.name)
    {
        match &rule.condition {
            Condition::To(n) => routes.numbers.push(n.clone()),
            Condition::Path(p) => routes.paths.push(p.clone()),
            Condition::FromPrefix(p) => routes.from_prefixes.push(p.clone()),
        }
    }
    AgentInfo {
        name: agent.name.clone(),
        description: agent.description.clone(),
        file: agent.file.as_ref().map(|f| f.display().to_string()),
        language: t.agent.language.clone(),
        engine: mode,
        voice,
        end_call: t.agent.end_call,
        transfer: agent.transfer_number().is_some(),
        caller_memory: t.store.caller_memory,
        routes,
        webhook_url: format!(
            "{}{}",
            state.config.deployment.public_base_url,
            lineup.routing.webhook_path(&agent.name)
        ),
    }
}
