//! Pushes: a client message awaiting its reply, and how that reply comes back.
//!
//! phoenix.js resolves a push through `receive("ok" | "error" | "timeout", cb)` callbacks; here the outcome is a value
//! ([`PushReply`]) that the driver hands to a future. A push has a deadline from the moment it is made: buffered
//! pushes keep their deadline while they wait for the join, get a fresh ref when they are finally sent, and a push
//! that timed out is never sent (phoenix.js `Push` semantics).

use protocol::{frame::Payload, reasons::ErrorReply, typed::from_payload};
use thiserror::Error;

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

impl PushReply {}

/// Why a typed request (see `client::ChannelHandle::request`) got no reply of its type.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PushFailure {
    /// The server answered `error` with this reason.
    #[error("{0}")]
    Refused(String),
    /// No reply before the deadline (or the channel closed first).
    #[error("no answer from the server")]
    Timeout,
    /// The server answered `ok` with a response of another shape.
    #[error("unexpected answer from the server")]
    Malformed,
}

impl PushFailure {
    /// What to tell the person whose push this was (the same text as `Display`, without the formatting machinery in
    /// the WASM).
    pub fn into_reason(self) -> String {
        match self {
            Self::Refused(reason) => reason,
            Self::Timeout => "no answer from the server".to_owned(),
            Self::Malformed => "unexpected answer from the server".to_owned(),
        }
    }
}

impl PushReply {
    /// The reply as a typed result: an `ok` response of type `T`, or why not.
    pub fn typed<T: serde::de::DeserializeOwned>(&self) -> Result<T, PushFailure> {
        match self {
            Self::Ok(payload) => from_payload(payload).map_err(|_| PushFailure::Malformed),
            Self::Error(payload) => Err(PushFailure::Refused(
                from_payload::<ErrorReply>(payload).map_or_else(|_| "refused".to_owned(), |error| error.reason),
            )),
            Self::Timeout => Err(PushFailure::Timeout),
        }
    }
}

/// A push waiting in a channel: either buffered (not yet sent) or sent and awaiting a reply.
#[derive(Debug, Clone)]
pub struct PendingPush {
    pub id: PushId,
    pub event: String,
    pub payload: Payload,
    /// When it times out (ms on the driver's clock).
    pub deadline: u64,
    /// The ref it was sent with; `None` while buffered.
    pub sent_ref: Option<String>,
}

#[cfg(test)]
mod tests {
    use protocol::chat::NewMessageReply;
    use serde_json::json;

    use super::*;

    #[test]
    fn typed_replies() {
        let ok = PushReply::Ok(Payload::Json(json!({"id": 5})));
        assert_eq!(ok.typed::<NewMessageReply>(), Ok(NewMessageReply { id: 5 }));
        let odd = PushReply::Ok(Payload::Json(json!({"id": "5"})));
        assert_eq!(odd.typed::<NewMessageReply>(), Err(PushFailure::Malformed));
        let refused = PushReply::Error(Payload::Json(json!({"reason": "rate limited"})));
        assert_eq!(refused.typed::<NewMessageReply>(), Err(PushFailure::Refused("rate limited".into())));
        let bare = PushReply::Error(Payload::Json(json!({})));
        assert_eq!(bare.typed::<NewMessageReply>(), Err(PushFailure::Refused("refused".into())));
        assert_eq!(PushReply::Timeout.typed::<NewMessageReply>(), Err(PushFailure::Timeout));
        for failure in [PushFailure::Refused("x".into()), PushFailure::Timeout, PushFailure::Malformed] {
            assert_eq!(failure.to_string(), failure.clone().into_reason());
        }
    }
}
