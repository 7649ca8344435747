//! Bad input, refused connections, slow consumers, idle and drain: each closes or refuses only the offender.

use std::time::Duration;

use serde_json::json;
use server::socket::SocketSettings;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};

use crate::support::{Client, TestServer, refused_status, refused_status_with};

#[tokio::test]
async fn malformed_frames_close_only_that_connection_with_1007() {
    let server = TestServer::start().await;
    let mut bystander = Client::connect(&server, "").await;
    bystander.join("test:calm", json!({})).await;
    let garbage = [
        "not json",
        "[1,2,3]",
        r#"[null,"1","t","e"]"#,
        r#"[null,"1",5,"e",{}]"#,
        r#"[null,"1","t",null,{}]"#,
        r#"[null,true,"t","e",{}]"#,
        r#"{"topic":"t"}"#,
        "",
    ];
    for text in garbage {
        let mut offender = Client::connect(&server, "").await;
        offender.send_text(text).await;
        assert_eq!(offender.assert_closed().await, Some(1007), "{text:?}");
    }
    for bytes in [vec![], vec![0], vec![9, 9, 9], vec![0, 5, 5, 5, 5, 1], vec![1, 0, 0, 0, 0]] {
        let mut offender = Client::connect(&server, "").await;
        offender.send_binary(bytes.clone()).await;
        assert_eq!(offender.assert_closed().await, Some(1007), "{bytes:?}");
    }
    bystander.assert_alive().await;
}

