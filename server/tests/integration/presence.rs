//! Presence in rooms: `presence_state` after the join reply, `presence_diff` on track/update/untrack, no ghosts.

use std::time::Duration;

use serde_json::{Value, json};
use server::socket::SocketSettings;

use crate::support::{Client, TestServer};

/// Metas of `key` in a state or a diff half.
fn metas(presences: &Value, key: &str) -> Vec<Value> {
    presences[key]["metas"].as_array().cloned().unwrap_or_default()
}

/// Joins `topic` and returns (join_ref, presence_state payload).
async fn join_with_state(client: &mut Client, topic: &str) -> (String, Value) {
    let (join_ref, _) = client.join(topic, json!({})).await;
    let state = client.assert_push(topic, "presence_state").await;
    assert_eq!(state.join_ref, json!(join_ref), "presence_state is pushed for this join");
    (join_ref, state.payload)
}

/// Waits for a diff on `topic` satisfying `accept`.
async fn diff_where(client: &mut Client, topic: &str, accept: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..20 {
        let diff = client.assert_broadcast(topic, "presence_diff").await;
        if accept(&diff) {
            return diff;
        }
    }
    panic!("no matching presence_diff on {topic}");
}

#[tokio::test]
async fn joiner_sees_itself_in_presence_state_right_after_the_join_reply() {
    let server = TestServer::start().await;
    let mut alice = Client::connect(&server, "user=alice").await;
    alice.send_text(r#"["1","1","room:p1","phx_join",{}]"#).await;
    assert_eq!(alice.next_frame().await.event, "phx_reply", "the reply comes first");
    let state = alice.next_frame().await;
    assert_eq!((state.event.as_str(), state.join_ref.clone()), ("presence_state", json!("1")));
    let mine = metas(&state.payload, "alice");
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["typing"], json!(false));
    assert!(mine[0]["online_at"].as_i64().unwrap() > 1_700_000_000_000);
    assert_eq!(mine[0]["phx_ref"].as_str().unwrap().len(), 16);
}

#[tokio::test]
async fn others_joins_and_leaves_arrive_as_diffs() {
    let server = TestServer::start().await;
    let mut alice = Client::connect(&server, "user=alice").await;
    join_with_state(&mut alice, "room:p2").await;
    let mut bob = Client::connect(&server, "user=bob").await;
    let (bob_ref, state) = join_with_state(&mut bob, "room:p2").await;
    assert_eq!(metas(&state, "alice").len(), 1);
    assert_eq!(metas(&state, "bob").len(), 1);
    let joined = diff_where(&mut alice, "room:p2", |d| d["joins"].get("bob").is_some()).await;
    let bob_meta = metas(&joined["joins"], "bob").remove(0);
    bob.push(Some(&bob_ref), "room:p2", "phx_leave", json!({})).await;
    let left = diff_where(&mut alice, "room:p2", |d| d["leaves"].get("bob").is_some()).await;
    assert_eq!(metas(&left["leaves"], "bob"), vec![bob_meta], "the same meta leaves");
}

#[tokio::test]
async fn two_tabs_are_two_metas_and_closing_one_keeps_the_user() {
    let server = TestServer::start().await;
    let mut tab1 = Client::connect(&server, "user=ada").await;
    join_with_state(&mut tab1, "room:p3").await;
    let mut tab2 = Client::connect(&server, "user=ada").await;
    let (_, state) = join_with_state(&mut tab2, "room:p3").await;
    assert_eq!(metas(&state, "ada").len(), 2, "one key, two metas");
    let mut watcher = Client::connect(&server, "user=watcher").await;
    join_with_state(&mut watcher, "room:p3").await;
    tab2.ws.close(None).await.unwrap();
    let left = diff_where(&mut watcher, "room:p3", |d| d["leaves"].get("ada").is_some()).await;
    assert_eq!(metas(&left["leaves"], "ada").len(), 1);
    let mut late = Client::connect(&server, "user=late").await;
    let (_, state) = join_with_state(&mut late, "room:p3").await;
    assert_eq!(metas(&state, "ada").len(), 1, "ada is still online with one tab");
}

