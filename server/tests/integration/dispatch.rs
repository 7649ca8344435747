//! Every row of the dispatch table (docs/protocol.md §5), against the real server.

use std::time::Duration;

use serde_json::json;

use crate::support::{Client, TestServer};

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn row_1_heartbeat_replies_ok_with_null_join_ref() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "").await;
    client.send_text(r#"[null,"7","phoenix","heartbeat",{}]"#).await;
    let frame = client.next_frame().await;
    assert_eq!(frame.join_ref, json!(null));
    assert_eq!(frame.msg_ref, json!("7"));
    assert_eq!(frame.topic, "phoenix");
    assert_eq!(frame.event, "phx_reply");
    assert_eq!(frame.payload, json!({"status": "ok", "response": {}}));
}

#[tokio::test]
async fn row_2_more_than_100_channels_is_refused() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "").await;
    for n in 0..100 {
        client.join(&format!("test:{n}"), json!({})).await;
    }
    let (_, status, response) = client.try_join("test:100", json!({})).await;
    assert_eq!(status, "error");
    assert_eq!(response, json!({"reason": "too many channels joined"}));
    client.assert_alive().await;
}

#[tokio::test]
async fn row_2b_join_ok_error_and_crash() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "").await;
    let (join_ref, reply) = client.join("test:a", json!({})).await;
    assert_eq!(reply, json!({"joined": "test:a"}));
    let push = client.assert_push("test:a", "welcome").await;
    assert_eq!(push.join_ref, json!(join_ref));
    assert_eq!(push.msg_ref, json!(null));

    let (_, status, response) = client.try_join("test:b", json!({"refuse": true})).await;
    assert_eq!((status.as_str(), response), ("error", json!({"reason": "refused"})));
    let (_, status, response) = client.try_join("test:c", json!({"crash": true})).await;
    assert_eq!((status.as_str(), response), ("error", json!({"reason": "join crashed"})));

    // A refused join leaves the topic unjoined: pushes to it get "unmatched topic".
    let msg_ref = client.push(None, "test:b", "echo", json!({})).await;
    assert_eq!(client.assert_reply(&msg_ref, "error").await, json!({"reason": "unmatched topic"}));
    client.assert_alive().await;
}

#[tokio::test]
async fn row_2c_unmatched_topic_replies_with_null_join_ref() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "").await;
    client.send_text(r#"["3","3","nope:lobby","phx_join",{}]"#).await;
    let frame = client.next_frame().await;
    assert_eq!(frame.join_ref, json!(null));
    assert_eq!(frame.msg_ref, json!("3"));
    assert_eq!(frame.payload, json!({"status": "error", "response": {"reason": "unmatched topic"}}));
}

#[tokio::test]
async fn row_3_duplicate_join_replies_then_closes_the_old_join() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "").await;
    client.send_text(r#"["11","11","test:dup","phx_join",{}]"#).await;
    assert_eq!(client.next_frame().await.event, "phx_reply");
    assert_eq!(client.next_frame().await.event, "welcome");
    client.send_text(r#"["12","12","test:dup","phx_join",{}]"#).await;
    let reply = client.next_frame().await;
    assert_eq!((reply.join_ref, reply.msg_ref, reply.event.as_str()), (json!("12"), json!("12"), "phx_reply"));
    assert_eq!(reply.payload["status"], json!("ok"));
    let welcome = client.next_frame().await;
    assert_eq!((welcome.event.as_str(), welcome.join_ref), ("welcome", json!("12")));
    let close = client.next_frame().await;
    assert_eq!(
        (close.join_ref, close.msg_ref, close.event.as_str(), close.payload),
        (json!("11"), json!("11"), "phx_close", json!({}))
    );
    // The new join is the live one.
    let msg_ref = client.push(Some("12"), "test:dup", "echo", json!({"x": 1})).await;
    assert_eq!(client.assert_reply(&msg_ref, "ok").await, json!({"x": 1}));
}

#[tokio::test]
async fn row_4_leave_replies_ok_then_phx_close() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "").await;
    let (join_ref, _) = client.join("test:leave", json!({})).await;
    client.assert_push("test:leave", "welcome").await;
    let leave_ref = client.push(Some(&join_ref), "test:leave", "phx_leave", json!({})).await;
    let reply = client.next_frame().await;
    assert_eq!((reply.join_ref, reply.msg_ref), (json!(join_ref), json!(leave_ref)));
    assert_eq!(reply.payload, json!({"status": "ok", "response": {}}));
    let close = client.next_frame().await;
    assert_eq!((close.join_ref, close.msg_ref, close.event.as_str()), (json!(join_ref), json!(join_ref), "phx_close"));
    // Left: the topic is no longer joined.
    let msg_ref = client.push(Some(&join_ref), "test:leave", "echo", json!({})).await;
    assert_eq!(client.assert_reply(&msg_ref, "error").await, json!({"reason": "unmatched topic"}));
}

