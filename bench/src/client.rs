//! A minimal Phoenix V2 client for load generation: frames built by [`crate::frames`] go out, raw text comes in for
//! the caller to read with [`crate::frames::decode`], and nothing is retained.

use futures::{SinkExt, StreamExt};
use protocol::{chat::JoinParams, typed::Request};
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async_with_config, tungstenite::Message};

use crate::frames::{self, FrameError};

/// Why a bench client failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting or the WebSocket failed.
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    /// A frame could not be built or read, or the server refused a request.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The connection closed.
    #[error("connection closed")]
    Closed,
}

/// One connection.
pub struct BenchClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_ref: u64,
}

impl BenchClient {
    /// Connects to `url` (a full `ws://…/socket/websocket?vsn=2.0.0&…` URL).
    pub async fn connect(url: &str) -> Result<Self, ClientError> {
        let (ws, _) = connect_async_with_config(url, Some(crate::ws_config()), true).await?;
        Ok(Self { ws, next_ref: 0 })
    }

    /// Pushes `request` on the channel of `topic` joined with `join_ref`; returns the push's ref.
    pub async fn push<R: Request>(&mut self, join_ref: &str, topic: &str, request: &R) -> Result<String, ClientError> {
        let msg_ref = self.next_ref();
        self.ws.send(Message::text(frames::push(join_ref, &msg_ref, topic, request)?)).await?;
        Ok(msg_ref)
    }

    /// Sends `phx_join` with join_ref = ref; returns the join_ref.
    pub async fn send_join(&mut self, topic: &str, params: &JoinParams) -> Result<String, ClientError> {
        let join_ref = self.next_ref();
        self.ws.send(Message::text(frames::join(&join_ref, topic, params)?)).await?;
        Ok(join_ref)
    }

    fn next_ref(&mut self) -> String {
        self.next_ref += 1;
        self.next_ref.to_string()
    }

    /// The next text frame's raw text (pings and binary frames are skipped).
    pub async fn next_text(&mut self) -> Result<String, ClientError> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
                Some(Ok(Message::Close(_))) | None => return Err(ClientError::Closed),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error.into()),
            }
        }
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
