//! Watching a room (`"watch": true`, docs/protocol.md §7.5): `{last_id, unread}`, only `message:new` broadcasts, no
//! presence either way, read-only, and beside normal joins on the same socket.

use std::time::Duration;

use serde_json::{Value, json};
use server::socket::SocketSettings;

use crate::support::{Client, TestServer};

/// Long enough for a coalesced `presence_diff` (50 ms windows) or a stray broadcast to have arrived.
const QUIET: Duration = Duration::from_millis(400);

/// Sends `message:new` on a joined topic and returns its id (panics unless it is accepted).
async fn post(client: &mut Client, join_ref: &str, topic: &str, body: &str) -> u64 {
    let msg_ref = client.push(Some(join_ref), topic, "message:new", json!({"body": body})).await;
    client.assert_reply(&msg_ref, "ok").await["id"].as_u64().unwrap()
}

/// Joins `topic` normally and returns (join_ref, presence_state payload).
async fn join_member(client: &mut Client, topic: &str) -> (String, Value) {
    let (join_ref, reply) = client.join(topic, json!({})).await;
    assert!(reply.get("messages").is_some(), "a normal join: {reply}");
    let state = client.assert_push(topic, "presence_state").await;
    (join_ref, state.payload)
}

/// Watches `topic` with `params` (plus `"watch": true`); returns (join_ref, reply). Checks that no `presence_state`
/// follows the reply.
async fn watch(client: &mut Client, topic: &str, mut params: Value) -> (String, Value) {
    params["watch"] = json!(true);
    let (join_ref, reply) = client.join(topic, params).await;
    client.refute_event(topic, "presence_state", QUIET).await;
    (join_ref, reply)
}

/// The next `presence_diff` on `topic` that mentions `key` in `side` (`joins` or `leaves`).
async fn diff_with(client: &mut Client, topic: &str, side: &str, key: &str) -> Value {
    for _ in 0..20 {
        let diff = client.assert_broadcast(topic, "presence_diff").await;
        if diff[side].get(key).is_some() {
            return diff;
        }
    }
    panic!("no presence_diff on {topic} with {key} in {side}");
}

/// Asserts that no `presence_diff` received so far, nor any within [`QUIET`], mentions `key`.
async fn refute_key_in_diffs(client: &mut Client, topic: &str, key: &str) {
    let deadline = tokio::time::Instant::now() + QUIET;
    while let Ok(diff) = tokio::time::timeout_at(deadline, client.assert_broadcast(topic, "presence_diff")).await {
        assert!(diff["joins"].get(key).is_none() && diff["leaves"].get(key).is_none(), "{key} in a diff: {diff}");
    }
}

