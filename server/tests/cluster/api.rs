//! The HTTP API in a cluster: a presence read on a node without members of the room answers the other nodes'
//! members, and the read leaves no trace (the node does not follow the room afterwards).

use std::{net::SocketAddr, process::Command, time::Duration};

use serde_json::{Value, json};

use crate::{
    conn::{Conn, eventually},
    fixture::Cluster,
    support::http,
};

/// `server api-key create` against the cluster's database: the key.
fn create_key(cluster: &Cluster, name: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["api-key", "create", "--name", name, "--database-url", &cluster.postgres.url])
        .output()
        .unwrap();
    assert!(output.status.success(), "server api-key failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// `GET path` with the key: the status and the body.
async fn get(addr: &str, path: &str, key: &str) -> (u16, String) {
    let addr: SocketAddr = addr.parse().unwrap();
    let response = http::request_to(addr, &format!("GET {path} HTTP/1.1\r\nAuthorization: Bearer {key}"), "").await;
    (response.status, String::from_utf8_lossy(&response.body).into_owned())
}

/// The node's `parley_presence_diff_batches_total`.
async fn diff_batches(addr: &str) -> f64 {
    let addr: SocketAddr = addr.parse().unwrap();
    let response = http::request_to(addr, "GET /metrics HTTP/1.1", "").await;
    let text = String::from_utf8_lossy(&response.body);
    text.lines()
        .find(|line| line.starts_with("parley_presence_diff_batches_total"))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no presence diff counter in /metrics:\n{text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_presence_read_shows_other_nodes_members_without_following_the_room() {
    let cluster = Cluster::start(2);
    let key = create_key(&cluster, "backend");
    let ada = Conn::join(&cluster.url(0, "ada"), "room:peek", json!({})).await;
    let reader = cluster.node(1).addr.clone();

    // Node 2 has nobody in the room: its answer is node 1's member, read from the registry.
    let (status, body) = get(&reader, "/api/rooms/peek/presence", &key).await;
    assert_eq!(status, 200, "{body}");
    let state: Value = serde_json::from_str(&body).unwrap();
    let metas = state["ada"]["metas"].as_array().unwrap_or_else(|| panic!("ada is not in {state}"));
    assert_eq!(metas.len(), 1, "{state}");
    assert!(metas[0]["phx_ref"].is_string(), "{state}");
    assert_eq!(state.as_object().unwrap().len(), 1, "{state}");

    // Not followed afterwards: node 2 sends no diff when someone else joins on node 1 (a node that follows a room
    // applies and coalesces its changes even with no member of its own).
    let before = diff_batches(&reader).await;
    let bob = Conn::join(&cluster.url(0, "bob"), "room:peek", json!({})).await;
    eventually(Duration::from_secs(15), || if ada.presence().has("bob") { Ok(()) } else { Err("bob not seen".into()) })
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(diff_batches(&reader).await, before, "node 2 follows the room it only read");

    // And a second read is still whole.
    let (_, body) = get(&reader, "/api/rooms/peek/presence", &key).await;
    let state: Value = serde_json::from_str(&body).unwrap();
    assert!(state.get("ada").is_some() && state.get("bob").is_some(), "{state}");
    drop((ada, bob));
}
