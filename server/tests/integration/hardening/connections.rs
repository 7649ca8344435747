//! Connection-level abuse: slow and idle connections, floods from one address, sockets that never join, foreign
//! origins through DNS rebinding.

use std::time::{Duration, Instant};

use serde_json::json;
use server::socket::SocketSettings;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};

use crate::support::{Client, TestServer, http::get, refused_status_with};

/// Reads until the server closes the connection; how long that took.
async fn closed_within(tcp: &mut TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buffer = [0u8; 256];
    loop {
        match tokio::time::timeout(limit, tcp.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("the server kept the connection open longer than {limit:?}"),
        }
    }
}

/// Row 1: request heads dripped one byte at a time, and connections that send nothing, are closed at the header
/// deadline; a flood of them evicts its own oldest, so `/healthz` and real sockets keep working.
#[tokio::test]
async fn slow_and_idle_connections_are_cut_off_and_cannot_lock_others_out() {
    let server = TestServer::start_configured(SocketSettings::default(), |config| {
        config.guard.header_timeout_s = 1;
        config.guard.max_pending_connections = 20;
    })
    .await;
    let mut bystander = Client::connect(&server, "").await;
    bystander.join("test:calm", json!({})).await;

    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut dripping = TcpStream::connect(server.addr).await.unwrap();
    let drip = async {
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ".iter().cycle() {
            if dripping.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let (silent_after, ()) = tokio::join!(closed_within(&mut silent, Duration::from_secs(5)), async {
        let _ = tokio::time::timeout(Duration::from_secs(5), drip).await;
    });
    assert!(silent_after >= Duration::from_millis(900), "closed too early: {silent_after:?}");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(1), dripping.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(_) | Err(_))), "the dripping connection was closed too");

    // A flood far beyond the pending cap: each new one evicts the oldest idle one.
    let mut flood = Vec::new();
    for _ in 0..200 {
        flood.push(TcpStream::connect(server.addr).await.unwrap());
    }
    let health = get(&server, "/healthz", "identity").await;
    assert_eq!(health.status, 200, "the probe still gets through");
    let mut newcomer = Client::connect(&server, "").await;
    newcomer.join("test:calm", json!({})).await;
    bystander.assert_alive().await;
    let mut evicted = 0;
    for tcp in &mut flood {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(20), tcp.read(&mut byte)).await {
            evicted += 1;
        }
    }
    assert!(evicted >= 150, "the oldest idle connections were evicted ({evicted} of 200)");
}

/// Row 1: at the descriptor budget, pending connections make room and sockets stay; when every slot is a socket
/// a newcomer is closed at once instead of the accept loop failing with EMFILE.
#[tokio::test]
async fn the_connection_budget_keeps_sockets_and_sheds_the_rest() {
    let server = TestServer::start_configured(SocketSettings::default(), |config| {
        config.guard.max_connections = 4;
    })
    .await;
    let mut sockets = Vec::new();
    for _ in 0..3 {
        let mut client = Client::connect(&server, "").await;
        client.join("test:calm", json!({})).await;
        sockets.push(client);
    }
    let health = get(&server, "/healthz", "identity").await;
    assert_eq!(health.status, 200, "the fourth slot serves the probe");
    let mut fourth = Client::connect(&server, "").await;
    fourth.join("test:calm", json!({})).await;
    // Every slot is a socket now: a new connection is closed without an answer.
    let mut refused = TcpStream::connect(server.addr).await.unwrap();
    let _ = refused.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), refused.read_to_end(&mut answer)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "closed unanswered: {:?}", String::from_utf8_lossy(&answer));
    for client in &mut sockets {
        client.assert_alive().await;
    }
    drop(fourth);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(get(&server, "/healthz", "identity").await.status, 200, "a closed socket frees its slot");
}