#[tokio::test]
async fn a_watch_replies_last_id_and_unread_and_no_presence_state() {
    let server = TestServer::start().await;
    let mut viewer = Client::connect(&server, "user=viewer").await;
    let (_, reply) = watch(&mut viewer, "room:w-empty", json!({})).await;
    assert_eq!(reply, json!({"last_id": null, "unread": 0}), "an empty room: last_id is null, not absent");
    let (_, reply) = watch(&mut viewer, "room:w-empty2", json!({"last_seen_id": 3})).await;
    assert_eq!(reply, json!({"last_id": null, "unread": 0}));

    let mut writer = Client::connect(&server, "user=writer").await;
    let (join_ref, _) = join_member(&mut writer, "room:w-count").await;
    for n in 1..=5 {
        post(&mut writer, &join_ref, "room:w-count", &format!("m{n}")).await;
    }
    let cases = [
        (json!({}), 0),
        (json!({"last_seen_id": null}), 0),
        (json!({"last_seen_id": 0}), 5),
        (json!({"last_seen_id": 2}), 3),
        (json!({"last_seen_id": 5}), 0),
        (json!({"last_seen_id": 9}), 0),
    ];
    for (params, unread) in cases {
        let mut viewer = Client::connect(&server, "user=viewer").await;
        let (_, reply) = watch(&mut viewer, "room:w-count", params.clone()).await;
        assert_eq!(reply, json!({"last_id": 5, "unread": unread}), "{params}");
        viewer.assert_silent(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn unread_is_capped_at_100() {
    let mut settings = SocketSettings::default();
    settings.message_rate.max = 1000;
    let server = TestServer::start_with(settings).await;
    let mut writer = Client::connect(&server, "user=writer").await;
    let (join_ref, _) = join_member(&mut writer, "room:w-many").await;
    for n in 1..=105 {
        post(&mut writer, &join_ref, "room:w-many", &format!("m{n}")).await;
    }
    for (last_seen_id, unread) in [(0, 100), (4, 100), (5, 100), (6, 99), (100, 5), (105, 0)] {
        let mut viewer = Client::connect(&server, "user=viewer").await;
        let (_, reply) = watch(&mut viewer, "room:w-many", json!({"last_seen_id": last_seen_id})).await;
        assert_eq!(reply, json!({"last_id": 105, "unread": unread}), "last_seen_id {last_seen_id}");
    }
    let mut viewer = Client::connect(&server, "user=viewer").await;
    let (_, reply) = watch(&mut viewer, "room:w-many", json!({})).await;
    assert_eq!(reply, json!({"last_id": 105, "unread": 0}), "no last_seen_id: 0");
}

#[tokio::test]
async fn a_watcher_is_in_no_presence_and_gets_no_presence_diff() {
    let server = TestServer::start().await;
    let topic = "room:w-presence";
    let mut alice = Client::connect(&server, "user=alice").await;
    let (alice_ref, _) = join_member(&mut alice, topic).await;
    let mut viewer = Client::connect(&server, "user=viewer").await;
    let (viewer_ref, _) = watch(&mut viewer, topic, json!({})).await;

    // Members come, type and go; the watcher is never among them and hears none of it.
    let mut carol = Client::connect(&server, "user=carol").await;
    let (carol_ref, state) = join_member(&mut carol, topic).await;
    let mut keys: Vec<&String> = state.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["alice", "carol"], "carol's presence_state: {state}");
    diff_with(&mut alice, topic, "joins", "carol").await;
    let msg_ref = alice.push(Some(&alice_ref), topic, "typing", json!({"typing": true})).await;
    alice.assert_reply(&msg_ref, "ok").await;
    carol.push(Some(&carol_ref), topic, "phx_leave", json!({})).await;
    diff_with(&mut alice, topic, "leaves", "carol").await;
    // A message queued behind those diffs: once the watcher has it, the diffs went through its writer too.
    post(&mut alice, &alice_ref, topic, "after the churn").await;
    assert_eq!(viewer.assert_broadcast(topic, "message:new").await["body"], json!("after the churn"));
    viewer.refute_event(topic, "presence_diff", Duration::ZERO).await;

    // The watcher leaves: no leave diff for it either.
    viewer.push(Some(&viewer_ref), topic, "phx_leave", json!({})).await;
    viewer.find_event(topic, "phx_close").await;
    refute_key_in_diffs(&mut alice, topic, "viewer").await;
    viewer.refute_event(topic, "presence_diff", QUIET).await;
    viewer.refute_event(topic, "presence_state", Duration::ZERO).await;

    // A watcher whose socket closes leaves no trace either.
    let mut closing = Client::connect(&server, "user=closing").await;
    watch(&mut closing, topic, json!({})).await;
    drop(closing);
    refute_key_in_diffs(&mut alice, topic, "closing").await;
    let mut late = Client::connect(&server, "user=late").await;
    let (_, state) = join_member(&mut late, topic).await;
    let mut keys: Vec<&String> = state.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["alice", "late"], "late's presence_state: {state}");
}

#[tokio::test]
async fn a_watcher_gets_every_new_message_once_and_nothing_else() {
    let server = TestServer::start().await;
    let topic = "room:w-messages";
    let mut alice = Client::connect(&server, "user=alice").await;
    let (alice_ref, _) = join_member(&mut alice, topic).await;
    for n in 1..=3 {
        post(&mut alice, &alice_ref, topic, &format!("before {n}")).await;
    }
    let mut viewer = Client::connect(&server, "user=viewer").await;
    let (_, reply) = watch(&mut viewer, topic, json!({"last_seen_id": 1})).await;
    assert_eq!(reply, json!({"last_id": 3, "unread": 2}));

    // Presence churn between messages: the watcher gets the messages, in order, and none of the churn.
    for n in 4..=6 {
        let mut passer = Client::connect(&server, &format!("user=passer{n}")).await;
        let (passer_ref, _) = join_member(&mut passer, topic).await;
        diff_with(&mut alice, topic, "joins", &format!("passer{n}")).await;
        assert_eq!(post(&mut passer, &passer_ref, topic, &format!("m{n}")).await, n);
        drop(passer);
        diff_with(&mut alice, topic, "leaves", &format!("passer{n}")).await;
    }
    post(&mut alice, &alice_ref, topic, "m7").await;
    for n in 4..=7 {
        let message = viewer.assert_broadcast(topic, "message:new").await;
        assert_eq!((message["id"].as_u64(), message["body"].as_str()), (Some(n), Some(format!("m{n}").as_str())));
        let author = if n == 7 { "alice".to_owned() } else { format!("passer{n}") };
        assert_eq!(message["user"], json!(author));
    }
    viewer.refute_event(topic, "presence_diff", QUIET).await;
    viewer.refute_event(topic, "message:new", Duration::ZERO).await;
}

#[tokio::test]
async fn a_watch_misses_nothing_after_last_id_while_messages_arrive() {
    let server = TestServer::start().await;
    let topic = "room:w-race";
    let mut writer = Client::connect(&server, "user=writer").await;
    let (join_ref, _) = join_member(&mut writer, topic).await;
    let writing = tokio::spawn(async move {
        for n in 1..=20 {
            post(&mut writer, &join_ref, topic, &format!("m{n}")).await;
        }
        writer
    });
    let mut viewer = Client::connect(&server, "user=viewer").await;
    let (_, reply) = viewer.join(topic, json!({"watch": true})).await;
    let last_id = reply["last_id"].as_u64().unwrap_or(0);
    writing.await.unwrap();
    let mut ids = Vec::new();
    while ids.last().copied().unwrap_or(last_id) < 20 {
        ids.push(viewer.assert_broadcast(topic, "message:new").await["id"].as_u64().unwrap());
    }
    assert_eq!(ids, (last_id + 1..=20).collect::<Vec<_>>(), "every message after last_id ({last_id}) exactly once");
    viewer.refute_event(topic, "message:new", QUIET).await;
}

#[tokio::test]
async fn a_watcher_may_read_history_but_not_send_or_type() {
    // One message per socket: the refusals below must not count toward it.
    let mut settings = SocketSettings::default();
    settings.message_rate.max = 1;
    let server = TestServer::start_with(settings).await;
    let topic = "room:w-readonly";
    let mut alice = Client::connect(&server, "user=alice").await;
    let (alice_ref, _) = join_member(&mut alice, topic).await;
    post(&mut alice, &alice_ref, topic, "hello").await;
    alice.assert_broadcast(topic, "message:new").await;
    let mut viewer = Client::connect(&server, "user=viewer").await;
    let (viewer_ref, _) = watch(&mut viewer, topic, json!({})).await;

    let unauthorized = json!({"reason": "unauthorized"});
    for payload in [json!({"body": "let me in"}), json!({"body": "x", "client_id": "c-1"}), json!({}), json!("junk")] {
        let msg_ref = viewer.push(Some(&viewer_ref), topic, "message:new", payload.clone()).await;
        assert_eq!(viewer.assert_reply(&msg_ref, "error").await, unauthorized, "message:new {payload}");
    }
    for payload in [json!({"typing": true}), json!({"typing": "yes"})] {
        let msg_ref = viewer.push(Some(&viewer_ref), topic, "typing", payload.clone()).await;
        assert_eq!(viewer.assert_reply(&msg_ref, "error").await, unauthorized, "typing {payload}");
    }
    let msg_ref = viewer.push(Some(&viewer_ref), topic, "dance", json!({})).await;
    assert_eq!(viewer.assert_reply(&msg_ref, "error").await, json!({"reason": "unknown event"}));
    let msg_ref = viewer.push(Some(&viewer_ref), topic, "history:before", json!({"before_id": 5})).await;
    let page = viewer.assert_reply(&msg_ref, "ok").await;
    assert_eq!(page["messages"].as_array().map(Vec::len), Some(1), "history:before works: {page}");
    assert_eq!(page["messages"][0]["body"], json!("hello"));
    let msg_ref = viewer.push(Some(&viewer_ref), topic, "history:before", json!({})).await;
    assert_eq!(viewer.assert_reply(&msg_ref, "error").await, json!({"reason": "invalid payload"}));

    // Nothing was stored, broadcast or typed.
    alice.refute_event(topic, "message:new", QUIET).await;
    refute_key_in_diffs(&mut alice, topic, "viewer").await;
    let (_, reply) = Client::connect(&server, "user=reader").await.join(topic, json!({})).await;
    assert_eq!(reply["messages"].as_array().map(Vec::len), Some(1), "{reply}");
    // The refusals did not use up the socket's message rate (1 here): the same socket can post once it joins.
    let (member_ref, _) = join_member(&mut viewer, topic).await;
    post(&mut viewer, &member_ref, topic, "now I can").await;
}

#[tokio::test]
async fn bad_watch_joins_are_refused_like_any_join() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "user=viewer").await;
    let invalid_payload = json!({"reason": "invalid payload"});
    for watch in [json!("true"), json!(1), json!(null), json!({})] {
        let (_, status, response) = client.try_join("room:w-bad", json!({"watch": watch})).await;
        assert_eq!((status.as_str(), &response), ("error", &invalid_payload), "watch: {watch}");
    }
    let (_, status, response) = client.try_join("room:w-bad", json!({"watch": true, "last_seen_id": -1})).await;
    assert_eq!((status.as_str(), response), ("error", invalid_payload));
    let (_, status, response) = client.try_join("room:Bad", json!({"watch": true})).await;
    assert_eq!((status.as_str(), response), ("error", json!({"reason": "invalid room"})));
    let (_, reply) = client.join("room:w-bad", json!({"watch": false})).await;
    assert_eq!(reply["user"], json!("viewer"), "watch: false is a normal join: {reply}");
    client.assert_push("room:w-bad", "presence_state").await;
    let (_, reply) = watch(&mut client, "room:w-bad2", json!({"watch": true, "other": [1, 2]})).await;
    assert_eq!(reply, json!({"last_id": null, "unread": 0}), "unknown fields are ignored");
}

