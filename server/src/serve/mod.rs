//! The front door: the accept loop and HTTP/1 connections, with the admission rules of [`gate`].
//!
//! Our own loop rather than `axum::serve`, for what that one cannot do: a deadline on every request head (hyper's
//! header-read timer, which also bounds keep-alive idleness), a cap on connections that are not sockets yet with the
//! oldest evicted first, a descriptor budget below the open-file limit (so `accept` never meets EMFILE and `/healthz`
//! keeps answering at the cap), and the client address of every request resolved through trusted proxies
//! ([`client_ip`]). Handlers find the connection's [`ConnectionSlot`] and the client address (as axum's
//! `ConnectInfo`) in the request extensions.

pub(crate) mod client_ip;
pub(crate) mod gate;

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{Router, body::Body, extract::ConnectInfo};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};
use tower::ServiceExt;

use self::{
    client_ip::ClientAddresses,
    gate::{Eviction, Gate, Slot},
};

/// `ENFILE` and `EMFILE` on Linux: the system's or the process's descriptors are used up.
const OUT_OF_DESCRIPTORS: [i32; 2] = [23, 24];
/// How long the loop pauses after a failed `accept`, so a persistent failure cannot spin a core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What the accept loop needs.
#[derive(Clone)]
pub(crate) struct Front {
    pub(crate) gate: Arc<Gate>,
    pub(crate) addresses: Arc<ClientAddresses>,
    pub(crate) header_timeout: Duration,
}

/// The connection a request arrived on (a request extension): the WebSocket upgrade turns it into a socket.
#[derive(Clone)]
pub(crate) struct ConnectionSlot(pub(crate) Arc<Slot>);

/// Serves `router` on `listener` until `shutdown` completes with a deadline; then lets the HTTP connections finish
/// what they are doing until that deadline (sockets are the caller's to drain, within the same deadline).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    front: Front,
    shutdown: impl Future<Output = tokio::time::Instant> + Send,
) -> std::io::Result<()> {
    let (stop, stopping) = watch::channel(false);
    let connections = tokio_util::task::TaskTracker::new();
    let mut refused_logged = None::<Instant>;
    tokio::pin!(shutdown);
    let deadline = loop {
        let (tcp, peer) = tokio::select! {
            deadline = &mut shutdown => break deadline,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    let exhausted = error.raw_os_error().is_some_and(|code| OUT_OF_DESCRIPTORS.contains(&code));
                    if exhausted {
                        tracing::warn!(%error, "accept failed: out of descriptors");
                    } else {
                        tracing::debug!(%error, "accept failed");
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Some((slot, eviction)) = front.gate.accept() else {
            // Every descriptor of the budget holds a socket: this one is closed at once (dropped).
            if refused_logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                refused_logged = Some(Instant::now());
                tracing::warn!(open = front.gate.counts().0, "connection budget full of sockets: refusing connections");
            }
            continue;
        };
        if let Err(error) = tcp.set_nodelay(true) {
            // Small frames must go out at once: with Nagle's algorithm a reply waits for the peer's delayed ACK.
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let connection = Accepted { tcp, peer, slot, eviction };
        connections.spawn(connection.serve(router.clone(), front.clone(), stopping.clone()));
    };
    let _ = stop.send(true);
    connections.close();
    if tokio::time::timeout_at(deadline, connections.wait()).await.is_err() {
        tracing::warn!(remaining = connections.len(), "HTTP connections still open after the grace period");
    }
    Ok(())
}

/// One accepted TCP connection and its place in the gate.
struct Accepted {
    tcp: TcpStream,
    peer: SocketAddr,
    slot: Arc<Slot>,
    eviction: Eviction,
}

impl Accepted {
    /// Serves HTTP/1 requests (and the one upgrade) until the client leaves, the header timer runs out, the gate
    /// evicts it or the server stops.
    async fn serve(self, router: Router, front: Front, mut stopping: watch::Receiver<bool>) {
        let Self { tcp, peer, slot, mut eviction } = self;
        let addresses = front.addresses.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let client = addresses.resolve(peer.ip(), request.headers());
            let extensions = request.extensions_mut();
            extensions.insert(ConnectInfo(SocketAddr::new(client, peer.port())));
            extensions.insert(ConnectionSlot(slot.clone()));
            let router = router.clone();
            async move { Ok::<_, Infallible>(router.oneshot(request.map(Body::new)).await.unwrap_or_else(|e| match e {})) }
        });
        let mut builder = http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(front.header_timeout).keep_alive(true);
        let connection = builder.serve_connection(TokioIo::new(tcp), service).with_upgrades();
        tokio::pin!(connection);
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(error) = served {
                    tracing::debug!(%error, %peer, "HTTP connection ended with an error");
                }
            }
            // Only a sent signal counts: the sender is also dropped when the connection upgrades.
            Ok(()) = &mut eviction => tracing::debug!(%peer, "pending connection evicted"),
            Ok(()) = stopping.changed() => {
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        }
    }
}
