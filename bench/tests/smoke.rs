//! A quick storm against a real in-process server on 127.0.0.1:0: the generator works end to end.

use std::time::Duration;

use bench::storm::{self, StormConfig};
use server::{Server, config::Config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_join_storm_converges() {
    let data = std::env::temp_dir().join(format!("bench-smoke-{}", std::process::id()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(Server::new(Config::for_data_dir(&data)).run(listener, std::future::pending()));
    let report = storm::run(StormConfig {
        url: format!("ws://{addr}/socket/websocket"),
        clients: 60,
        room: "smoke".into(),
        concurrency: 20,
        timeout: Duration::from_secs(30),
    })
    .await;
    server.abort();
    let _ = std::fs::remove_dir_all(&data);
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(report.joined, 60, "{report:?}");
    assert_eq!(report.converged, 60, "{report:?}");
    assert!(report.frames >= 60 * 2, "{report:?}");
}
