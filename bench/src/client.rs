//! A minimal Phoenix V2 client for load generation: raw frames in, borrowed parsing out, nothing retained.

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async_with_config, tungstenite::Message};

/// Why a bench client failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting or the WebSocket failed.
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    /// The server sent something that is not a V2 frame.
    #[error("bad frame: {0}")]
    Frame(#[from] serde_json::Error),
    /// The connection closed.
    #[error("connection closed")]
    Closed,
}

/// A V2 frame borrowed from the received text.
#[derive(Debug, Deserialize)]
pub struct FrameRef<'a>(
    /// join_ref
    #[serde(borrow)]
    pub Option<&'a str>,
    /// ref
    #[serde(borrow)]
    pub Option<&'a str>,
    /// topic
    #[serde(borrow)]
    pub &'a str,
    /// event
    #[serde(borrow)]
    pub &'a str,
    /// payload
    #[serde(borrow)]
    pub &'a RawValue,
);

/// One connection.
pub struct BenchClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_ref: u64,
}

impl BenchClient {
    /// Connects to `url` (a full `ws://…/socket/websocket?vsn=2.0.0&…` URL).
    pub async fn connect(url: &str) -> Result<Self, ClientError> {
        let (ws, _) = connect_async_with_config(url, None, true).await?;
        Ok(Self { ws, next_ref: 0 })
    }

    /// Sends a frame; returns its ref.
    pub async fn push(
        &mut self,
        join_ref: Option<&str>,
        topic: &str,
        event: &str,
        payload: &serde_json::Value,
    ) -> Result<String, ClientError> {
        self.next_ref += 1;
        let msg_ref = self.next_ref.to_string();
        let text = serde_json::to_string(&(join_ref, &msg_ref, topic, event, payload))?;
        self.ws.send(Message::text(text)).await?;
        Ok(msg_ref)
    }

    /// Sends `phx_join` with join_ref = ref; returns the join_ref.
    pub async fn send_join(&mut self, topic: &str, payload: &serde_json::Value) -> Result<String, ClientError> {
        self.next_ref += 1;
        let join_ref = self.next_ref.to_string();
        let text = serde_json::to_string(&(&join_ref, &join_ref, topic, "phx_join", payload))?;
        self.ws.send(Message::text(text)).await?;
        Ok(join_ref)
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
