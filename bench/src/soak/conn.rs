//! One soak connection: a V2 WebSocket to the server under a guest name, optionally with a small receive buffer (the
//! slow consumer, whose kernel should hold little of what it does not read), and what ended it.

use std::{net::SocketAddr, time::Duration};

use futures::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::{
    WebSocketStream, client_async_with_config,
    tungstenite::{self, Message, protocol::CloseFrame},
};

use super::text::url_encode;

/// A soak connection.
pub type Ws = WebSocketStream<TcpStream>;

/// How long connecting and the upgrade may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What came in.
#[derive(Debug)]
pub enum Incoming {
    /// A text frame.
    Text(String),
    /// A binary frame (the room channel never sends one).
    Binary,
    /// The server closed the connection with a close frame: its code and reason.
    Closed(u16, String),
    /// The connection ended without a close frame (reset, end of stream, a broken frame), and how.
    Gone(String),
}

impl std::fmt::Display for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Text(text) => write!(f, "text {text:.200}"),
            Self::Binary => write!(f, "a binary frame"),
            Self::Closed(code, reason) => write!(f, "closed {code} {reason}"),
            Self::Gone(how) => write!(f, "ended without a close frame: {how}"),
        }
    }
}

/// Opens a socket as the guest `user`; `receive_buffer` sets `SO_RCVBUF` first.
pub async fn open(addr: SocketAddr, user: &str, receive_buffer: Option<u32>) -> Result<Ws, String> {
    let connect = async {
        let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
        if let Some(bytes) = receive_buffer {
            socket.set_recv_buffer_size(bytes).map_err(|e| e.to_string())?;
        }
        let stream = socket.connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        let url = format!("ws://{addr}/socket/websocket?vsn=2.0.0&user={}", url_encode(user));
        let (ws, _) = client_async_with_config(url, stream, Some(crate::ws_config()))
            .await
            .map_err(|e| format!("upgrade: {e}"))?;
        Ok(ws)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, connect).await.map_err(|_| "connect timed out".to_owned())?
}

/// The next frame, or how the connection ended. Pings are answered by tungstenite and skipped here.
pub async fn next(ws: &mut Ws) -> Incoming {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Incoming::Text(text.as_str().to_owned()),
            Some(Ok(Message::Binary(_))) => return Incoming::Binary,
            Some(Ok(Message::Close(frame))) => return closed(frame),
            Some(Ok(_)) => {}
            Some(Err(error)) => return Incoming::Gone(error.to_string()),
            None => return Incoming::Gone("end of stream".to_owned()),
        }
    }
}

/// An [`Incoming::Closed`] from a close frame (no frame: 1005, as RFC 6455 names it).
pub fn closed(frame: Option<CloseFrame>) -> Incoming {
    match frame {
        Some(frame) => Incoming::Closed(frame.code.into(), frame.reason.as_str().to_owned()),
        None => Incoming::Closed(1005, String::new()),
    }
}

/// Sends a text frame.
pub async fn send(ws: &mut Ws, text: String) -> Result<(), tungstenite::Error> {
    ws.send(Message::text(text)).await
}
