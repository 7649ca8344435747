//! Idle connections: N clients each join one of R rooms and stay connected; the scenario reports the connect+join
//! rate and, given the server pids, the servers' resident memory per connection (the RSS of every server process
//! together, before connecting and with every connection joined; `/proc/<pid>/status`).
//!
//! With [`Transport::LongPoll`] the clients are long-poll sessions instead, each joined and holding one waiting
//! poll as phoenix.js does ([`share`]), and the figure is the server's memory per idle session.
//!
//! Client sockets are spread over loopback source addresses ([`crate::spread`]) and kept alive as phoenix.js keeps
//! them (they read what arrives and heartbeat every 30 s); the report says how many the server closed before the
//! measurement, which must be none. Beyond one process's open-file limit, `workers` processes each open and hold a
//! contiguous share of the connections ([`Share`], run by `bench worker`) and report when they are joined; the parent
//! only starts them, measures and tells them to close.

mod share;

use std::{
    fmt,
    net::SocketAddr,
    time::{Duration, Instant},
};

use serde::Serialize;

pub use self::share::{Share, serve_share};
use crate::{
    Transport,
    servers::{self, Servers},
    workers::{self, Job, Worker, Workers},
};

/// What to run.
#[derive(Debug, Clone)]
pub struct IdleConfig {
    /// Server address, e.g. `127.0.0.1:3000` (several processes may share it with `SO_REUSEPORT`).
    pub addr: SocketAddr,
    /// WebSockets or long-poll sessions.
    pub transport: Transport,
    /// Connections.
    pub clients: usize,
    /// Rooms they are spread over.
    pub rooms: usize,
    /// Handshakes in flight at once, in all (split over the workers).
    pub concurrency: usize,
    /// The server processes, for their memory.
    pub servers: Servers,
    /// How long to hold the connections before measuring.
    pub settle: Duration,
    /// Worker processes holding the connections; `None`: this process holds them.
    pub workers: Option<Workers>,
}

/// What happened.
#[derive(Debug, Clone, Serialize)]
pub struct IdleReport {
    /// WebSockets or long-poll sessions.
    pub transport: Transport,
    /// Connections configured.
    pub clients: usize,
    /// Rooms configured.
    pub rooms: usize,
    /// Bench processes holding the connections.
    pub processes: usize,
    /// The open-file limit of each of them.
    pub fd_limit: u64,
    /// Server processes measured.
    pub server_processes: usize,
    /// Connections joined.
    pub joined: usize,
    /// Connections that failed.
    pub failed: usize,
    /// Joined connections the server had closed by the time of the measurement (should be 0).
    pub closed: usize,
    /// Seconds from the first connect until the last join.
    pub connect_seconds: f64,
    /// Joins per second while connecting.
    pub joins_per_s: f64,
    /// Server RSS before connecting, KiB (all server processes).
    pub rss_before_kib: Option<u64>,
    /// Server RSS with every connection joined and idle, KiB (all server processes).
    pub rss_after_kib: Option<u64>,
    /// (after − before) / joined, KiB.
    pub kib_per_connection: Option<f64>,
    /// Open sockets of each server process with every connection joined (how `SO_REUSEPORT` spread them).
    pub server_sockets: Option<Vec<usize>>,
    /// Server CPU per connect+join while connecting, µs: `(user, system)` (all server processes).
    pub server_us_per_join: Option<(f64, f64)>,
    /// This process's CPU per connect+join while connecting, µs: `(user, system)`; `None` with workers.
    pub generator_us_per_join: Option<(f64, f64)>,
}

impl fmt::Display for IdleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rss = [self.rss_before_kib, self.rss_after_kib].map(|v| crate::or_na(v, |v| format!("{v} KiB")));
        writeln!(
            f,
            "idle over {} ({} clients, {} rooms, {} bench process(es) with fd limit {}, {} server process(es))",
            self.transport, self.clients, self.rooms, self.processes, self.fd_limit, self.server_processes
        )?;
        writeln!(f, "  joined         {}", self.joined)?;
        writeln!(f, "  failed         {}", self.failed)?;
        writeln!(f, "  closed         {}", self.closed)?;
        writeln!(f, "  joins/s        {:.0} ({:.1} s)", self.joins_per_s, self.connect_seconds)?;
        writeln!(f, "  server RSS     {} → {}", rss[0], rss[1])?;
        writeln!(f, "  per connection {}", crate::or_na(self.kib_per_connection, |v| format!("{v:.1} KiB")))?;
        let cpu = |v: Option<(f64, f64)>| {
            crate::or_na(v, |(user, system)| format!("{user:.1} µs user + {system:.1} µs system"))
        };
        writeln!(f, "  server CPU     {} per connect+join", cpu(self.server_us_per_join))?;
        writeln!(f, "  generator CPU  {} per connect+join", cpu(self.generator_us_per_join))?;
        write!(f, "  server sockets {}", crate::or_na(self.server_sockets.as_ref(), |v| format!("{v:?}")))
    }
}

