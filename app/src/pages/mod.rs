//! One module per page of the app.

pub mod account;
pub mod dashboard;
pub mod home;
pub mod not_found;
pub mod room;
