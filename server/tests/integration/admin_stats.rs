//! `admin:stats` (docs/protocol.md §7.6): an operator's socket joins, gets this node's recent samples, then a `stats`
//! sample a second whose counters move with what other sockets do; guests, other accounts and revoked operators are
//! refused with `unauthorized`.

use std::time::Duration;

use leptos::server_fn::ServerFn;
use protocol::admin::{NodeStats, RoomCount, STATS_EVENT, STATS_TOPIC, StatsJoinReply};
use serde_json::json;
use server::store::{Account, AccountStore, Grant, OperatorStore, SqlStore};

use crate::{
    auth::signer,
    support::{Client, TestServer},
};

/// Accounts made in the server's own database, beside it (as `server admin` does from another process).
async fn accounts(server: &TestServer, operator: &str, others: &[&str]) -> SqlStore {
    let store = SqlStore::open_sqlite_dir(server.data_dir()).await.unwrap();
    for name in std::iter::once(&operator).chain(others) {
        let account = Account { username: (*name).into(), password_hash: "unused".into() };
        assert!(store.create_account(account, 0).await.unwrap());
    }
    assert_eq!(store.grant_operator(operator, 0).await.unwrap(), Grant::Granted);
    store
}

async fn connect_as(server: &TestServer, user: &str) -> Client {
    let (auth, _) = signer(server);
    Client::connect(server, &format!("token={}", auth.socket_token(user))).await
}

/// The next `stats` sample whose counters satisfy `done`, within `within`.
async fn stats_until(client: &mut Client, within: Duration, done: impl Fn(&NodeStats) -> bool) -> NodeStats {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        assert!(tokio::time::Instant::now() < deadline, "no stats sample showed the activity in time");
        let payload = client.assert_broadcast(STATS_TOPIC, STATS_EVENT).await;
        let sample: NodeStats = serde_json::from_value(payload).unwrap();
        if done(&sample) {
            return sample;
        }
    }
}

#[tokio::test]
async fn an_operator_sees_joins_messages_and_busy_rooms_within_seconds() {
    let server = TestServer::start().await;
    let _store = accounts(&server, "Ada", &[]).await;
    let mut operator = connect_as(&server, "ada").await;
    let (_, reply) = operator.join(STATS_TOPIC, json!({})).await;
    let reply: StatsJoinReply = serde_json::from_value(reply).unwrap();
    assert!(!reply.node.is_empty());
    // The sampler runs from the start, so the history is not empty once a second has passed.
    assert!(reply.history.iter().all(|sample| sample.node == reply.node));

    let mut chatter = Client::connect(&server, "user=chatter").await;
    let (join_ref, _) = chatter.join("room:busy", json!({})).await;
    for n in 0..3 {
        let msg_ref =
            chatter.push(Some(&join_ref), "room:busy", "message:new", json!({"body": format!("hello {n}")})).await;
        chatter.assert_reply(&msg_ref, "ok").await;
    }
    let sample = stats_until(&mut operator, Duration::from_secs(4), |s| {
        s.messages >= 3 && !s.rooms_by_members.is_empty() && !s.rooms_by_messages.is_empty()
    })
    .await;
    assert_eq!(sample.node, reply.node);
    assert!(sample.connections >= 2, "the operator and the chatter: {sample:?}");
    assert!(sample.joins >= 2, "the operator's join and the chatter's: {sample:?}");
    assert!(sample.deliveries >= 3, "the chatter got its own messages: {sample:?}");
    assert_eq!(sample.rooms_by_members, vec![RoomCount { room: "busy".into(), count: 1 }]);
    assert_eq!(sample.rooms_by_messages, vec![RoomCount { room: "busy".into(), count: 3 }]);
    assert!(sample.commit_p99_ms.is_some_and(|ms| ms >= 0.0), "{sample:?}");

    // The next samples keep coming, and a new join shows in the history a rejoin gets.
    let mut again = connect_as(&server, "Ada").await;
    let (_, reply) = again.join(STATS_TOPIC, json!({})).await;
    let reply: StatsJoinReply = serde_json::from_value(reply).unwrap();
    let newest = reply.history.last().unwrap();
    assert!(newest.messages >= 3, "{newest:?}");
    assert!(reply.history[..reply.history.len() - 1].iter().all(|s| s.rooms_by_messages.is_empty()));
}

#[tokio::test]
async fn guests_other_accounts_and_revoked_operators_are_refused() {
    let server = TestServer::start().await;
    let store = accounts(&server, "Ada", &["Bob"]).await;

    let mut guest = Client::connect(&server, "user=Mallory").await;
    let (_, status, response) = guest.try_join(STATS_TOPIC, json!({})).await;
    assert_eq!((status.as_str(), response), ("error", json!({"reason": "unauthorized"})));

    let mut bob = connect_as(&server, "Bob").await;
    let (_, status, response) = bob.try_join(STATS_TOPIC, json!({})).await;
    assert_eq!((status.as_str(), response), ("error", json!({"reason": "unauthorized"})));
    bob.refute_event(STATS_TOPIC, STATS_EVENT, Duration::from_millis(1_500)).await;

    let mut ada = connect_as(&server, "Ada").await;
    let (join_ref, _) = ada.join(STATS_TOPIC, json!({})).await;
    let msg_ref = ada.push(Some(&join_ref), STATS_TOPIC, "anything", json!({})).await;
    assert_eq!(ada.assert_reply(&msg_ref, "error").await, json!({"reason": "unknown event"}));

    // A revoke takes effect at the next join, with the same token.
    assert!(store.revoke_operator("Ada").await.unwrap());
    let mut revoked = connect_as(&server, "Ada").await;
    let (_, status, response) = revoked.try_join(STATS_TOPIC, json!({})).await;
    assert_eq!((status.as_str(), response), ("error", json!({"reason": "unauthorized"})));
}

