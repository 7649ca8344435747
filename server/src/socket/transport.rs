//! What a connection needs from a transport: frames in, encoded frames out, a close. The WebSocket transport
//! (`crate::transport::websocket`) and the long-poll session (`crate::transport::longpoll`) implement it; the state
//! machine in this module is written against it alone.

use std::future::Future;

use bytes::Bytes;
use protocol::reasons::CloseCode;

use crate::frames::Encoded;

/// A frame received from the client.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Bytes),
    /// A frame the transport decoded already (long poll checks a whole POST before dispatching any of it); boxed, so
    /// every inbound item (and the connection future holding one) stays small.
    Decoded(Box<protocol::frame::Frame>),
    /// Transport-level keep-alive traffic (WebSocket ping/pong): resets the idle timer, nothing else.
    KeepAlive,
    /// The client closed the connection.
    Closed,
}

/// Why receiving or sending failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    /// The client broke the transport's rules (a frame over the size limit, WebSocket framing, UTF-8 of a text
    /// frame): close with this code and reason.
    #[error("refused: {reason}")]
    Refused { code: CloseCode, reason: &'static str },
    /// The connection broke.
    #[error("transport error: {0}")]
    Broken(String),
}

/// A bidirectional frame transport.
pub(crate) trait Transport: Send {
    /// Which transport this is (the `transport` label of the open-sockets gauge).
    const VIA: crate::metrics::Via;
    /// The next inbound frame; `None` when the connection is gone. Must be cancel-safe: it is raced in `select!`.
    fn recv(&mut self) -> impl Future<Output = Option<Result<Inbound, TransportError>>> + Send;
    /// Writes every frame, then flushes once (one syscall-sized write per wakeup instead of one per frame).
    fn send_all(&mut self, frames: Vec<Encoded>) -> impl Future<Output = Result<(), TransportError>> + Send;
    /// Sends a close frame with `code` and `reason` (best effort) and flushes.
    fn close(&mut self, code: u16, reason: &str) -> impl Future<Output = ()> + Send;
}
