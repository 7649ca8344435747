//! The application's channels: chat business logic on top of the generic channel machinery, and the opt-in
//! `bench:*` channel for load generators.

mod bench;
mod room;

pub(crate) use bench::BenchChannel;
pub(crate) use room::{HistoryBudget, RoomChannel};
