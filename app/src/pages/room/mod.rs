//! `/{room}`: the chat room. The page is rendered on the server with the latest history (no empty flash); the room
//! itself is an island whose WASM connects the realtime client.
//!
//! * `page`: the route and the `Room` island; `parts`: its components (banner, messages, composer, who's online).
//! * `state`: the signals the views render and the pure display rules; `actions`: what the views ask for.
//! * `session`: everything one open room knows and decides, without I/O; `live` (browser only): the glue that
//!   connects the session to the socket, the timers and the signals; `connect`: starts it where there is a browser.

pub mod actions;
mod connect;
#[cfg(target_arch = "wasm32")]
mod live;
mod page;
mod parts;
pub mod session;
pub mod state;

pub use page::RoomPage;