/// `server admin` against a running server's data directory.
async fn admin(server: &TestServer, args: &[&str]) -> Result<(), server::ServerError> {
    use clap::Parser;
    let data_dir = server.data_dir().to_str().unwrap();
    let argv = ["server", "admin", "--data-dir", data_dir].into_iter().chain(args.iter().copied());
    server::main_with(server::config::Cli::parse_from(argv)).await
}

#[tokio::test]
async fn the_admin_command_grants_and_revokes_on_a_running_server() {
    let server = TestServer::start().await;
    let store = accounts(&server, "Ada", &["Grace"]).await;
    let refused = admin(&server, &["--user", "nobody"]).await;
    assert!(refused.unwrap_err().to_string().contains("no account has this name"));

    let mut grace = connect_as(&server, "Grace").await;
    let (_, status, _) = grace.try_join(STATS_TOPIC, json!({})).await;
    assert_eq!(status, "error");
    admin(&server, &["--user", "GRACE"]).await.unwrap();
    assert!(store.is_operator("Grace").await.unwrap());
    grace.join(STATS_TOPIC, json!({})).await;

    admin(&server, &["--user", "Grace", "--revoke"]).await.unwrap();
    let mut again = connect_as(&server, "Grace").await;
    let (_, status, _) = again.try_join(STATS_TOPIC, json!({})).await;
    assert_eq!(status, "error", "a revoke takes effect at the next join");
}

/// `GET /dashboard` with the session cookie of `user`, if any.
async fn dashboard(server: &TestServer, user: Option<&str>) -> crate::support::http::Response {
    let cookie = match user {
        Some(user) => format!("\r\nCookie: parley_session={}", signer(server).0.session_value(user)),
        None => String::new(),
    };
    crate::support::http::request(server, &format!("GET /dashboard HTTP/1.1{cookie}"), "").await
}

#[tokio::test]
async fn the_dashboard_page_is_for_operators_only() {
    let server = TestServer::start().await;
    let store = accounts(&server, "Ada", &["Bob"]).await;

    let guest = dashboard(&server, None).await;
    assert!((300..400).contains(&guest.status), "a guest is sent to log in: {}", guest.status);
    assert_eq!(guest.header("location"), Some("/login"));

    let bob = dashboard(&server, Some("Bob")).await;
    assert_eq!(bob.status, 403);
    let body = String::from_utf8_lossy(&bob.body);
    assert!(body.contains("Operators only") && !body.contains("data-node"), "{body}");

    let ada = dashboard(&server, Some("Ada")).await;
    assert_eq!(ada.status, 200);
    assert_eq!(ada.header("cache-control"), Some("no-store"), "the page carries the operator's socket token");
    let body = String::from_utf8_lossy(&ada.body);
    assert!(body.contains("<leptos-island") && body.contains("Connecting…"), "the island, waiting: {body}");

    store.revoke_operator("Ada").await.unwrap();
    assert_eq!(dashboard(&server, Some("Ada")).await.status, 403, "a revoke needs no new session");
}

/// Every answer that carries a socket token (the dashboard above, the room page of a signed-in account, the token
/// refresh) is kept out of caches; a guest's room page has no token.
#[tokio::test]
async fn answers_with_a_socket_token_are_not_stored() {
    let server = TestServer::start().await;
    let _store = accounts(&server, "Ada", &[]).await;
    let session = format!("Cookie: parley_session={}", signer(&server).0.session_value("Ada"));
    let page = |cookie: &str| format!("GET /lobby HTTP/1.1{cookie}");

    let signed_in = crate::support::http::request(&server, &page(&format!("\r\n{session}")), "").await;
    assert_eq!(signed_in.status, 200);
    assert_eq!(signed_in.header("cache-control"), Some("no-store"));
    let guest = crate::support::http::request(&server, &page(""), "").await;
    assert_eq!(guest.status, 200);
    assert_ne!(guest.header("cache-control"), Some("no-store"), "nothing secret in a guest's page");

    let refresh = format!(
        "POST {} HTTP/1.1\r\nReferer: /lobby\r\nContent-Type: application/x-www-form-urlencoded\r\n{session}",
        app::api::SocketToken::PATH
    );
    let token = crate::support::http::request(&server, &refresh, "").await;
    assert_eq!(token.status, 200, "{}", String::from_utf8_lossy(&token.body));
    assert_eq!(token.header("cache-control"), Some("no-store"));
}
