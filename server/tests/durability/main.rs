//! Durability of the real binary: messages survive a restart and a `kill -9` while clients are sending; ids continue
//! and a client that rejoins with its `last_seen_id` gets exactly the gap.

#![allow(clippy::unwrap_used)]

#[path = "../integration/support/mod.rs"]
mod support;

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{Value, json};
use support::{Client, tempdir::TempDir};

/// The server binary as a child process.
struct Process {
    child: Child,
    addr: String,
}

impl Process {
    fn start(data: &Path, addr: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
            .args(["--addr", addr, "--data-dir"])
            .arg(data)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines.next().expect("server exited before listening").unwrap();
            if let Some(rest) = line.split("listening addr=").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { child, addr }
    }

    fn url(&self, query: &str) -> String {
        format!("ws://{}/socket/websocket?vsn=2.0.0&{query}", self.addr)
    }

    fn terminate(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }

    fn kill_9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn send(client: &mut Client, join_ref: &str, topic: &str, payload: Value) -> Value {
    let msg_ref = client.push(Some(join_ref), topic, "message:new", payload).await;
    client.assert_reply(&msg_ref, "ok").await
}

fn ids(messages: &Value) -> Vec<u64> {
    messages.as_array().unwrap().iter().map(|m| m["id"].as_u64().unwrap()).collect()
}

fn token_for(data: &Path, user: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["token", "--user", user, "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn server_token_prints_a_token_the_server_accepts() {
    let data = TempDir::new();
    let server = Process::start(data.path(), "127.0.0.1:0");
    let token = token_for(data.path(), "alice");
    assert!(token.starts_with("SFMyNTY."), "Phoenix.Token format: {token}");
    let mut client = Client::connect_url(&server.url(&format!("user=mallory&token={token}"))).await;
    let (join_ref, reply) = client.join("room:tokens", json!({})).await;
    assert_eq!(reply["user"], json!("alice"), "the token fixes the identity, not ?user=");
    send(&mut client, &join_ref, "room:tokens", json!({"body": "hi"})).await;
    assert_eq!(client.assert_broadcast("room:tokens", "message:new").await["user"], json!("alice"));
    // A token from another secret (another data dir) is refused.
    let other = TempDir::new();
    let foreign = token_for(other.path(), "alice");
    assert_eq!(support::refused_status(&server.url(&format!("token={foreign}"))).await, Some(403));
}

#[tokio::test]
async fn messages_survive_a_restart_and_ids_continue() {
    let data = TempDir::new();
    let server = Process::start(data.path(), "127.0.0.1:0");
    let mut client = Client::connect_url(&server.url("user=ada")).await;
    let (join_ref, _) = client.join("room:restart", json!({})).await;
    for n in 1..=5 {
        assert_eq!(send(&mut client, &join_ref, "room:restart", json!({"body": format!("m{n}")})).await["id"], n);
    }
    drop(client);
    server.terminate();

    let server = Process::start(data.path(), "127.0.0.1:0");
    let mut client = Client::connect_url(&server.url("user=ada")).await;
    let (join_ref, reply) = client.join("room:restart", json!({})).await;
    assert_eq!(ids(&reply["messages"]), vec![1, 2, 3, 4, 5]);
    assert_eq!(reply["messages"][4]["body"], json!("m5"));
    assert_eq!(send(&mut client, &join_ref, "room:restart", json!({"body": "after"})).await, json!({"id": 6}));
}

#[tokio::test]
async fn every_acknowledged_message_survives_kill_9_exactly_once() {
    let data = TempDir::new();
    let server = Process::start(data.path(), "127.0.0.1:0");
    let topic = "room:crash";

    // An observer that records every broadcast id it saw before the crash.
    let mut observer = Client::connect_url(&server.url("user=observer")).await;
    observer.join(topic, json!({})).await;

    // Ten senders; each records (id, body) of every acknowledged message until its connection dies.
    let acked: Arc<Mutex<Vec<(u64, String)>>> = Arc::default();
    let mut senders = Vec::new();
    for sender in 0..10 {
        let url = server.url(&format!("user=sender{sender}"));
        let acked = acked.clone();
        senders.push(tokio::spawn(async move {
            let mut client = Client::connect_url(&url).await;
            let (join_ref, _) = client.join(topic, json!({})).await;
            for n in 0..20 {
                let body = format!("s{sender}-{n}");
                let payload = json!({"body": body, "client_id": format!("c-{sender}-{n}")});
                let msg_ref = client.push(Some(&join_ref), topic, "message:new", payload).await;
                let reply =
                    tokio::time::timeout(Duration::from_secs(5), client.assert_reply_frame_or_close(&msg_ref)).await;
                match reply {
                    Ok(Some(frame)) if frame.payload["status"] == json!("ok") => {
                        let id = frame.payload["response"]["id"].as_u64().unwrap();
                        acked.lock().unwrap().push((id, body));
                    }
                    _ => return,
                }
            }
        }));
    }
    // Let some messages through, then crash hard in the middle of the sending.
    while acked.lock().unwrap().len() < 60 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let addr = server.addr.clone();
    server.kill_9();
    for sender in senders {
        sender.await.unwrap();
    }
    let mut seen_before_crash = Vec::new();
    while let Some(message) = observer.next_broadcast_or_end(topic, "message:new").await {
        seen_before_crash.push(message["id"].as_u64().unwrap());
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 60);

    let server = Process::start(data.path(), &addr);
    let mut reader = Client::connect_url(&server.url("user=reader")).await;
    let (_, reply) = reader.join(topic, json!({"last_seen_id": 0})).await;
    assert_eq!(reply["recovered"], json!(true));
    let stored = reply["messages"].as_array().unwrap().clone();
    let stored_ids = ids(&reply["messages"]);
    assert!(stored_ids.windows(2).all(|w| w[0] < w[1]), "strictly increasing: {stored_ids:?}");
    let mut bodies: Vec<&str> = stored.iter().map(|m| m["body"].as_str().unwrap()).collect();
    bodies.sort_unstable();
    let before = bodies.len();
    bodies.dedup();
    assert_eq!(before, bodies.len(), "no message stored twice");
    for (id, body) in &acked {
        let found = stored.iter().find(|m| m["id"].as_u64() == Some(*id)).unwrap_or_else(|| panic!("acked {id} lost"));
        assert_eq!(found["body"], json!(body), "id {id} holds the acknowledged body");
    }

    // The observer comes back with its last_seen_id and receives exactly the gap.
    let last_seen = seen_before_crash.last().copied().unwrap_or(0);
    let mut observer = Client::connect_url(&server.url("user=observer")).await;
    let (_, reply) = observer.join(topic, json!({"last_seen_id": last_seen})).await;
    assert_eq!(reply["recovered"], json!(true));
    let gap: Vec<u64> = stored_ids.iter().copied().filter(|id| *id > last_seen).collect();
    assert_eq!(ids(&reply["messages"]), gap, "exactly the messages after {last_seen}");
}
