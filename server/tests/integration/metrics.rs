//! `GET /metrics`: the exposition parses as Prometheus text (with the `prometheus-parse` crate, not by string
//! matching) and its series move by exactly what a scripted session did.

use std::time::Duration;

use app::api::Login;
use leptos::server_fn::ServerFn;
use prometheus_parse::{Scrape, Value};
use serde_json::json;
use server::socket::SocketSettings;

use crate::support::{
    Client, TestServer, WAIT,
    http::{form_post, get, request},
    refused_status,
};

/// One scrape, parsed, and the node it came from.
struct Metrics {
    scrape: Scrape,
}

impl Metrics {
    async fn of(server: &TestServer) -> Self {
        let response = get(server, "/metrics", "gzip").await;
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
        assert_eq!(response.header("content-encoding"), None, "a scrape is not compressed");
        let text = String::from_utf8(response.body).unwrap();
        let scrape = Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).unwrap();
        assert!(!scrape.samples.is_empty(), "{text}");
        Self { scrape }
    }

    /// The value of the series `name` whose labels, besides `node`, are exactly `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let sample = self
            .scrape
            .samples
            .iter()
            .find(|sample| {
                sample.metric == name
                    && sample.labels.len() == labels.len() + 1
                    && labels.iter().all(|(key, value)| sample.labels.get(key) == Some(*value))
            })
            .unwrap_or_else(|| panic!("no series {name}{labels:?}"));
        match &sample.value {
            Value::Counter(value) | Value::Gauge(value) | Value::Untyped(value) => *value,
            other => panic!("{name} is not a number: {other:?}"),
        }
    }

    /// The bucket counts of the histogram `name`, as parsed (a `histogram` type line, `le` buckets up to `+Inf`).
    fn buckets(&self, name: &str) -> Vec<(f64, f64)> {
        let sample = self.scrape.samples.iter().find(|sample| sample.metric == name).expect("the histogram");
        let Value::Histogram(buckets) = &sample.value else { panic!("{name} is not a histogram") };
        buckets.iter().map(|bucket| (bucket.less_than, bucket.count)).collect()
    }
}

