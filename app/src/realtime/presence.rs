//! phoenix.js `Presence` for a channel: feed it the channel's `presence_state` / `presence_diff` messages (with the
//! channel's join_ref at arrival) and read `list()`. Diffs that arrive before the state of the current join are held
//! and applied after it, as phoenix.js does; the algorithms are `protocol::presence`'s.

use protocol::{
    events::{PRESENCE_DIFF, PRESENCE_STATE},
    frame::Payload,
    presence::{ClientPresence, Presence as Entry, PresenceDiff, PresenceEvent, PresenceState},
    typed::from_json,
};

/// The presence of one channel.
#[derive(Default)]
pub struct ChannelPresence {
    inner: ClientPresence,
}

impl ChannelPresence {
    /// Empty, waiting for the first state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Handles a channel message if it is a presence event; returns the join/leave/sync events it caused (empty for
    /// other events, malformed payloads, or diffs held until the state arrives).
    pub fn handle(&mut self, event: &str, payload: &Payload, channel_join_ref: Option<&str>) -> Vec<PresenceEvent> {
        let Payload::Json(value) = payload else { return Vec::new() };
        let mut events: Vec<PresenceEvent> = Vec::new();
        match event {
            PRESENCE_STATE => {
                if let Ok(state) = from_json::<PresenceState>(value) {
                    self.inner.on_state(channel_join_ref, state, &mut events);
                }
            }
            PRESENCE_DIFF => {
                if let Ok(diff) = from_json::<PresenceDiff>(value) {
                    self.inner.on_diff(channel_join_ref, diff, &mut events);
                }
            }
            _ => {}
        }
        events
    }

    /// phoenix.js `presence.list(chooser)`.
    pub fn list<T>(&self, chooser: impl FnMut(&str, &Entry) -> T) -> Vec<T> {
        self.inner.list(chooser)
    }

    /// The synced state.
    pub fn state(&self) -> &PresenceState {
        self.inner.state()
    }
}
