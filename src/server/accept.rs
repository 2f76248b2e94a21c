//! The accept loop: every connection served by hyper's HTTP/1 with a deadline
//! for each request's headers, at most `max_connections` of them open at
//! once, `TCP_NODELAY` on, and a graceful shutdown.
//!
//! In place of `axum::serve`, which has neither a header timeout nor a
//! connection cap: with it, a socket that sent nothing or half a request
//! stayed open for good, and a thousand of them used up the file limit and
//! stopped every request, Twilio's included. hyper's own HTTP/1
//! connection rather than hyper-util's `auto` one: `auto` first reads the
//! bytes that tell HTTP/2 from HTTP/1, with no deadline, so a socket sending
//! nothing would still stay open; and Pronto serves HTTP/1 only, as it did
//! through `axum::serve` (axum's `http2` feature is off).

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::{debug, error, warn};

/// What the clients may hold of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once; above it, new ones wait in the kernel's
    /// listen backlog.
    pub max_connections: usize,
    /// For a request's line and headers, from when the connection is ready
    /// for them: its opening, or the end of the previous response (so also
    /// the idle time allowed between kept-alive requests).
    pub header_timeout: Duration,
}

/// Serves `app` on `listener` until `stop` resolves, then stops accepting,
/// lets each connection finish the request it is serving, and returns once
/// every connection has closed. A WebSocket leaves the count (and the
/// shutdown's wait) once upgraded: its call's session owns it.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut http = http1::Builder::new();
    // hyper starts this timer whenever it waits for a request head, the first
    // or the next on a kept-alive connection, and closes the connection when
    // it fires (https://docs.rs/hyper/1/hyper/server/conn/http1/struct.Builder.html#method.header_read_timeout).
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // Sent to ask every connection to finish; closed once every connection
    // task has dropped its receiver, that is, has ended. (hyper-util's
    // `GracefulShutdown` does not take an HTTP/1 connection with upgrades.)
    let (shutdown, _) = watch::channel(());
    let mut stop = std::pin::pin!(stop);
    loop {
        // A free slot before `accept`: at the cap, a new connection waits in
        // the listen backlog, holding none of this process's files, until a
        // connection closes (an idle one within the header timeout), rather
        // than being accepted only to be dropped.
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                // Never closed; were it, serving could not go on.
                Err(_) => break,
            },
            () = &mut stop => break,
        };
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    on_accept_error(e).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // TCP_NODELAY: a small `mark` or `clear` must not wait behind Nagle's
        // algorithm for the previous media frame's ACK (20–40 ms late otherwise).
        if let Err(e) = tcp.set_nodelay(true) {
            warn!(error = %e, "cannot set TCP_NODELAY");
        }
        let conn = http
            .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(app.clone()))
            .with_upgrades();
        let mut finish = shutdown.subscribe();
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let ended = tokio::select! {
                ended = conn.as_mut() => ended,
                _ = finish.changed() => {
                    // The request in progress is answered, then the
                    // connection closes; an idle one closes at once, a
                    // half-received head at its header timeout.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            // A timed-out or reset connection is the client's doing: not
            // worth more than a debug line each.
            if let Err(e) = ended {
                debug!(error = %e, "connection closed with an error");
            }
            drop(permit);
            drop(finish);
        });
    }
    // Closing the listener refuses new connections at once, where keeping it
    // would leave them waiting in the backlog for nothing.
    drop(listener);
    shutdown.send_replace(());
    shutdown.closed().await;
    Ok(())
}

/// An `accept` that failed. A connection reset before it was accepted is
/// the client's affair; anything else (out of files, most likely) is logged
/// and waited out for a second, so the loop does not spin on it.
async fn on_accept_error(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    error!(error = %e, "cannot accept a connection");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
