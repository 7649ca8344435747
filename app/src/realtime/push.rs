//! Pushes: a client message awaiting its reply, and how that reply comes back.
//!
//! phoenix.js resolves a push through `receive("ok" | "error" | "timeout", cb)` callbacks; here the outcome is a value
//! ([`PushReply`]) that the driver hands to a future. A push has a deadline from the moment it is made: buffered
//! pushes keep their deadline while they wait for the join, get a fresh ref when they are finally sent, and a push
//! that timed out is never sent (phoenix.js `Push` semantics).

use protocol::frame::Payload;
use serde_json::Value;

/// Identifies a push for the lifetime of its socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PushId(pub u64);

/// How a push ended.
#[derive(Debug, Clone, PartialEq)]
pub enum PushReply {
    /// The server replied `ok` with this response.
    Ok(Payload),
    /// The server replied `error` with this response (usually `{"reason": …}`).
    Error(Payload),
    /// No reply before the deadline (or the channel closed first).
    Timeout,
}

impl PushReply {
    /// The `reason` of an error reply, if any.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Error(Payload::Json(value)) => value.get("reason").and_then(Value::as_str),
            _ => None,
        }
    }

    /// The JSON response of an ok reply.
    pub fn ok_json(&self) -> Option<&Value> {
        match self {
            Self::Ok(Payload::Json(value)) => Some(value),
            _ => None,
        }
    }
}

/// A push waiting in a channel: either buffered (not yet sent) or sent and awaiting a reply.
#[derive(Debug, Clone)]
pub struct PendingPush {
    /// Who asked.
    pub id: PushId,
    /// Event name.
    pub event: String,
    /// Payload.
    pub payload: Payload,
    /// When it times out (ms on the driver's clock).
    pub deadline: u64,
    /// The ref it was sent with; `None` while buffered.
    pub sent_ref: Option<String>,
}
