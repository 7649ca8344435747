//! Transports: the only code that knows HTTP and WebSocket details. Each turns a client connection into the
//! [`Transport`](crate::socket::transport::Transport) the connection state machine runs on. [`ws`] is the WebSocket
//! protocol itself (handshake and framing); [`websocket`] is the `/socket/websocket` endpoint built on it;
//! [`longpoll`] is `/socket/longpoll`, for clients whose network breaks WebSockets.

pub(crate) mod connect;
pub(crate) mod longpoll;
pub(crate) mod websocket;
pub(crate) mod ws;
