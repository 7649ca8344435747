//! `bench`: load scenarios against a running chat server, and the soak, which runs a server of its own. Each report
//! prints its own table (`Display`) and can be written as JSON; the storm exits with failure unless every client
//! converged, the soak unless every check passed.

use std::time::Duration;

use bench::{
    Transport,
    broadcast::{self, BroadcastConfig},
    chat::{self, ChatConfig},
    idle::{self, IdleConfig},
    ingest::{self, IngestConfig},
    roundtrip::{self, RoundTripConfig},
    servers::Servers,
    soak::{self, SoakConfig},
    storm::{self, StormConfig},
    workers::{self, Workers},
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
        /// The server's pid (for its RSS per connection once every client converged); repeated or comma separated
        /// for a cluster.
        #[arg(long = "server-pid", value_delimiter = ',')]
        server_pids: Vec<u32>,
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
        /// Members per room instead of `--rooms` (the rooms are `clients / room_size`, rounded up): `--room-size
        /// 5000` with 5,000 clients is one room of 5,000.
        #[arg(long, conflicts_with = "rooms")]
        room_size: Option<usize>,
        /// Handshakes in flight at once, in all (split over the workers).
        #[arg(long, default_value_t = 500)]
        concurrency: usize,
        /// The server's pid (for its RSS); repeated or comma separated for a cluster (RSS summed).
        #[arg(long = "server-pid", value_delimiter = ',')]
        server_pids: Vec<u32>,
        /// Worker processes holding the connections (each has its own open-file limit); 0: this process.
        #[arg(long, default_value_t = 0)]
        workers: usize,
        /// Seconds to hold the connections before measuring.
        #[arg(long, default_value_t = 3)]
        settle: u64,
        /// `longpoll`: idle long-poll sessions instead, each joined and holding one waiting poll.
        #[arg(long, value_enum, default_value_t = Transport::WebSocket)]
        transport: Transport,
        /// Write the report as JSON here.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
    },
    /// Round trips: clients in rooms over WebSocket or long poll, one sender per room at a fixed rate; the time from
    /// a send to each other member's receipt.
    Latency {
        /// Server address.
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: std::net::SocketAddr,
        /// `websocket` or `longpoll`.
        #[arg(long, value_enum, default_value_t = Transport::WebSocket)]
        transport: Transport,
        /// Clients.
        #[arg(long, default_value_t = 1_000)]
        clients: usize,
        /// Rooms (client `i` joins room `i % rooms`; the first member of each room sends).
        #[arg(long, default_value_t = 100)]
        rooms: usize,
        /// Messages per second per room.
        #[arg(long, default_value_t = 1.0)]
        rate: f64,
        /// Seconds of sending.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Connects and joins in flight at once.
        #[arg(long, default_value_t = 200)]
        concurrency: usize,
        /// The server's pid (for its CPU per delivered copy); repeated or comma separated for a cluster.
        #[arg(long = "server-pid", value_delimiter = ',')]
        server_pids: Vec<u32>,
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
        /// Handshakes in flight while the room grows, in all (split over the workers).
        #[arg(long, default_value_t = 500)]
        concurrency: usize,
        /// Seconds after which a broadcast that has not reached everyone counts as lost.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
        /// The server's pid (for its CPU time per delivered message); repeated or comma separated for a cluster.
        #[arg(long = "server-pid", value_delimiter = ',')]
        server_pids: Vec<u32>,
        /// Worker processes holding the members beyond the senders (each has its own open-file limit); 0: this
        /// process holds them all.
        #[arg(long, default_value_t = 0)]
        workers: usize,
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
    /// Soak: starts the server binary and runs chat, joins and leaves, reconnects, slow consumers, malformed frames,
    /// login failures and `kill -9` with restarts for N minutes; exits with failure unless every check passed.
    Soak {
        /// Minutes of workload (the end checks take about half a minute more).
        #[arg(long, default_value_t = 10.0)]
        minutes: f64,
        /// The server binary to run.
        #[arg(long, default_value = "target/release/server")]
        server_bin: std::path::PathBuf,
        /// The server's data directory (kept); default: a fresh one in the temp dir, removed if the soak passes.
        #[arg(long)]
        data_dir: Option<std::path::PathBuf>,
        /// Seed of every random choice (default: from the clock; the report prints it).
        #[arg(long)]
        seed: Option<u64>,
        /// Passed to the server; the probes' burst goes over it.
        #[arg(long)]
        max_messages_per_10s: Option<usize>,
        /// `kill -9`s during the run (default: one per four minutes, at least one).
        #[arg(long)]
        kills: Option<usize>,
        /// Chat rooms (a busy room comes on top).
        #[arg(long, default_value_t = 5)]
        rooms: usize,
        /// Residents per chat room.
        #[arg(long, default_value_t = 4)]
        residents_per_room: usize,
        /// One more flag for the server, as given (repeat it: `--server-arg=--flag --server-arg=value`).
        #[arg(long = "server-arg", allow_hyphen_values = true)]
        server_args: Vec<String>,
        /// Write the report as JSON here.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
    },
    /// A worker process of `idle` or `broadcast --workers N` (started by the bench itself).
    #[command(hide = true)]
    Worker {
        /// What to do, as JSON.
        #[arg(long)]
        job: String,
    },
}

