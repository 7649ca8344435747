//! phoenix.js's WebSocket → long-poll fallback (`longPollFallbackMs`, docs/phoenix-protocol.md §4.6), as part of
//! [`SocketCore`]: pure, with the time fed in.
//!
//! While the WebSocket has never proven itself, each connect over it is watched: if it has not opened within the
//! fallback time, or fails before opening, the socket switches to long poll. If it opens, it must answer a health
//! check (a heartbeat) within the same time, or the socket switches all the same. Once on long poll the socket stays
//! there; if the WebSocket never passed a health check, the driver is told to remember long poll for the browser
//! session ([`Output::RememberLongPoll`]), and the next page load starts on it.
//!
//! One deliberate difference from phoenix.js, which watches every reconnect over the WebSocket: once a WebSocket
//! has passed a health check, later reconnects are not watched, so a server restart (every reconnect attempt
//! refused for a while) does not move a healthy page to long poll for the rest of its life.

use protocol::{
    events::{HEARTBEAT, PHOENIX_TOPIC},
    frame::{Frame, Payload},
};
use serde_json::json;

use super::{CONNECTION_CLOSED, ConnState, Output, SocketCore};
use crate::realtime::{
    channel::{ChannelId, ChannelState},
    transport::TransportKind,
};

/// The fallback's state, when the socket has one.
#[derive(Debug)]
pub(super) struct Fallback {
    after_ms: u64,
    /// A WebSocket answered a health check once.
    primary_healthy: bool,
    /// The socket moved to long poll through the fallback (or the session remembered it had to).
    fell_back: bool,
    /// The current connect over the WebSocket, while watched.
    watch: Option<Watch>,
}

#[derive(Debug)]
struct Watch {
    /// When to give up on the WebSocket.
    deadline: u64,
    opened: bool,
    /// The ref of the health-check heartbeat.
    ping: Option<String>,
}

impl Fallback {
    pub(super) fn new(after_ms: u64) -> Self {
        Self { after_ms, primary_healthy: false, fell_back: false, watch: None }
    }

    pub(super) fn deadline(&self) -> Option<u64> {
        self.watch.as_ref().map(|w| w.deadline)
    }
}

impl SocketCore {
    /// The browser session remembered that long poll was needed (phoenix.js's `phx:fallback:LongPoll`): with the
    /// fallback on, the socket connects over long poll from the start. Call before connecting.
    pub fn use_remembered_long_poll(&mut self) {
        if let Some(fallback) = &mut self.fallback {
            fallback.fell_back = true;
            self.transport = TransportKind::LongPoll;
        }
    }

    /// The transport of the current (or next) connection.
    pub fn transport(&self) -> TransportKind {
        self.transport
    }

    /// A connect is starting: watch it if it goes over a WebSocket that has not proven itself.
    pub(super) fn watch_connect(&mut self, now: u64) {
        let on_primary = self.transport == TransportKind::WebSocket;
        if let Some(fallback) = &mut self.fallback {
            fallback.watch = (on_primary && !fallback.primary_healthy).then(|| Watch {
                deadline: now + fallback.after_ms,
                opened: false,
                ping: None,
            });
        }
    }

    /// The connection opened: a watched WebSocket gets its health check; long poll reached through the fallback is
    /// remembered unless a WebSocket ever worked. Called after the buffer was flushed and channels rejoined.
    pub(super) fn fallback_opened(&mut self, now: u64) {
        let Some(fallback) = &self.fallback else { return };
        if self.transport == TransportKind::LongPoll {
            if fallback.fell_back && !fallback.primary_healthy {
                self.outputs.push_back(Output::RememberLongPoll);
            }
            return;
        }
        if fallback.watch.is_none() {
            return;
        }
        let msg_ref = self.make_ref();
        if let Some(fallback) = &mut self.fallback
            && let Some(watch) = &mut fallback.watch
        {
            watch.opened = true;
            watch.deadline = now + fallback.after_ms;
            watch.ping = Some(msg_ref.clone());
        }
        self.send(Frame::new(None, Some(&msg_ref), PHOENIX_TOPIC, HEARTBEAT, Payload::Json(json!({}))));
    }

    /// A frame with `msg_ref` arrived: the health check's reply makes the WebSocket healthy for good.
    pub(super) fn fallback_reply(&mut self, msg_ref: Option<&str>) {
        let Some(fallback) = &mut self.fallback else { return };
        if msg_ref.is_some() && fallback.watch.as_ref().and_then(|w| w.ping.as_deref()) == msg_ref {
            fallback.primary_healthy = true;
            fallback.watch = None;
        }
    }

    /// Whether the watched WebSocket failed before it opened (an error, or a close): then it is time to fall back.
    pub(super) fn failed_before_open(&self) -> bool {
        self.fallback.as_ref().and_then(|f| f.watch.as_ref()).is_some_and(|w| !w.opened)
    }

    /// The connection closed: the next connect starts its own watch.
    pub(super) fn unwatch(&mut self) {
        if let Some(fallback) = &mut self.fallback {
            fallback.watch = None;
        }
    }

    /// The watch's time is up at `now`.
    pub(super) fn fallback_due(&self, now: u64) -> bool {
        self.fallback.as_ref().and_then(Fallback::deadline).is_some_and(|d| d <= now)
    }

    /// phoenix.js `replaceTransport(LongPoll)` then `transportConnect()`: closes the WebSocket and connects over
    /// long poll. Frames still buffered go out on long poll. Channels that had joined over the WebSocket error
    /// (`connection_closed`) and rejoin once long poll opens; a join the WebSocket never answered is sent again
    /// then, without an error: for the page nothing was lost, it is still connecting. For the same reason a switch
    /// is not reported as a close (the socket reports open again once long poll opens).
    pub(super) fn fall_back(&mut self, now: u64) {
        let Some(fallback) = &mut self.fallback else { return };
        fallback.watch = None;
        fallback.fell_back = true;
        self.transport = TransportKind::LongPoll;
        let was_open = self.state == ConnState::Open;
        self.close_was_clean = true;
        self.reconnect.reset();
        self.clear_heartbeat();
        if self.state != ConnState::Closed {
            let reason = "falling back to long poll".to_owned();
            self.outputs.push_back(Output::Close { conn: self.conn, code: 1000, reason });
        }
        self.state = ConnState::Closed;
        self.conn += 1;
        if was_open {
            let joined: Vec<ChannelId> =
                self.channels.iter().filter(|c| c.state == ChannelState::Joined).map(|c| c.id).collect();
            for channel in self.channels.iter_mut().filter(|c| c.state == ChannelState::Joining) {
                channel.state = ChannelState::Errored;
                channel.join_deadline = None;
            }
            for id in joined {
                self.channel_errored(id, CONNECTION_CLOSED, now);
            }
        }
        self.connect(now);
    }
}

#[cfg(test)]
mod tests;
