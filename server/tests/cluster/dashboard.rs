//! The operators' dashboard in a cluster (docs/protocol.md §7.6): whichever node a dashboard joins, its join reply
//! already holds every node's recent samples, not only the joined node's.

use std::time::Duration;

use protocol::admin::{STATS_TOPIC, StatsJoinReply};
use serde_json::json;
use server::{
    auth::Auth,
    store::{Account, AccountStore, Grant, OperatorStore, SqlStore},
};

use crate::{conn::Conn, fixture::Cluster, node::SECRET_KEY_BASE};

#[tokio::test(flavor = "multi_thread")]
async fn a_dashboard_joining_one_node_gets_every_nodes_history() {
    let cluster = Cluster::start(2);
    let store = SqlStore::open(&cluster.postgres.url).await.unwrap();
    let account = Account { username: "Ada".into(), password_hash: "unused".into() };
    assert!(store.create_account(account, 0).await.unwrap());
    assert_eq!(store.grant_operator("Ada", 0).await.unwrap(), Grant::Granted);
    let token = Auth::new(SECRET_KEY_BASE.as_bytes()).socket_token("Ada");
    let url = format!("{}&token={token}", cluster.url(0, "ada"));
    let (first, other) = (cluster.node(0).id.clone(), cluster.node(1).id.clone());

    // Each node samples once a second; a join a few seconds in has several of node2's samples, node1's first.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut dashboard = Conn::join(&url, STATS_TOPIC, json!({})).await;
        let reply: StatsJoinReply = serde_json::from_value(dashboard.joined.clone()).unwrap();
        dashboard.leave().await;
        assert_eq!(reply.node, first);
        let from = |node: &str| reply.history.iter().filter(|sample| sample.node == node).count();
        if from(&other) >= 3 && from(&first) >= 3 {
            assert_eq!(reply.history[0].node, first, "the joined node's samples come first");
            let others: Vec<_> = reply.history.iter().skip_while(|sample| sample.node == first).collect();
            assert!(others.iter().all(|sample| sample.node == other), "node by node");
            assert!(others.windows(2).all(|pair| pair[0].at < pair[1].at), "oldest first");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node2's samples never reached node1's join reply: {first} {} and {other} {}",
            from(&first),
            from(&other)
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
