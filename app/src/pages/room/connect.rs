//! Going live: the one place that knows the live room exists only in the browser.

use super::{actions::RoomActions, state::RoomState};
use crate::api::RoomPageData;

/// Starts the live room: connects, joins, keeps `room` current and serves `actions`. Off the browser (the server
/// renders the same island) there is no socket to open and this does nothing.
pub(super) fn go_live(room: RoomState, actions: RoomActions, page: RoomPageData) {
    #[cfg(target_arch = "wasm32")]
    super::live::start(room, actions.serve(), page);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (room, actions, page);
}
