//! `GET /socket/websocket`: the WebSocket transport.
//!
//! Checks Origin, serializer version, subprotocols and identity before upgrading (403 otherwise), then runs a
//! [`Connection`] over the socket. Buffers are kept small on purpose: tungstenite's defaults (128 KiB read buffer,
//! allocated eagerly) would dominate the memory of an idle connection.

use std::collections::HashMap;

use axum::{
    extract::{
        Query, State,
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
    },
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use futures::{FutureExt, SinkExt};
use tokio_tungstenite::tungstenite;

use super::connect::{Refusal, SocketRoute};
use crate::{
    frames::Encoded,
    socket::{
        Connection,
        transport::{Inbound, Transport, TransportError},
    },
};

/// Largest frame or message a client may send (64 KiB); larger ones close the connection with 1009.
const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Per-connection read buffer, allocated up front for every socket. Client frames are small JSON (a heartbeat is
/// ~60 bytes); a larger frame makes tungstenite reserve its full length anyway, so a bigger buffer only costs memory
/// on idle sockets (4 KiB here was a fifth of an idle connection's footprint).
const READ_BUFFER_BYTES: usize = 1024;
/// Writes are batched by the connection (one flush per wakeup), so tungstenite needs no buffering of its own.
const WRITE_BUFFER_BYTES: usize = 0;
/// How long a server-initiated close waits for the client's close frame.
const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(1);
/// Prefix of the phoenix 1.8 `authToken` subprotocol.
const AUTH_TOKEN_PREFIX: &str = "base64url.bearer.phx.";

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        tracing::info!(reason = %self, "socket connection refused");
        (StatusCode::FORBIDDEN, self.to_string()).into_response()
    }
}

/// What the client offered in `Sec-WebSocket-Protocol`.
struct Subprotocols {
    offered_any: bool,
    offered_phoenix: bool,
    auth_token: Option<String>,
}

fn subprotocols(ws: &WebSocketUpgrade) -> Result<Subprotocols, Refusal> {
    let mut result = Subprotocols { offered_any: false, offered_phoenix: false, auth_token: None };
    for value in ws.requested_protocols() {
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

/// `GET /socket/websocket`: admits the client (Origin, version, identity), then upgrades and runs its connection.
pub(crate) async fn upgrade(
    State(route): State<SocketRoute>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    mut ws: WebSocketUpgrade,
) -> Result<Response, Refusal> {
    route.origins.check(&headers)?;
    let offered = subprotocols(&ws)?;
    let info = route.admit(&params, offered.auth_token.as_deref()).await?;
    if offered.offered_phoenix {
        ws.set_selected_protocol(HeaderValue::from_static("phoenix"));
    }
    let services = route.services;
    let response = ws
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(usize::MAX)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| {
            // The connection future goes to the tracker as it is: wrapping it in another `async` block would keep a
            // second copy of the captured socket in every connection's task.
            let tracker = services.connections.clone();
            let run = Connection::new(WebSocketTransport { socket }, info, services).run();
            tracker.track_future(run.map(|ended| tracing::debug!(?ended, "socket closed")))
        });
    Ok(response)
}

/// [`Transport`] over an axum WebSocket.
struct WebSocketTransport {
    socket: WebSocket,
}

impl Transport for WebSocketTransport {
    async fn recv(&mut self) -> Option<Result<Inbound, TransportError>> {
        let message = match self.socket.recv().await? {
            Ok(message) => message,
            Err(error) => {
                let too_large = error
                    .into_inner()
                    .downcast_ref::<tungstenite::Error>()
                    .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)));
                return Some(Err(if too_large {
                    TransportError::TooLarge
                } else {
                    TransportError::Broken("read".into())
                }));
            }
        };
        Some(Ok(match message {
            Message::Text(text) => Inbound::Text(text.as_str().to_owned()),
            Message::Binary(bytes) => Inbound::Binary(bytes),
            Message::Ping(_) | Message::Pong(_) => Inbound::KeepAlive,
            Message::Close(_) => Inbound::Closed,
        }))
    }

    async fn send_all(&mut self, frames: Vec<Encoded>) -> Result<(), TransportError> {
        for frame in frames {
            let message = match frame {
                Encoded::Text(text) => Message::Text(text),
                Encoded::Binary(bytes) => Message::Binary(bytes),
            };
            self.socket.feed(message).await.map_err(|e| TransportError::Broken(e.to_string()))?;
        }
        self.socket.flush().await.map_err(|e| TransportError::Broken(e.to_string()))
    }

    async fn close(&mut self, code: u16, reason: &str) {
        let frame = CloseFrame { code, reason: reason.into() };
        let _ = self.socket.send(Message::Close(Some(frame))).await;
        // Linger: read (and discard) until the client answers the close or a short deadline. Dropping the socket
        // with unread bytes (the rest of an oversized frame, say) makes the kernel send a reset, and the client may
        // then lose our close frame and see 1006 instead of the code we sent.
        let deadline = tokio::time::Instant::now() + CLOSE_LINGER;
        let mut errors = 0;
        while let Ok(Some(received)) = tokio::time::timeout_at(deadline, self.socket.recv()).await {
            match received {
                Ok(Message::Close(_)) => break,
                Ok(_) => {}
                Err(_) => {
                    errors += 1;
                    if errors > 1000 {
                        break;
                    }
                }
            }
        }
    }
}
