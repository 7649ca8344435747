//! The one table of wire error reasons and WebSocket close codes, and whether a client should reconnect after each.
//!
//! # Error reasons
//!
//! Sent as the response of an `error` reply (`{"status": "error", "response": {"reason": R}}`), except
//! [`CHANNEL_CRASH`], which is the payload of a `phx_error` push.
//!
//! | Reason | Constant | When the server sends it | Client reaction |
//! |---|---|---|---|
//! | `unmatched topic` | [`UNMATCHED_TOPIC`] | join of a topic no route matches, or any push to a topic that is not joined (reply has a null join_ref) | do not retry the same topic |
//! | `invalid room` | [`INVALID_ROOM`] | join of `room:<slug>` with a malformed or reserved slug | do not retry |
//! | `too many channels joined` | [`TOO_MANY_CHANNELS`] | join beyond the per-socket channel limit (100) | leave something first |
//! | `join crashed` | [`JOIN_CRASHED`] | the join handler failed unexpectedly | phoenix.js rejoins with backoff |
//! | `unauthorized` | [`UNAUTHORIZED`] | a push this channel may not make: `message:new` or `typing` on a room joined with `"watch": true` (also reserved for joins the socket's identity may not make) | do not retry; join without `watch` to take part |
//! | `empty message` | [`EMPTY_MESSAGE`] | `message:new` whose body is empty after trimming | fix the input |
//! | `message too long` | [`MESSAGE_TOO_LONG`] | `message:new` body over 4000 characters | fix the input |
//! | `invalid payload` | [`INVALID_PAYLOAD`] | a known event whose payload does not have the documented shape | fix the client |
//! | `rate limited` | [`RATE_LIMITED`] | more than 20 `message:new` per 10 s on one socket; nothing was stored | retry later |
//! | `unavailable` | [`UNAVAILABLE`] | `message:new` or `history:before` while the database cannot be reached; nothing was stored | retry later with the same `client_id` |
//! | `unknown event` | [`UNKNOWN_EVENT`] | a push with an event the room channel does not handle | fix the client |
//! | `channel_crash` | [`CHANNEL_CRASH`] | `phx_error` payload when a joined channel fails | phoenix.js rejoins with backoff |
//!
//! # Close codes
//!
//! phoenix.js reconnects after every close except code 1000 (and except a close it asked for itself), so the server uses
//! [`CloseCode::NORMAL`] only when the client must stay away.
//!
//! | Code | Constant | When the server sends it | Client reconnects? |
//! |---|---|---|---|
//! | 1000 | [`CloseCode::NORMAL`] | only when the client must not come back | no |
//! | 1001 | [`CloseCode::GOING_AWAY`] | nothing arrived within the idle timeout (60 s); reserved too for deliberate disconnects | yes |
//! | 1007 | [`CloseCode::INVALID_FRAME_PAYLOAD`] | malformed frame: invalid JSON, wrong arity or types, undecodable binary | yes |
//! | 1008 | [`CloseCode::POLICY_VIOLATION`] | a connection-level policy broken by a well-formed frame | yes |
//! | 1009 | [`CloseCode::MESSAGE_TOO_BIG`] | frame larger than the limit (64 KiB by default) | yes |
//! | 1011 | [`CloseCode::INTERNAL_ERROR`] | unexpected server failure in this connection; slow consumer | yes, and recovers history |
//! | 1012 | [`CloseCode::SERVICE_RESTART`] | drain on shutdown or restart | yes, and recovers history |

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::frame::Payload;

/// The response of every `error` reply, and the `phx_error` payload: `{"reason": R}` with R from this table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// One of the reason constants of this module (other servers may send other text).
    pub reason: String,
}

impl ErrorReply {
    /// An error reply with `reason`.
    pub fn new(reason: &str) -> Self {
        Self { reason: reason.to_owned() }
    }
}

/// Built by hand rather than through serde so it cannot fail: the server sends error replies on paths that have no
/// error of their own to report.
impl From<ErrorReply> for Payload {
    fn from(reply: ErrorReply) -> Self {
        let mut object = Map::new();
        object.insert("reason".to_owned(), Value::String(reply.reason));
        Payload::Json(Value::Object(object))
    }
}

/// Join or push to a topic that is not routed or not joined (Phoenix's own wording).
pub const UNMATCHED_TOPIC: &str = "unmatched topic";
/// Join of `room:<slug>` where the slug breaks the rules of [`crate::names::validate_room_slug`].
pub const INVALID_ROOM: &str = "invalid room";
/// Join refused because the socket already has the maximum number of joined topics (Phoenix's wording).
pub const TOO_MANY_CHANNELS: &str = "too many channels joined";
/// The join handler failed; Phoenix's wording for a crash during `join/3`.
pub const JOIN_CRASHED: &str = "join crashed";
/// The channel may not do what was asked: `message:new` or `typing` on a room watched (`"watch": true`) rather than
/// joined, or a join of [`crate::admin::STATS_TOPIC`] by a socket that is not an operator account's.
pub const UNAUTHORIZED: &str = "unauthorized";
/// A `message:new` body that is empty after trimming surrounding whitespace.
pub const EMPTY_MESSAGE: &str = "empty message";
/// A `message:new` body longer than [`crate::chat::MAX_BODY_CHARS`] characters.
pub const MESSAGE_TOO_LONG: &str = "message too long";
/// A known event whose payload does not deserialize into the documented type.
pub const INVALID_PAYLOAD: &str = "invalid payload";
/// The socket exceeded the `message:new` rate limit; the message was not stored.
pub const RATE_LIMITED: &str = "rate limited";
/// The message store cannot be reached (a database that is down): nothing was stored, retry with the same
/// `client_id` later.
pub const UNAVAILABLE: &str = "unavailable";
/// An event the room channel does not handle.
pub const UNKNOWN_EVENT: &str = "unknown event";
/// Payload reason of `phx_error` when a joined channel fails (Phoenix ≥ 1.8.10; note the underscore).
pub const CHANNEL_CRASH: &str = "channel_crash";

