//! The server: everything a deployment needs, built from its configuration,
//! serving on a listener until asked to stop, then draining. `pronto
//! serve`, `pronto self-test` and the tests all start it with [`start`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::call::journal::Journal;
use crate::call::registry::{OnLapse, Registry};
use crate::call::roster::{EngineBuilder, Roster};
use crate::call::session::SessionContext;
use crate::call::switchboard::Switchboard;
use crate::config::{Config, ConfigError};
use crate::engine::Engine;
use crate::engine::echo::Echo;
use crate::engine::hearing::Ears;
use crate::engine::turn_model;
use crate::http::AppState;
use crate::model::EndReason;
use crate::recordings::Recordings;
use crate::store::Store;
use crate::twilio::rest::TwilioRest;
use crate::twilio::stream_token::StreamTokens;

mod accept;
mod file_limit;

pub use file_limit::connection_cap;

/// Time the calls still live after the drain get to hear the closing line.
const CLOSING_TIME: Duration = Duration::from_secs(10);
/// How often a replica tells the store it is alive (the store treats a
/// replica silent for 15 s as dead).
const HEARTBEAT: Duration = Duration::from_secs(5);

/// A running server. Dropping it (or [`Server::shutdown`]) stops it as
/// SIGTERM would: the drain begins.
pub struct Server {
    state: Arc<AppState>,
    /// Its sender dropping is the signal to stop.
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Begins the shutdown: new callers hear the busy message, live calls
    /// get `server.drain_timeout_secs`, then the closing line.
    pub fn shutdown(&mut self) {
        self.stop = None;
    }

