//! The room channel of docs/protocol.md §7.

use serde_json::{Value, json};

use crate::support::{Client, TestServer};

async fn send(client: &mut Client, join_ref: &str, topic: &str, payload: Value) -> (String, Value) {
    let msg_ref = client.push(Some(join_ref), topic, "message:new", payload).await;
    let reply = client.assert_reply_frame(&msg_ref).await;
    (reply.payload["status"].as_str().unwrap().to_owned(), reply.payload["response"].clone())
}

#[tokio::test]
async fn join_reply_carries_user_history_and_recovered() {
    let server = TestServer::start().await;
    let mut alice = Client::connect(&server, "user=alice").await;
    let (join_ref, reply) = alice.join("room:lobby", json!({})).await;
    assert_eq!(reply, json!({"user": "alice", "messages": [], "recovered": true}));
    for body in ["one", "two"] {
        assert_eq!(send(&mut alice, &join_ref, "room:lobby", json!({"body": body})).await.0, "ok");
    }
    let mut bob = Client::connect(&server, "user=bob").await;
    let (_, reply) = bob.join("room:lobby", json!({})).await;
    let messages = reply["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["body"], json!("one"));
    assert_eq!(messages[1]["id"], json!(2));
    assert_eq!(messages[1]["user"], json!("alice"));
    assert!(messages[1]["timestamp"].as_i64().unwrap() > 1_700_000_000_000);
    let (_, reply) = Client::connect(&server, "user=carol").await.join("room:lobby", json!({"last_seen_id": 1})).await;
    assert_eq!(reply["recovered"], json!(true));
    assert_eq!(reply["messages"].as_array().unwrap().len(), 1, "exactly the gap after last_seen_id");
}

#[tokio::test]
async fn guests_without_a_name_get_a_random_memorable_one() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "").await;
    let (_, reply) = client.join("room:names", json!({})).await;
    let user = reply["user"].as_str().unwrap();
    assert_eq!(user.split('-').count(), 2, "two words: {user}");
}

#[tokio::test]
async fn invalid_rooms_and_join_payloads() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "").await;
    for topic in ["room:", "room:-x", "room:UPPER", "room:socket", "room:a_b", &format!("room:{}", "a".repeat(65))] {
        let (_, status, response) = client.try_join(topic, json!({})).await;
        assert_eq!((status.as_str(), response), ("error", json!({"reason": "invalid room"})), "{topic}");
    }
    let (_, status, response) = client.try_join("room:ok", json!({"last_seen_id": "x"})).await;
    assert_eq!((status.as_str(), response), ("error", json!({"reason": "invalid payload"})));
    let (_, status, response) = client.try_join("rooms:x", json!({})).await;
    assert_eq!((status.as_str(), response), ("error", json!({"reason": "unmatched topic"})));
}

#[tokio::test]
async fn message_new_is_stored_acked_and_broadcast_to_everyone_including_the_sender() {
    let server = TestServer::start().await;
    let mut alice = Client::connect(&server, "user=alice").await;
    let mut bob = Client::connect(&server, "user=bob").await;
    let (a_ref, _) = alice.join("room:chat", json!({})).await;
    bob.join("room:chat", json!({})).await;
    let (status, reply) = send(&mut alice, &a_ref, "room:chat", json!({"body": "  hello  "})).await;
    assert_eq!((status.as_str(), reply), ("ok", json!({"id": 1})));
    for client in [&mut alice, &mut bob] {
        let message = client.assert_broadcast("room:chat", "message:new").await;
        assert_eq!(message["id"], json!(1));
        assert_eq!(message["user"], json!("alice"));
        assert_eq!(message["body"], json!("hello"), "surrounding whitespace trimmed");
    }
    let (_, reply) = send(&mut alice, &a_ref, "room:chat", json!({"body": "again"})).await;
    assert_eq!(reply, json!({"id": 2}), "ids increase per room");
}

#[tokio::test]
async fn message_new_validation_errors() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "").await;
    let (join_ref, _) = client.join("room:validate", json!({})).await;
    let long = "é".repeat(4001);
    let cases = [
        (json!({"body": ""}), "empty message"),
        (json!({"body": " \n\t "}), "empty message"),
        (json!({"body": long}), "message too long"),
        (json!({"body": 5}), "invalid payload"),
        (json!({"text": "hi"}), "invalid payload"),
        (json!(["hi"]), "invalid payload"),
        (json!("hi"), "invalid payload"),
        (json!({"body": "hi", "client_id": ""}), "invalid payload"),
    ];
    for (payload, reason) in cases {
        let (status, response) = send(&mut client, &join_ref, "room:validate", payload.clone()).await;
        assert_eq!((status.as_str(), response), ("error", json!({"reason": reason})), "{payload}");
    }
    let (status, _) = send(&mut client, &join_ref, "room:validate", json!({"body": "é".repeat(4000)})).await;
    assert_eq!(status, "ok", "exactly 4000 characters is allowed");
    let msg_ref = client.push(Some(&join_ref), "room:validate", "dance", json!({})).await;
    assert_eq!(client.assert_reply(&msg_ref, "error").await, json!({"reason": "unknown event"}));
    let msg_ref = client.push(Some(&join_ref), "room:validate", "typing", json!({"typing": true})).await;
    assert_eq!(client.assert_reply(&msg_ref, "ok").await, json!({}));
    let msg_ref = client.push(Some(&join_ref), "room:validate", "typing", json!({"typing": "yes"})).await;
    assert_eq!(client.assert_reply(&msg_ref, "error").await, json!({"reason": "invalid payload"}));
}