/// Row 2: sockets per address and connects per address are capped (429), other addresses are unaffected, and
/// `X-Forwarded-For` counts only from a trusted proxy.
#[tokio::test]
async fn one_address_cannot_take_every_socket() {
    let server = TestServer::start_configured(SocketSettings::default(), |config| {
        config.guard.max_sockets_per_ip = 3;
        config.guard.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let from = |address: &str| {
        let mut request = server.url("vsn=2.0.0").into_client_request().unwrap();
        request.headers_mut().insert("x-forwarded-for", HeaderValue::from_str(address).unwrap());
        request
    };
    let mut held = Vec::new();
    for _ in 0..3 {
        let (ws, _) = tokio_tungstenite::connect_async(from("203.0.113.7")).await.unwrap();
        held.push(Client::from_stream(ws));
    }
    assert_eq!(refused_status_with(from("203.0.113.7")).await, Some(429), "a fourth from the same address");
    assert_eq!(refused_status_with(from("198.51.100.2")).await, None, "another address");
    held.pop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(refused_status_with(from("203.0.113.7")).await, None, "a closed socket frees its place");
    for client in &mut held {
        client.assert_alive().await;
    }

    // Not trusted: the header is the attacker's word and is ignored, so spoofed addresses share the peer's cap.
    let untrusting = TestServer::start_configured(SocketSettings::default(), |config| {
        config.guard.max_sockets_per_ip = 2;
    })
    .await;
    let spoofed = |n: u8| {
        let mut request = untrusting.url("vsn=2.0.0").into_client_request().unwrap();
        request.headers_mut().insert("x-forwarded-for", HeaderValue::from_str(&format!("10.9.9.{n}")).unwrap());
        request
    };
    let _first = tokio_tungstenite::connect_async(spoofed(1)).await.unwrap();
    let _second = tokio_tungstenite::connect_async(spoofed(2)).await.unwrap();
    assert_eq!(refused_status_with(spoofed(3)).await, Some(429));
}

/// Row 2: a connect storm from one address is refused beyond the rate; the sockets it already has keep working.
#[tokio::test]
async fn connect_storms_from_one_address_are_rate_limited() {
    let server = TestServer::start_configured(SocketSettings::default(), |config| {
        config.guard.max_connects_per_ip_per_10s = 10;
    })
    .await;
    let mut bystander = Client::connect(&server, "").await;
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let request = server.url("vsn=2.0.0").into_client_request().unwrap();
        statuses.push(refused_status_with(request).await);
    }
    let refused = statuses.iter().filter(|s| **s == Some(429)).count();
    assert!((15..=21).contains(&refused), "9 of the bucket were left, plus a little refill: {statuses:?}");
    bystander.assert_alive().await;
}

/// A socket that never joins a topic is closed (1008) after the join timeout even though it heartbeats.
#[tokio::test]
async fn sockets_that_never_join_are_closed() {
    let settings = SocketSettings { join_timeout: Duration::from_millis(300), ..SocketSettings::default() };
    let server = TestServer::start_with(settings).await;
    let mut joined = Client::connect(&server, "").await;
    joined.join("test:calm", json!({})).await;
    let mut idle = Client::connect(&server, "").await;
    idle.assert_alive().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    idle.push(None, "phoenix", "heartbeat", json!({})).await;
    assert_eq!(idle.assert_closed().await, Some(1008));
    joined.assert_alive().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    joined.assert_alive().await;
}

/// Row 11: DNS rebinding makes `Host` whatever the attacker's page is called; the Origin is checked against the
/// server's own origins, never against `Host`.
#[tokio::test]
async fn a_rebound_host_does_not_make_a_foreign_origin_acceptable() {
    let server = TestServer::start().await;
    let mut request = server.url("vsn=2.0.0").into_client_request().unwrap();
    let port = server.addr.port();
    request.headers_mut().insert("host", HeaderValue::from_str(&format!("evil.example:{port}")).unwrap());
    request.headers_mut().insert("origin", HeaderValue::from_str(&format!("http://evil.example:{port}")).unwrap());
    assert_eq!(refused_status_with(request).await, Some(403));
    let mut own = server.url("vsn=2.0.0").into_client_request().unwrap();
    own.headers_mut().insert("origin", HeaderValue::from_str(&format!("http://localhost:{port}")).unwrap());
    assert_eq!(refused_status_with(own).await, None, "the loopback names of the port are the default origins");

    let configured = TestServer::start_configured(SocketSettings::default(), |config| {
        config.guard.public_origins = vec!["https://chat.example.com".into()];
    })
    .await;
    let with_origin = |origin: &'static str| {
        let mut request = configured.url("vsn=2.0.0").into_client_request().unwrap();
        request.headers_mut().insert("origin", HeaderValue::from_static(origin));
        request
    };
    assert_eq!(refused_status_with(with_origin("https://chat.example.com")).await, None);
    assert_eq!(refused_status_with(with_origin("http://chat.example.com")).await, Some(403), "scheme compared");
    assert_eq!(refused_status_with(with_origin("https://chat.example.com.evil.example")).await, Some(403));
}
