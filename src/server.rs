//! The server: shared state, binding, and graceful shutdown.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::serve::ListenerExt;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::call::journal::Journal;
use crate::call::machine::Settings;
use crate::call::registry::Registry;
use crate::call::session::SessionContext;
use crate::config::{Config, ConfigError};
use crate::engine::Engine;
use crate::engine::echo::Echo;
use crate::recordings::Recordings;
use crate::store::Store;
use crate::twilio::rest::TwilioRest;
use crate::twilio::stream_token::{ReplayGuard, StreamTokens};

/// What every handler shares.
pub struct AppState {
    pub config: Arc<Config>,
    pub tokens: StreamTokens,
    pub replay: ReplayGuard,
    pub registry: Registry,
    pub sessions: SessionContext,
    /// Set on SIGTERM/SIGINT: new callers get the busy message.
    pub draining: AtomicBool,
    /// The call history; `None` only in tests that do without one.
    pub store: Option<Store>,
    pub journal: Journal,
    /// Set when the drain time is over: live calls say the closing line and
    /// end.
    pub closing: watch::Sender<bool>,
}

/// The parts a server is assembled from, besides its configuration.
pub struct Services {
    pub engine: Arc<dyn Engine>,
    pub store: Option<Store>,
    pub journal: Journal,
}

impl Services {
    /// Just an engine: no store.
    pub fn bare(engine: Arc<dyn Engine>) -> Services {
        Services {
            engine,
            store: None,
            journal: Journal::disabled(),
        }
    }
}

/// Echo mode's engine for `config`.
pub fn echo(config: &Config) -> Result<Arc<dyn Engine>, ConfigError> {
    let t = &config.tunables;
    let echo =
        Echo::new(t.vad.clone(), t.call.barge_in_min_ms).map_err(|e| ConfigError(e.to_string()))?;
    Ok(Arc::new(echo))
}

/// Builds the services `config` asks for: the responder (the agent when the AI
/// keys are set, else echo), and the store at `DATABASE_URL` with its writer.
/// Calls a dead earlier run of this replica left open are ended as abnormal.
/// Runs inside the runtime.
pub async fn services_for(
    config: &Config,
) -> Result<(Services, Option<JoinHandle<()>>), ConfigError> {
    let engine: Arc<dyn Engine> = match crate::agent::setup::build(config)? {
        Some(agent) => Arc::new(agent),
        None => echo(config)?,
    };
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
    let (journal, writer) = Journal::start(store.clone());
    Ok((
        Services {
            engine,
            store: Some(store),
            journal,
        },
        Some(writer),
    ))
}

impl AppState {
    pub fn with_services(config: Config, services: Services) -> Arc<AppState> {
        let t = &config.tunables;
        let tokens = StreamTokens::new(
            &stream_token_key(&config),
            Duration::from_secs(t.twilio.stream_token_ttl_secs),
        );
        let registry = Registry::default();
        let closing = watch::Sender::new(false);
        let sessions = SessionContext {
            settings: Arc::new(Settings {
                max_playback_lead: Duration::from_millis(u64::from(t.call.max_playback_lead_ms)),
                start_timeout: Duration::from_secs(t.twilio.start_timeout_secs),
                greeting_interruptible: t.agent.greeting_interruptible,
                dtmf_timeout: Duration::from_millis(u64::from(t.agent.dtmf_timeout_ms)),
                max_duration: secs(t.limits.max_call_duration_secs),
                idle_prompt: secs(t.limits.idle_prompt_secs),
                idle_hangup: secs(t.limits.idle_hangup_secs),
            }),
            engine: services.engine,
            registry: registry.clone(),
            journal: services.journal.clone(),
            store: services.store.clone(),
            memory_summaries: t
                .store
                .caller_memory
                .then_some(t.store.caller_memory_summaries),
            twilio: twilio_rest(&config),
            max_message_bytes: t.twilio.max_message_bytes,
            recordings: t.store.recordings.then(|| {
                Recordings::new(
                    PathBuf::from(&t.store.recordings_dir),
                    t.store.recordings_max_mb.saturating_mul(1024 * 1024),
                )
            }),
            closing: closing.subscribe(),
        };
        Arc::new(AppState {
            config: Arc::new(config),
            tokens,
            replay: ReplayGuard::default(),
            registry,
            sessions,
            draining: AtomicBool::new(false),
            store: services.store,
            journal: services.journal,
            closing,
        })
    }
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

/// A duration of whole seconds where 0 means "never".
fn secs(n: u64) -> Option<Duration> {
    (n > 0).then(|| Duration::from_secs(n))
}

pub fn app(state: Arc<AppState>) -> Router {
    crate::http::router(state)
}

/// Serves until `shutdown` resolves, then drains: new callers hear the busy
/// message while live calls get `server.drain_timeout_secs` to finish.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // TCP_NODELAY: a small `mark` or `clear` must not wait behind Nagle's
    // algorithm for the previous media frame's ACK (20–40 ms late otherwise).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            warn!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let server = axum::serve(listener, app(state.clone())).with_graceful_shutdown(async {
        let _ = stop_rx.await;
    });
    let server = tokio::spawn(async move { server.await });
    let heartbeat = tokio::spawn(heartbeat(state.clone()));
    shutdown.await;
    state.draining.store(true, Ordering::Relaxed);
    let drain = Duration::from_secs(state.config.tunables.server.drain_timeout_secs);
    let live = state.registry.live_count();
    info!(
        live_calls = live,
        drain_secs = drain.as_secs(),
        "shutting down: new calls get the busy message"
    );
    let deadline = Instant::now() + drain;
    while state.registry.live_count() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let left = state.registry.live_count();
    if left > 0 {
        warn!(
            live_calls = left,
            "drain timeout: live calls hear the closing line and end"
        );
        state.closing.send_replace(true);
        let deadline = Instant::now() + CLOSING_TIME;
        while state.registry.live_count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    heartbeat.abort();
    state.journal.flush().await;
    let _ = stop_tx.send(());
    match server.await {
        Ok(result) => result,
        Err(e) => Err(std::io::Error::other(e)),
    }
}

/// Time the calls still live after the drain get to hear the closing line.
const CLOSING_TIME: Duration = Duration::from_secs(10);
/// How often a replica tells the store it is alive (the store treats a
/// replica silent for 15 s as dead).
const HEARTBEAT: Duration = Duration::from_secs(5);

/// Tells the store this replica is alive, so that its calls count as live,
/// and ends the calls of replicas that have stopped.
async fn heartbeat(state: Arc<AppState>) {
    let Some(store) = state.store.clone() else {
        return;
    };
    let replica = state.config.deployment.replica_id.clone();
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        let now = chrono::Utc::now();
        if let Err(e) = store.heartbeat(&replica, now).await {
            warn!(error = %e, "heartbeat not written");
        }
        // A replica that died for good leaves calls nobody else would end.
        match store.end_stale(now, &replica).await {
            Ok(0) => {}
            Ok(n) => warn!(
                calls = n,
                "calls of a replica that stopped were ended as abnormal"
            ),
            Err(e) => warn!(error = %e, "cannot end a stopped replica's calls"),
        }
    }
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