#[tokio::test]
async fn client_id_makes_retries_idempotent() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "").await;
    let (join_ref, _) = client.join("room:retry", json!({})).await;
    let payload = json!({"body": "once", "client_id": "6f1c9a4e-0000-4000-8000-000000000001"});
    let (_, first) = send(&mut client, &join_ref, "room:retry", payload.clone()).await;
    client.assert_broadcast("room:retry", "message:new").await;
    let (_, second) = send(&mut client, &join_ref, "room:retry", payload).await;
    assert_eq!(first, second, "the retry returns the original id");
    client.refute_event("room:retry", "message:new", std::time::Duration::from_millis(300)).await;
    let (_, reply) = Client::connect(&server, "").await.join("room:retry", json!({})).await;
    assert_eq!(reply["messages"].as_array().unwrap().len(), 1, "stored once");
}

#[tokio::test]
async fn rate_limit_is_20_messages_per_10_seconds_per_socket() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "").await;
    let (join_ref, _) = client.join("room:rate", json!({})).await;
    for n in 0..20 {
        let (status, _) = send(&mut client, &join_ref, "room:rate", json!({"body": format!("m{n}")})).await;
        assert_eq!(status, "ok");
    }
    let (status, response) = send(&mut client, &join_ref, "room:rate", json!({"body": "too many"})).await;
    assert_eq!((status.as_str(), response), ("error", json!({"reason": "rate limited"})));
    // Another socket is not affected.
    let mut other = Client::connect(&server, "").await;
    let (other_ref, reply) = other.join("room:rate", json!({})).await;
    assert_eq!(reply["messages"].as_array().unwrap().len(), 20, "nothing stored for the refused message");
    assert_eq!(send(&mut other, &other_ref, "room:rate", json!({"body": "fine"})).await.0, "ok");
}

#[tokio::test]
async fn history_before_pages_backwards() {
    let server = TestServer::start().await;
    let mut writer = Client::connect(&server, "").await;
    let (join_ref, _) = writer.join("room:pages", json!({})).await;
    for n in 1..=15 {
        send(&mut writer, &join_ref, "room:pages", json!({"body": format!("m{n}")})).await;
    }
    let msg_ref =
        writer.push(Some(&join_ref), "room:pages", "history:before", json!({"before_id": 11, "limit": 4})).await;
    let page = writer.assert_reply(&msg_ref, "ok").await;
    let ids: Vec<u64> = page["messages"].as_array().unwrap().iter().map(|m| m["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, vec![7, 8, 9, 10], "the newest older messages, oldest first");
    let msg_ref = writer.push(Some(&join_ref), "room:pages", "history:before", json!({"before_id": 3})).await;
    let page = writer.assert_reply(&msg_ref, "ok").await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 2);
    let msg_ref = writer.push(Some(&join_ref), "room:pages", "history:before", json!({"limit": 3})).await;
    assert_eq!(writer.assert_reply(&msg_ref, "error").await, json!({"reason": "invalid payload"}));
}

#[tokio::test]
async fn a_message_is_never_delivered_twice_around_a_join() {
    let server = TestServer::start().await;
    let mut writer = Client::connect(&server, "").await;
    let (join_ref, _) = writer.join("room:race", json!({})).await;
    let writing = tokio::spawn(async move {
        for n in 0..20 {
            send(&mut writer, &join_ref, "room:race", json!({"body": format!("m{n}")})).await;
        }
        writer
    });
    let mut reader = Client::connect(&server, "").await;
    let (_, reply) = reader.join("room:race", json!({})).await;
    let mut ids: Vec<u64> = reply["messages"].as_array().unwrap().iter().map(|m| m["id"].as_u64().unwrap()).collect();
    writing.await.unwrap();
    while ids.last() != Some(&20) {
        ids.push(reader.assert_broadcast("room:race", "message:new").await["id"].as_u64().unwrap());
    }
    let expected: Vec<u64> = (ids[0]..=20).collect();
    assert_eq!(ids, expected, "every message exactly once, in order");
}