/// Scrapes until `settled` holds (counting follows some answers by a moment: a close is counted after its frame is
/// written) or [`WAIT`] passes; returns the last scrape either way, for exact assertions.
async fn settled(server: &TestServer, settled: impl Fn(&Metrics) -> bool) -> Metrics {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let metrics = Metrics::of(server).await;
        if settled(&metrics) || tokio::time::Instant::now() >= deadline {
            return metrics;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn counters_move_by_exactly_what_a_session_did() {
    let mut settings = SocketSettings {
        // As in robustness.rs: a small queue overflows soon; the slow client's close waits behind its backlog.
        outbound_capacity: 64,
        close_timeout: Duration::from_secs(30),
        ..SocketSettings::default()
    };
    settings.message_rate.max = 3;
    let server = TestServer::start_with(settings).await;
    let before = Metrics::of(&server).await;
    let delta =
        |after: &Metrics, name: &str, labels: &[(&str, &str)]| after.value(name, labels) - before.value(name, labels);

    // Two joins in a room, one join refused.
    let mut alice = Client::connect(&server, "user=alice").await;
    let (join_ref, _) = alice.join("room:scripted", json!({})).await;
    let mut bob = Client::connect(&server, "user=bob").await;
    bob.join("room:scripted", json!({})).await;
    let (_, status, _) = alice.try_join("nowhere:1", json!({})).await;
    assert_eq!(status, "error");
    // Three messages stored, a fourth over the rate limit.
    for n in 0..4 {
        let body = json!({"body": format!("hello {n}")});
        let msg_ref = alice.push(Some(&join_ref), "room:scripted", "message:new", body).await;
        alice.assert_reply(&msg_ref, if n < 3 { "ok" } else { "error" }).await;
    }
    // A refused login.
    let login = request(&server, &form_post(Login::PATH, "/login"), "username=Nobody&password=not+it").await;
    assert_eq!(login.header("location"), Some("/login?problem=wrong-credentials&name=Nobody"));
    // A slow consumer, closed with 1011 (two more joins).
    let mut slow = Client::connect(&server, "").await;
    slow.join("test:flood", json!({})).await;
    let mut publisher = Client::connect(&server, "").await;
    publisher.join("test:flood", json!({})).await;
    for _ in 0..200 {
        let msg_ref = publisher.push(None, "test:flood", "flood", json!({"count": 8, "size": 16 * 1024})).await;
        publisher.assert_reply(&msg_ref, "ok").await;
    }
    assert_eq!(slow.assert_closed().await, Some(1011));

    let after = settled(&server, |now| {
        now.value("parley_socket_closes_total", &[("code", "1011")]) == 1.0
            && now.value("parley_open_sockets", &[("transport", "websocket")]) == 3.0
    })
    .await;
    assert_eq!(delta(&after, "parley_joins_total", &[]), 4.0);
    assert_eq!(delta(&after, "parley_join_errors_total", &[("reason", "unmatched topic")]), 1.0);
    assert_eq!(delta(&after, "parley_join_errors_total", &[("reason", "invalid room")]), 0.0);
    assert_eq!(delta(&after, "parley_messages_stored_total", &[]), 3.0);
    assert_eq!(delta(&after, "parley_ingest_ack_seconds_count", &[]), 3.0);
    assert_eq!(delta(&after, "parley_store_commit_batch_size_sum", &[]), 3.0, "every append in some batch");
    assert_eq!(delta(&after, "parley_rate_limited_total", &[("limit", "message_new")]), 1.0);
    assert_eq!(delta(&after, "parley_rate_limited_total", &[("limit", "history_before")]), 0.0);
    assert_eq!(delta(&after, "parley_login_failures_total", &[]), 1.0);
    assert_eq!(delta(&after, "parley_slow_consumers_total", &[]), 1.0);
    // The slow client's full queue (64) and the broadcast that did not fit, at least, were dropped for it; at most
    // every flooded broadcast (later ones are refused until it is unsubscribed).
    let dropped = delta(&after, "parley_slow_consumer_dropped_broadcasts_total", &[]);
    assert!((65.0..=1600.0).contains(&dropped), "{dropped} broadcasts dropped");
    assert_eq!(delta(&after, "parley_socket_closes_total", &[("code", "1011")]), 1.0);
    for limit in ["api", "sockets_per_ip", "connects_per_ip", "login", "registration"] {
        assert_eq!(delta(&after, "parley_rate_limited_total", &[("limit", limit)]), 0.0, "{limit}");
    }
    for code in ["1000", "1001", "1002", "1007", "1008", "1009", "1012", "other"] {
        assert_eq!(delta(&after, "parley_socket_closes_total", &[("code", code)]), 0.0, "{code}");
    }
    // Gauges: what is open now.
    assert_eq!(after.value("parley_open_sockets", &[("transport", "websocket")]), 3.0);
    assert_eq!(after.value("parley_open_sockets", &[("transport", "longpoll")]), 0.0);
    assert_eq!(after.value("parley_joined_channels", &[]), 3.0);
    assert_eq!(after.value("parley_presence_members", &[]), 2.0);
    // Diffs are coalesced over a window, so two joins make one or two batches.
    let diffs = delta(&after, "parley_presence_diff_batches_total", &[]);
    assert!((1.0..=2.0).contains(&diffs), "{diffs} presence_diff batches");
    // A histogram parses with its buckets; `+Inf` holds every sample.
    let commits = after.value("parley_store_commit_seconds_count", &[]);
    assert!(commits >= 1.0);
    let buckets = after.buckets("parley_store_commit_seconds");
    assert_eq!(buckets.last(), Some(&(f64::INFINITY, commits)));
    assert!(buckets.len() > 5, "the configured buckets, not the default summary: {buckets:?}");
}

#[tokio::test]
async fn deliveries_count_every_frame_written_to_a_socket_and_nothing_else() {
    let server = TestServer::start().await;
    let mut members = Vec::new();
    for _ in 0..3 {
        let mut member = Client::connect(&server, "").await;
        member.join("test:fanout", json!({})).await;
        members.push(member);
    }
    let before = Metrics::of(&server).await.value("parley_deliveries_total", &[]);
    let shouts = 5;
    for n in 0..shouts {
        let msg_ref = members[0].push(None, "test:fanout", "broadcast", json!({"n": n})).await;
        members[0].assert_reply(&msg_ref, "ok").await;
    }
    for member in &mut members {
        for _ in 0..shouts {
            member.assert_broadcast("test:fanout", "shout").await;
        }
        // Replies and heartbeats are answers, not deliveries.
        member.assert_alive().await;
    }
    let expected = before + f64::from(shouts * 3);
    let after = settled(&server, |now| now.value("parley_deliveries_total", &[]) >= expected).await;
    assert_eq!(after.value("parley_deliveries_total", &[]), expected);
}

#[tokio::test]
async fn every_series_carries_this_nodes_label() {
    let server = TestServer::start().await;
    let health = get(&server, "/healthz", "identity").await;
    let node: serde_json::Value = serde_json::from_slice(&health.body).unwrap();
    let node = node["node"].as_str().unwrap().to_owned();
    let metrics = Metrics::of(&server).await;
    for sample in &metrics.scrape.samples {
        assert!(sample.metric.starts_with("parley_"), "{}", sample.metric);
        assert_eq!(sample.labels.get("node"), Some(node.as_str()), "{}", sample.metric);
    }
    assert!(metrics.scrape.docs.contains_key("parley_joins_total"), "every series has its HELP line");
}

#[tokio::test]
async fn a_long_poll_session_is_an_open_socket_of_its_own_transport() {
    let server = TestServer::start().await;
    let opened = request(&server, "GET /socket/longpoll?vsn=2.0.0 HTTP/1.1\r\nAccept: application/json", "").await;
    let body: serde_json::Value = serde_json::from_slice(&opened.body).unwrap();
    assert_eq!(body["status"], 410, "the first poll opens a session: {body}");
    let longpoll = [("transport", "longpoll")];
    let metrics = settled(&server, |now| now.value("parley_open_sockets", &longpoll) == 1.0).await;
    assert_eq!(metrics.value("parley_open_sockets", &longpoll), 1.0);
    assert_eq!(metrics.value("parley_open_sockets", &[("transport", "websocket")]), 0.0);
}

#[tokio::test]
async fn a_refused_socket_counts_against_its_per_address_limit() {
    let server = TestServer::start_configured(SocketSettings::default(), |config| {
        config.guard.max_sockets_per_ip = 1;
    })
    .await;
    let before = Metrics::of(&server).await;
    let _first = Client::connect(&server, "").await;
    assert_eq!(refused_status(&server.url("vsn=2.0.0")).await, Some(429));
    assert_eq!(refused_status(&server.url("vsn=2.0.0")).await, Some(429));
    let after = Metrics::of(&server).await;
    let delta = |limit: &str| {
        let labels = [("limit", limit)];
        after.value("parley_rate_limited_total", &labels) - before.value("parley_rate_limited_total", &labels)
    };
    assert_eq!(delta("sockets_per_ip"), 2.0);
    assert_eq!(delta("connects_per_ip"), 0.0);
    assert_eq!(delta("api"), 0.0);
}

#[tokio::test]
async fn a_channel_whose_terminate_panics_still_gives_back_its_socket_and_channels() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "").await;
    client.join("test:crashing", json!({"terminate": "panic"})).await;
    client.join("test:fine", json!({})).await;
    let open = |now: &Metrics| {
        (now.value("parley_open_sockets", &[("transport", "websocket")]), now.value("parley_joined_channels", &[]))
    };
    assert_eq!(open(&settled(&server, |now| open(now) == (1.0, 2.0)).await), (1.0, 2.0));
    drop(client);
    let after = settled(&server, |now| open(now) == (0.0, 0.0)).await;
    assert_eq!(open(&after), (0.0, 0.0), "the gauges came back down");
    // The server goes on serving.
    let mut next = Client::connect(&server, "").await;
    next.join("test:fine", json!({})).await;
    next.assert_alive().await;
}