#[tokio::test]
async fn one_socket_joins_a_room_and_watches_others() {
    let server = TestServer::start().await;
    let (here, there, elsewhere) = ("room:w-here", "room:w-there", "room:w-elsewhere");
    let mut me = Client::connect(&server, "user=me").await;
    let (here_ref, state) = join_member(&mut me, here).await;
    assert!(state.get("me").is_some(), "{state}");
    let (there_ref, _) = watch(&mut me, there, json!({})).await;
    watch(&mut me, elsewhere, json!({})).await;

    let mut bob = Client::connect(&server, "user=bob").await;
    let (bob_here, _) = join_member(&mut bob, here).await;
    let (bob_there, state) = join_member(&mut bob, there).await;
    assert!(state.get("me").is_none(), "the watch is not in {there}'s presence: {state}");
    // The joined room keeps its presence and messages; the watched one brings only its messages.
    diff_with(&mut me, here, "joins", "bob").await;
    post(&mut bob, &bob_there, there, "over there").await;
    assert_eq!(me.assert_broadcast(there, "message:new").await["body"], json!("over there"));
    post(&mut bob, &bob_here, here, "in here").await;
    assert_eq!(me.assert_broadcast(here, "message:new").await["body"], json!("in here"));
    assert_eq!(post(&mut me, &here_ref, here, "mine").await, 2);
    assert_eq!(me.assert_broadcast(here, "message:new").await["id"], json!(2));
    let msg_ref = me.push(Some(&there_ref), there, "message:new", json!({"body": "mine"})).await;
    assert_eq!(me.assert_reply(&msg_ref, "error").await, json!({"reason": "unauthorized"}));
    me.refute_event(there, "presence_diff", QUIET).await;
    me.refute_event(elsewhere, "message:new", Duration::ZERO).await;
}

