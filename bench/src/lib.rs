//! Load generator for the chat server: native Phoenix-protocol clients and the scenarios that measure the server.
//!
//! * [`frames`]: every frame sent and read, built and parsed through the `protocol` crate's typed payloads.
//! * [`client`]: a minimal V2 client (connect, join, push) on tokio-tungstenite; [`spread`]: connections over many
//!   loopback source addresses and the shared join.
//! * [`longpoll`]: a long-poll client (`/socket/longpoll`: open a session, join, POST frames, poll) on HTTP/1.1
//!   keep-alive connections of its own; [`Transport`] picks it or the WebSocket in the scenarios that take both.
//! * [`servers`]: the measured server processes (one or a cluster's several): RSS, CPU time and sockets from `/proc`.
//! * [`workers`]: worker processes (`bench worker`) for scenarios that need more sockets than one process may open.
//! * [`latency`]: percentiles and the latency summary the reports share.
//! * [`broadcast`]: broadcast round trips as one room grows (Hashrocket method) and server CPU per delivered message;
//!   with workers, members in several processes timed against one shared clock.
//! * [`chat`]: users in rooms, a steady message rate per room; delivery latency and throughput.
//! * [`idle`]: many joined idle connections; server memory per connection and join rate (with workers beyond one
//!   process's open-file limit).
//! * [`ingest`]: durable `message:new` throughput and ack latency.
//! * [`roundtrip`]: `bench latency`: clients in rooms over either transport, one sender per room; the time from a send
//!   to each other member's receipt.
//! * [`storm`]: the presence join storm: N clients join one room at once; every one must converge to N members.
//! * [`soak`]: a server binary the bench starts, `kill -9`s and restarts under chat, churn, slow consumers,
//!   malformed frames and login failures for N minutes; then every acknowledged message must be stored once and
//!   delivered to every member that stayed, the log free of panics and the memory back at its baseline.
//!
//! Each scenario's `run` returns a report that serializes to JSON and prints its own table through `Display`.

pub mod broadcast;
pub mod chat;
pub mod client;
pub mod frames;
pub mod idle;
pub mod ingest;
pub mod latency;
pub mod longpoll;
pub mod roundtrip;
pub mod servers;
pub mod soak;
pub mod spread;
pub mod storm;
pub mod workers;

/// How the clients of a scenario reach the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// `/socket/websocket`.
    #[default]
    #[value(name = "websocket")]
    WebSocket,
    /// `/socket/longpoll` (Phoenix's long poll: one waiting GET per client, frames POSTed as ndjson).
    #[value(name = "longpoll")]
    LongPoll,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::WebSocket => "websocket",
            Self::LongPoll => "longpoll",
        })
    }
}

/// The WebSocket settings of every bench client. tungstenite zero-fills its whole read chunk (128 KiB by default)
/// before each read; a bench client reads one small frame per wakeup, so with the default that memset was a third of
/// the machine's CPU in a 50,000-member broadcast (`perf`, 2026-11-29). 4 KiB holds every frame but a large
/// `presence_state`, which then takes a few reads.
pub fn ws_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4096)
}

/// Raises this process's open-file limit to its hard limit (each client is a socket).
pub fn raise_fd_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024)
}

/// This process's open-file limit now (the soft limit), as the reports show it; 0 if it cannot be read.
pub fn fd_limit() -> u64 {
    rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(0, |(soft, _)| soft)
}

/// A report value, or `n/a` when it could not be measured (no server pid given, say).
pub fn or_na<T>(value: Option<T>, show: impl FnOnce(T) -> String) -> String {
    value.map_or_else(|| "n/a".to_owned(), show)
}

/// A problem worth a line on stderr (stdout carries the report, and a worker's stdout its reports).
pub fn warn(scenario: &str, message: &str) {
    #[allow(clippy::print_stderr)]
    {
        eprintln!("bench {scenario}: {message}");
    }
}
