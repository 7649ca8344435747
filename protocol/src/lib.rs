//! Wire and domain types shared by the chat server, its Rust/WASM client and the load generator.
//!
//! This crate is the single source in code for the chat protocol (`docs/protocol.md`) and the Phoenix Channels wire
//! format under it. It depends on serde only, so it compiles for native targets and `wasm32`.

#![warn(missing_docs)]

pub mod admin;
pub mod api;
pub mod chat;
pub mod events;
pub mod frame;
pub mod names;
pub mod presence;
pub mod probe;
pub mod reasons;
pub mod serializer;
pub mod text;
pub mod typed;
pub mod url;
