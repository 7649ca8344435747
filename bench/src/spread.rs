//! Connections spread over loopback source addresses 127.0.0.1–127.0.0.254, so a run is not capped by the ~28k
//! ephemeral ports of one address, plus the join handshake every scenario shares.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use futures::{SinkExt, StreamExt};
use protocol::{chat::JoinParams, events::PHX_REPLY};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::{WebSocketStream, client_async_with_config, tungstenite::Message};

use crate::frames;

/// A joined connection.
pub type Ws = WebSocketStream<TcpStream>;

/// The join_ref (and ref) of the one channel each spread connection joins.
pub const JOIN_REF: &str = "1";

/// The source address of connection number `index`: 127.0.0.(1 + index % 254).
pub fn source(index: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (index % 254) as u8))
}

/// Opens connection number `index` to `addr` as `user` (from source address [`source`]).
pub async fn connect(addr: SocketAddr, index: usize, user: &str) -> Option<Ws> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::new(source(index), 0)).ok()?;
    let stream = socket.connect(addr).await.ok()?;
    let url = format!("ws://{addr}/socket/websocket?vsn=2.0.0&user={user}");
    let (ws, _) = client_async_with_config(url, stream, Some(crate::ws_config())).await.ok()?;
    Some(ws)
}

/// Sends `phx_join` for `topic` (join_ref and ref [`JOIN_REF`]) and waits for its reply; `Some` when it was `ok`.
/// Frames before the reply are skipped. The reply's response is not read: `bench:*` and `room:*` answer differently.
pub async fn join(ws: &mut Ws, topic: &str) -> Option<()> {
    let join = frames::join(JOIN_REF, topic, &JoinParams::default()).ok()?;
    ws.send(Message::text(join)).await.ok()?;
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Text(text) = message
            && let Ok(frame) = frames::decode(text.as_str())
            && frame.event() == PHX_REPLY
        {
            return frame.reply().filter(|reply| reply.is_ok()).map(drop);
        }
    }
    None
}

/// Connects and joins.
pub async fn connect_and_join(addr: SocketAddr, index: usize, user: &str, topic: &str) -> Option<Ws> {
    let mut ws = connect(addr, index, user).await?;
    join(&mut ws, topic).await?;
    Some(ws)
}
