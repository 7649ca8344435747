//! The application's channels: chat business logic on top of the generic channel machinery, and the opt-in
//! `bench:*` channel for load generators.

pub mod bench;
pub mod room;

pub use bench::BenchChannel;
pub use room::RoomChannel;
