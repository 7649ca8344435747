//! The client socket as a pure state machine (phoenix.js `Socket` + the channel and push logic it drives).
//!
//! Sans I/O: the driver feeds it transport events, API calls and the current time in milliseconds, and drains
//! [`Output`]s (transport commands, channel events, push replies). Time only moves when the driver says so, which is
//! what makes every timeout, backoff and heartbeat here testable with plain unit tests.
//!
//! Behaviour follows phoenix.js 1.8: one ref counter shared by joins, pushes and heartbeats; a send buffer flushed in
//! order when the transport opens; a heartbeat every `heartbeat_ms` whose reply must arrive within the same interval;
//! reconnect on the phoenix schedule (plus jitter) unless the close was clean or had code 1000; channels that errored
//! rejoin with a fresh join_ref when the socket reopens. Over long poll there are no heartbeats (phoenix.js
//! `skipHeartbeat`); `fallback.rs` is phoenix.js's WebSocket → long-poll fallback.

mod channels;
mod fallback;

use std::collections::VecDeque;

use protocol::{
    events::{HEARTBEAT, PHOENIX_TOPIC},
    frame::{Frame, Payload},
    serializer::{WireFrame, decode_server, encode_client},
};
use serde_json::{Value, json};

use self::fallback::Fallback;
use super::{
    backoff::{RetryTimer, Schedule},
    channel::{Channel, ChannelId, ChannelState, ParamsFn},
    push::{PushId, PushReply},
    transport::{Target, TransportKind, longpoll::long_poll_url},
};

/// phoenix.js defaults.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Heartbeat interval, which is also how long a heartbeat reply may take.
pub const HEARTBEAT_MS: u64 = 30_000;

/// Connect-time query params, re-evaluated on every connect (fresh token, etc.).
pub type ConnectParamsFn = Box<dyn FnMut() -> Vec<(String, String)>>;

/// phoenix.js `authToken`, re-evaluated on every connect.
pub type AuthTokenFn = Box<dyn FnMut() -> String>;

/// Socket options.
pub struct SocketOptions {
    /// The WebSocket endpoint, e.g. `ws://host/socket/websocket`.
    pub endpoint: String,
    /// Query params for each connect.
    pub params: ConnectParamsFn,
    /// Push and join timeout.
    pub timeout_ms: u64,
    /// Heartbeat interval and reply timeout.
    pub heartbeat_ms: u64,
    /// Reconnect schedule.
    pub reconnect: Schedule,
    /// Rejoin schedule.
    pub rejoin: Schedule,
    /// Seed of the jitter generator (any value; the driver passes something random).
    pub seed: u64,
    /// The transport to connect with (phoenix.js `transport`).
    pub transport: TransportKind,
    /// phoenix.js `longPollFallbackMs`: fall back from the WebSocket to long poll when it has not proven itself
    /// within this time (off when `None`, as in phoenix.js; its generator uses 2500).
    pub long_poll_fallback_ms: Option<u64>,
    /// phoenix.js `authToken`: offered as a WebSocket subprotocol, or sent as `X-Phoenix-AuthToken` over long poll.
    pub auth_token: Option<AuthTokenFn>,
}

impl SocketOptions {
    /// phoenix.js defaults for `endpoint` with no params.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            params: Box::new(Vec::new),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            heartbeat_ms: HEARTBEAT_MS,
            reconnect: Schedule::Reconnect,
            rejoin: Schedule::Rejoin,
            seed: 0x9e37_79b9_7f4a_7c15,
            transport: TransportKind::WebSocket,
            long_poll_fallback_ms: None,
            auth_token: None,
        }
    }
}

/// Connection states (phoenix.js `connectionState()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// No transport.
    Closed,
    /// Transport opening.
    Connecting,
    /// Transport open.
    Open,
}

/// Why channels errored because of the transport (phoenix.js 1.8.10 reasons).
pub const CONNECTION_CLOSED: &str = "connection_closed";
/// The transport reported an error.
pub const CONNECTION_ERROR: &str = "connection_error";
/// No heartbeat reply in time.
pub const HEARTBEAT_TIMEOUT: &str = "heartbeat_timeout";

