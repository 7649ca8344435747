//! Load generator for the chat server: native Phoenix-protocol clients and the scenarios that measure the server.
//!
//! * [`frames`]: every frame sent and read, built and parsed through the `protocol` crate's typed payloads.
//! * [`client`]: a minimal V2 client (connect, join, push) on tokio-tungstenite; [`spread`]: connections over many
//!   loopback source addresses, the shared join, `/proc` CPU readings.
//! * [`latency`]: percentiles and the latency summary the reports share.
//! * [`broadcast`]: broadcast round trips as one room grows (Hashrocket method) and server CPU per delivered message.
//! * [`chat`]: users in rooms, a steady message rate per room; delivery latency and throughput.
//! * [`idle`]: many joined idle connections; server memory per connection and join rate.
//! * [`ingest`]: durable `message:new` throughput and ack latency.
//! * [`storm`]: the presence join storm: N clients join one room at once; every one must converge to N members.
//!
//! Each scenario's `run` returns a report that serializes to JSON and prints its own table through `Display`.

pub mod broadcast;
pub mod chat;
pub mod client;
pub mod frames;
pub mod idle;
pub mod ingest;
pub mod latency;
pub mod spread;
pub mod storm;

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
