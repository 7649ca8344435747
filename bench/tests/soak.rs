//! A short soak against the real server binary, as `bench soak` runs it: the bench starts the server, kills it with
//! `kill -9` and restarts it, runs every kind of client, and every end check must pass.
//!
//! The binary is `PARLEY_SERVER_BIN` when set; else the debug `server` next to this test when it is newer than every
//! source it is built from (`cargo test --workspace` builds it for the server's own tests, with their features);
//! else this test builds it with cargo.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, SystemTime},
};

use bench::soak::{self, SoakConfig};

fn server_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("PARLEY_SERVER_BIN") {
        return bin.into();
    }
    // This test runs from <target>/debug/deps.
    let exe = std::env::current_exe().expect("the test's path");
    let binary = exe.parent().and_then(|deps| deps.parent()).expect("<target>/debug").join("server");
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let built = std::fs::metadata(&binary).and_then(|m| m.modified()).ok();
    let sources = ["server", "app", "protocol", "Cargo.lock"].map(|part| newest(&workspace.join(part)));
    if built.is_some_and(|built| sources.iter().all(|source| *source <= built)) {
        return binary;
    }
    let status = Command::new(env!("CARGO"))
        .args(["build", "-p", "server", "--bin", "server"])
        .current_dir(&workspace)
        .status()
        .expect("run cargo build -p server");
    assert!(status.success(), "cargo build -p server failed");
    binary
}

/// The latest modification time of `path` or of anything under it.
fn newest(path: &Path) -> SystemTime {
    let own = std::fs::metadata(path).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
    let children = std::fs::read_dir(path).into_iter().flatten().flatten().map(|entry| newest(&entry.path()));
    children.fold(own, SystemTime::max)
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