#[tokio::test]
async fn extra_trailing_elements_and_any_payload_type_are_accepted() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "").await;
    client.send_text(r#"[null,"1","phoenix","heartbeat",{},"extra"]"#).await;
    client.assert_reply("1", "ok").await;
    client.send_text(r#"[null,"2","phoenix","heartbeat",[1,2]]"#).await;
    client.assert_reply("2", "ok").await;
}

#[tokio::test]
async fn frames_over_64_kib_close_with_1009() {
    let server = TestServer::start().await;
    let mut bystander = Client::connect(&server, "").await;
    let mut offender = Client::connect(&server, "").await;
    let big = format!(r#"[null,"1","phoenix","heartbeat",{{"x":"{}"}}]"#, "a".repeat(70 * 1024));
    offender.send_text(big).await;
    assert_eq!(offender.assert_closed().await, Some(1009));
    // Just under the limit is fine.
    let mut fine = Client::connect(&server, "").await;
    fine.send_text(format!(r#"[null,"1","phoenix","heartbeat",{{"x":"{}"}}]"#, "a".repeat(60 * 1024))).await;
    fine.assert_reply("1", "ok").await;
    bystander.assert_alive().await;
}

#[tokio::test]
async fn connect_refusals_are_http_403() {
    let server = TestServer::start().await;
    for query in ["vsn=3.0.0", "vsn=2.1.0", "vsn=abc", "vsn=2.0.0&user=", "vsn=2.0.0&user=%07bell", "vsn=2.0.0&token=x"]
    {
        assert_eq!(refused_status(&server.url(query)).await, Some(403), "{query}");
    }
    let long_name = format!("vsn=2.0.0&user={}", "a".repeat(33));
    assert_eq!(refused_status(&server.url(&long_name)).await, Some(403));

    let mut request = server.url("vsn=2.0.0").into_client_request().unwrap();
    request.headers_mut().insert("origin", HeaderValue::from_static("https://evil.example"));
    assert_eq!(refused_status_with(request).await, Some(403), "foreign origin");

    let mut request = server.url("vsn=2.0.0").into_client_request().unwrap();
    request.headers_mut().insert("origin", HeaderValue::from_str(&format!("http://{}", server.addr)).unwrap());
    assert_eq!(refused_status_with(request).await, None, "same-host origin");

    let mut request = server.url("vsn=2.0.0").into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("graphql-ws"));
    assert_eq!(refused_status_with(request).await, Some(403), "unknown subprotocol");
}

#[tokio::test]
async fn the_phoenix_subprotocol_is_echoed() {
    let server = TestServer::start().await;
    let mut request = server.url("vsn=2.0.0").into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("phoenix"));
    let (_, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers().get("sec-websocket-protocol").unwrap(), "phoenix");
}

#[tokio::test]
async fn a_slow_consumer_is_closed_with_1011_and_others_keep_going() {
    // The slow client reads its backlog, and the close frame behind it, only after the publisher is done: give the
    // server's close that long whatever the machine's load, so the test checks the policy and not the timing.
    let close_timeout = Duration::from_secs(30);
    let settings = SocketSettings { outbound_capacity: 64, close_timeout, ..SocketSettings::default() };
    let server = TestServer::start_with(settings).await;
    let mut slow = Client::connect(&server, "").await;
    slow.join("test:flood", json!({})).await;
    let mut fast = Client::connect(&server, "").await;
    fast.join("test:flood", json!({})).await;
    let rounds = 200;
    let per_round = 8;
    // The fast client reads everything concurrently; the slow one stops reading while ~25 MB of broadcasts go out,
    // far more than the kernel's socket buffers hold.
    let reader = tokio::spawn(async move {
        let mut received = 0;
        while received < rounds * per_round {
            if fast.next_frame().await.event == "flood" {
                received += 1;
            }
        }
        fast.assert_alive().await;
        received
    });
    let mut publisher = Client::connect(&server, "").await;
    publisher.join("test:flood", json!({})).await;
    for _ in 0..rounds {
        let msg_ref = publisher.push(None, "test:flood", "flood", json!({"count": per_round, "size": 16 * 1024})).await;
        publisher.assert_reply(&msg_ref, "ok").await;
    }
    assert_eq!(reader.await.unwrap(), rounds * per_round, "the fast client got every broadcast");
    let mut code = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline {
        match slow.next_message().await {
            Some(tokio_tungstenite::tungstenite::Message::Close(frame)) => {
                code = frame.map(|f| u16::from(f.code));
                break;
            }
            Some(_) => {}
            None => break,
        }
    }
    assert_eq!(code, Some(1011), "a slow consumer is closed with 1011");
}

#[tokio::test]
async fn a_client_that_stops_reading_but_keeps_asking_is_still_cut_off() {
    // A client whose reader is stuck while it still sends (a heartbeat timer, say): the replies to what it asks for
    // fill its socket and block the connection's write of them. Broadcasts must still overflow its queue and end the
    // connection, while it is still not reading; a task waiting on such a reply used to wait for ever, holding the
    // queue and the member's presence.
    let mut settings = SocketSettings {
        outbound_capacity: 64,
        close_timeout: Duration::from_millis(500),
        ..SocketSettings::default()
    };
    settings.message_rate.max = 10_000;
    let server = TestServer::start_with(settings).await;
    let topic = "room:stuck";
    let mut writer = Client::connect(&server, "user=writer").await;
    let (writer_ref, _) = writer.join(topic, json!({})).await;
    let body = "é".repeat(4000);
    for _ in 0..100 {
        let msg_ref = writer.push(Some(&writer_ref), topic, "message:new", json!({"body": body})).await;
        writer.assert_reply(&msg_ref, "ok").await;
    }
    let mut slow = Client::connect(&server, "user=slow").await;
    let (slow_ref, _) = slow.join(topic, json!({})).await;
    // 20 pages of 800 KB each, asked for and not read: far more than the sockets between us hold.
    for _ in 0..20 {
        slow.push(Some(&slow_ref), topic, "history:before", json!({"before_id": 101, "limit": 100})).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for n in 0..80 {
        let msg_ref = writer.push(Some(&writer_ref), topic, "message:new", json!({"body": format!("after {n}")})).await;
        writer.assert_reply(&msg_ref, "ok").await;
    }
    // The slow client still reads nothing; the writer sees it leave the room.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        assert!(tokio::time::Instant::now() < deadline, "the stuck client was never cut off");
        let frame = writer.next_frame().await;
        if frame.event == "presence_diff" && frame.payload["leaves"].get("slow").is_some() {
            break;
        }
    }
    // Its backlog ends, with the close frame if the server could still write it.
    loop {
        match slow.next_message().await {
            Some(tokio_tungstenite::tungstenite::Message::Close(frame)) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(1011));
                break;
            }
            Some(_) => {}
            None => break,
        }
    }
    writer.assert_alive().await;
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let settings = SocketSettings { idle_timeout: Duration::from_millis(400), ..SocketSettings::default() };
    let server = TestServer::start_with(settings).await;
    let mut idle = Client::connect(&server, "").await;
    let mut chatty = Client::connect(&server, "").await;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        chatty.assert_alive().await;
    }
    assert_eq!(idle.assert_closed().await, Some(1001));
    chatty.assert_alive().await;
}

