//! Serving the router over HTTP/1.1, with what keeps idle and slow clients from holding the
//! server:
//!
//! - a connection must send its first byte within `first_byte_timeout` (5 s), or it is closed;
//! - a request's headers must be complete within `header_timeout` (60 s), which also closes a
//!   keep-alive connection left idle that long (longer than load balancers' usual 60 s idle
//!   timeout, so they close first and never reuse a connection this server is closing); once
//!   more than three quarters of the connection cap is in use, new connections get only
//!   `busy_header_timeout` (5 s), so slow clients cannot hold the last slots;
//! - a cap on open connections, kept below the open-file limit, beyond which new connections
//!   wait in the listen queue rather than making the process run out of file descriptors;
//! - the peer's address on every request (`ConnectInfo`), for throttling sign-ins.
//!
//! Shutdown stops accepting, lets requests in flight finish (up to `drain`), then returns.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// How the server treats connections.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// A new connection must send a byte within this.
    pub first_byte_timeout: Duration,
    /// A client must send a request's headers within this, counted from the connection (or the
    /// previous response); an idle keep-alive connection is closed after it too.
    pub header_timeout: Duration,
    /// The same for connections opened while the server is busy (over 3/4 of its cap).
    pub busy_header_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
    /// How long requests in flight may take to finish at shutdown.
    pub drain: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            first_byte_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(60),
            busy_header_timeout: Duration::from_secs(5),
            max_connections: 4096,
            drain: Duration::from_secs(30),
        }
    }
}

/// File descriptors kept back from connections, for the database, key files and logs.
const RESERVED_FILES: u64 = 128;

/// Raises the soft open-file limit to the hard one and answers how many connections fit below
/// it (`wanted` at most), so connections can never take the last file descriptors.
pub fn connection_cap(wanted: usize) -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let fit = limit.saturating_sub(RESERVED_FILES).max(16);
    wanted
        .min(usize::try_from(fit).unwrap_or(usize::MAX))
        .max(1)
}

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let cap = options.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(cap));
    let graceful = GracefulShutdown::new();
    let http = |header_timeout: Duration| {
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .keep_alive(true);
        http
    };
    let (relaxed, busy) = (
        http(options.header_timeout),
        http(options.busy_header_timeout),
    );
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before it was accepted.
                    tracing::warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let http = if slots.available_permits() < cap / 4 {
            busy.clone()
        } else {
            relaxed.clone()
        };
        let service = app.clone().map_request(move |request: Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let watcher = graceful.watcher();
        let first_byte = options.first_byte_timeout;
        tokio::spawn(async move {
            let mut byte = [0u8; 1];
            let sent = tokio::time::timeout(first_byte, stream.peek(&mut byte)).await;
            if !matches!(sent, Ok(Ok(1..))) {
                return; // nothing came: the connection and its slot go
            }
            let service = TowerToHyperService::new(service);
            let connection = http.serve_connection(TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%error, client.address = %peer, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(options.drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after the drain time; stopping anyway");
    }
    Ok(())
}

/// The client's address: the peer's, or with `trust_forwarded_for` the last address an
/// `X-Forwarded-For` header names (the one the reverse proxy in front of Grantry added).
pub fn client_address(
    request: &axum::http::request::Parts,
    trust_forwarded_for: bool,
) -> Option<std::net::IpAddr> {
    if trust_forwarded_for {
        let forwarded = request
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .next_back();
        if forwarded.is_some() {
            return forwarded;
        }
    }
    request
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip())
}
