//! `bench`: load scenarios against a running chat server. Each prints a table and can write its report as JSON.

use std::time::Duration;

use bench::{
    broadcast::{self, BroadcastConfig},
    chat::{self, ChatConfig},
    idle::{self, IdleConfig},
    ingest::{self, IngestConfig},
    storm::{self, StormConfig},
};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "bench", about = "Load generator for the chat server")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Presence join storm: N clients join one room at once; every client must see all N members.
    Storm {
        /// Socket endpoint.
        #[arg(long, default_value = "ws://127.0.0.1:3000/socket/websocket")]
        url: String,
        /// Number of clients.
        #[arg(long, default_value_t = 5000)]
        clients: usize,
        /// Room slug (use a fresh one per run).
        #[arg(long, default_value = "join-storm")]
        room: String,
        /// Handshakes in flight at once.
        #[arg(long, default_value_t = 500)]
        concurrency: usize,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// Write the report as JSON here.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
    },
    /// Idle connections: N clients joined to R rooms; server RSS per connection and join rate.
    Idle {
        /// Server address.
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: std::net::SocketAddr,
        /// Connections.
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
        /// Rooms.
        #[arg(long, default_value_t = 100)]
        rooms: usize,
        /// Handshakes in flight at once.
        #[arg(long, default_value_t = 500)]
        concurrency: usize,
        /// The server's pid (for its RSS).
        #[arg(long)]
        server_pid: Option<u32>,
        /// Seconds to hold the connections before measuring.
        #[arg(long, default_value_t = 3)]
        settle: u64,
        /// Write the report as JSON here.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
    },
    /// Broadcast round trips in one growing room (Hashrocket method); needs a server run with `--bench-topics`.
    Broadcast {
        /// Server address.
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: std::net::SocketAddr,
        /// Member counts to step through, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "1000,2000,5000,10000")]
        steps: Vec<usize>,
        /// Broadcasts measured per step.
        #[arg(long, default_value_t = 40)]
        broadcasts: usize,
        /// Broadcasts in flight at once.
        #[arg(long, default_value_t = 4)]
        inflight: usize,
        /// Handshakes in flight while the room grows.
        #[arg(long, default_value_t = 500)]
        concurrency: usize,
        /// Seconds after which a broadcast that has not reached everyone counts as lost.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
        /// The server's pid (for its CPU time per delivered message).
        #[arg(long)]
        server_pid: Option<u32>,
        /// The p95 bound in milliseconds.
        #[arg(long, default_value_t = 500.0)]
        bound_ms: f64,
        /// Write the report as JSON here.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
    },
    /// Chat traffic: users in rooms, a fixed message rate per room; delivery latency and throughput.
    Chat {
        /// Server address (start it with a `--max-messages-per-10s` above 10 × the per-room rate).
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: std::net::SocketAddr,
        /// Users.
        #[arg(long, default_value_t = 10_000)]
        users: usize,
        /// Rooms.
        #[arg(long, default_value_t = 1_000)]
        rooms: usize,
        /// Messages per second per room.
        #[arg(long, default_value_t = 1.0)]
        rate: f64,
        /// Seconds of sending.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Handshakes in flight while connecting.
        #[arg(long, default_value_t = 500)]
        concurrency: usize,
        /// Write the report as JSON here.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
    },
    /// Durable ingest: `message:new` throughput and ack latency (acks come after the commit).
    Ingest {
        /// Socket endpoint.
        #[arg(long, default_value = "ws://127.0.0.1:3000/socket/websocket")]
        url: String,
        /// Connections.
        #[arg(long, default_value_t = 200)]
        clients: usize,
        /// Rooms the clients are spread over.
        #[arg(long, default_value_t = 200)]
        rooms: usize,
        /// Outstanding pushes per client when no rate is given.
        #[arg(long, default_value_t = 4)]
        inflight: usize,
        /// Fixed total rate (messages per second); omit to go as fast as possible.
        #[arg(long)]
        rate: Option<f64>,
        /// Seconds of sending.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Body size in bytes.
        #[arg(long, default_value_t = 100)]
        body_bytes: usize,
        /// Write the report as JSON here.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
    },
}

