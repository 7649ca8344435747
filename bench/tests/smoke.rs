//! Each scenario, small, against a real in-process server on 127.0.0.1:0: the generator works end to end and its
//! figures are consistent (not how fast they are: that is for BENCHMARKS.md).

use std::{net::SocketAddr, time::Duration};

use bench::{
    Transport,
    broadcast::{self, BroadcastConfig},
    chat::{self, ChatConfig},
    idle::{self, IdleConfig},
    roundtrip::{self, RoundTripConfig},
    servers::Servers,
    storm::{self, StormConfig},
    workers::Workers,
};
use server::{Server, config::Config};

struct Running {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    data: std::path::PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

async fn start(name: &str, configure: impl FnOnce(&mut Config)) -> Running {
    let data = std::env::temp_dir().join(format!("bench-smoke-{name}-{}", std::process::id()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut config = Config::for_data_dir(&data);
    // Every bench client comes from 127.0.0.1: the per-address caps are for the open internet, not load tests.
    config.guard.max_sockets_per_ip = 0;
    config.guard.max_connects_per_ip_per_10s = 0;
    configure(&mut config);
    let task = tokio::spawn(async move {
        let _ = Server::new(config).run(listener, std::future::pending()).await;
    });
    Running { addr, task, data }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_join_storm_converges() {
    let server = start("storm", |_| {}).await;
    let report = storm::run(StormConfig {
        url: format!("ws://{}/socket/websocket", server.addr),
        clients: 60,
        room: "smoke".into(),
        concurrency: 20,
        timeout: Duration::from_secs(30),
        // The server runs in this process, so its RSS is ours.
        servers: Servers::new(vec![std::process::id()]),
    })
    .await;
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(report.joined, 60, "{report:?}");
    assert!(report.rss_after_kib.is_some_and(|kib| kib > 0) && report.kib_per_connection.is_some(), "{report:?}");
    assert_eq!(report.converged, 60, "{report:?}");
    assert!(report.frames >= 60 * 2, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_reach_every_member_at_each_step() {
    let server = start("broadcast", |config| config.bench_topics = true).await;
    let report = broadcast::run(BroadcastConfig {
        addr: server.addr,
        steps: vec![10, 30],
        broadcasts: 12,
        inflight: 4,
        concurrency: 10,
        timeout: Duration::from_secs(10),
        servers: Servers::new(vec![std::process::id()]),
        bound_ms: 500.0,
        workers: None,
    })
    .await;
    assert_eq!(report.failed_connections, 0, "{report:?}");
    let members: Vec<usize> = report.steps.iter().map(|s| s.clients).collect();
    assert_eq!(members, [10, 30], "{report:?}");
    for step in &report.steps {
        assert_eq!((step.completed, step.lost), (12, 0), "{report:?}");
        let latency = &step.latency;
        assert!(latency.p50_ms <= latency.p95_ms && latency.p95_ms <= latency.max_ms, "{report:?}");
        assert!(step.server_cpu_us_per_message.is_some(), "{report:?}");
    }
    assert_eq!(report.largest_within_bound, Some(30), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_topics_are_off_unless_enabled() {
    let server = start("no-bench", |_| {}).await;
    let report = broadcast::run(BroadcastConfig {
        addr: server.addr,
        steps: vec![3],
        broadcasts: 1,
        inflight: 1,
        concurrency: 3,
        timeout: Duration::from_secs(1),
        servers: Servers::default(),
        bound_ms: 500.0,
        workers: None,
    })
    .await;
    assert_eq!(report.failed_connections, 3, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_messages_reach_every_member_of_their_room() {
    let server = start("chat", |_| {}).await;
    let report = chat::run(ChatConfig {
        addr: server.addr,
        users: 20,
        rooms: 4,
        rate_per_room: 2.0,
        duration: Duration::from_secs(2),
        concurrency: 10,
    })
    .await;
    assert_eq!(report.joined, 20, "{report:?}");
    assert!(report.sent >= 4 * 3, "{report:?}");
    // Five members per room, the sender included, each get every message of their room.
    assert_eq!(report.delivered, report.sent * 5, "{report:?}");
    let latency = &report.latency;
    assert!(latency.p50_ms <= latency.p99_ms && latency.p99_ms <= latency.max_ms, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_all_join() {
    let server = start("idle", |_| {}).await;
    let report = idle::run(IdleConfig {
        addr: server.addr,
        transport: Transport::WebSocket,
        clients: 40,
        rooms: 4,
        concurrency: 10,
        servers: Servers::new(vec![std::process::id()]),
        settle: Duration::from_millis(100),
        workers: None,
    })
    .await;
    assert_eq!((report.joined, report.failed, report.closed), (40, 0, 0), "{report:?}");
    assert!(report.kib_per_connection.is_some(), "{report:?}");
    let cpu_measured = |cpu: Option<(f64, f64)>| cpu.is_some_and(|(user, system)| user >= 0.0 && system >= 0.0);
    assert!(cpu_measured(report.server_us_per_join) && cpu_measured(report.generator_us_per_join), "{report:?}");
}

/// `bench latency` with a handful of clients in two rooms over `transport`: every message reaches every other member
/// of its room once, and nobody is dropped.
async fn round_trips_over(transport: Transport) {
    let server = start(&format!("latency-{transport}"), |_| {}).await;
    let report = roundtrip::run(RoundTripConfig {
        addr: server.addr,
        transport,
        clients: 8,
        rooms: 2,
        rate_per_room: 4.0,
        duration: Duration::from_secs(2),
        concurrency: 4,
        servers: Servers::new(vec![std::process::id()]),
    })
    .await;
    assert_eq!((report.joined, report.failed, report.dropped, report.send_errors), (8, 0, 0, 0), "{report:?}");
    assert!(report.sent >= 2 * 6, "{report:?}");
    // Four members per room: the sender's three others each get every message of their room.
    assert_eq!(report.expected, report.sent * 3, "{report:?}");
    assert_eq!(report.received, report.expected, "{report:?}");
    let latency = &report.latency;
    assert!(latency.p50_ms > 0.0 && latency.p50_ms <= latency.p99_ms && latency.p99_ms <= latency.max_ms, "{report:?}");
    assert!(report.bytes_per_copy > 0.0 && report.server_us_per_copy.is_some(), "{report:?}");
    assert_eq!(report.polls_per_copy.is_some(), transport == Transport::LongPoll, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_round_trips_reach_every_other_member() {
    round_trips_over(Transport::LongPoll).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_round_trips_reach_every_other_member() {
    round_trips_over(Transport::WebSocket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_long_poll_sessions_all_join_and_keep_polling() {
    let server = start("idle-longpoll", |_| {}).await;
    let report = idle::run(IdleConfig {
        addr: server.addr,
        transport: Transport::LongPoll,
        clients: 30,
        rooms: 3,
        concurrency: 10,
        servers: Servers::new(vec![std::process::id()]),
        settle: Duration::from_millis(200),
        workers: None,
    })
    .await;
    assert_eq!((report.joined, report.failed, report.closed), (30, 0, 0), "{report:?}");
    assert_eq!(report.transport, Transport::LongPoll, "{report:?}");
    // Each session holds its poll's connection: the server (this process) has at least one socket per session.
    assert!(report.server_sockets.as_ref().is_some_and(|s| s[0] >= 30), "{report:?}");
}

/// The bench binary, re-executed as `bench worker` by the scenarios that spread connections over processes.
fn two_workers() -> Option<Workers> {
    Some(Workers { exe: env!("CARGO_BIN_EXE_bench").into(), count: 2 })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_held_by_worker_processes() {
    let server = start("idle-workers", |_| {}).await;
    let report = idle::run(IdleConfig {
        addr: server.addr,
        transport: Transport::WebSocket,
        clients: 41,
        rooms: 4,
        concurrency: 10,
        servers: Servers::new(vec![std::process::id()]),
        settle: Duration::from_millis(100),
        workers: two_workers(),
    })
    .await;
    assert_eq!((report.joined, report.failed, report.closed, report.processes), (41, 0, 0, 2), "{report:?}");
    // This test process is the server: it holds the 41 accepted sockets while the workers hold theirs.
    assert!(report.server_sockets.as_ref().is_some_and(|s| s[0] >= 41), "{report:?}");
    assert!(report.server_us_per_join.is_some() && report.generator_us_per_join.is_none(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_reach_members_in_worker_processes() {
    let server = start("broadcast-workers", |config| config.bench_topics = true).await;
    let report = broadcast::run(BroadcastConfig {
        addr: server.addr,
        steps: vec![3, 25],
        broadcasts: 8,
        inflight: 2,
        concurrency: 10,
        timeout: Duration::from_secs(10),
        servers: Servers::new(vec![std::process::id()]),
        bound_ms: 500.0,
        workers: two_workers(),
    })
    .await;
    assert_eq!((report.failed_connections, report.processes), (0, 3), "{report:?}");
    let members: Vec<usize> = report.steps.iter().map(|s| s.clients).collect();
    assert_eq!(members, [3, 25], "{report:?}");
    for step in &report.steps {
        assert_eq!((step.completed, step.lost, step.closed_members), (8, 0, 0), "{report:?}");
        assert!(step.latency.p50_ms > 0.0 && step.latency.p50_ms <= step.latency.max_ms, "{report:?}");
    }
    // Every member, in whichever process, got every broadcast once.
    let delivered: Vec<u64> = report.steps.iter().map(|s| s.delivered).collect();
    assert_eq!(delivered, [8 * 3, 8 * 25], "{report:?}");
}