#[tokio::test]
async fn row_4_leave_with_null_join_ref_is_accepted() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "").await;
    let (join_ref, _) = client.join("test:leave-null", json!({})).await;
    client.assert_push("test:leave-null", "welcome").await;
    let leave_ref = client.push(None, "test:leave-null", "phx_leave", json!({})).await;
    client.assert_reply(&leave_ref, "ok").await;
    let close = client.next_frame().await;
    assert_eq!((close.event.as_str(), close.join_ref), ("phx_close", json!(join_ref)));
}

#[tokio::test]
async fn row_4b_leave_with_stale_join_ref_is_ignored() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "").await;
    let (join_ref, _) = client.join("test:stale", json!({})).await;
    client.assert_push("test:stale", "welcome").await;
    client.push(Some("999"), "test:stale", "phx_leave", json!({})).await;
    client.assert_silent(QUIET).await;
    let msg_ref = client.push(Some(&join_ref), "test:stale", "echo", json!({"still": "joined"})).await;
    assert_eq!(client.assert_reply(&msg_ref, "ok").await, json!({"still": "joined"}));
}

#[tokio::test]
async fn row_5_events_reach_the_channel_with_current_or_null_join_ref() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "").await;
    let (join_ref, _) = client.join("test:in", json!({})).await;
    client.assert_push("test:in", "welcome").await;
    let msg_ref = client.push(Some(&join_ref), "test:in", "echo", json!({"a": 1})).await;
    let reply = client.assert_reply_frame(&msg_ref).await;
    assert_eq!(reply.join_ref, json!(join_ref), "replies carry the channel's join_ref");
    assert_eq!(reply.payload, json!({"status": "ok", "response": {"a": 1}}));
    let msg_ref = client.push(None, "test:in", "echo", json!({"b": 2})).await;
    assert_eq!(client.assert_reply(&msg_ref, "ok").await, json!({"b": 2}));
}

#[tokio::test]
async fn row_5_handler_failure_becomes_phx_error_for_that_channel_only() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "").await;
    let (a_ref, _) = client.join("test:a", json!({})).await;
    let (b_ref, _) = client.join("test:b", json!({})).await;
    for (topic, event) in [("test:a", "fail"), ("test:b", "boom")] {
        let join_ref = if topic == "test:a" { &a_ref } else { &b_ref };
        client.push(Some(join_ref), topic, event, json!({})).await;
        let error = client.find_event(topic, "phx_error").await;
        assert_eq!((error.join_ref, error.msg_ref), (json!(join_ref), json!(join_ref)));
        assert_eq!(error.payload, json!({"reason": "channel_crash"}));
    }
    // The socket survives and can rejoin.
    client.assert_alive().await;
    client.join("test:a", json!({})).await;
}

#[tokio::test]
async fn row_5_stop_replies_then_closes() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "").await;
    let (join_ref, _) = client.join("test:stop", json!({})).await;
    client.assert_push("test:stop", "welcome").await;
    let msg_ref = client.push(Some(&join_ref), "test:stop", "stop", json!({})).await;
    assert_eq!(client.assert_reply(&msg_ref, "ok").await, json!({"bye": true}));
    let close = client.next_frame().await;
    assert_eq!((close.event.as_str(), close.msg_ref), ("phx_close", json!(join_ref)));
}

#[tokio::test]
async fn row_5b_stale_join_ref_messages_are_dropped() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "").await;
    client.join("test:s", json!({})).await;
    client.assert_push("test:s", "welcome").await;
    client.push(Some("old"), "test:s", "echo", json!({})).await;
    client.assert_silent(QUIET).await;
}

#[tokio::test]
async fn row_6_leave_on_unjoined_topic_replies_ok() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "").await;
    client.send_text(r#"["5","6","test:never","phx_leave",{}]"#).await;
    let reply = client.next_frame().await;
    assert_eq!((reply.join_ref, reply.msg_ref), (json!("5"), json!("6")));
    assert_eq!(reply.payload, json!({"status": "ok", "response": {}}));
}

#[tokio::test]
async fn row_7_push_to_unjoined_topic_is_unmatched() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "").await;
    client.send_text(r#"["5","7","room:other","new_msg",{}]"#).await;
    let reply = client.next_frame().await;
    assert_eq!((reply.join_ref, reply.msg_ref), (json!(null), json!("7")));
    assert_eq!(reply.payload, json!({"status": "error", "response": {"reason": "unmatched topic"}}));
}

#[tokio::test]
async fn join_reply_precedes_every_push_and_broadcast_of_the_topic() {
    let server = TestServer::start().await;
    let mut publisher = Client::connect(&server, "").await;
    publisher.join("test:busy", json!({})).await;
    // Broadcast continuously while another client joins.
    let flood = tokio::spawn(async move {
        for _ in 0..50 {
            let msg_ref = publisher.push(None, "test:busy", "broadcast", json!({"hi": 1})).await;
            publisher.assert_reply(&msg_ref, "ok").await;
        }
    });
    let mut joiner = Client::connect(&server, "").await;
    joiner.send_text(r#"["1","1","test:busy","phx_join",{}]"#).await;
    let first = joiner.next_frame().await;
    assert_eq!((first.event.as_str(), first.msg_ref), ("phx_reply", json!("1")), "the join reply comes first");
    assert_eq!(joiner.next_frame().await.event, "welcome", "then the join's pushes");
    flood.await.unwrap();
}