/// What the driver must do or deliver.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Open a transport; later events for it carry `conn`.
    Open {
        /// Connection generation.
        conn: u64,
        /// What to open: the transport, its full URL with params and `vsn`, the auth token.
        target: Target,
    },
    /// Send a frame on connection `conn`.
    Send {
        /// Connection generation.
        conn: u64,
        frame: WireFrame,
    },
    /// Close connection `conn`.
    Close {
        /// Connection generation.
        conn: u64,
        /// Close code.
        code: u16,
        reason: String,
    },
    /// The transport opened.
    SocketOpened,
    /// The transport closed with this code.
    SocketClosed {
        /// Close code (1006 for a broken link).
        code: u16,
    },
    /// A join succeeded.
    Joined {
        channel: ChannelId,
        /// The join reply's response.
        response: Value,
    },
    /// A join was refused (the channel will retry on the rejoin schedule).
    JoinRefused {
        channel: ChannelId,
        /// The error response.
        response: Value,
    },
    /// The channel errored (server `phx_error`, transport loss, join timeout); a rejoin follows.
    ChannelErrored { channel: ChannelId, reason: String },
    /// The channel closed for good (left, or the server closed it).
    ChannelClosed { channel: ChannelId },
    /// A message for a channel (push or broadcast).
    Message {
        channel: ChannelId,
        event: String,
        payload: Payload,
        /// The channel's join_ref when it arrived (presence uses it to detect stale state).
        join_ref: Option<String>,
    },
    /// A push ended.
    Reply { push: PushId, reply: PushReply },
    /// Long poll was needed: remember it for the browser session (phoenix.js `phx:fallback:LongPoll`).
    RememberLongPoll,
}

/// Calling `join()` twice on one channel (phoenix.js throws).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("join can only be called once per channel")]
pub struct AlreadyJoined;

/// The socket state machine.
pub struct SocketCore {
    options: SocketOptions,
    state: ConnState,
    conn: u64,
    close_was_clean: bool,
    next_ref: u64,
    next_push: u64,
    next_channel: u32,
    send_buffer: VecDeque<Frame>,
    reconnect: RetryTimer,
    heartbeat_at: Option<u64>,
    heartbeat_deadline: Option<u64>,
    pending_heartbeat: Option<String>,
    channels: Vec<Channel>,
    outputs: VecDeque<Output>,
    rng: u64,
    transport: TransportKind,
    fallback: Option<Fallback>,
}

impl SocketCore {
    /// A disconnected socket.
    pub fn new(options: SocketOptions) -> Self {
        let rng = options.seed | 1;
        let reconnect = RetryTimer::new(options.reconnect);
        let (transport, fallback) = (options.transport, options.long_poll_fallback_ms.map(Fallback::new));
        Self {
            options,
            state: ConnState::Closed,
            conn: 0,
            close_was_clean: true,
            next_ref: 0,
            next_push: 0,
            next_channel: 0,
            send_buffer: VecDeque::new(),
            reconnect,
            heartbeat_at: None,
            heartbeat_deadline: None,
            pending_heartbeat: None,
            channels: Vec::new(),
            outputs: VecDeque::new(),
            rng,
            transport,
            fallback,
        }
    }

    /// phoenix.js `makeRef`: the shared counter, as a string.
    pub fn make_ref(&mut self) -> String {
        self.next_ref = self.next_ref.wrapping_add(1);
        self.next_ref.to_string()
    }

