//! Provider WebSockets: the connection (TLS through rustls with the
//! system's roots, a time limit, the refusal told from the drop) shared by
//! every provider that streams, and [`Pipe`], one call's socket run by a
//! task of its own for an engine whose protocol is decided in the call's
//! task (a speech-to-speech model).
//!
//! A pipe is a dumb carrier: it connects, sends what the call hands it,
//! hands back what the provider sends, and says how the connection ended.
//! It closes the socket when the call drops it, so a call that ends for any
//! reason leaves no provider session running (and billing) behind.

use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use tracing::{debug, warn};

use crate::metrics::{ProviderKind, RequestResult};
use crate::providers::ProviderError;

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a connection ended, as the provider's protocol reads the close.
#[derive(Debug, Clone, PartialEq)]
pub enum Closed {
    /// The provider finished as asked (after the closing message).
    Clean,
    /// A drop worth one reconnect (network, server restart, idle, a
    /// session's time limit).
    Retry(ProviderError),
    /// A refusal that another attempt would not fix (the key, the account,
    /// a bad request).
    Fatal(ProviderError),
}

/// The TLS configuration for every provider socket, built once.
fn tls() -> Option<Connector> {
    static CONFIG: OnceLock<Option<Arc<rustls::ClientConfig>>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        use rustls_platform_verifier::ConfigVerifierExt;
        match rustls::ClientConfig::with_platform_verifier() {
            Ok(config) => Some(Arc::new(config)),
            Err(e) => {
                warn!(error = %e, "no TLS roots for provider WebSockets; wss:// will fail");
                None
            }
        }
    });
    config.clone().map(Connector::Rustls)
}

/// Opens `request` within `timeout`. A refusal at the upgrade (a 4xx: the
/// key, a bad parameter, the rate) is [`Closed::Fatal`]; a server error, a
/// timeout or a network failure is worth a retry.
pub async fn connect(
    provider: &'static str,
    request: Request,
    timeout: Duration,
) -> Result<(Socket, Response), Closed> {
    let config = tungstenite::protocol::WebSocketConfig::default();
    let attempt =
        tokio_tungstenite::connect_async_tls_with_config(request, Some(config), true, tls());
    match tokio::time::timeout(timeout, attempt).await {
        Err(_) => Err(Closed::Retry(ProviderError::Timeout {
            provider,
            after: timeout,
        })),
        Ok(Err(tungstenite::Error::Http(response))) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let error = ProviderError::Status {
                provider,
                status,
                message: crate::redact::outside(&body.chars().take(200).collect::<String>()),
            };
            Err(if status >= 500 {
                Closed::Retry(error)
            } else {
                Closed::Fatal(error)
            })
        }
        Ok(Err(e)) => Err(Closed::Retry(ProviderError::Connect {
            provider,
            detail: e.to_string(),
        })),
        Ok(Ok(connected)) => Ok(connected),
    }
}

/// A socket error mid-call: worth the reconnect.
pub fn dropped(provider: &'static str, error: tungstenite::Error) -> Closed {
    Closed::Retry(ProviderError::Connect {
        provider,
        detail: format!("connection lost: {error}"),
    })
}

/// `https://` → `wss://`, `http://` → `ws://`; `ws(s)://` as is, so that
/// one base URL serves a fake and the real service alike.
pub fn ws_scheme(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        url.to_string()
    }
}

/// The upgrade request to `url` with the `Authorization` header
/// `authorization`; what cannot be one is `provider`'s protocol error.
pub fn request(
    provider: &'static str,
    url: &str,
    authorization: &str,
) -> Result<Request, ProviderError> {
    let mut request = url
        .into_client_request()
        .map_err(|e| ProviderError::protocol(provider, format!("bad endpoint: {e}")))?;
    let key = HeaderValue::from_str(authorization)
        .map_err(|_| ProviderError::protocol(provider, "the API key is not a header value"))?;
    request.headers_mut().insert("authorization", key);
    Ok(request)
}

/// What a [`Pipe`] reports, in order.
#[derive(Debug)]
pub enum Piped {
    /// The upgrade succeeded.
    Open,
    /// A text frame from the provider.
    Text(String),
    /// A binary frame from the provider.
    Binary(bytes::Bytes),
    /// The connection is over: refused, dropped, or closed by the provider
    /// (with its close code and reason). Nothing follows.
    Ended(Ending),
}

/// How a pipe's connection ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// The upgrade was refused or failed (see [`connect`]).
    NotOpened(Closed),
    /// The provider closed the socket, with this code and reason.
    ClosedBy(Option<u16>, String),
    /// The connection dropped without a close frame.
    Dropped(String),
}

