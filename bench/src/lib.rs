//! Load generator for the chat server: native Phoenix-protocol clients and the scenarios that measure the server.
//!
//! * [`client`]: a minimal V2 client (connect, join, push) on tokio-tungstenite; [`spread`]: connections over many
//!   loopback source addresses, `/proc` readings, percentiles.
//! * [`broadcast`]: broadcast round trips as one room grows (Hashrocket method) and server CPU per delivered message.
//! * [`chat`]: users in rooms, a steady message rate per room; delivery latency and throughput.
//! * [`idle`]: many joined idle connections; server memory per connection and join rate.
//! * [`ingest`]: durable `message:new` throughput and ack latency.
//! * [`storm`]: the presence join storm: N clients join one room at once; every one must converge to N members.

pub mod broadcast;
pub mod chat;
pub mod client;
pub mod idle;
pub mod ingest;
pub mod spread;
pub mod storm;

/// Raises this process's open-file limit to its hard limit (each client is a socket).
pub fn raise_fd_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024)
}