fn emit(table: &str, json: Option<std::path::PathBuf>, report: &impl serde::Serialize) {
    #[allow(clippy::print_stdout)]
    {
        println!("{table}");
    }
    if let Some(path) = json {
        let _ = std::fs::write(path, serde_json::to_string_pretty(report).unwrap_or_default());
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let fd_limit = bench::raise_fd_limit();
    match cli.scenario {
        Scenario::Idle { addr, clients, rooms, concurrency, server_pid, settle, json } => {
            let config =
                IdleConfig { addr, clients, rooms, concurrency, server_pid, settle: Duration::from_secs(settle) };
            let report = idle::run(config).await;
            let kib = |v: Option<u64>| v.map_or("n/a".to_owned(), |v| format!("{v} KiB"));
            let table = format!(
                "idle ({clients} clients, {rooms} rooms, fd limit {fd_limit})\n  joined         {}\n  failed         {}\n  joins/s        {:.0}\n  server RSS     {} → {}\n  per connection {}",
                report.joined,
                report.failed,
                report.joins_per_s,
                kib(report.rss_before_kib),
                kib(report.rss_after_kib),
                report.kib_per_connection.map_or("n/a".to_owned(), |v| format!("{v:.1} KiB")),
            );
            emit(&table, json, &report);
            std::process::ExitCode::SUCCESS
        }
        Scenario::Broadcast { addr, steps, broadcasts, inflight, concurrency, timeout, server_pid, bound_ms, json } => {
            let config = BroadcastConfig {
                addr,
                steps,
                broadcasts,
                inflight,
                concurrency,
                timeout: Duration::from_secs(timeout),
                server_pid,
                bound_ms,
            };
            let report = broadcast::run(config).await;
            let mut table = format!(
                "broadcast ({broadcasts} per step, {inflight} in flight, fd limit {fd_limit})\n  clients  done  lost   p50 ms   p95 ms   max ms   msgs/s   server µs/msg (user)"
            );
            for step in &report.steps {
                table.push_str(&format!(
                    "\n  {:>7} {:>5} {:>5} {:>8.1} {:>8.1} {:>8.1} {:>8.0} {:>15} ({})",
                    step.clients,
                    step.completed,
                    step.lost,
                    step.p50_ms,
                    step.p95_ms,
                    step.max_ms,
                    step.delivered_per_s,
                    step.server_cpu_us_per_message.map_or("n/a".to_owned(), |v| format!("{v:.2}")),
                    step.server_user_us_per_message.map_or("n/a".to_owned(), |v| format!("{v:.2}")),
                ));
            }
            table.push_str(&format!(
                "\n  largest with p95 < {bound_ms} ms: {}\n  failed connections: {}",
                report.largest_within_bound.map_or("none".to_owned(), |n| n.to_string()),
                report.failed_connections
            ));
            emit(&table, json, &report);
            std::process::ExitCode::SUCCESS
        }
        Scenario::Chat { addr, users, rooms, rate, seconds, concurrency, json } => {
            let config = ChatConfig {
                addr,
                users,
                rooms,
                rate_per_room: rate,
                duration: Duration::from_secs(seconds),
                concurrency,
            };
            let report = chat::run(config).await;
            let table = format!(
                "chat ({users} users, {rooms} rooms, {rate} msg/s per room, {seconds} s)\n  joined         {}\n  sent           {}\n  delivered      {}\n  delivered/s    {:.0}\n  p50            {:.2} ms\n  p95            {:.2} ms\n  p99            {:.2} ms\n  max            {:.2} ms",
                report.joined,
                report.sent,
                report.delivered,
                report.delivered_per_s,
                report.p50_ms,
                report.p95_ms,
                report.p99_ms,
                report.max_ms,
            );
            emit(&table, json, &report);
            std::process::ExitCode::SUCCESS
        }
        Scenario::Ingest { url, clients, rooms, inflight, rate, seconds, body_bytes, json } => {
            let config = IngestConfig {
                url,
                clients,
                rooms,
                inflight,
                rate,
                duration: Duration::from_secs(seconds),
                body_bytes,
            };
            let report = ingest::run(config).await;
            let table = format!(
                "ingest ({clients} clients, {rooms} rooms, rate {})\n  acked          {}\n  errors         {}\n  acked/s        {:.0}\n  ack p50        {:.2} ms\n  ack p95        {:.2} ms\n  ack p99        {:.2} ms\n  ack max        {:.2} ms",
                rate.map_or("max".to_owned(), |r| format!("{r}/s")),
                report.acked,
                report.errors,
                report.acked_per_s,
                report.p50_ms,
                report.p95_ms,
                report.p99_ms,
                report.max_ms,
            );
            emit(&table, json, &report);
            std::process::ExitCode::SUCCESS
        }
        Scenario::Storm { url, clients, room, concurrency, timeout, json } => {
            let config = StormConfig { url, clients, room, concurrency, timeout: Duration::from_secs(timeout) };
            let report = storm::run(config).await;
            let text = serde_json::to_string_pretty(&report).unwrap_or_default();
            let table = format!(
                "join storm (fd limit {fd_limit})\n  clients        {}\n  joined         {}\n  failed         {}\n  converged      {}\n  all joined     {:.2} s\n  all converged  {}\n  frames         {}\n  bytes          {:.1} MB",
                report.clients,
                report.joined,
                report.failed,
                report.converged,
                report.all_joined_s,
                report.all_converged_s.map_or("no".to_owned(), |s| format!("{s:.2} s")),
                report.frames,
                report.bytes as f64 / 1e6,
            );
            #[allow(clippy::print_stdout)]
            {
                println!("{table}");
            }
            if let Some(path) = json {
                let _ = std::fs::write(path, text);
            }
            if report.converged == report.clients {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}
