//! `GET /socket/websocket`: the WebSocket transport.
//!
//! Checks the upgrade request, Origin, serializer version, subprotocols and identity before upgrading (403
//! otherwise), then runs a [`Connection`] over the socket through the server's own WebSocket implementation
//! ([`super::ws`]): no read buffer while idle and shared payloads written without a copy, so neither an idle socket
//! nor one that was once sent a large `presence_state` holds more than its state.

use axum::{
    extract::{ConnectInfo, Query, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use std::{
    collections::HashMap,
    future::Future,
    net::SocketAddr,
    task::{Context, Poll, ready},
};

use futures::FutureExt;
use hyper_util::rt::TokioIo;
use protocol::reasons::CloseCode;

use super::{
    connect::{Refusal, SocketRoute},
    ws::{FrameError, WsError, WsMessage, WsStream, handshake},
};
use crate::{
    frames::Encoded,
    serve::{
        ConnectionSlot,
        gate::{Crowded, SocketPermit},
    },
    socket::{
        Connection,
        access::SocketLife,
        transport::{Inbound, Transport, TransportError},
    },
    telemetry::LogBudget,
};

/// How long a server-initiated close waits for the client's close frame.
const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(1);
/// Prefix of the phoenix 1.8 `authToken` subprotocol.
const AUTH_TOKEN_PREFIX: &str = "base64url.bearer.phx.";

/// Refused connections are logged within a budget: a client can retry as fast as it likes.
static REFUSED: LogBudget = LogBudget::new(30);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        if let Some(suppressed) = REFUSED.admit() {
            tracing::info!(reason = %self, suppressed, "socket connection refused");
        }
        (StatusCode::FORBIDDEN, self.to_string()).into_response()
    }
}

/// What the client offered in `Sec-WebSocket-Protocol`.
struct Subprotocols {
    offered_any: bool,
    offered_phoenix: bool,
    auth_token: Option<String>,
}

fn subprotocols(headers: &HeaderMap) -> Result<Subprotocols, Refusal> {
    let mut result = Subprotocols { offered_any: false, offered_phoenix: false, auth_token: None };
    for value in headers.get_all(header::SEC_WEBSOCKET_PROTOCOL) {
        let Ok(value) = value.to_str() else {
            return Err(Refusal::Subprotocol);
        };
        for protocol in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            result.offered_any = true;
            if protocol == "phoenix" {
                result.offered_phoenix = true;
            } else if let Some(encoded) = protocol.strip_prefix(AUTH_TOKEN_PREFIX) {
                result.auth_token = Some(decode_auth_token(encoded).ok_or(Refusal::Token)?);
            }
        }
    }
    if result.offered_any && !result.offered_phoenix {
        return Err(Refusal::Subprotocol);
    }
    Ok(result)
}

/// phoenix.js encodes with `btoa` (standard alphabet) and strips the padding; accept URL-safe too.
fn decode_auth_token(encoded: &str) -> Option<String> {
    use base64::Engine;
    let engines = [base64::engine::general_purpose::STANDARD_NO_PAD, base64::engine::general_purpose::URL_SAFE_NO_PAD];
    engines
        .iter()
        .find_map(|engine| engine.decode(encoded.trim_end_matches('=')).ok())
        .and_then(|b| String::from_utf8(b).ok())
}

/// `GET /socket/websocket`: admits the client (upgrade headers, Origin, version, identity), then answers 101 and
/// runs its connection on the upgraded socket.
pub(crate) async fn upgrade(
    State(route): State<SocketRoute>,
    Query(params): Query<HashMap<String, String>>,
    request: Request,
) -> Response {
    let (mut request, _body) = request.into_parts();
    let accept = match handshake::accept(&request.method, &request.headers) {
        Ok(accept) => accept,
        Err(refused) => {
            let version = [(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"))];
            return (refused.status(), version, refused.to_string()).into_response();
        }
    };
    if route.services.drain.is_cancelled() {
        // Stopping: a socket opened now would be closed with 1012 at once; the client should try another node.
        return (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")], "server draining").into_response();
    }
    if let Err(refusal) = route.origins.check(&request.headers) {
        return refusal.into_response();
    }
    // The per-address caps come before anything that costs (token checks, account lookups).
    let permit = match admission(&request.extensions) {
        Ok(permit) => permit,
        Err(crowded) => return crowded.into_response(),
    };
    let admitted = async {
        let offered = subprotocols(&request.headers)?;
        let info = route.admit(&params, offered.auth_token.as_deref()).await?;
        Ok::<_, Refusal>((offered.offered_phoenix, info))
    };
    let (phoenix, info) = match admitted.await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(on_upgrade) = request.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
        // Only HTTP/1.1 connections can be upgraded (no extended CONNECT over HTTP/2).
        return (StatusCode::UPGRADE_REQUIRED, "WebSocket needs an HTTP/1.1 connection").into_response();
    };
    let services = route.services;
    // A short-lived task waits for hyper to hand over the socket, then starts the connection's own task: the
    // long-lived task holds the connection future alone, nothing captured for the handover.
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => return tracing::debug!(%error, "websocket upgrade failed"),
        };
        let stream = WsStream::new(TokioIo::new(upgraded), services.settings.max_frame_bytes);
        let tracker = services.connections.clone();
        let life = SocketLife::connect("websocket", &info, &services.node);
        let run = Connection::new(WebSocketTransport { stream, _permit: permit }, info, services).run();
        tokio::spawn(tracker.track_future(run.map(|ended| life.close(ended))));
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    if phoenix {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("phoenix"));
    }
    response
}