    /// A random number in `[0, 1)` for jitter (xorshift; quality is irrelevant, spread is what matters).
    fn unit(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    pub fn conn_state(&self) -> ConnState {
        self.state
    }

    /// phoenix.js `isConnected()`.
    pub fn is_connected(&self) -> bool {
        self.state == ConnState::Open
    }

    /// The URL the next connect uses: endpoint, params (re-evaluated), then `vsn=2.0.0`.
    fn endpoint_url(&mut self) -> String {
        let mut pairs = (self.options.params)();
        pairs.push(("vsn".into(), "2.0.0".into()));
        let query: Vec<String> =
            pairs.iter().map(|(k, v)| format!("{}={}", crate::url::encode(k), crate::url::encode(v))).collect();
        let separator = if self.options.endpoint.contains('?') { '&' } else { '?' };
        format!("{}{separator}{}", self.options.endpoint, query.join("&"))
    }

    /// Opens a transport unless one is open or opening.
    pub fn connect(&mut self, now: u64) {
        if self.state != ConnState::Closed {
            return;
        }
        self.conn += 1;
        self.state = ConnState::Connecting;
        self.close_was_clean = false;
        self.watch_connect(now);
        let mut url = self.endpoint_url();
        if self.transport == TransportKind::LongPoll {
            url = long_poll_url(&url);
        }
        let auth_token = self.options.auth_token.as_mut().map(|token| token());
        let target = Target { url, kind: self.transport, auth_token };
        self.outputs.push_back(Output::Open { conn: self.conn, target });
    }

    /// Closes on purpose (code 1000): no reconnect.
    pub fn disconnect(&mut self, now: u64) {
        self.close_was_clean = true;
        self.unwatch();
        self.reconnect.reset();
        self.clear_heartbeat();
        if self.state != ConnState::Closed {
            self.outputs.push_back(Output::Close { conn: self.conn, code: 1000, reason: "disconnect".into() });
            self.state = ConnState::Closed;
            self.conn += 1;
            self.outputs.push_back(Output::SocketClosed { code: 1000 });
            self.channels_transport_error(CONNECTION_CLOSED, now);
        }
    }

    /// Sends a frame now if the transport is open, else buffers it (flushed in order on open).
    fn send_or_buffer(&mut self, frame: Frame) {
        if self.is_connected() {
            self.send(frame);
        } else {
            self.send_buffer.push_back(frame);
        }
    }

    fn send(&mut self, frame: Frame) {
        match encode_client(&frame) {
            Ok(wire) => self.outputs.push_back(Output::Send { conn: self.conn, frame: wire }),
            Err(_) => {
                // Unencodable (a field over 255 bytes in a binary frame): nothing to send.
            }
        }
    }

    /// The transport of generation `conn` opened.
    pub fn on_open(&mut self, conn: u64, now: u64) {
        if conn != self.conn || self.state != ConnState::Connecting {
            return;
        }
        self.state = ConnState::Open;
        self.close_was_clean = false;
        while let Some(frame) = self.send_buffer.pop_front() {
            self.send(frame);
        }
        self.reconnect.reset();
        self.pending_heartbeat = None;
        self.heartbeat_deadline = None;
        // No heartbeats over long poll (phoenix.js `skipHeartbeat`): each poll shows the link is alive.
        self.heartbeat_at = (self.transport == TransportKind::WebSocket).then(|| now + self.options.heartbeat_ms);
        self.outputs.push_back(Output::SocketOpened);
        let errored: Vec<ChannelId> =
            self.channels.iter().filter(|c| c.state == ChannelState::Errored).map(|c| c.id).collect();
        for id in errored {
            if let Some(channel) = self.channel_mut(id) {
                channel.rejoin.reset();
            }
            self.rejoin(id, now);
        }
        self.fallback_opened(now);
    }

    /// The transport of generation `conn` closed with `code`.
    pub fn on_close(&mut self, conn: u64, code: u16, now: u64) {
        if conn != self.conn || self.state == ConnState::Closed {
            return;
        }
        if self.failed_before_open() {
            return self.fall_back(now);
        }
        self.unwatch();
        self.state = ConnState::Closed;
        self.conn += 1;
        self.clear_heartbeat();
        self.channels_transport_error(CONNECTION_CLOSED, now);
        if !self.close_was_clean && code != 1000 {
            let unit = self.unit();
            self.reconnect.schedule(now, unit);
        }
        self.outputs.push_back(Output::SocketClosed { code });
    }

    /// The transport of generation `conn` reported an error (a close usually follows). A watched WebSocket that
    /// never opened falls back to long poll at once.
    pub fn on_error(&mut self, conn: u64, now: u64) {
        if conn != self.conn {
            return;
        }
        if self.failed_before_open() {
            return self.fall_back(now);
        }
        for channel in &mut self.channels {
            channel.rejoin.reset();
        }
    }

    /// A frame arrived on connection `conn`.
    pub fn on_frame(&mut self, conn: u64, wire: &WireFrame, now: u64) {
        if conn != self.conn {
            return;
        }
        let Ok(decoded) = decode_server(wire) else { return };
        let frame = &decoded.frame;
        self.fallback_reply(frame.msg_ref.as_deref());
        if frame.msg_ref.is_some() && frame.msg_ref == self.pending_heartbeat {
            self.pending_heartbeat = None;
            self.heartbeat_deadline = None;
            self.heartbeat_at = Some(now + self.options.heartbeat_ms);
        }
        let members: Vec<ChannelId> = self
            .channels
            .iter()
            .filter(|c| c.is_member(&frame.topic, frame.join_ref.as_deref()))
            .map(|c| c.id)
            .collect();
        for id in members {
            self.channel_message(id, &decoded, now);
        }
    }

    /// Runs every timer due at `now`: heartbeats, reconnect, join and push timeouts, rejoins.
    pub fn on_timer(&mut self, now: u64) {
        if self.fallback_due(now) {
            self.fall_back(now);
        }
        if self.heartbeat_deadline.is_some_and(|d| d <= now) {
            self.heartbeat_timeout(now);
        }
        if self.heartbeat_at.is_some_and(|at| at <= now) {
            self.heartbeat_at = None;
            self.send_heartbeat(now);
        }
        if self.reconnect.fire(now) {
            self.connect(now);
        }
        self.channel_timers(now);
    }

    /// The earliest time `on_timer` has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        let channel_deadlines = self.channels.iter().flat_map(|c| {
            c.join_deadline.into_iter().chain(c.rejoin.due_at()).chain(c.pushes.iter().map(|p| p.deadline))
        });
        let fallback = self.fallback.as_ref().and_then(Fallback::deadline);
        [self.heartbeat_at, self.heartbeat_deadline, self.reconnect.due_at(), fallback]
            .into_iter()
            .flatten()
            .chain(channel_deadlines)
            .min()
    }

    fn send_heartbeat(&mut self, now: u64) {
        if !self.is_connected() {
            return;
        }
        let msg_ref = self.make_ref();
        self.pending_heartbeat = Some(msg_ref.clone());
        self.heartbeat_deadline = Some(now + self.options.heartbeat_ms);
        self.send(Frame::new(None, Some(&msg_ref), PHOENIX_TOPIC, HEARTBEAT, Payload::Json(json!({}))));
    }

    /// No reply to the last heartbeat: the link is dead even if TCP has not noticed. Close and reconnect.
    fn heartbeat_timeout(&mut self, now: u64) {
        self.clear_heartbeat();
        self.state = ConnState::Closed;
        self.channels_transport_error(HEARTBEAT_TIMEOUT, now);
        self.close_was_clean = false;
        self.outputs.push_back(Output::Close { conn: self.conn, code: 1000, reason: "heartbeat timeout".into() });
        self.state = ConnState::Closed;
        self.conn += 1;
        self.outputs.push_back(Output::SocketClosed { code: 1000 });
        let unit = self.unit();
        self.reconnect.schedule(now, unit);
    }

    fn clear_heartbeat(&mut self) {
        self.heartbeat_at = None;
        self.heartbeat_deadline = None;
        self.pending_heartbeat = None;
    }

    /// phoenix.js `triggerChanError`: channels that are joining or joined error out.
    /// Called after the state left `Open`, so no rejoin is scheduled here: errored channels rejoin on the next open.
    fn channels_transport_error(&mut self, reason: &str, now: u64) {
        let ids: Vec<ChannelId> = self.channels.iter().filter(|c| !c.is_settled()).map(|c| c.id).collect();
        for id in ids {
            self.channel_errored(id, reason, now);
        }
    }

    /// Creates a channel for `topic` (not joined yet).
    pub fn channel(&mut self, topic: impl Into<String>, params: ParamsFn) -> ChannelId {
        self.next_channel += 1;
        let id = ChannelId(self.next_channel);
        self.channels.push(Channel::new(id, topic.into(), params, self.options.rejoin));
        id
    }

    fn channel_mut(&mut self, id: ChannelId) -> Option<&mut Channel> {
        self.channels.iter_mut().find(|c| c.id == id)
    }

    /// A channel's state (`Closed` for unknown or removed channels).
    pub fn channel_state(&self, id: ChannelId) -> ChannelState {
        self.channels.iter().find(|c| c.id == id).map_or(ChannelState::Closed, |c| c.state)
    }

    /// A channel's current join_ref.
    pub fn join_ref(&self, id: ChannelId) -> Option<&str> {
        self.channels.iter().find(|c| c.id == id).and_then(|c| c.join_ref.as_deref())
    }

    fn new_push_id(&mut self) -> PushId {
        self.next_push += 1;
        PushId(self.next_push)
    }

    /// phoenix.js `canPush`: socket open and channel joined.
    pub fn can_push(&self, id: ChannelId) -> bool {
        self.is_connected() && self.channel_state(id) == ChannelState::Joined
    }

    /// Builds a frame for a channel.
    fn frame(join_ref: Option<&str>, msg_ref: &str, topic: &str, event: &str, payload: Payload) -> Frame {
        Frame::new(join_ref, Some(msg_ref), topic, event, payload)
    }
}