#[tokio::test]
async fn draining_closes_every_socket_with_1012() {
    let mut server = TestServer::start().await;
    let mut a = Client::connect(&server, "").await;
    let mut b = Client::connect(&server, "").await;
    a.join("room:drain", json!({})).await;
    server.stop().await;
    assert_eq!(a.assert_closed().await, Some(1012));
    assert_eq!(b.assert_closed().await, Some(1012));
}

/// A WebSocket opened over a plain TCP stream, so a test can send bytes no client library would.
pub(crate) mod raw {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpStream,
    };

    use crate::support::TestServer;

    pub async fn open(server: &TestServer) -> TcpStream {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        let request = format!(
            "GET /socket/websocket?vsn=2.0.0 HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            server.addr
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(tcp.read_u8().await.unwrap());
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(head.to_ascii_lowercase().contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="), "{head}");
        tcp
    }

    /// A masked client frame (`first`: FIN and opcode).
    pub fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() < 126);
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut bytes = vec![first, 0x80 | payload.len() as u8];
        bytes.extend_from_slice(&mask);
        bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        bytes
    }

    /// The next server frame: `(opcode, payload)`.
    pub async fn next_frame(tcp: &mut TcpStream) -> (u8, Vec<u8>) {
        let first = tcp.read_u8().await.unwrap();
        let len = match tcp.read_u8().await.unwrap() {
            126 => usize::from(tcp.read_u16().await.unwrap()),
            127 => tcp.read_u64().await.unwrap() as usize,
            short => usize::from(short),
        };
        let mut payload = vec![0; len];
        tcp.read_exact(&mut payload).await.unwrap();
        (first & 0x0F, payload)
    }

    /// Reads frames until the close frame; returns its code.
    pub async fn close_code(tcp: &mut TcpStream) -> u16 {
        loop {
            let (opcode, payload) = next_frame(tcp).await;
            if opcode == 0x8 {
                return u16::from_be_bytes([payload[0], payload[1]]);
            }
        }
    }
}

#[tokio::test]
async fn broken_websocket_framing_closes_with_1002_and_invalid_utf8_with_1007() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start().await;
    let mut bystander = Client::connect(&server, "").await;
    let unmasked = vec![0x81, 0x02, b'{', b'}'];
    let reserved_bits = raw::frame(0xC1, b"{}");
    let stray_continuation = raw::frame(0x80, b"{}");
    for (bytes, code) in [(unmasked, 1002), (reserved_bits, 1002), (stray_continuation, 1002)] {
        let mut offender = raw::open(&server).await;
        offender.write_all(&bytes).await.unwrap();
        assert_eq!(raw::close_code(&mut offender).await, code, "{bytes:?}");
    }
    let mut offender = raw::open(&server).await;
    offender.write_all(&raw::frame(0x81, &[b'"', 0xC3, 0x28, b'"'])).await.unwrap();
    assert_eq!(raw::close_code(&mut offender).await, 1007, "invalid UTF-8 in a text frame");
    bystander.assert_alive().await;
}

#[tokio::test]
async fn pings_are_answered_and_fragmented_messages_are_assembled() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start().await;
    let mut client = raw::open(&server).await;
    client.write_all(&raw::frame(0x89, b"still there?")).await.unwrap();
    assert_eq!(raw::next_frame(&mut client).await, (0xA, b"still there?".to_vec()));
    let heartbeat = br#"[null,"7","phoenix","heartbeat",{}]"#;
    let (head, tail) = heartbeat.split_at(10);
    let mut bytes = raw::frame(0x01, head);
    bytes.extend(raw::frame(0x89, b"mid-message"));
    bytes.extend(raw::frame(0x80, tail));
    client.write_all(&bytes).await.unwrap();
    assert_eq!(raw::next_frame(&mut client).await, (0xA, b"mid-message".to_vec()));
    let (opcode, reply) = raw::next_frame(&mut client).await;
    assert_eq!(
        (opcode, String::from_utf8(reply).unwrap()),
        (0x1, r#"[null,"7","phoenix","phx_reply",{"response":{},"status":"ok"}]"#.to_owned())
    );
    client.write_all(&raw::frame(0x88, &1000u16.to_be_bytes())).await.unwrap();
    assert_eq!(raw::close_code(&mut client).await, 1000, "the server answers a close with a close");
}
