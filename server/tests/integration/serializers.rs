//! The V1 object serializer and V2 binary frames over a real socket.

use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Client, TestServer};

async fn next_v1(client: &mut Client) -> Value {
    match client.next_message().await {
        Some(Message::Text(text)) => serde_json::from_str(text.as_str()).unwrap(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

#[tokio::test]
async fn v1_objects_without_join_ref() {
    let server = TestServer::start().await;
    for query in ["vsn=1.0.0", ""] {
        let mut client = Client::connect_url(&server.url(query)).await;
        client.send_text(r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}"#).await;
        assert_eq!(
            next_v1(&mut client).await,
            json!({"topic":"phoenix","event":"phx_reply","ref":"1","payload":{"status":"ok","response":{}}})
        );
        client.send_text(r#"{"topic":"test:v1","event":"phx_join","payload":{},"ref":"2","join_ref":"2"}"#).await;
        let reply = next_v1(&mut client).await;
        assert_eq!(reply["payload"]["status"], json!("ok"));
        assert!(reply.get("join_ref").is_none(), "V1 never emits join_ref: {reply}");
        let push = next_v1(&mut client).await;
        assert_eq!((push["event"].clone(), push["ref"].clone()), (json!("welcome"), json!(null)));
        client.send_text(r#"{"topic":"test:v1","event":"broadcast","payload":{"x":1},"ref":"3"}"#).await;
        let mut seen = [next_v1(&mut client).await, next_v1(&mut client).await];
        seen.sort_by_key(|m| m["event"].as_str().unwrap_or_default().to_owned());
        assert_eq!(seen[1], json!({"topic":"test:v1","event":"shout","ref":null,"payload":{"x":1}}));
        // Unjoined topic under V1.
        client.send_text(r#"{"topic":"x:y","event":"e","payload":{},"ref":"4"}"#).await;
        assert_eq!(next_v1(&mut client).await["payload"]["response"], json!({"reason": "unmatched topic"}));
    }
}

#[tokio::test]
async fn v1_and_v2_subscribers_get_their_own_encoding_of_one_broadcast() {
    let server = TestServer::start().await;
    let mut v1 = Client::connect_url(&server.url("vsn=1.0.0")).await;
    v1.send_text(r#"{"topic":"test:mixed","event":"phx_join","payload":{},"ref":"1"}"#).await;
    next_v1(&mut v1).await;
    next_v1(&mut v1).await;
    let mut v2 = Client::connect(&server, "").await;
    v2.join("test:mixed", json!({})).await;
    let msg_ref = v2.push(None, "test:mixed", "broadcast", json!({"n": 1})).await;
    v2.assert_reply(&msg_ref, "ok").await;
    assert_eq!(v2.assert_broadcast("test:mixed", "shout").await, json!({"n": 1}));
    assert_eq!(next_v1(&mut v1).await, json!({"topic":"test:mixed","event":"shout","ref":null,"payload":{"n":1}}));
}

#[tokio::test]
async fn v2_binary_push_reply_and_broadcast() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "").await;
    // test:* echoes binary payloads; join it under join_ref "12".
    client.send_text(r#"["12","12","test:bin","phx_join",{}]"#).await;
    assert_eq!(client.next_frame().await.payload["status"], json!("ok"));
    client.next_frame().await; // welcome
    // Client push kind 0: join_ref "12", ref "123", topic "test:bin", event "echo", payload 101 102 103.
    let mut push = vec![0u8, 2, 3, 8, 4];
    push.extend_from_slice(b"12123test:binecho");
    push.extend_from_slice(&[101, 102, 103]);
    client.send_binary(push).await;
    let Some(Message::Binary(reply)) = client.next_message().await else { panic!("expected a binary reply") };
    let mut expected = vec![1u8, 2, 3, 8, 2];
    expected.extend_from_slice(b"12123test:binok");
    expected.extend_from_slice(&[101, 102, 103]);
    assert_eq!(reply.as_ref(), expected.as_slice(), "reply kind 1 with the raw payload");

    let mut push = vec![0u8, 2, 3, 8, 9];
    push.extend_from_slice(b"12124test:binbroadcast");
    push.extend_from_slice(&[7, 8]);
    client.send_binary(push).await;
    let mut frames = Vec::new();
    for _ in 0..2 {
        frames.push(client.ws.next().await.unwrap().unwrap());
    }
    let mut broadcast = vec![2u8, 8, 5];
    broadcast.extend_from_slice(b"test:binshout");
    broadcast.extend_from_slice(&[7, 8]);
    assert!(frames.contains(&Message::binary(broadcast)), "broadcast kind 2: {frames:?}");
}

#[tokio::test]
async fn binary_under_v1_closes_with_1007() {
    let server = TestServer::start().await;
    let mut client = Client::connect_url(&server.url("vsn=1.0.0")).await;
    client.send_binary(vec![0, 0, 0, 1, 1, b't', b'e']).await;
    assert_eq!(client.assert_closed().await, Some(1007));
}
