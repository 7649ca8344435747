//! Frame and payload abuse: huge join replies, invisible and control characters, oversized and invalid frames,
//! history floods, immortal tokens.

use std::time::Duration;

use serde_json::json;
use server::{
    auth::{SOCKET_SALT, TokenSigner, etf::Term},
    socket::SocketSettings,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    robustness::raw,
    support::{Client, TestServer, refused_status},
};

/// Row 3: a room full of the longest messages costs every joiner a bounded reply: the newest messages that fit the
/// history budget, not 800 KB each.
#[tokio::test]
async fn join_replies_stay_within_the_history_budget() {
    let mut settings = SocketSettings::default();
    settings.message_rate.max = 100;
    let server = TestServer::start_with(settings).await;
    let mut writer = Client::connect(&server, "user=writer").await;
    writer.join("room:emoji-wall", json!({})).await;
    let long = "😀".repeat(4000);
    for n in 0..50 {
        let msg_ref = writer.push(None, "room:emoji-wall", "message:new", json!({"body": long})).await;
        let reply = writer.assert_reply(&msg_ref, "ok").await;
        assert_eq!(reply["id"], json!(n + 1));
    }
    let mut joiner = Client::connect(&server, "user=joiner").await;
    let join_ref = joiner.make_ref();
    joiner.send_text(json!([join_ref, join_ref, "room:emoji-wall", "phx_join", {}]).to_string()).await;
    let reply = joiner.assert_reply_frame(&join_ref).await;
    let messages = reply.payload["response"]["messages"].as_array().unwrap().clone();
    let size = reply.payload.to_string().len();
    assert!(size <= 64 * 1024 + 1024, "join reply of {size} bytes");
    assert_eq!(messages.len(), 4, "the newest that fit 64 KiB (16 KB each)");
    assert_eq!(messages.last().unwrap()["id"], json!(50), "the newest message is in it");
    // A rejoin that missed more than the recovery budget starts over from the latest history.
    let mut late = Client::connect(&server, "user=late").await;
    let (_, response) = late.join("room:emoji-wall", json!({"last_seen_id": 1})).await;
    assert_eq!(response["recovered"], json!(false));
    assert_eq!(response["messages"].as_array().unwrap().len(), 4);
    // Paging back still walks the whole room.
    let msg_ref = late.push(None, "room:emoji-wall", "history:before", json!({"before_id": 47, "limit": 100})).await;
    let page = late.assert_reply(&msg_ref, "ok").await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 46);
    writer.assert_alive().await;
}

/// Row 9: a body of invisible characters is empty; control and bidirectional characters are stripped before the
/// message is stored and broadcast.
#[tokio::test]
async fn invisible_and_control_characters_never_reach_other_members() {
    let server = TestServer::start().await;
    let mut sender = Client::connect(&server, "user=sender").await;
    let mut reader = Client::connect(&server, "user=reader").await;
    sender.join("room:clean", json!({})).await;
    reader.join("room:clean", json!({})).await;
    for body in ["\u{200B}", "\u{200B}\u{200D}\u{FEFF} ", "\u{0}\u{7}", "\u{3164}"] {
        let msg_ref = sender.push(None, "room:clean", "message:new", json!({"body": body})).await;
        assert_eq!(sender.assert_reply(&msg_ref, "error").await, json!({"reason": "empty message"}), "{body:?}");
    }
    let msg_ref = sender
        .push(None, "room:clean", "message:new", json!({"body": "\u{1b}[2Jhi\u{7}\u{0} \u{202E}there\r\nok"}))
        .await;
    sender.assert_reply(&msg_ref, "ok").await;
    let broadcast = reader.assert_broadcast("room:clean", "message:new").await;
    assert_eq!(broadcast["body"], json!("[2Jhi there\nok"));
    let mut later = Client::connect(&server, "user=later").await;
    let (_, history) = later.join("room:clean", json!({})).await;
    assert_eq!(history["messages"][0]["body"], json!("[2Jhi there\nok"), "stored stripped too");
}

