//! Long poll across nodes: a session opened on one node is polled and posted to through another, relayed over Redis
//! (docs/protocol.md §2.1); when the owner is gone the client gets `410`.

use std::{net::SocketAddr, time::Duration};

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::{
    conn::{Conn, REPLY_WAIT},
    fixture::Cluster,
    support::http,
};

/// One long-poll request to `addr`; the body of its answer.
async fn request(addr: &str, method: &str, token: Option<&str>, body: &str) -> Value {
    let addr: SocketAddr = addr.parse().unwrap();
    let token = token.map(|t| format!("&token={t}")).unwrap_or_default();
    let head = format!(
        "{method} /socket/longpoll?vsn=2.0.0&user=ada{token} HTTP/1.1\r\nAccept: application/json\r\n\
         Content-Type: application/x-ndjson"
    );
    let response = http::request_to(addr, &head, body).await;
    assert_eq!(response.status, 200);
    serde_json::from_slice(&response.body).unwrap()
}

/// Polls `addr` until a frame with `event` arrives; every frame seen on the way.
async fn poll_until(addr: &str, token: &str, event: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while !seen.iter().any(|frame: &Value| frame[3] == event) {
        assert!(Instant::now() < deadline, "no {event} through {addr}: {seen:?}");
        let body = request(addr, "GET", Some(token), "").await;
        match body["status"].as_u64() {
            Some(200) => {
                for message in body["messages"].as_array().unwrap() {
                    seen.push(serde_json::from_str(message.as_str().unwrap()).unwrap());
                }
            }
            Some(204) => {}
            other => panic!("poll through {addr} answered {other:?}: {body}"),
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_is_reachable_through_every_node_and_gone_with_its_owner() {
    let mut cluster = Cluster::start(2);
    let (owner, other) = (cluster.node(0).addr.clone(), cluster.node(1).addr.clone());
    let topic = "room:relayed";
    let opened = request(&owner, "GET", None, "").await;
    assert_eq!(opened["status"], 410, "{opened}");
    let token = opened["token"].as_str().unwrap().to_owned();

    // Join and send through the node that does not hold the session; read through both.
    let join = json!(["1", "1", topic, "phx_join", {}]).to_string();
    assert_eq!(request(&other, "POST", Some(&token), &join).await, json!({"status": 200}));
    let frames = poll_until(&other, &token, "presence_state").await;
    assert!(frames.iter().any(|f| f[3] == "phx_reply" && f[4]["status"] == "ok"), "{frames:?}");
    let mut bob = Conn::join(&cluster.url(1, "bob"), topic, json!({})).await;
    let send = json!(["1", "2", topic, "message:new", {"body": "relayed"}]).to_string();
    assert_eq!(request(&other, "POST", Some(&token), &send).await["status"], 200);
    tokio::time::timeout(REPLY_WAIT, async {
        while !bob.messages().iter().any(|m| m["body"] == "relayed" && m["user"] == "ada") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("bob, on the other node, receives the long-poll client's message");
    assert_eq!(bob.send("to ada", "b1", REPLY_WAIT).await, crate::conn::Sent::Acked(2));
    let frames = poll_until(&owner, &token, "message:new").await;
    let bodies: Vec<&Value> = frames.iter().filter(|f| f[3] == "message:new").map(|f| &f[4]["body"]).collect();
    assert!(!bodies.is_empty(), "{frames:?}");
    let frames =
        if bodies.iter().any(|b| *b == "to ada") { frames } else { poll_until(&other, &token, "message:new").await };
    assert!(frames.iter().any(|f| f[3] == "message:new" && f[4]["body"] == "to ada"), "{frames:?}");

    // The owner dies: the session is gone. The other node answers 410 and opens a session of its own.
    cluster.kill_9(0);
    let after = request(&other, "GET", Some(&token), "").await;
    assert_eq!(after["status"], 410, "{after}");
    let fresh = after["token"].as_str().unwrap();
    assert_ne!(fresh, token);
    assert_eq!(request(&other, "POST", Some(&token), &join).await, json!({"status": 410}));
    assert_eq!(request(&other, "POST", Some(fresh), &join).await, json!({"status": 200}), "the new session works");
    bob.close().await;
}