#[tokio::test]
async fn a_topic_switches_between_watch_and_join() {
    let server = TestServer::start().await;
    let topic = "room:w-switch";
    let mut alice = Client::connect(&server, "user=alice").await;
    let (alice_ref, _) = join_member(&mut alice, topic).await;
    post(&mut alice, &alice_ref, topic, "one").await;
    assert_eq!(alice.assert_broadcast(topic, "message:new").await["id"], json!(1));
    let mut me = Client::connect(&server, "user=me").await;

    // Watch, then leave and join: a member with history and presence.
    let (watch_ref, reply) = watch(&mut me, topic, json!({})).await;
    assert_eq!(reply, json!({"last_id": 1, "unread": 0}));
    me.push(Some(&watch_ref), topic, "phx_leave", json!({})).await;
    me.find_event(topic, "phx_close").await;
    let (member_ref, reply) = me.join(topic, json!({"last_seen_id": 0})).await;
    assert_eq!(reply["messages"].as_array().map(Vec::len), Some(1), "{reply}");
    let state = me.assert_push(topic, "presence_state").await.payload;
    assert!(state.get("me").is_some() && state.get("alice").is_some(), "{state}");
    diff_with(&mut alice, topic, "joins", "me").await;
    post(&mut me, &member_ref, topic, "two").await;
    assert_eq!(alice.assert_broadcast(topic, "message:new").await["id"], json!(2));

    // Leave and watch again: out of presence, messages only.
    me.push(Some(&member_ref), topic, "phx_leave", json!({})).await;
    diff_with(&mut alice, topic, "leaves", "me").await;
    me.find_event(topic, "phx_close").await;
    let (watch_ref, reply) = watch(&mut me, topic, json!({"last_seen_id": 1})).await;
    assert_eq!(reply, json!({"last_id": 2, "unread": 1}));
    refute_key_in_diffs(&mut alice, topic, "me").await;
    post(&mut alice, &alice_ref, topic, "three").await;
    // Skip what the member channel got before (message 2): the watch gets message 3.
    loop {
        let message = me.next_broadcast_or_end(topic, "message:new").await.expect("the watch gets message 3");
        if message["id"] == json!(3) {
            break;
        }
    }
    let msg_ref = me.push(Some(&watch_ref), topic, "typing", json!({"typing": true})).await;
    assert_eq!(me.assert_reply(&msg_ref, "error").await, json!({"reason": "unauthorized"}));

    // A duplicate join switches too: the watch ends (phx_close for its join_ref) and a member takes its place.
    let (member_ref, reply) = me.join(topic, json!({"last_seen_id": 3})).await;
    assert_eq!(reply["recovered"], json!(true), "{reply}");
    me.assert_push(topic, "presence_state").await;
    let closed = me.find_event(topic, "phx_close").await;
    assert_eq!(closed.join_ref, json!(watch_ref), "the old watch's join_ref is closed");
    diff_with(&mut alice, topic, "joins", "me").await;
    assert_eq!(post(&mut me, &member_ref, topic, "four").await, 4);
    // And back, by a duplicate watch join: the member's meta leaves.
    watch(&mut me, topic, json!({})).await;
    diff_with(&mut alice, topic, "leaves", "me").await;
}