/// Row 10: a 10 MB frame and a frame with a 1 MB `client_id` close with 1009 (sent from the header, before the
/// payload is read), whatever their size; bystanders carry on.
#[tokio::test]
async fn huge_frames_close_with_1009() {
    let server = TestServer::start().await;
    let mut bystander = Client::connect(&server, "").await;
    bystander.join("room:calm", json!({})).await;

    for payload_len in [10 * 1024 * 1024_usize, 1024 * 1024 + 64] {
        let tcp = raw::open(&server).await;
        let (mut read, mut write) = tcp.into_split();
        let sender = tokio::spawn(async move {
            let mut head = vec![0x81, 0x80 | 127];
            head.extend_from_slice(&(payload_len as u64).to_be_bytes());
            head.extend_from_slice(&[1, 2, 3, 4]);
            let _ = write.write_all(&head).await;
            let chunk = vec![b'a'; 64 * 1024];
            let mut sent = 0;
            while sent < payload_len {
                if write.write_all(&chunk).await.is_err() {
                    break;
                }
                sent += chunk.len();
            }
        });
        let mut head = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(10), read.read_exact(&mut head)).await.unwrap().unwrap();
        assert_eq!(head[0] & 0x0F, 0x8, "a close frame");
        assert_eq!(u16::from_be_bytes([head[2], head[3]]), 1009, "{payload_len} bytes");
        sender.abort();
    }
    // The same through a client library: a real message whose client_id alone is a megabyte.
    let mut client = Client::connect(&server, "").await;
    client.join("room:calm", json!({})).await;
    let client_id = "c".repeat(1024 * 1024);
    client.push(None, "room:calm", "message:new", json!({"body": "hi", "client_id": client_id})).await;
    assert_eq!(client.assert_closed().await, Some(1009));
    bystander.assert_alive().await;
}

/// Row 13: `history:before` is rate limited per connection (10 per 10 s by default); other requests are not.
#[tokio::test]
async fn history_floods_are_rate_limited() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "").await;
    client.join("room:paging", json!({})).await;
    let mut statuses = Vec::new();
    for _ in 0..15 {
        let msg_ref = client.push(None, "room:paging", "history:before", json!({"before_id": 1000})).await;
        let reply = client.assert_reply_frame(&msg_ref).await;
        statuses.push(reply.payload["status"].as_str().unwrap().to_owned());
        if reply.payload["status"] == json!("error") {
            assert_eq!(reply.payload["response"], json!({"reason": "rate limited"}));
        }
    }
    assert_eq!(statuses.iter().filter(|s| *s == "ok").count(), 10, "{statuses:?}");
    let msg_ref = client.push(None, "room:paging", "message:new", json!({"body": "still here"})).await;
    client.assert_reply(&msg_ref, "ok").await;
}

/// Row 14: a token that says it (practically) never expires is still refused once it is older than the server's cap.
#[tokio::test]
async fn immortal_tokens_expire_at_the_cap() {
    let secret = "s".repeat(64);
    let server = TestServer::start_configured(SocketSettings::default(), |config| {
        config.secret_key_base = Some(secret.clone());
    })
    .await;
    let signer = TokenSigner::new(secret.as_bytes(), SOCKET_SALT);
    let day_ms = 86_400_000_i64;
    let now = server::clock::now_ms();
    // The largest max age a token can carry (`:infinity` itself is covered by the token module's unit tests).
    let forever = |signed_at: i64| signer.sign(&Term::Binary(b"ada".to_vec()), signed_at, i64::MAX);
    let old = forever(now - 400 * day_ms);
    assert_eq!(refused_status(&server.url(&format!("vsn=2.0.0&token={old}"))).await, Some(403), "400 days old");
    let recent = forever(now - day_ms);
    assert_eq!(refused_status(&server.url(&format!("vsn=2.0.0&token={recent}"))).await, None, "a day old");
}
