//! `/healthz` (liveness) and `/readyz` (readiness, `draining` from the stop signal while sockets close). The store and
//! Redis outages are in the cluster tests (`server/tests/cluster`), which can stop PostgreSQL and Redis.

use std::{net::SocketAddr, time::Duration};

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::support::{Client, TestServer, http::request_to};

/// `GET path` on a fresh connection: the status and JSON body, or `None` once nothing accepts connections.
async fn probe(addr: SocketAddr, path: &str) -> Option<(u16, Value)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.ok()?;
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await.ok()?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

#[tokio::test]
async fn a_serving_node_is_live_and_ready() {
    let server = TestServer::start().await;
    let (status, live) = probe(server.addr, "/healthz").await.unwrap();
    assert_eq!(status, 200);
    let node = live["node"].as_str().expect("the node id").to_owned();
    assert_eq!(live, json!({"status": "ok", "node": node}));
    assert_eq!(probe(server.addr, "/readyz").await.unwrap(), (200, json!({"status": "ok", "node": node})));
}

#[tokio::test]
async fn a_stopping_node_answers_draining_until_its_sockets_are_closed() {
    let mut server = TestServer::start().await;
    let addr = server.addr;
    // A client that never reads: the server's close frame waits for its answer (a second's linger), so the drain
    // lasts that long.
    let mut silent = Client::connect(&server, "").await;
    silent.join("room:drain", json!({})).await;

    let stopping = tokio::spawn(async move { server.stop().await });
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut draining = None;
    while Instant::now() < deadline {
        match probe(addr, "/readyz").await {
            Some((503, body)) => {
                draining = Some(body);
                break;
            }
            Some((200, _)) => tokio::time::sleep(Duration::from_millis(5)).await,
            other => panic!("/readyz before draining was seen: {other:?}"),
        }
    }
    let body = draining.expect("/readyz never answered 503 while the server stopped");
    assert_eq!(body["status"], "draining", "{body}");
    assert_eq!(body["reason"], "draining", "{body}");
    // Still live, and no new socket: a client should go to another node.
    let live = probe(addr, "/healthz").await.expect("HTTP is served while draining");
    assert_eq!(live.0, 200, "liveness does not depend on draining: {live:?}");
    let upgrade = request_to(
        addr,
        "GET /socket/websocket?vsn=2.0.0 HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: \
         13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "",
    )
    .await;
    assert_eq!(upgrade.status, 503, "a socket opened while draining would be closed at once");
    // Nor a long-poll session: HTTP 503 with no body, which phoenix.js takes as a failed request and retries later
    // (a JSON status it does not know would throw).
    let opening = request_to(addr, "GET /socket/longpoll?vsn=2.0.0 HTTP/1.1\r\nAccept: application/json", "").await;
    assert_eq!(opening.status, 503, "a long-poll session opened while draining would be closed at once");
    assert_eq!(opening.header("retry-after"), Some("1"));
    assert!(opening.body.is_empty(), "no JSON body: {:?}", String::from_utf8_lossy(&opening.body));

    tokio::time::timeout(Duration::from_secs(15), stopping).await.expect("the server stops").unwrap();
    assert_eq!(probe(addr, "/readyz").await, None, "the listener is closed once the sockets are");
    drop(silent);
}

#[tokio::test]
async fn stopping_takes_at_most_the_drain_timeout_in_all() {
    // One second to drain; a socket that never answers its close holds the drain about that long (the close's
    // linger), and an HTTP request that never completes (a long-poll POST whose body stops half-way) would hold the
    // HTTP grace after it: both must fit in the one second, not one each.
    let mut server = TestServer::start_configured(Default::default(), |config| config.drain_timeout_s = 1).await;
    let addr = server.addr;
    let mut silent = Client::connect(&server, "").await;
    silent.join("room:stopping", json!({})).await;
    let opened = request_to(addr, "GET /socket/longpoll?vsn=2.0.0 HTTP/1.1", "").await;
    let opened: Value = serde_json::from_slice(&opened.body).unwrap();
    assert_eq!(opened["status"], 410, "{opened}");
    let session = opened["token"].as_str().unwrap().to_owned();
    let mut stuck = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /socket/longpoll?vsn=2.0.0 HTTP/1.1\r\nHost: {addr}\r\nX-Phoenix-Longpoll-Token: {session}\r\n\
         Content-Type: application/x-ndjson\r\nContent-Length: 1000\r\n\r\n[null,"
    );
    tokio::io::AsyncWriteExt::write_all(&mut stuck, head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), server.stop()).await.expect("the server stops");
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1600), "stopping took {took:?} with --drain-timeout-s 1");
    drop((silent, stuck));
}
