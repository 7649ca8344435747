//! A channel's side of the client state machine (phoenix.js `Channel`): join, rejoin, leave, buffered pushes and
//! which incoming messages belong to it.
//!
//! States: `Closed` → `Joining` → `Joined`; any of them → `Errored` (server `phx_error`, transport loss, join error or
//! timeout), which rejoins on the rejoin schedule while the socket is connected and at once when it reconnects;
//! `leave()` → `Leaving` → `Closed` immediately (phoenix.js acknowledges a leave locally). Every join attempt gets a
//! fresh ref that is also its join_ref; messages carrying another join_ref are dropped.

use protocol::frame::Payload;
use serde_json::Value;

use super::{
    backoff::{RetryTimer, Schedule},
    push::PendingPush,
};

/// Identifies a channel on its socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u32);

/// phoenix.js channel states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelState {
    /// Not joined (initial, or after leave/close).
    Closed,
    /// Join sent, no reply yet.
    Joining,
    Joined,
    /// Failed; a rejoin is pending.
    Errored,
    /// Leaving (only momentarily: leave completes locally).
    Leaving,
}

/// Join params, re-evaluated on every join attempt (so a rejoin can carry a fresh `last_seen_id`).
pub type ParamsFn = Box<dyn FnMut() -> Value>;

/// One channel's state.
pub struct Channel {
    pub id: ChannelId,
    pub topic: String,
    pub state: ChannelState,
    /// `join()` was called (it may be called only once per channel, as in phoenix.js).
    pub joined_once: bool,
    /// Ref of the current join attempt (= its join_ref).
    pub join_ref: Option<String>,
    /// When the current join attempt times out.
    pub join_deadline: Option<u64>,
    /// Pushes made before the channel could push, and pushes sent awaiting replies.
    pub pushes: Vec<PendingPush>,
    /// The rejoin schedule.
    pub rejoin: RetryTimer,
    /// Builds the join payload.
    pub params: ParamsFn,
}

impl Channel {
    /// A closed channel.
    pub fn new(id: ChannelId, topic: String, params: ParamsFn, rejoin: Schedule) -> Self {
        Self {
            id,
            topic,
            state: ChannelState::Closed,
            joined_once: false,
            join_ref: None,
            join_deadline: None,
            pushes: Vec::new(),
            rejoin: RetryTimer::new(rejoin),
            params,
        }
    }

    /// phoenix.js `isMember`: same topic, and a message that names a join_ref must name the current one.
    pub fn is_member(&self, topic: &str, join_ref: Option<&str>) -> bool {
        self.topic == topic && join_ref.is_none_or(|r| Some(r) == self.join_ref.as_deref())
    }

    /// Whether it is errored, leaving or closed (no transport error applies then).
    pub fn is_settled(&self) -> bool {
        matches!(self.state, ChannelState::Errored | ChannelState::Leaving | ChannelState::Closed)
    }

    /// The join payload for the next attempt.
    pub fn join_payload(&mut self) -> Payload {
        Payload::Json((self.params)())
    }
}