/// Messages waiting to go out at most: 5 s of 20 ms audio frames. A
/// provider that stops reading loses the newest, not the call's memory.
const OUTBOX: usize = 256;

/// One call's socket to a provider, run by a task; dropping the pipe closes
/// the socket.
pub struct Pipe {
    outbox: mpsc::Sender<Message>,
    inbox: mpsc::UnboundedReceiver<Piped>,
    provider: &'static str,
    /// Frames dropped because the outbox was full, said once when it empties.
    dropped: u64,
}

impl Pipe {
    /// Connects to `request` in the background; [`Piped::Open`] or
    /// [`Piped::Ended`] comes first.
    pub fn open(provider: &'static str, request: Request, timeout: Duration) -> Pipe {
        let (outbox, rx) = mpsc::channel(OUTBOX);
        let (tx, inbox) = mpsc::unbounded_channel();
        tokio::spawn(run(provider, request, timeout, rx, tx));
        Pipe {
            outbox,
            inbox,
            provider,
            dropped: 0,
        }
    }

    /// A pipe with no task: what is sent is kept in the returned receiver,
    /// what the test pushes into the returned sender is received. For tests
    /// of the protocols built on pipes.
    pub fn detached(
        provider: &'static str,
    ) -> (Pipe, mpsc::Receiver<Message>, mpsc::UnboundedSender<Piped>) {
        let (outbox, rx) = mpsc::channel(OUTBOX);
        let (tx, inbox) = mpsc::unbounded_channel();
        let pipe = Pipe {
            outbox,
            inbox,
            provider,
            dropped: 0,
        };
        (pipe, rx, tx)
    }

    /// Queues `message` for the provider; false when it is not sent (the
    /// connection is over, or the provider stopped reading).
    pub fn send(&mut self, message: Message) -> bool {
        match self.outbox.try_send(message) {
            Ok(()) => {
                if self.dropped > 0 {
                    warn!(
                        provider = self.provider,
                        frames = self.dropped,
                        "the provider was not reading; messages were dropped"
                    );
                    self.dropped = 0;
                }
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped += 1;
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// The next thing the provider sent, or how the connection ended
    /// (`None` after that).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Piped>> {
        self.inbox.poll_recv(cx)
    }
}

async fn run(
    provider: &'static str,
    request: Request,
    timeout: Duration,
    mut outbox: mpsc::Receiver<Message>,
    inbox: mpsc::UnboundedSender<Piped>,
) {
    let mut socket = match connect(provider, request, timeout).await {
        Ok((socket, _)) => socket,
        Err(closed) => {
            counted(provider, RequestResult::Error);
            let _ = inbox.send(Piped::Ended(Ending::NotOpened(closed)));
            return;
        }
    };
    let _ = inbox.send(Piped::Open);
    let ending = loop {
        tokio::select! {
            message = outbox.recv() => {
                let Some(message) = message else {
                    // The call is over: say goodbye, briefly.
                    let bye = tokio::time::timeout(Duration::from_secs(2), socket.close(None));
                    let _ = bye.await;
                    debug!(provider, "provider socket closed");
                    counted(provider, RequestResult::Ok);
                    return;
                };
                let mut sent = socket.feed(message).await;
                // Everything already waiting goes in the same flush.
                while sent.is_ok() && let Ok(more) = outbox.try_recv() {
                    sent = socket.feed(more).await;
                }
                if let Err(e) = sent.and(socket.flush().await) {
                    break Ending::Dropped(e.to_string());
                }
            }
            message = socket.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let _ = inbox.send(Piped::Text(text.as_str().to_owned()));
                }
                Some(Ok(Message::Binary(data))) => {
                    let _ = inbox.send(Piped::Binary(data));
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|f| (Some(u16::from(f.code)), f.reason.to_string()))
                        .unwrap_or((None, String::new()));
                    break Ending::ClosedBy(code, reason);
                }
                // Pings are answered by tungstenite.
                Some(Ok(_)) => {}
                Some(Err(e)) => break Ending::Dropped(e.to_string()),
                None => break Ending::Dropped("the connection closed".into()),
            }
        }
    };
    debug!(provider, ending = ?ending, "provider socket ended");
    // The provider ended it during the call: only a normal closure (a
    // session's time limit, said properly) is no failure.
    let result = match ending {
        Ending::ClosedBy(Some(1000), _) => RequestResult::Ok,
        _ => RequestResult::Error,
    };
    counted(provider, result);
    let _ = inbox.send(Piped::Ended(ending));
}

/// Counts how a pipe's connection went (pipes carry speech-to-speech
/// sessions); an engine that connects again counts the retry itself.
fn counted(provider: &'static str, result: RequestResult) {
    crate::metrics::provider_request(provider, ProviderKind::S2s, result);
}
