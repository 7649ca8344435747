//! Transports: the only code that knows HTTP and WebSocket details.
//!
//! A transport turns a client connection into a stream of inbound frames and a sink for encoded outbound frames
//! ([`Transport`]); the per-connection state machine in [`crate::socket`] is written against this trait alone.

pub mod connect;
pub mod websocket;

use std::future::Future;

use bytes::Bytes;

use crate::socket::outbound::Encoded;

/// A frame received from the client.
#[derive(Debug)]
pub enum Inbound {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Bytes),
    /// Transport-level keep-alive traffic (WebSocket ping/pong): resets the idle timer, nothing else.
    KeepAlive,
    /// The client closed the connection.
    Closed,
}

/// Why receiving failed.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// The client sent a frame or message over the size limit.
    #[error("frame too large")]
    TooLarge,
    /// The connection broke.
    #[error("transport error: {0}")]
    Broken(String),
}

/// A bidirectional frame transport.
pub trait Transport: Send {
    /// The next inbound frame; `None` when the connection is gone. Must be cancel-safe: it is raced in `select!`.
    fn recv(&mut self) -> impl Future<Output = Option<Result<Inbound, ReceiveError>>> + Send;
    /// Writes every frame, then flushes once (one syscall-sized write per wakeup instead of one per frame).
    fn send_all(&mut self, frames: Vec<Encoded>) -> impl Future<Output = Result<(), ReceiveError>> + Send;
    /// Sends a close frame with `code` and `reason` (best effort) and flushes.
    fn close(&mut self, code: u16, reason: &str) -> impl Future<Output = ()> + Send;
}
