//! `/{room}`: the chat room. The page is rendered on the server with the latest history (no empty flash); the room
//! itself is an island whose WASM connects the realtime client.
//!
//! * `page`: the route and the `Room` island; its views: `header` (where, as whom, rename, copy link, alerts),
//!   `sidebar` (rooms I'm in), `messages`, `people` (who's online), `parts` (banner, composer).
//! * `state`: the signals the views render and the pure display rules; `reading`: days, groups, links and mentions;
//!   `html`: the escaper for the views rendered as HTML strings;
//!   `visited`: the rooms this browser opened; `actions`: what the views ask for.
//! * `session`: everything one open room knows and decides, without I/O; `live` (browser only): the glue that
//!   connects the session to the socket, the timers and the signals; `watch` (browser only): the sidebar's other
//!   rooms over the same socket; `connect`: starts it where there is a browser.

pub mod actions;
mod connect;
mod header;
pub(crate) mod html;
#[cfg(target_arch = "wasm32")]
pub(crate) mod live;
mod messages;
mod page;
mod parts;
mod people;
pub mod reading;
pub mod session;
mod sidebar;
pub mod state;
pub mod visited;
#[cfg(target_arch = "wasm32")]
mod watch;

pub use page::RoomPage;
