//! Connections spread over loopback source addresses 127.0.0.1–127.0.0.254, so a run is not capped by the ~28k
//! ephemeral ports of one address, plus the join handshake every scenario shares.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use futures::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::{WebSocketStream, client_async, tungstenite::Message};

/// A joined connection.
pub type Ws = WebSocketStream<TcpStream>;

/// Opens connection number `index` to `addr` as `user` (from source address 127.0.0.(1 + index % 254)).
pub async fn connect(addr: SocketAddr, index: usize, user: &str) -> Option<Ws> {
    let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (index % 254) as u8));
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::new(source, 0)).ok()?;
    let stream = socket.connect(addr).await.ok()?;
    let url = format!("ws://{addr}/socket/websocket?vsn=2.0.0&user={user}");
    let (ws, _) = client_async(url, stream).await.ok()?;
    Some(ws)
}

/// Sends `phx_join` for `topic` (join_ref and ref `"1"`) and waits for its reply; `Some` when it was `ok`. Frames
/// before the reply are skipped.
pub async fn join(ws: &mut Ws, topic: &str) -> Option<()> {
    let join = serde_json::to_string(&("1", "1", topic, "phx_join", serde_json::json!({}))).ok()?;
    ws.send(Message::text(join)).await.ok()?;
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Text(text) = message
            && text.as_str().contains("phx_reply")
        {
            return text.as_str().contains(r#""status":"ok""#).then_some(());
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

/// CPU time a process has used so far, in seconds: `(user, system)`, from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields overall.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |index: usize| fields.get(index)?.parse::<f64>().ok().map(|t| t / 100.0);
    Some((ticks(11)?, ticks(12)?))
}

/// The `p` quantile (0–1) of sorted microsecond samples, in milliseconds.
pub fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = (p * (sorted_us.len() - 1) as f64).round() as usize;
    f64::from(sorted_us[rank.min(sorted_us.len() - 1)]) / 1000.0
}

/// The number after `marker` in `text`, if any (cheap field extraction without parsing the whole frame).
pub fn number_after(text: &str, marker: &str) -> Option<u64> {
    let start = text.find(marker)? + marker.len();
    let digits = text[start..].bytes().take_while(u8::is_ascii_digit).count();
    text[start..start + digits].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_numbers_and_percentiles() {
        assert_eq!(number_after(r#"[null,null,"bench:x","broadcast",{"seq":42}]"#, r#""seq":"#), Some(42));
        assert_eq!(number_after("no marker", r#""seq":"#), None);
        let samples = [1_000, 2_000, 3_000, 4_000, 5_000];
        assert_eq!(percentile_ms(&samples, 0.0), 1.0);
        assert_eq!(percentile_ms(&samples, 0.5), 3.0);
        assert_eq!(percentile_ms(&samples, 1.0), 5.0);
        assert!(cpu_seconds(std::process::id()).is_some_and(|(user, system)| user >= 0.0 && system >= 0.0));
    }
}