    /// Waits for the server to stop: after [`Server::shutdown`], once every
    /// record is written, or when serving fails.
    pub async fn stopped(mut self) -> std::io::Result<()> {
        match (&mut self.task).await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

/// Starts serving on `listener` what `config` asks for: the store at
/// `DATABASE_URL` (calls a dead earlier run of this replica left open are
/// ended as abnormal), the agents with their engines (each agent's: the
/// agent when its AI keys are set, else echo; `engine` overrides that
/// choice for every agent), the call sessions. Runs inside the runtime.
pub async fn start(
    config: Config,
    listener: TcpListener,
    engine: Option<Arc<dyn Engine>>,
) -> Result<Server, ConfigError> {
    let build: EngineBuilder = match engine {
        Some(engine) => Arc::new(move |_: &Config| Ok(Arc::clone(&engine))),
        None => Arc::new(engine_for),
    };
    let roster = Roster::load(&config, build)?;
    let store = open_store(&config).await?;
    let (journal, writer) = Journal::start(store.clone());
    let (closing, closing_rx) = watch::channel(false);
    let t = &config.tunables;
    let sessions = SessionContext {
        registry: Registry::with_on_lapse(no_stream(journal.clone())),
        journal,
        store: store.clone(),
        twilio: twilio_rest(&config),
        recordings: t.store.recordings.then(|| {
            Recordings::new(
                PathBuf::from(&t.store.recordings_dir),
                t.store.recordings_max_mb.saturating_mul(1024 * 1024),
            )
            .with_min_free(t.store.recordings_min_free_mb.saturating_mul(1024 * 1024))
        }),
        max_message_bytes: t.twilio.max_message_bytes,
        closing: closing_rx,
    };
    let tokens = StreamTokens::new(
        &stream_token_key(&config),
        Duration::from_secs(t.twilio.stream_token_ttl_secs),
    );
    let switchboard = Switchboard::new(&config, roster, sessions, tokens);
    let sessions = crate::http::auth::Sessions::new(config.deployment.api_token.as_ref());
    let state = Arc::new(AppState {
        config,
        switchboard,
        store,
        sessions,
    });
    let limits = http_limits(&state.config);
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(serve(
        listener,
        limits,
        Arc::clone(&state),
        stopped,
        closing,
        writer,
    ));
    Ok(Server {
        state,
        stop: Some(stop),
        task,
    })
}

/// Ends, in the history, a call whose webhook was answered but whose media
/// stream never started (no stream, a refused upgrade, no `start` message,
/// or the server stopping first): otherwise it would stay open forever.
fn no_stream(journal: Journal) -> OnLapse {
    Arc::new(move |call_sid: &str| {
        info!(call_sid, "the media stream never started");
        journal.call_ended(call_sid, chrono::Utc::now(), EndReason::NoStream);
    })
}

/// The call history at `DATABASE_URL`, with what a dead earlier run of this
/// replica left open ended as abnormal.
async fn open_store(config: &Config) -> Result<Store, ConfigError> {
    let url = &config.deployment.database_url;
    let store = Store::open(url).await.map_err(|e| {
        ConfigError(format!(
            "DATABASE_URL={}: {e}",
            crate::redact::redact_userinfo(url)
        ))
    })?;
    match store
        .end_abandoned(chrono::Utc::now(), &config.deployment.replica_id)
        .await
    {
        Ok(0) => {}
        Ok(n) => warn!(
            calls = n,
            "calls left open by a replica that stopped were ended as abnormal"
        ),
        Err(e) => warn!(error = %e, "cannot close abandoned calls"),
    }
    Ok(store)
}

/// The engine a configuration asks for: a speech-to-speech model when
/// `[engine]` names one, else the agent when its keys are set, else echo.
pub fn engine_for(config: &Config) -> Result<Arc<dyn Engine>, ConfigError> {
    if let Some(s2s) = &config.speech_to_speech {
        return crate::s2s::build(config, s2s);
    }
    Ok(match crate::agent::setup::build(config)? {
        Some(agent) => Arc::new(agent),
        None => echo(config)?,
    })
}

/// Echo mode's engine for `config`.
pub fn echo(config: &Config) -> Result<Arc<dyn Engine>, ConfigError> {
    let ears = Ears::from_config(
        &config.tunables,
        turn_model::installed(&config.tunables, false),
    );
    let echo = Echo::new(ears).map_err(|e| ConfigError(e.to_string()))?;
    Ok(Arc::new(echo))
}

/// The key that signs stream tokens. Every replica must derive the same one,
/// so it comes from `STREAM_TOKEN_SECRET`, else from the Twilio auth token
/// (through HMAC, so the token itself is never used for two purposes); only
/// without either is it random, and then tokens work on this process alone.
fn stream_token_key(config: &Config) -> Vec<u8> {
    let d = &config.deployment;
    if let Some(secret) = &d.stream_token_secret {
        return secret.expose().as_bytes().to_vec();
    }
    if let Some(token) = &d.twilio_auth_token {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(token.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"pronto stream token key v1");
        return mac.finalize().into_bytes().to_vec();
    }
    rand::random::<[u8; 32]>().to_vec()
}

/// The REST client for hanging up and transferring, when the account SID is set.
fn twilio_rest(config: &Config) -> Option<Arc<TwilioRest>> {
    let client = match crate::providers::http::client() {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "no Twilio REST client");
            return None;
        }
    };
    TwilioRest::from_config(config, client).map(Arc::new)
}

/// What the clients may hold of the server, from `[server]`, with the soft
/// file limit raised first so that the connection cap can stay below it.
fn http_limits(config: &Config) -> accept::Limits {
    let s = &config.tunables.server;
    let files = file_limit::raise();
    let max_connections =
        file_limit::connection_cap(s.max_connections, s.max_concurrent_calls, files.soft);
    if let (Some(from), Some(to)) = (files.raised_from, files.soft) {
        info!(from, to, "raised the soft file limit to the hard limit");
    }
    if let Some(e) = &files.error {
        warn!(error = %e, "cannot raise the soft file limit");
    }
    info!(
        file_limit = files.soft,
        max_connections,
        header_timeout_secs = s.header_timeout_secs,
        body_timeout_secs = s.body_timeout_secs,
        "HTTP limits"
    );
    if max_connections < s.max_connections {
        warn!(
            file_limit = files.soft,
            "server.max_connections lowered to {max_connections}: at {} the file limit would leave too few files for {} calls; raise it (ulimit -n, or `ulimits: nofile` in docker-compose.yml)",
            s.max_connections,
            s.max_concurrent_calls
        );
    }
    accept::Limits {
        max_connections,
        header_timeout: Duration::from_secs(s.header_timeout_secs),
    }
}