#[tokio::test]
async fn a_killed_connection_leaves() {
    let server = TestServer::start().await;
    let mut watcher = Client::connect(&server, "user=watcher").await;
    join_with_state(&mut watcher, "room:p4").await;
    let mut doomed = Client::connect(&server, "user=doomed").await;
    join_with_state(&mut doomed, "room:p4").await;
    diff_where(&mut watcher, "room:p4", |d| d["joins"].get("doomed").is_some()).await;
    // Drop the TCP connection without a close frame.
    drop(doomed);
    diff_where(&mut watcher, "room:p4", |d| d["leaves"].get("doomed").is_some()).await;
}

#[tokio::test]
async fn a_silent_connection_leaves_at_the_idle_timeout() {
    let settings = SocketSettings { idle_timeout: Duration::from_millis(500), ..SocketSettings::default() };
    let server = TestServer::start_with(settings).await;
    let mut watcher = Client::connect(&server, "user=watcher").await;
    join_with_state(&mut watcher, "room:p5").await;
    let mut silent = Client::connect(&server, "user=silent").await;
    join_with_state(&mut silent, "room:p5").await;
    let keepalive = async {
        loop {
            tokio::time::sleep(Duration::from_millis(150)).await;
            watcher.assert_alive().await;
            if watcher_saw_leave(&mut watcher).await {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), keepalive).await.expect("silent user never left");
}

async fn watcher_saw_leave(watcher: &mut Client) -> bool {
    let quiet = Duration::from_millis(50);
    match tokio::time::timeout(quiet, watcher.assert_broadcast("room:p5", "presence_diff")).await {
        Ok(diff) => diff["leaves"].get("silent").is_some(),
        Err(_) => false,
    }
}

#[tokio::test]
async fn typing_updates_the_meta_with_a_leave_and_a_join() {
    let server = TestServer::start().await;
    let mut alice = Client::connect(&server, "user=alice").await;
    let (join_ref, state) = join_with_state(&mut alice, "room:p6").await;
    let before = metas(&state, "alice").remove(0);
    let msg_ref = alice.push(Some(&join_ref), "room:p6", "typing", json!({"typing": true})).await;
    assert_eq!(alice.assert_reply(&msg_ref, "ok").await, json!({}));
    let diff = diff_where(&mut alice, "room:p6", |d| d["leaves"].get("alice").is_some()).await;
    assert_eq!(metas(&diff["leaves"], "alice"), vec![before.clone()]);
    let after = metas(&diff["joins"], "alice").remove(0);
    assert_eq!(after["typing"], json!(true));
    assert_eq!(after["phx_ref_prev"], before["phx_ref"]);
    assert_eq!(after["online_at"], before["online_at"], "online since is kept");
    assert_ne!(after["phx_ref"], before["phx_ref"]);
}

#[tokio::test]
async fn rejoin_after_reconnect_resyncs_without_the_old_meta() {
    let server = TestServer::start().await;
    let mut watcher = Client::connect(&server, "user=watcher").await;
    join_with_state(&mut watcher, "room:p7").await;
    let mut first = Client::connect(&server, "user=roamer").await;
    let (_, state) = join_with_state(&mut first, "room:p7").await;
    let old_ref = metas(&state, "roamer")[0]["phx_ref"].clone();
    drop(first);
    diff_where(&mut watcher, "room:p7", |d| d["leaves"].get("roamer").is_some()).await;
    let mut second = Client::connect(&server, "user=roamer").await;
    let (_, state) = join_with_state(&mut second, "room:p7").await;
    let now = metas(&state, "roamer");
    assert_eq!(now.len(), 1);
    assert_ne!(now[0]["phx_ref"], old_ref);
    assert_eq!(metas(&state, "watcher").len(), 1);
}

#[tokio::test]
async fn duplicate_join_replaces_the_meta() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "user=dup").await;
    join_with_state(&mut client, "room:p8").await;
    let (_, state) = join_with_state(&mut client, "room:p8").await;
    assert_eq!(metas(&state, "dup").len(), 1, "the old channel's meta is gone before the new one is tracked");
}

#[tokio::test]
async fn a_refused_join_leaves_no_presence() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "user=ghost").await;
    let (_, status, _) = client.try_join("room:p9", json!({"last_seen_id": "nope"})).await;
    assert_eq!(status, "error");
    let mut other = Client::connect(&server, "user=other").await;
    let (_, state) = join_with_state(&mut other, "room:p9").await;
    assert!(state.get("ghost").is_none(), "{state}");
}
