//! A short soak against the real server binary, as `bench soak` runs it: the bench starts the server, kills it with
//! `kill -9` and restarts it, runs every kind of client, and every end check must pass.
//!
//! The binary is `PARLEY_SERVER_BIN` when set; otherwise this test builds the debug `server` with cargo (a no-op
//! after `cargo test --workspace`, which builds it for the server's own tests).

use std::{path::PathBuf, process::Command, time::Duration};

use bench::soak::{self, SoakConfig};

fn server_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("PARLEY_SERVER_BIN") {
        return bin.into();
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new(env!("CARGO"))
        .args(["build", "-p", "server", "--bin", "server"])
        .current_dir(&workspace)
        .status()
        .expect("run cargo build -p server");
    assert!(status.success(), "cargo build -p server failed");
    // This test runs from <target>/debug/deps.
    let exe = std::env::current_exe().expect("the test's path");
    let debug = exe.parent().and_then(|deps| deps.parent()).expect("<target>/debug");
    debug.join("server")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_passes_every_check() {
    let config = SoakConfig {
        duration: Duration::from_secs(25),
        server_bin: server_binary(),
        data_dir: None,
        seed: 16,
        max_messages_per_10s: None,
        kills: Some(1),
        rooms: 3,
        residents_per_room: 3,
        server_args: Vec::new(),
    };
    let report = soak::run(config).await.expect("the soak ran to its checks");
    assert!(report.passed(), "{report}");
    let counts = &report.counts;
    // Every kind of client did its part.
    assert_eq!((report.kills, report.restart_s.len()), (2, 2), "{report}");
    assert!(report.findings.acked >= 100 && report.findings.stayed >= 12, "{report}");
    assert!(counts.reconnects >= 12 && counts.recovered >= 12, "everyone came back after the kill: {report}");
    assert!(counts.visitors > 0 && counts.leaves > 0 && counts.typing > 0, "{report}");
    assert!(counts.probes_answered > 0 && counts.logins_wrong + counts.logins_throttled > 0, "{report}");
    assert!(report.live_deliveries > 0 && report.rss_baseline_kib.is_some(), "{report}");
}
