//! The application's channels: chat business logic on top of the generic channel machinery.

pub mod room;

pub use room::RoomChannel;
