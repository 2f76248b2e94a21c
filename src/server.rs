//! The server: shared state, binding, and graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::serve::ListenerExt;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::call::registry::Registry;
use crate::call::responder::{Echo, Responder};
use crate::call::session::{SessionConfig, SessionContext};
use crate::config::{Config, ConfigError};
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
}

impl AppState {
    pub fn new(config: Config, responder: Arc<dyn Responder>) -> Arc<AppState> {
        let t = &config.tunables;
        let tokens = StreamTokens::new(
            &stream_token_key(&config),
            Duration::from_secs(t.twilio.stream_token_ttl_secs),
        );
        let registry = Registry::default();
        let sessions = SessionContext {
            config: Arc::new(SessionConfig {
                vad: t.vad.clone(),
                barge_in_min_ms: t.call.barge_in_min_ms,
                max_playback_lead: Duration::from_millis(u64::from(t.call.max_playback_lead_ms)),
                start_timeout: Duration::from_secs(t.twilio.start_timeout_secs),
                max_message_bytes: t.twilio.max_message_bytes,
                greeting_interruptible: t.agent.greeting_interruptible,
                dtmf_timeout: Duration::from_millis(u64::from(t.agent.dtmf_timeout_ms)),
                max_history_turns: usize::try_from(t.agent.max_history_turns).unwrap_or(20),
            }),
            registry: registry.clone(),
            responder,
            twilio: twilio_rest(&config),
        };
        Arc::new(AppState {
            config: Arc::new(config),
            tokens,
            replay: ReplayGuard::default(),
            registry,
            sessions,
            draining: AtomicBool::new(false),
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

/// The responder for this configuration: the agent when every AI stage has
/// its key, else echo mode. Runs inside the runtime (the agent starts
/// synthesizing its fixed lines at once).
pub fn responder_for(config: &Config) -> Result<Arc<dyn Responder>, ConfigError> {
    Ok(match crate::agent::setup::build(config)? {
        Some(agent) => Arc::new(agent),
        None => Arc::new(Echo),
    })
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
        warn!(live_calls = left, "drain timeout: ending live calls");
    }
    let _ = stop_tx.send(());
    match server.await {
        Ok(result) => result,
        Err(e) => Err(std::io::Error::other(e)),
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
