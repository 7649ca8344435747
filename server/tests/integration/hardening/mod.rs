//! What a hostile client can try, and the refusal it gets while everyone else carries on: one module per surface.
//! Each test names the row of the hardening table in docs/protocol.md §10.5 it covers.

mod connections;
mod forms;
mod payloads;