/// What the connections amounted to.
struct Held {
    joined: usize,
    failed: usize,
    /// Closed by the server by the time of the measurement.
    closed: usize,
    connect_seconds: f64,
    /// CPU the servers and this process used while connecting, seconds: `(user, system)` each.
    server_cpu: Option<(f64, f64)>,
    generator_cpu: Option<(f64, f64)>,
}

/// Runs the scenario; the connections are closed when it returns.
pub async fn run(config: IdleConfig) -> IdleReport {
    let rss_before = config.servers.rss_kib();
    let (held, rss_after, server_sockets, processes) = match &config.workers {
        Some(workers) if workers.count > 0 => {
            let (held, rss_after, sockets) = hold_in_workers(&config, workers).await;
            (held, rss_after, sockets, workers.count)
        }
        _ => {
            let started = Instant::now();
            let me = std::process::id();
            let cpu_before = (config.servers.cpu_seconds(), servers::cpu_seconds(me));
            let share = Share {
                addr: config.addr,
                indices: 0..config.clients,
                rooms: config.rooms,
                concurrency: config.concurrency,
                transport: config.transport,
            };
            let holding = share.hold().await;
            let connect_seconds = started.elapsed().as_secs_f64();
            let server_cpu = servers::cpu_between(cpu_before.0, config.servers.cpu_seconds());
            let generator_cpu = servers::cpu_between(cpu_before.1, servers::cpu_seconds(me));
            tokio::time::sleep(config.settle).await;
            let measured = (config.servers.rss_kib(), config.servers.sockets());
            let held = Held {
                joined: holding.joined,
                failed: holding.failed,
                closed: holding.closed(),
                connect_seconds,
                server_cpu,
                generator_cpu,
            };
            holding.release().await;
            (held, measured.0, measured.1, 1)
        }
    };
    let per_connection = servers::kib_per(rss_before, rss_after, held.joined);
    let per_join = |cpu: Option<(f64, f64)>| {
        let joined = held.joined.max(1) as f64;
        cpu.map(|(user, system)| (user * 1e6 / joined, system * 1e6 / joined))
    };
    IdleReport {
        transport: config.transport,
        server_us_per_join: per_join(held.server_cpu),
        generator_us_per_join: per_join(held.generator_cpu),
        clients: config.clients,
        rooms: config.rooms,
        processes,
        fd_limit: crate::fd_limit(),
        server_processes: config.servers.pids.len(),
        joined: held.joined,
        failed: held.failed,
        closed: held.closed,
        connect_seconds: held.connect_seconds,
        joins_per_s: held.joined as f64 / held.connect_seconds.max(0.001),
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        kib_per_connection: per_connection,
        server_sockets,
    }
}

/// Starts the workers, waits until each has joined its share, measures after the settle time and lets them close.
async fn hold_in_workers(config: &IdleConfig, workers: &Workers) -> (Held, Option<u64>, Option<Vec<usize>>) {
    let started = Instant::now();
    let cpu_before = config.servers.cpu_seconds();
    let concurrency = config.concurrency.div_ceil(workers.count).max(1);
    let mut running = Vec::new();
    let mut failed = 0;
    for part in 0..workers.count {
        let share = Share {
            addr: config.addr,
            indices: workers::share(config.clients, workers.count, part),
            rooms: config.rooms,
            concurrency,
            transport: config.transport,
        };
        let size = share.indices.len();
        match Worker::spawn(&workers.exe, &Job::Idle(share)) {
            Ok(worker) => running.push((worker, size)),
            Err(error) => {
                crate::warn("idle", &format!("worker {part} did not start: {error}"));
                failed += size;
            }
        }
    }
    let (mut joined, mut closed) = (0, 0);
    let mut kept = Vec::new();
    for ((worker, mut reports), size) in running {
        match reports.next::<share::Report>().await {
            Ok(share::Report::Joined { joined: share_joined, failed: share_failed, .. }) => {
                joined += share_joined;
                failed += share_failed;
                kept.push((worker, reports));
            }
            other => {
                crate::warn("idle", &format!("worker failed: {other:?}"));
                failed += size;
            }
        }
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    let server_cpu = servers::cpu_between(cpu_before, config.servers.cpu_seconds());
    tokio::time::sleep(config.settle).await;
    let (rss_after, sockets) = (config.servers.rss_kib(), config.servers.sockets());
    for (worker, reports) in &mut kept {
        let answer = match worker.send(&share::CountClosed).await {
            Ok(()) => reports.next::<share::Report>().await,
            Err(error) => Err(error),
        };
        match answer {
            Ok(share::Report::Closed { closed: share_closed }) => closed += share_closed,
            other => crate::warn("idle", &format!("worker did not count: {other:?}")),
        }
    }
    let held = Held { joined, failed, closed, connect_seconds, server_cpu, generator_cpu: None };
    futures::future::join_all(kept.into_iter().map(|(worker, _)| worker.finish(Duration::from_secs(60)))).await;
    (held, rss_after, sockets)
}
