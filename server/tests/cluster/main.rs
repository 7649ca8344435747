//! Cluster mode end to end: real `server` processes sharing one PostgreSQL and one Redis (both throwaway, started by
//! each test), with clients on different nodes of one room. Every node delivers a room's messages in id order exactly
//! once, presence spans the nodes, and the cluster rides out a node's `kill -9`, a graceful stop, a Redis crash and
//! restart, and a PostgreSQL outage.
//!
//! Every wait has a deadline generous enough for debug builds on a busy two-core machine; the times that matter
//! (presence leave after a kill, recovery) are printed: run with `--nocapture` to see them. `CLUSTER_LOG=1` echoes the
//! nodes' logs; a failing test prints the tail of every node's log.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

#[path = "../integration/support/mod.rs"]
mod support;

#[path = "../store/postgres.rs"]
mod postgres;

mod api;
mod conn;
mod dashboard;
mod fixture;
mod longpoll;
mod node;
mod redis;

use std::{
    collections::{BTreeMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tokio::task::{JoinHandle, block_in_place};

use crate::{
    conn::{Conn, REPLY_WAIT, Sent, describe_ids, eventually, ids},
    fixture::Cluster,
    node::{healthz, http_get, probe},
};

/// How long a presence change may take to reach another node while everything is up.
const PRESENCE_WAIT: Duration = Duration::from_secs(15);
/// How long every member may take to receive every message once the traffic stopped.
const DELIVERY_WAIT: Duration = Duration::from_secs(60);
/// How long Redis stays down in the Redis test: longer than the nodes' periodic head check.
const REDIS_OUTAGE: Duration = Duration::from_secs(6);
/// The most messages a fresh joiner gets with `last_seen_id: 0` (docs/protocol.md §7.1); larger rooms are paged.
const RECOVERY_WINDOW: usize = 1000;

fn secs(duration: Duration) -> String {
    format!("{:.2} s", duration.as_secs_f64())
}

/// One acknowledged message.
#[derive(Debug, Clone)]
struct Ack {
    id: u64,
    body: String,
    /// The node that acknowledged it.
    node: usize,
    at: Instant,
}

/// What the publishers of a test did: every ack, or why one of them gave up.
#[derive(Debug, Default)]
struct Traffic {
    acks: Vec<Ack>,
    failure: Option<String>,
}

type SharedTraffic = Arc<Mutex<Traffic>>;

/// Counts the acks that match `filter`; panics with a publisher's failure, if one failed.
fn count_acks(traffic: &SharedTraffic, filter: impl Fn(&Ack) -> bool) -> usize {
    let traffic = traffic.lock().unwrap();
    if let Some(failure) = &traffic.failure {
        panic!("a publisher failed: {failure}");
    }
    traffic.acks.iter().filter(|ack| filter(ack)).count()
}

/// How a publisher sends: at most `limit` messages, `pace` apart.
#[derive(Debug, Clone, Copy)]
struct Plan {
    limit: u64,
    pace: Duration,
}

/// Sends numbered messages (`{prefix}-{n}` with client id `{prefix}-c{n}`) one at a time as `plan` says, until `stop`;
/// records every ack. When the connection ends, it joins the next node of `urls` and resends the unanswered message
/// with its client id, as a client does after a failover. A refusal or a missing ack is a failure. Returns how many
/// messages it sent.
async fn publish(
    urls: Vec<(usize, String)>,
    topic: &'static str,
    prefix: String,
    plan: Plan,
    stop: Arc<AtomicBool>,
    traffic: SharedTraffic,
) -> u64 {
    let fail = |why: String| {
        traffic.lock().unwrap().failure.get_or_insert(why);
    };
    let mut urls = urls.into_iter();
    let (mut node, url) = urls.next().unwrap();
    let mut conn = Conn::join(&url, topic, json!({})).await;
    let mut n = 0;
    while n < plan.limit && !stop.load(Ordering::Relaxed) {
        let body = format!("{prefix}-{n}");
        let client_id = format!("{prefix}-c{n}");
        loop {
            let asked = Instant::now();
            match conn.send(&body, &client_id, REPLY_WAIT).await {
                Sent::Acked(id) => {
                    let ack = Ack { id, body: body.clone(), node, at: Instant::now() };
                    traffic.lock().unwrap().acks.push(ack);
                    break;
                }
                Sent::Closed => match urls.next() {
                    Some((next, url)) => {
                        node = next;
                        conn = Conn::join(&url, topic, json!({})).await;
                    }
                    None => {
                        fail(format!("{prefix}: its connection to node{} ended at message {n}", node + 1));
                        return n;
                    }
                },
                other => {
                    fail(format!("{prefix}: message {n} on node{}: {other:?} after {:?}", node + 1, asked.elapsed()));
                    return n;
                }
            }
        }
        n += 1;
        tokio::time::sleep(plan.pace).await;
    }
    n
}

/// Starts one publisher per entry of `urls` (each a list of nodes to fail over to).
fn start_publishers(
    urls: Vec<Vec<(usize, String)>>,
    topic: &'static str,
    plan: Plan,
    stop: &Arc<AtomicBool>,
    traffic: &SharedTraffic,
) -> Vec<JoinHandle<u64>> {
    urls.into_iter()
        .enumerate()
        .map(|(index, urls)| {
            tokio::spawn(publish(urls, topic, format!("p{}", index + 1), plan, stop.clone(), traffic.clone()))
        })
        .collect()
}

/// Stops the publishers and waits for them; checks that the acked ids are exactly `1..=N` (each once: a message
/// stored but never acknowledged would be a gap) and returns them with their bodies.
async fn finish_publishers(
    publishers: Vec<JoinHandle<u64>>,
    stop: &AtomicBool,
    traffic: &SharedTraffic,
) -> BTreeMap<u64, String> {
    stop.store(true, Ordering::Relaxed);
    for publisher in publishers {
        join(publisher).await;
    }
    count_acks(traffic, |_| true);
    acked_map(traffic.lock().unwrap().acks.iter().map(|ack| (ack.id, ack.body.clone())))
}

/// The acks as id → body; panics if an id was acknowledged twice or the ids are not `1..=N`.
fn acked_map(acks: impl IntoIterator<Item = (u64, String)>) -> BTreeMap<u64, String> {
    let mut acked = BTreeMap::new();
    for (id, body) in acks {
        if let Some(earlier) = acked.insert(id, body.clone()) {
            panic!("id {id} acknowledged for two messages: {earlier:?} and {body:?}");
        }
    }
    let got: Vec<u64> = acked.keys().copied().collect();
    let expected: Vec<u64> = (1..=got.len() as u64).collect();
    assert_eq!(got, expected, "acked ids are not 1..=N: {}", describe_ids(&got));
    acked
}

/// Awaits a task, re-raising its panic as is.
async fn join<T>(task: JoinHandle<T>) -> T {
    match task.await {
        Ok(value) => value,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

/// Checks that the messages a member received carry the acknowledged bodies.
fn assert_bodies(conn: &Conn, messages: &[Value], acked: &BTreeMap<u64, String>) {
    for message in messages {
        let id = message["id"].as_u64().unwrap();
        assert_eq!(message["body"].as_str(), acked.get(&id).map(String::as_str), "{}: message {id}", conn.user);
    }
}

/// Reads the whole room as a fresh joiner on node `index` gets it (`last_seen_id: 0`, then `history:before` pages if
/// the room outgrew the recovery window) and checks it against the acks: ids `1..=N`, each with the acknowledged body,
/// no message stored twice.
async fn assert_history(cluster: &Cluster, index: usize, topic: &str, acked: &BTreeMap<u64, String>) {
    let mut reader = Conn::join(&cluster.url(index, "reader"), topic, json!({"last_seen_id": 0})).await;
    let whole = acked.len() <= RECOVERY_WINDOW;
    assert_eq!(reader.joined["recovered"], json!(whole), "a room of {} messages, from last_seen_id 0", acked.len());
    let mut messages = reader.joined["messages"].as_array().unwrap().clone();
    while let Some(oldest) = messages.first().and_then(|m| m["id"].as_u64()).filter(|id| *id > 1) {
        let msg_ref = reader.push("history:before", json!({"before_id": oldest, "limit": 100})).await;
        let reply = reader.reply(&msg_ref, REPLY_WAIT).await;
        assert_eq!(reply["status"], json!("ok"), "history:before {oldest}: {reply}");
        let page = reply["response"]["messages"].as_array().unwrap().clone();
        if page.is_empty() {
            break;
        }
        messages = [page, messages].concat();
    }
    let stored = ids(&messages);
    let expected: Vec<u64> = acked.keys().copied().collect();
    assert!(
        stored == expected,
        "node{} history {} differs from the acked {}",
        index + 1,
        describe_ids(&stored),
        describe_ids(&expected)
    );
    assert_bodies(&reader, &messages, acked);
    let bodies: HashSet<&str> = messages.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies.len(), messages.len(), "a message is stored twice");
    reader.close().await;
}

/// The `presence_state` a connection got after its join.
async fn presence_state(conn: &Conn) -> Value {
    eventually(Duration::from_secs(10), || {
        conn.seen(|seen| seen.presence_state.clone()).ok_or_else(|| format!("{} got no presence_state", conn.user))
    })
    .await
}

/// Joins fresh probes at `url` until one's `presence_state` satisfies `wanted`; returns that state.
async fn probe_presence_state(url: &str, topic: &str, within: Duration, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let probe = Conn::join(url, topic, json!({})).await;
        let state = presence_state(&probe).await;
        probe.close().await;
        if wanted(&state) {
            return state;
        }
        assert!(Instant::now() < deadline, "no presence_state at {url} was right within {within:?}; the last: {state}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The first `presence_diff` that `conn` got with `key` among its `joins` or `leaves` (`side`) and the meta there.
fn diff_with(conn: &Conn, side: &str, key: &str) -> Option<(Instant, Value)> {
    conn.seen(|seen| seen.diffs.iter().find(|(_, diff)| diff[side].get(key).is_some()).cloned())
}

/// Waits until every `phx_ref` in `refs` has left `conn`'s presence view; returns when the last one left.
async fn refs_left(conn: &Conn, refs: &[String], within: Duration) -> Instant {
    eventually(within, || {
        let view = conn.presence();
        let left: Vec<Option<Instant>> = refs.iter().map(|r| view.left_at(r)).collect();
        match left.iter().copied().collect::<Option<Vec<Instant>>>() {
            Some(times) => Ok(times.into_iter().max().unwrap()),
            None => Err(format!("{} still sees {:?} (view: {:?})", conn.user, refs, view.keys())),
        }
    })
    .await
}

/// `GET /readyz` until it answers `status`; returns the body and when it first did.
async fn wait_for_readiness(addr: &str, status: u16, within: Duration) -> (Value, Instant) {
    let deadline = Instant::now() + within;
    loop {
        let answer = probe(addr, "/readyz").await;
        if let Ok((got, body)) = &answer
            && *got == status
        {
            return (body.clone(), Instant::now());
        }
        assert!(Instant::now() < deadline, "/readyz at {addr} did not answer {status} within {within:?}: {answer:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn three_publishers_three_nodes_in_order() {
    let cluster = Cluster::start(3);
    let topic = "room:in-order";
    // Each node reports itself healthy under the id it logged, and no two share one.
    let mut node_ids = HashSet::new();
    for index in 0..3 {
        let node = cluster.node(index);
        let (status, body) = healthz(&node.addr).await.unwrap();
        assert_eq!(status, 200, "{}: {body}", node.name);
        assert_eq!(body, json!({"status": "ok", "node": node.id}), "{}", node.name);
        node_ids.insert(node.id.clone());
    }
    assert_eq!(node_ids.len(), 3, "every process gets its own node id: {node_ids:?}");

    let mut members = Vec::new();
    for index in 0..3 {
        members.push(Conn::join(&cluster.url(index, &format!("member{}", index + 1)), topic, json!({})).await);
    }
    const PER_PUBLISHER: usize = 60;
    let started = Instant::now();
    let publishers: Vec<JoinHandle<Vec<(u64, String)>>> = (0..3)
        .map(|index| {
            let url = cluster.url(index, &format!("pub{}", index + 1));
            tokio::spawn(async move {
                let mut conn = Conn::join(&url, topic, json!({})).await;
                // All pushed at once, then every reply collected.
                let mut pending = Vec::new();
                for n in 0..PER_PUBLISHER {
                    let body = format!("p{}-{n}", index + 1);
                    let client_id = format!("a-{}-{n}", index + 1);
                    pending.push((conn.push("message:new", json!({"body": body, "client_id": client_id})).await, body));
                }
                let mut acked = Vec::new();
                for (msg_ref, body) in pending {
                    match conn.outcome(&msg_ref, Duration::from_secs(30)).await {
                        Sent::Acked(id) => acked.push((id, body)),
                        other => panic!("pub{} {body}: {other:?}", index + 1),
                    }
                }
                acked
            })
        })
        .collect();
    let mut all = Vec::new();
    for publisher in publishers {
        all.extend(join(publisher).await);
    }
    let acked_in = started.elapsed();
    let acked = acked_map(all);
    let total = acked.len() as u64;
    assert_eq!(total, 3 * PER_PUBLISHER as u64);

    for member in &members {
        member.wait_for_ids(1, total, DELIVERY_WAIT).await;
        assert_bodies(member, &member.messages(), &acked);
    }
    eprintln!(
        "{total} messages from 3 nodes acked in {}, delivered to every node in id order in {}",
        secs(acked_in),
        secs(started.elapsed())
    );
    for index in 0..3 {
        assert_history(&cluster, index, topic, &acked).await;
    }
    for member in &members {
        assert_eq!(member.ids().len() as u64, total, "{} got a message twice", member.user);
    }
    // Each node's /metrics carries its own node label and counts its share: what it stored, and published on the bus.
    for index in 0..3 {
        let node = cluster.node(index);
        let (status, metrics) = block_in_place(|| http_get(&node.addr, "/metrics")).unwrap();
        let label = format!("{{node=\"{}\"}}", node.id);
        let stored = metrics.contains(&format!("parley_messages_stored_total{label} {PER_PUBLISHER}\n"));
        let publishes = format!("parley_bus_publish_seconds_count{label} ");
        let published = metrics.lines().any(|line| line.strip_prefix(&publishes).is_some_and(|count| count != "0"));
        assert!(status == 200 && stored && published, "{}: {metrics}", node.name);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_client_id_to_two_nodes_at_once_stores_one_row() {
    let cluster = Cluster::start(3);
    let topic = "room:one-client-id";
    let observer = Conn::join(&cluster.url(2, "observer"), topic, json!({})).await;
    // One person's two tabs, on two nodes, both sending the same message (a retry after a failover looks the same).
    let mut first = Conn::join(&cluster.url(0, "ann"), topic, json!({})).await;
    let mut second = Conn::join(&cluster.url(1, "ann"), topic, json!({})).await;
    const ROUNDS: u64 = 10;
    for round in 1..=ROUNDS {
        let client_id = format!("same-{round}");
        let (body_first, body_second) = (format!("round {round} via node1"), format!("round {round} via node2"));
        let (via_first, via_second) = tokio::join!(
            first.send(&body_first, &client_id, REPLY_WAIT),
            second.send(&body_second, &client_id, REPLY_WAIT),
        );
        assert_eq!(
            (&via_first, &via_second),
            (&Sent::Acked(round), &Sent::Acked(round)),
            "round {round}: both ok with the id of the one stored row"
        );
    }
    for conn in [&observer, &first, &second] {
        conn.wait_for_ids(1, ROUNDS, DELIVERY_WAIT).await;
    }
    let reader = Conn::join(&cluster.url(2, "reader"), topic, json!({"last_seen_id": 0})).await;
    let stored = reader.joined["messages"].as_array().unwrap().clone();
    assert_eq!(ids(&stored), (1..=ROUNDS).collect::<Vec<_>>(), "one row per client_id");
    for message in &stored {
        let round = message["id"].as_u64().unwrap();
        let body = message["body"].as_str().unwrap();
        assert!(
            [format!("round {round} via node1"), format!("round {round} via node2")].iter().any(|b| b == body),
            "message {round} holds {body:?}"
        );
    }
    for conn in [&observer, &first, &second] {
        assert_eq!(conn.ids().len() as u64, ROUNDS, "{}: a duplicate was broadcast", conn.user);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn presence_across_nodes() {
    let cluster = Cluster::start(3);
    let topic = "room:presence";
    let olga = Conn::join(&cluster.url(1, "olga"), topic, json!({})).await;
    let carl = Conn::join(&cluster.url(2, "carl"), topic, json!({})).await;
    let alice = Conn::join(&cluster.url(0, "alice"), topic, json!({})).await;
    // alice's join reaches the other nodes as a diff; node2 (bob's) also learns of carl before bob joins.
    for watcher in [&olga, &carl] {
        eventually(PRESENCE_WAIT, || {
            diff_with(watcher, "joins", "alice").ok_or_else(|| format!("{} got no diff joining alice", watcher.user))
        })
        .await;
    }
    eventually(PRESENCE_WAIT, || {
        let view = olga.presence();
        if view.has("carl") { Ok(()) } else { Err(format!("olga sees {:?}", view.keys())) }
    })
    .await;

    // bob's presence_state lists the members of every node, each once.
    let mut bob = Conn::join(&cluster.url(1, "bob"), topic, json!({})).await;
    let state = presence_state(&bob).await;
    let mut keys: Vec<&String> = state.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["alice", "bob", "carl", "olga"], "bob's presence_state: {state}");
    for key in &keys {
        assert_eq!(state[key.as_str()]["metas"].as_array().map(Vec::len), Some(1), "{key}: {state}");
    }
    let meta = &state["alice"]["metas"][0];
    assert_eq!(meta["typing"], json!(false), "{meta}");
    assert!(meta["online_at"].as_u64().is_some_and(|t| t > 1_700_000_000_000), "{meta}");
    assert!(meta["phx_ref"].as_str().is_some_and(|r| !r.is_empty()), "{meta}");

    // bob's join reaches node1 and node3 as a diff, with one meta.
    let mut bob_refs = Vec::new();
    for watcher in [&alice, &carl] {
        let meta = eventually(PRESENCE_WAIT, || {
            let view = watcher.presence();
            match (diff_with(watcher, "joins", "bob"), view.metas("bob")) {
                (Some(_), [meta]) => Ok(meta.clone()),
                (_, metas) => Err(format!("{} sees bob as {metas:?}", watcher.user)),
            }
        })
        .await;
        assert_eq!(meta["typing"], json!(false));
        bob_refs.push(meta["phx_ref"].as_str().unwrap().to_owned());
    }

    // bob starts typing: the others get it as a diff replacing his meta (leave of the old, join of the new).
    let typing_ref = bob.push("typing", json!({"typing": true})).await;
    assert_eq!(bob.reply(&typing_ref, REPLY_WAIT).await["status"], json!("ok"));
    for (watcher, old_ref) in [&alice, &carl].into_iter().zip(&bob_refs) {
        eventually(PRESENCE_WAIT, || {
            let metas = watcher.presence().metas("bob").to_vec();
            match metas.as_slice() {
                [meta] if meta["typing"] == json!(true) => Ok(()),
                _ => Err(format!("{} sees bob as {metas:?}", watcher.user)),
            }
        })
        .await;
        let diffs = watcher.seen(|seen| seen.diffs.clone());
        let (_, diff) = diffs
            .iter()
            .find(|(_, d)| d["joins"]["bob"]["metas"].as_array().is_some_and(|m| m.iter().any(|m| m["typing"] == true)))
            .unwrap();
        let new_meta = diff["joins"]["bob"]["metas"].as_array().unwrap().iter().find(|m| m["typing"] == true).unwrap();
        assert_eq!(new_meta["phx_ref_prev"], json!(old_ref), "{}: the typing diff {diff}", watcher.user);
        let left: Vec<&Value> = diff["leaves"]["bob"]["metas"].as_array().into_iter().flatten().collect();
        assert!(left.iter().any(|m| m["phx_ref"] == json!(old_ref)), "{}: the typing diff {diff}", watcher.user);
    }

    // bob leaves: every node gets the leave.
    bob.leave().await;
    for watcher in [&alice, &carl, &olga] {
        eventually(PRESENCE_WAIT, || {
            let view = watcher.presence();
            match (diff_with(watcher, "leaves", "bob"), view.has("bob")) {
                (Some(_), false) => Ok(()),
                _ => Err(format!("{} sees {:?}", watcher.user, view.keys())),
            }
        })
        .await;
    }
    eventually(PRESENCE_WAIT, || {
        let view = alice.presence();
        let keys = view.keys();
        if keys == ["alice", "carl", "olga"] { Ok(()) } else { Err(format!("alice sees {keys:?}")) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watcher_gets_another_nodes_messages_in_order_and_is_in_no_presence() {
    let cluster = Cluster::start(2);
    let topic = "room:watched";
    let mut alice = Conn::join(&cluster.url(0, "alice"), topic, json!({})).await;
    for n in 1..=2 {
        assert_eq!(alice.send(&format!("early {n}"), &format!("a{n}"), REPLY_WAIT).await, Sent::Acked(n));
    }
    // The watcher is on node1; the messages are stored by node2.
    let mut viewer = Conn::join(&cluster.url(0, "viewer"), topic, json!({"watch": true, "last_seen_id": 1})).await;
    viewer.user = "viewer".to_owned();
    assert_eq!(viewer.joined, json!({"last_id": 2, "unread": 1}));
    let mut bob = Conn::join(&cluster.url(1, "bob"), topic, json!({})).await;
    const LAST: u64 = 40;
    for n in 3..=LAST {
        assert_eq!(bob.send(&format!("m{n}"), &format!("b{n}"), REPLY_WAIT).await, Sent::Acked(n));
    }
    viewer.wait_for_ids(3, LAST, DELIVERY_WAIT).await;
    alice.wait_for_ids(1, LAST, DELIVERY_WAIT).await;
    let messages = viewer.messages();
    assert!(messages.iter().all(|m| m["user"] == json!("bob")), "only bob's, none before last_id");

    // Not in the registry: bob's presence_state (read from it, on the other node) and alice's view lack the watcher.
    let state = presence_state(&bob).await;
    let mut keys: Vec<&String> = state.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["alice", "bob"], "bob's presence_state: {state}");
    eventually(PRESENCE_WAIT, || {
        let view = alice.presence();
        if view.keys() == ["alice", "bob"] { Ok(()) } else { Err(format!("alice sees {:?}", view.keys())) }
    })
    .await;
    let typing_ref = bob.push("typing", json!({"typing": true})).await;
    assert_eq!(bob.reply(&typing_ref, REPLY_WAIT).await["status"], json!("ok"));
    eventually(PRESENCE_WAIT, || {
        let typing = alice.presence().metas("bob").iter().any(|meta| meta["typing"] == json!(true));
        if typing { Ok(()) } else { Err("alice does not see bob typing".to_owned()) }
    })
    .await;
    assert_eq!(alice.send("after the typing", "a3", REPLY_WAIT).await, Sent::Acked(LAST + 1));
    viewer.wait_for_ids(3, LAST + 1, DELIVERY_WAIT).await;
    let (state, diffs) = viewer.seen(|seen| (seen.presence_state.clone(), seen.diffs.len()));
    assert_eq!((state, diffs), (None, 0), "the watcher got presence");

    // Read-only, and leaving leaves nothing behind.
    assert_eq!(viewer.send("let me in", "v1", REPLY_WAIT).await, Sent::Refused(json!({"reason": "unauthorized"})));
    viewer.leave().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for member in [&alice, &bob] {
        let mentions = member.seen(|seen| {
            seen.diffs
                .iter()
                .filter(|(_, diff)| diff["joins"].get("viewer").is_some() || diff["leaves"].get("viewer").is_some())
                .count()
        });
        assert_eq!(mentions, 0, "{} got a presence_diff with the watcher", member.user);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_node_while_chatting() {
    let mut cluster = Cluster::start(3);
    let topic = "room:kill-9";
    let watchers = [
        Conn::join(&cluster.url(0, "watch1"), topic, json!({})).await,
        Conn::join(&cluster.url(1, "watch2"), topic, json!({})).await,
    ];
    let carol = Conn::join(&cluster.url(2, "carol"), topic, json!({})).await;
    let carol_again_url = cluster.url(0, "carol");
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = SharedTraffic::default();
    let publishers = start_publishers(
        vec![
            vec![(0, cluster.url(0, "pub1"))],
            vec![(1, cluster.url(1, "pub2"))],
            // pub3 fails over to node1 when node3 dies and resends what was unanswered.
            vec![(2, cluster.url(2, "pub3")), (0, cluster.url(0, "pub3"))],
        ],
        topic,
        Plan { limit: 100, pace: Duration::from_millis(25) },
        &stop,
        &traffic,
    );

    // Mid-traffic, once node3 has acknowledged some messages and the others see its members: kill -9 node3.
    let mut node3_refs = Vec::new();
    for watcher in &watchers {
        let refs = eventually(PRESENCE_WAIT, || {
            let view = watcher.presence();
            match (view.metas("carol"), view.metas("pub3")) {
                ([carol], [pub3]) => Ok(vec![
                    carol["phx_ref"].as_str().unwrap().to_owned(),
                    pub3["phx_ref"].as_str().unwrap().to_owned(),
                ]),
                _ => Err(format!("{} sees {:?}", watcher.user, view.keys())),
            }
        })
        .await;
        node3_refs.push(refs);
    }
    eventually(Duration::from_secs(30), || {
        let by_node3 = count_acks(&traffic, |ack| ack.node == 2);
        let all = count_acks(&traffic, |_| true);
        if by_node3 >= 10 && all >= 40 { Ok(()) } else { Err(format!("{all} acks, {by_node3} by node3")) }
    })
    .await;
    let killed_at = Instant::now();
    block_in_place(|| cluster.kill_9(2));
    let acked_by_node3 = count_acks(&traffic, |ack| ack.node == 2);

    // carol notices, and rejoins on node1 with her last_seen_id: she gets exactly what she missed.
    eventually(Duration::from_secs(10), || carol.closed().ok_or_else(|| "carol's socket is still open".to_owned()))
        .await;
    let seen_before = carol.ids();
    let last_seen = seen_before.len() as u64;
    assert_eq!(
        seen_before,
        (1..=last_seen).collect::<Vec<_>>(),
        "carol before the kill: {}",
        describe_ids(&seen_before)
    );
    let carol = Conn::join(&carol_again_url, topic, json!({"last_seen_id": last_seen})).await;
    assert_eq!(carol.joined["recovered"], json!(true), "{}", carol.joined);
    let gap = ids(carol.joined["messages"].as_array().unwrap());
    let gap_end = last_seen + gap.len() as u64;
    assert_eq!(gap, ((last_seen + 1)..=gap_end).collect::<Vec<_>>(), "the join reply holds exactly what carol missed");
    eprintln!(
        "carol recovered on node1 {} after kill -9 (last_seen_id {last_seen}, {} missed messages in the reply)",
        secs(carol.joined_at - killed_at),
        gap.len()
    );

    // node3's members leave on node1 and node2 (heartbeat timeout), while their new connections stay.
    let mut left = Vec::new();
    for (watcher, refs) in watchers.iter().zip(&node3_refs) {
        left.push(refs_left(watcher, refs, Duration::from_secs(30)).await);
    }
    let leave_time = left.into_iter().max().unwrap() - killed_at;
    eprintln!("presence leave after kill -9: {}", secs(leave_time));
    assert!(leave_time <= Duration::from_secs(30), "node3's presences lingered {}", secs(leave_time));

    // Some more traffic on the surviving nodes (pub3 included, failed over), then stop.
    eventually(Duration::from_secs(30), || {
        let after = count_acks(&traffic, |ack| ack.at > killed_at);
        let pub3_moved = count_acks(&traffic, |ack| ack.at > killed_at && ack.body.starts_with("p3-"));
        if after >= 40 && pub3_moved >= 5 {
            Ok(())
        } else {
            Err(format!("{after} acks after the kill, {pub3_moved} of pub3"))
        }
    })
    .await;
    let acked = finish_publishers(publishers, &stop, &traffic).await;
    let total = acked.len() as u64;

    for watcher in &watchers {
        watcher.wait_for_ids(1, total, DELIVERY_WAIT).await;
        assert_bodies(watcher, &watcher.messages(), &acked);
    }
    carol.wait_for_ids(gap_end + 1, total, DELIVERY_WAIT).await;
    eprintln!("{total} messages ({acked_by_node3} acked by node3 before it died), all delivered once, in order");
    for index in [0, 1] {
        assert_history(&cluster, index, topic, &acked).await;
    }
    for watcher in &watchers {
        let view = watcher.presence();
        assert_eq!(view.metas("carol").len(), 1, "{}: carol is back once: {:?}", watcher.user, view.metas("carol"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_kill_9_and_restart_mid_traffic() {
    let mut cluster = Cluster::start(3);
    let topic = "room:redis-outage";
    let names = ["member1", "member2", "member3"];
    let mut members = Vec::new();
    for (index, name) in names.iter().enumerate() {
        members.push(Conn::join(&cluster.url(index, name), topic, json!({})).await);
    }
    for member in &members {
        eventually(PRESENCE_WAIT, || {
            let view = member.presence();
            if names.iter().all(|n| view.has(n)) {
                Ok(())
            } else {
                Err(format!("{} sees {:?}", member.user, view.keys()))
            }
        })
        .await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = SharedTraffic::default();
    let urls = (0..3).map(|index| vec![(index, cluster.url(index, &format!("pub{}", index + 1)))]).collect();
    let publishers =
        start_publishers(urls, topic, Plan { limit: 250, pace: Duration::from_millis(50) }, &stop, &traffic);

    eventually(Duration::from_secs(30), || {
        let acks = count_acks(&traffic, |_| true);
        if acks >= 30 { Ok(()) } else { Err(format!("{acks} acks")) }
    })
    .await;
    let killed_at = Instant::now();
    block_in_place(|| cluster.redis.kill_9());
    // Not ready (new clients would miss the other nodes' messages for seconds), but alive.
    let (body, _) = wait_for_readiness(&cluster.node(0).addr, 503, Duration::from_secs(10)).await;
    assert_eq!(body["reason"], json!("redis unavailable"), "{body}");
    assert_eq!(healthz(&cluster.node(0).addr).await.unwrap().0, 200);

    // Every node keeps acknowledging: messages are committed to PostgreSQL, Redis only carried the news.
    eventually(Duration::from_secs(30), || {
        let per_node: Vec<usize> = (0..3).map(|n| count_acks(&traffic, |a| a.node == n && a.at > killed_at)).collect();
        if per_node.iter().all(|&n| n >= 10) {
            Ok(())
        } else {
            Err(format!("acks per node since the kill: {per_node:?}"))
        }
    })
    .await;
    // With Redis down for longer than a head-check period, members hear of the other nodes' messages from PostgreSQL.
    tokio::time::sleep_until((killed_at + REDIS_OUTAGE).into()).await;
    let head = traffic.lock().unwrap().acks.iter().map(|ack| ack.id).max().unwrap();
    for member in &members {
        member.wait_caught_up(1, head, Duration::from_secs(30)).await;
    }
    eprintln!("every member had every message up to {head} {} after Redis died", secs(killed_at.elapsed()));
    let acked_while_down = count_acks(&traffic, |ack| ack.at > killed_at);
    let restarted_at = Instant::now();
    block_in_place(|| cluster.redis.restart());
    eprintln!("{acked_while_down} messages acked while Redis was down ({})", secs(restarted_at - killed_at));
    for index in 0..3 {
        wait_for_readiness(&cluster.node(index).addr, 200, Duration::from_secs(30)).await;
    }

    // Presence comes back by itself: a join on node2 reaches node1, a joiner on node2 sees the other nodes' members,
    // and every member sees every other one again, once.
    let late = Conn::join(&cluster.url(1, "late"), topic, json!({})).await;
    let (arrived, _) = eventually(Duration::from_secs(30), || {
        diff_with(&members[0], "joins", "late").ok_or_else(|| "member1 got no diff joining late".to_owned())
    })
    .await;
    eprintln!("a join on node2 reached node1 {} after the Redis restart", secs(arrived - restarted_at));
    probe_presence_state(&cluster.url(1, "probe"), topic, Duration::from_secs(30), |state| {
        state.get("member1").is_some() && state.get("member3").is_some()
    })
    .await;
    eprintln!(
        "a joiner on node2 sees node1's and node3's members {} after the Redis restart",
        secs(restarted_at.elapsed())
    );
    for member in &members {
        eventually(Duration::from_secs(30), || {
            let view = member.presence();
            let all_once = names.iter().chain(&["late"]).all(|n| view.metas(n).len() == 1);
            if all_once { Ok(()) } else { Err(format!("{} sees {:?}", member.user, view)) }
        })
        .await;
    }
    eprintln!("presence whole again on every node {} after the Redis restart", secs(restarted_at.elapsed()));

    eventually(Duration::from_secs(30), || {
        let acks = count_acks(&traffic, |ack| ack.at > restarted_at);
        if acks >= 30 { Ok(()) } else { Err(format!("{acks} acks since the restart")) }
    })
    .await;
    let stopped_at = Instant::now();
    let acked = finish_publishers(publishers, &stop, &traffic).await;
    let total = acked.len() as u64;
    for member in &members {
        member.wait_for_ids(1, total, DELIVERY_WAIT).await;
        assert_bodies(member, &member.messages(), &acked);
    }
    // late joined mid-traffic: its reply's history, then every later message once.
    let reply_ids = ids(late.joined["messages"].as_array().unwrap());
    let reply_end = reply_ids.last().copied().unwrap_or(0);
    late.wait_for_ids(reply_end + 1, total, DELIVERY_WAIT).await;
    eprintln!(
        "{total} messages ({acked_while_down} while Redis was down): every member had all, in order, {} after the \
         traffic stopped",
        secs(stopped_at.elapsed())
    );
    assert_history(&cluster, 2, topic, &acked).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn graceful_stop_removes_presences_at_once() {
    let mut cluster = Cluster::start(2);
    let topic = "room:graceful";
    let wanda = Conn::join(&cluster.url(0, "wanda"), topic, json!({})).await;
    let gina = Conn::join(&cluster.url(1, "gina"), topic, json!({})).await;
    let _gus = Conn::join(&cluster.url(1, "gus"), topic, json!({})).await;
    let refs = eventually(PRESENCE_WAIT, || {
        let view = wanda.presence();
        match (view.metas("gina"), view.metas("gus")) {
            ([gina], [gus]) => {
                Ok(vec![gina["phx_ref"].as_str().unwrap().to_owned(), gus["phx_ref"].as_str().unwrap().to_owned()])
            }
            _ => Err(format!("wanda sees {:?}", view.keys())),
        }
    })
    .await;

    let stopped_at = Instant::now();
    cluster.sigterm(1);
    // Well under the heartbeat timeout (15 s): the stopping node says goodbye for its members.
    let left = refs_left(&wanda, &refs, Duration::from_secs(10)).await - stopped_at;
    eprintln!("presence leave after SIGTERM: {}", secs(left));
    assert!(left <= Duration::from_secs(5), "the leave took {}", secs(left));
    let (_, code) =
        eventually(Duration::from_secs(10), || gina.closed().ok_or_else(|| "gina's socket is still open".to_owned()))
            .await;
    assert_eq!(code, Some(1012), "a stopping node closes its sockets with 1012");
    let status = block_in_place(|| cluster.wait_exit(1, Duration::from_secs(30)));
    assert!(status.success(), "node2 exited with {status}");

    // A node started afterwards sees wanda and none of the stopped node's members.
    let index = block_in_place(|| cluster.add_node());
    let state =
        probe_presence_state(&cluster.url(index, "nina"), topic, PRESENCE_WAIT, |state| state.get("wanda").is_some())
            .await;
    assert!(state.get("gina").is_none() && state.get("gus").is_none(), "ghosts of node2: {state}");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_down_unavailable_then_recovers() {
    let mut cluster = Cluster::start(2);
    let topic = "room:pg-outage";
    let mut alice = Conn::join(&cluster.url(0, "alice"), topic, json!({})).await;
    let bob = Conn::join(&cluster.url(1, "bob"), topic, json!({})).await;
    assert_eq!(alice.send("before", "g-before", REPLY_WAIT).await, Sent::Acked(1));
    bob.wait_for_ids(1, 1, DELIVERY_WAIT).await;

    let down_at = Instant::now();
    block_in_place(|| cluster.postgres.stop());
    let sent = alice.send("during", "g-during", Duration::from_secs(30)).await;
    let refused_after = down_at.elapsed();
    assert_eq!(sent, Sent::Refused(json!({"reason": "unavailable"})), "message:new while PostgreSQL is down");
    eprintln!("message:new refused as unavailable {} after PostgreSQL went down", secs(refused_after));
    assert!(refused_after <= Duration::from_secs(15), "the refusal took {}", secs(refused_after));
    let (body, unready_at) = wait_for_readiness(&cluster.node(0).addr, 503, Duration::from_secs(15)).await;
    assert_eq!(body["status"], json!("unavailable"), "{body}");
    assert_eq!(body["reason"], json!("store unavailable"), "{body}");
    eprintln!("/readyz 503 {} after PostgreSQL went down", secs(unready_at - down_at));
    let (status, live) = healthz(&cluster.node(0).addr).await.unwrap();
    assert_eq!(status, 200, "liveness does not depend on the database: {live}");

    let restarted_at = Instant::now();
    block_in_place(|| cluster.postgres.restart());
    for index in 0..2 {
        let (body, ready_at) = wait_for_readiness(&cluster.node(index).addr, 200, Duration::from_secs(30)).await;
        assert_eq!(body, json!({"status": "ok", "node": cluster.node(index).id}));
        eprintln!("node{} /readyz 200 again {} after PostgreSQL restarted", index + 1, secs(ready_at - restarted_at));
    }
    // The same socket works again: the refused message, retried with its client id, is stored once, as id 2.
    let deadline = Instant::now() + Duration::from_secs(30);
    let id = loop {
        match alice.send("during", "g-during", REPLY_WAIT).await {
            Sent::Acked(id) => break id,
            Sent::Refused(reason) if reason == json!({"reason": "unavailable"}) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            other => panic!("message:new after PostgreSQL restarted: {other:?}"),
        }
    };
    eprintln!("message:new acked again {} after PostgreSQL restarted", secs(restarted_at.elapsed()));
    assert_eq!(id, 2);
    for conn in [&alice, &bob] {
        conn.wait_for_ids(1, 2, DELIVERY_WAIT).await;
    }
    let acked = BTreeMap::from([(1, "before".to_owned()), (2, "during".to_owned())]);
    assert_history(&cluster, 1, topic, &acked).await;
}