/// A WebSocket close code (RFC 6455 §7.4).
///
/// A newtype rather than an enum because a client must be able to hold whatever code it received (1006 from the
/// browser, 1002 from an idle timeout elsewhere), while the server only ever sends the named constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000, normal closure. **The client does not reconnect.** Sent only when the client must stay away (for example
    /// an account was deleted); never for errors, drains or kicks, which all want a reconnect.
    pub const NORMAL: Self = Self(1000);
    /// 1001, going away. The client reconnects. Sent when nothing arrived from the client within the idle timeout
    /// (clients heartbeat every 30 s, so a silent socket is a dead one), and meant for any deliberate disconnect the
    /// client may come back from (Phoenix's `disconnect` broadcast, after a logout elsewhere).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002, protocol error. The client reconnects. Sent when the bytes break WebSocket framing (RFC 6455): an
    /// unmasked client frame, reserved bits, an unknown opcode, a fragmented or oversized control frame. Browsers
    /// never send these; a hand-written client may.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1007, invalid frame payload data. The client reconnects. Sent when a frame is not valid JSON, has the wrong arity
    /// or wrong field types, or is a binary frame the serializer cannot decode. Phoenix itself crashes the socket (1011
    /// or 1006); 1007 says more and still makes phoenix.js reconnect.
    pub const INVALID_FRAME_PAYLOAD: Self = Self(1007);
    /// 1008, policy violation. The client reconnects. Sent when a well-formed frame breaks a connection-level policy
    /// (a frame-format problem is 1007 instead); per-message limits such as the `message:new` rate are error replies,
    /// not closes.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009, message too big. The client reconnects. Sent when a frame exceeds the server's frame size limit (64 KiB by
    /// default; the frame is not processed).
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// 1011, internal error. The client reconnects and recovers missed messages with `last_seen_id`. Sent on an
    /// unexpected server-side failure in this connection, and to a slow consumer whose outbound queue stayed full.
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 1012, service restart. The client reconnects (possibly to another node) and recovers with `last_seen_id`. Sent
    /// to every socket when the server drains for shutdown or restart.
    pub const SERVICE_RESTART: Self = Self(1012);

    /// Every code the server may send, in numeric order.
    pub const ALL: [Self; 8] = [
        Self::NORMAL,
        Self::GOING_AWAY,
        Self::PROTOCOL_ERROR,
        Self::INVALID_FRAME_PAYLOAD,
        Self::POLICY_VIOLATION,
        Self::MESSAGE_TOO_BIG,
        Self::INTERNAL_ERROR,
        Self::SERVICE_RESTART,
    ];

    /// The numeric code.
    pub const fn code(self) -> u16 {
        self.0
    }

    /// Whether phoenix.js reconnects after the server closes with this code: every code except 1000.
    pub const fn should_reconnect(self) -> bool {
        self.0 != Self::NORMAL.0
    }

    /// A short lowercase reason phrase for the close frame and logs (close reasons are limited to 123 bytes).
    pub const fn phrase(self) -> &'static str {
        match self.0 {
            1000 => "normal closure",
            1001 => "going away",
            1002 => "protocol error",
            1007 => "invalid frame payload data",
            1008 => "policy violation",
            1009 => "message too big",
            1011 => "internal error",
            1012 => "service restart",
            _ => "",
        }
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        Self(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_normal_closure_stops_reconnects() {
        assert!(!CloseCode::NORMAL.should_reconnect());
        for code in CloseCode::ALL.into_iter().filter(|code| *code != CloseCode::NORMAL).chain([CloseCode(1006)]) {
            assert!(code.should_reconnect(), "{code:?}");
            assert!(!code.phrase().is_empty() || code == CloseCode(1006), "{code:?} has a phrase");
        }
    }

    #[test]
    fn error_reply_shape() {
        let value = serde_json::to_value(ErrorReply::new(RATE_LIMITED)).unwrap_or_default();
        assert_eq!(value, serde_json::json!({"reason": "rate limited"}));
        assert_eq!(Payload::from(ErrorReply::new(RATE_LIMITED)), Payload::Json(value), "the same shape as serde's");
    }

    #[test]
    fn codes_and_phrases() {
        assert_eq!(CloseCode::INVALID_FRAME_PAYLOAD.code(), 1007);
        assert_eq!(u16::from(CloseCode::SERVICE_RESTART), 1012);
        assert_eq!(CloseCode::from(1009), CloseCode::MESSAGE_TOO_BIG);
        assert_eq!(CloseCode::INTERNAL_ERROR.phrase(), "internal error");
        assert_eq!(CloseCode(4000).phrase(), "");
    }
}
