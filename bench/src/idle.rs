//! Idle connections: N clients each join one of R rooms and stay connected; the scenario reports the connect+join
//! rate and, given the server's pid, the server's resident memory per connection (from `/proc/<pid>/status`).
//!
//! Client sockets are spread over loopback source addresses ([`crate::spread`]).

use std::{
    fmt,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use serde::Serialize;
use tokio::sync::Semaphore;

use crate::spread::Ws;

/// What to run.
#[derive(Debug, Clone)]
pub struct IdleConfig {
    /// Server address, e.g. `127.0.0.1:3000`.
    pub addr: SocketAddr,
    /// Connections.
    pub clients: usize,
    /// Rooms they are spread over.
    pub rooms: usize,
    /// Handshakes in flight at once.
    pub concurrency: usize,
    /// Server pid, for its memory.
    pub server_pid: Option<u32>,
    /// How long to hold the connections before measuring.
    pub settle: Duration,
}

/// What happened.
#[derive(Debug, Clone, Serialize)]
pub struct IdleReport {
    /// Connections configured.
    pub clients: usize,
    /// Rooms configured.
    pub rooms: usize,
    /// This process's open-file limit.
    pub fd_limit: u64,
    /// Connections joined.
    pub joined: usize,
    /// Connections that failed.
    pub failed: usize,
    /// Joins per second while connecting.
    pub joins_per_s: f64,
    /// Server RSS before connecting, KiB.
    pub rss_before_kib: Option<u64>,
    /// Server RSS with every connection joined and idle, KiB.
    pub rss_after_kib: Option<u64>,
    /// (after − before) / joined, KiB.
    pub kib_per_connection: Option<f64>,
}

impl fmt::Display for IdleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rss = [self.rss_before_kib, self.rss_after_kib].map(|v| crate::or_na(v, |v| format!("{v} KiB")));
        writeln!(f, "idle ({} clients, {} rooms, fd limit {})", self.clients, self.rooms, self.fd_limit)?;
        writeln!(f, "  joined         {}", self.joined)?;
        writeln!(f, "  failed         {}", self.failed)?;
        writeln!(f, "  joins/s        {:.0}", self.joins_per_s)?;
        writeln!(f, "  server RSS     {} → {}", rss[0], rss[1])?;
        write!(f, "  per connection {}", crate::or_na(self.kib_per_connection, |v| format!("{v:.1} KiB")))
    }
}

/// Resident set size of a process, KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| line.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

async fn join_one(index: usize, config: &IdleConfig) -> Option<Ws> {
    let topic = format!("room:idle-{}", index % config.rooms.max(1));
    crate::spread::connect_and_join(config.addr, index, &format!("idle{index}"), &topic).await
}

/// Runs the scenario; the connections are closed when it returns.
pub async fn run(config: IdleConfig) -> IdleReport {
    let rss_before = config.server_pid.and_then(rss_kib);
    let gate = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let failed = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let config = Arc::new(config);
    let tasks: Vec<_> = (0..config.clients)
        .map(|index| {
            let (gate, config, failed) = (gate.clone(), config.clone(), failed.clone());
            tokio::spawn(async move {
                let permit = gate.acquire().await;
                let ws = join_one(index, &config).await;
                drop(permit);
                if ws.is_none() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                ws
            })
        })
        .collect();
    let mut held = Vec::with_capacity(config.clients);
    for task in tasks {
        if let Ok(Some(ws)) = task.await {
            held.push(ws);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    tokio::time::sleep(config.settle).await;
    let rss_after = config.server_pid.and_then(rss_kib);
    let joined = held.len();
    let per_connection = match (rss_before, rss_after) {
        (Some(before), Some(after)) if joined > 0 => Some((after.saturating_sub(before)) as f64 / joined as f64),
        _ => None,
    };
    drop(held);
    IdleReport {
        clients: config.clients,
        rooms: config.rooms,
        fd_limit: crate::fd_limit(),
        joined,
        failed: failed.load(Ordering::Relaxed),
        joins_per_s: joined as f64 / elapsed.max(0.001),
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        kib_per_connection: per_connection,
    }
}