/// This connection's place among the client address's sockets (see [`crate::serve::gate`]); `None` when the
/// request did not come through the server's accept loop.
fn admission(extensions: &axum::http::Extensions) -> Result<Option<SocketPermit>, Crowded> {
    let Some(ConnectionSlot(slot)) = extensions.get::<ConnectionSlot>() else {
        return Ok(None);
    };
    let client = extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
    client.map(|ip| slot.upgrade(ip)).transpose()
}

impl IntoResponse for Crowded {
    fn into_response(self) -> Response {
        if let Some(suppressed) = REFUSED.admit() {
            tracing::info!(reason = %self, suppressed, "socket connection refused");
        }
        (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "10")], self.to_string()).into_response()
    }
}

/// [`Transport`] over the server's WebSocket stream.
struct WebSocketTransport {
    stream: WsStream<TokioIo<hyper::upgrade::Upgraded>>,
    /// Released when the socket closes.
    _permit: Option<SocketPermit>,
}

impl WebSocketTransport {
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Inbound, TransportError>>> {
        let message = match ready!(self.stream.poll_recv(cx)) {
            None => return Poll::Ready(None),
            Some(Ok(message)) => message,
            Some(Err(WsError::Frame(refused))) => {
                tracing::debug!(%refused, "websocket frame refused");
                let (code, reason) = match refused {
                    FrameError::TooLarge => (CloseCode::MESSAGE_TOO_BIG, "frame too large"),
                    FrameError::InvalidUtf8 => (CloseCode::INVALID_FRAME_PAYLOAD, "invalid frame"),
                    FrameError::Protocol(_) => (CloseCode::PROTOCOL_ERROR, "protocol error"),
                };
                return Poll::Ready(Some(Err(TransportError::Refused { code, reason })));
            }
            Some(Err(WsError::Io(error))) => return Poll::Ready(Some(Err(TransportError::Broken(error.to_string())))),
        };
        // Pings and closes were answered by the stream.
        Poll::Ready(Some(Ok(match message {
            WsMessage::Text(text) => Inbound::Text(text),
            WsMessage::Binary(bytes) => Inbound::Binary(bytes),
            WsMessage::Ping(_) | WsMessage::Pong => Inbound::KeepAlive,
            WsMessage::Close(_) => Inbound::Closed,
        })))
    }
}

impl Transport for WebSocketTransport {
    const VIA: crate::metrics::Via = crate::metrics::Via::WebSocket;

    fn recv(&mut self) -> impl Future<Output = Option<Result<Inbound, TransportError>>> + Send {
        // A poll function, not an `async` block: the connection re-creates this future at every wakeup, and it sits
        // in the connection task's state while idle.
        std::future::poll_fn(move |cx| self.poll_recv(cx))
    }

    async fn send_all(&mut self, frames: Vec<Encoded>) -> Result<(), TransportError> {
        for frame in frames {
            match frame {
                Encoded::Text(text) => self.stream.queue(true, text),
                Encoded::Binary(bytes) => self.stream.queue(false, bytes),
            }
        }
        self.stream.flush().await.map_err(|e| TransportError::Broken(e.to_string()))
    }

    async fn close(&mut self, code: u16, reason: &str) {
        // Whatever an interrupted write left queued goes out first, so the peer sees whole frames, then the close.
        self.stream.queue_close(code, reason);
        if self.stream.flush().await.is_err() {
            return;
        }
        // Linger: read (and discard) until the client answers the close or a short deadline. Dropping the socket
        // with unread bytes (the rest of an oversized frame, say) makes the kernel send a reset, and the client may
        // then lose our close frame and see 1006 instead of the code we sent.
        let _ = tokio::time::timeout(CLOSE_LINGER, self.stream.read_until_close()).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{channel::SocketInfo, socket::SocketServices};

    /// The size of what `f` returns, without calling it.
    fn returned_size<A, B, C, R>(_: &impl Fn(A, B, C) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// An idle connection's task is mostly this future (about 1.2 KiB of the 4 KiB an idle connection costs in a
    /// release build, BENCHMARKS.md issue 15): a state added to the connection loop that is not boxed shows here.
    #[test]
    fn the_connection_future_stays_small() {
        let run = |transport: WebSocketTransport, info: SocketInfo, services: Arc<SocketServices>| {
            Connection::new(transport, info, services).run()
        };
        let size = returned_size(&run);
        let bound = if cfg!(debug_assertions) { 1_600 } else { 1_280 };
        assert!(size <= bound, "the connection future is {size} bytes (bound {bound})");
    }
}
