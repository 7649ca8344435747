//! Transports: the only code that knows HTTP and WebSocket details. Each turns a client connection into the
//! [`Transport`](crate::socket::transport::Transport) the connection state machine runs on.

pub(crate) mod connect;
pub(crate) mod websocket;
