//! Wire and domain types shared by the chat server and its Rust/WASM client.
//!
//! This crate is the single source in code for the contracts in `chat-protocol.md` and the Phoenix Channels wire
//! format in `phoenix-protocol.md`. It depends on serde only, so it compiles for native targets and `wasm32`.

pub mod chat;
pub mod events;
pub mod frame;
pub mod names;
pub mod presence;
pub mod reasons;
pub mod serializer;
