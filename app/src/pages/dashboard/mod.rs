//! `/dashboard`: the operators' live view of every node (docs/protocol.md §7.6), built from the app's own parts: an
//! SSR route that only operators get (a guest is sent to `/login`, any other account gets a 403 page), whose one
//! island joins `admin:stats` on its own socket with the account's token.
//!
//! * `page`: the route, the server function that decides who may see it, and the `Dashboard` island.
//! * `board`: what the island knows, each node's samples of the last five minutes (pure, unit-tested natively).
//! * `view`: the board as one HTML string (numbers, SVG sparklines, the busiest rooms): one `inner_html` instead of a
//!   view per figure keeps the WASM every page shares small.
//! * `live` (browser only): the socket, the join and the samples into the board.

pub mod board;
#[cfg(target_arch = "wasm32")]
mod live;
mod page;
mod view;

pub use page::{DashboardAccess, DashboardPage, dashboard_viewer};
