//! The application's channels: chat business logic on top of the generic channel machinery, and the opt-in
//! `bench:*` channel for load generators. `post` is the posting path `message:new` shares with the HTTP API; `admin`
//! is the operators' `admin:stats` channel and its once-a-second sampler.

mod admin;
mod bench;
mod post;
mod room;

pub(crate) use admin::{
    AdminStatsChannel,
    sampler::{Sampler, StatsRing},
};
pub(crate) use bench::BenchChannel;
pub(crate) use post::{Draft, Posting};
pub(crate) use room::{HistoryBudget, RoomChannel};