/// Prints the report's table and, given a path, writes the report there as JSON.
fn emit(report: &(impl std::fmt::Display + serde::Serialize), json: Option<&std::path::Path>) {
    #[allow(clippy::print_stdout)]
    {
        println!("{report}");
    }
    if let Some(path) = json {
        let _ = std::fs::write(path, serde_json::to_string_pretty(report).unwrap_or_default());
    }
}

/// `count` worker processes re-executing this binary; `None` for 0 (or when the binary cannot be found).
fn worker_processes(count: usize) -> Option<Workers> {
    let exe = std::env::current_exe().ok()?;
    (count > 0).then_some(Workers { exe, count })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    bench::raise_fd_limit();
    match cli.scenario {
        Scenario::Idle {
            addr,
            clients,
            rooms,
            room_size,
            concurrency,
            server_pids,
            workers,
            settle,
            transport,
            json,
        } => {
            let config = IdleConfig {
                addr,
                transport,
                clients,
                rooms: room_size.map_or(rooms, |size| clients.div_ceil(size.max(1))),
                concurrency,
                servers: Servers::new(server_pids),
                settle: Duration::from_secs(settle),
                workers: worker_processes(workers),
            };
            emit(&idle::run(config).await, json.as_deref());
        }
        Scenario::Latency { addr, transport, clients, rooms, rate, seconds, concurrency, server_pids, json } => {
            let config = RoundTripConfig {
                addr,
                transport,
                clients,
                rooms,
                rate_per_room: rate,
                duration: Duration::from_secs(seconds),
                concurrency,
                servers: Servers::new(server_pids),
            };
            emit(&roundtrip::run(config).await, json.as_deref());
        }
        Scenario::Broadcast {
            addr,
            steps,
            broadcasts,
            inflight,
            concurrency,
            timeout,
            server_pids,
            workers,
            bound_ms,
            json,
        } => {
            let config = BroadcastConfig {
                addr,
                steps,
                broadcasts,
                inflight,
                concurrency,
                timeout: Duration::from_secs(timeout),
                servers: Servers::new(server_pids),
                bound_ms,
                workers: worker_processes(workers),
            };
            emit(&broadcast::run(config).await, json.as_deref());
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
            emit(&chat::run(config).await, json.as_deref());
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
            emit(&ingest::run(config).await, json.as_deref());
        }
        Scenario::Worker { job } => {
            if let Err(error) = workers::run_job(&job).await {
                bench::warn("worker", &format!("bad job: {error}"));
                return std::process::ExitCode::FAILURE;
            }
        }
        Scenario::Soak {
            minutes,
            server_bin,
            data_dir,
            seed,
            max_messages_per_10s,
            kills,
            rooms,
            residents_per_room,
            server_args,
            json,
        } => {
            let seed = seed.unwrap_or_else(|| {
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
            });
            let config = SoakConfig {
                duration: Duration::from_secs_f64(minutes.max(0.1) * 60.0),
                server_bin,
                data_dir,
                seed,
                max_messages_per_10s,
                kills,
                rooms,
                residents_per_room,
                server_args,
            };
            // Ctrl-C drops the soak, and with it the server it started.
            let report = tokio::select! {
                report = soak::run(config) => report,
                _ = tokio::signal::ctrl_c() => {
                    bench::warn("soak", "interrupted");
                    return std::process::ExitCode::FAILURE;
                }
            };
            match report {
                Ok(report) => {
                    emit(&report, json.as_deref());
                    if !report.passed() {
                        return std::process::ExitCode::FAILURE;
                    }
                }
                Err(error) => {
                    bench::warn("soak", &error.to_string());
                    return std::process::ExitCode::FAILURE;
                }
            }
        }
        Scenario::Storm { url, clients, room, concurrency, timeout, server_pids, json } => {
            let config = StormConfig {
                url,
                clients,
                room,
                concurrency,
                timeout: Duration::from_secs(timeout),
                servers: Servers::new(server_pids),
            };
            let report = storm::run(config).await;
            emit(&report, json.as_deref());
            // The storm is a pass/fail check: every client must have converged.
            if report.converged != report.clients {
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    std::process::ExitCode::SUCCESS
}
