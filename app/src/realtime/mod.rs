//! The realtime client: a faithful Rust reimplementation of phoenix.js (socket, channel, push, presence), shared by the
//! browser app (WASM) and native tests.
//!
//! * [`socket`]: the sans-I/O state machine ([`SocketCore`](socket::SocketCore)): refs, send buffer, heartbeat,
//!   reconnect; [`channel`]: join/rejoin/leave and push buffering on top of it; [`push`]: push outcomes.
//! * [`history`]: a room's messages by id and the `last_seen_id` cursor the join params send.
//! * [`backoff`]: phoenix.js's reconnect and rejoin schedules, with jitter.
//! * [`presence`]: phoenix.js `Presence` on the `protocol` crate's sync algorithms.
//! * `client` (wasm32, or feature `native`): the async driver with `Socket`/`ChannelHandle` handles;
//!   [`transport`]: the WebSocket and phoenix.js's long poll behind one small trait (the browser's WebSocket and
//!   `fetch`, or tokio-tungstenite and hyper natively), and the memory of the long-poll fallback.
//!
//! The state machines never touch a clock or a socket: a driver feeds them events and the time, and performs their
//! outputs. That is how the same code runs over the browser WebSocket and, in tests, over tokio.

pub mod backoff;
pub mod channel;
#[cfg(any(target_arch = "wasm32", feature = "native"))]
pub mod client;
pub mod history;
pub mod presence;
pub mod push;
#[cfg(any(target_arch = "wasm32", feature = "native"))]
mod runtime;
pub mod socket;
pub mod transport;

#[cfg(test)]
mod tests;