/// How long a stopping server waits for the store to take the last records.
const FLUSH_TIME: Duration = Duration::from_secs(15);

/// Serves until `stop` resolves (its sender sent or dropped), then drains:
/// new callers hear the busy message while live calls get
/// `server.drain_timeout_secs` to finish, then the closing line; every
/// record is written before it returns.
async fn serve(
    listener: TcpListener,
    limits: accept::Limits,
    state: Arc<AppState>,
    stop: oneshot::Receiver<()>,
    closing: watch::Sender<bool>,
    writer: JoinHandle<()>,
) -> std::io::Result<()> {
    let (stop_serving, serving_stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(accept::serve(
        listener,
        crate::http::router(Arc::clone(&state)),
        limits,
        async {
            let _ = serving_stopped.await;
        },
    ));
    let heartbeat = tokio::spawn(heartbeat(Arc::clone(&state)));
    let reloads = tokio::spawn(reload_on_hangup(Arc::clone(&state)));
    let _ = stop.await;
    reloads.abort();
    let calls = &state.switchboard;
    calls.drain();
    let drain = Duration::from_secs(state.config.tunables.server.drain_timeout_secs);
    info!(
        live_calls = calls.live_calls(),
        drain_secs = drain.as_secs(),
        "shutting down: new calls get the busy message"
    );
    if tokio::time::timeout(drain, calls.calls_ended())
        .await
        .is_err()
    {
        warn!(
            live_calls = calls.live_calls(),
            "drain timeout: live calls hear the closing line and end"
        );
        closing.send_replace(true);
        let _ = tokio::time::timeout(CLOSING_TIME, calls.calls_ended()).await;
    }
    heartbeat.abort();
    calls.abandon_pending();
    if tokio::time::timeout(FLUSH_TIME, calls.flush_records())
        .await
        .is_err()
    {
        warn!(
            unwritten = calls.unwritten_records(),
            "the store is unavailable: call records that could not be written are lost"
        );
    }
    writer.abort();
    let _ = stop_serving.send(());
    match server.await {
        Ok(result) => result,
        Err(e) => Err(std::io::Error::other(e)),
    }
}

/// Tells the store this replica is alive, so that its calls count as live,
/// and ends the calls of replicas that have stopped.
async fn heartbeat(state: Arc<AppState>) {
    let store = &state.store;
    let replica = &state.config.deployment.replica_id;
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        let now = chrono::Utc::now();
        if let Err(e) = store.heartbeat(replica, now).await {
            warn!(error = %e, "heartbeat not written");
        }
        // A replica that died for good leaves calls nobody else would end.
        match store.end_stale(now, replica).await {
            Ok(0) => {}
            Ok(n) => warn!(
                calls = n,
                "calls of a replica that stopped were ended as abnormal"
            ),
            Err(e) => warn!(error = %e, "cannot end a stopped replica's calls"),
        }
    }
}

/// Reloads the agents on each SIGHUP (`docker compose kill -s HUP`), as
/// `POST /api/agents/reload` does; the roster logs what changed, or why
/// nothing did.
async fn reload_on_hangup(state: Arc<AppState>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGHUP: reload with POST /api/agents/reload");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            info!("SIGHUP received: reloading the agents");
            // A refused reload has been logged with the file at fault.
            let _ = state.switchboard.roster().reload().await;
        }
    }
    #[cfg(not(unix))]
    let _ = state;
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => info!("SIGINT received"),
        _ = term => info!("SIGTERM received"),
    }
}
