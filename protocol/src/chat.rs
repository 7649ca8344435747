//! Payload types and limits of the chat application protocol (chat-protocol.md): join params and reply, messages,
//! history paging, typing, error replies, presence metas, and message body normalization.
//!
//! The Phoenix envelope around these payloads is [`crate::frame`]; event names are [`crate::events`]; room and user
//! name rules are [`crate::names`].

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::reasons;

/// Longest message body, in Unicode scalar values (chars) after trimming, not bytes: users think in characters and a
/// byte limit would give CJK or emoji writers a quarter of the room. 4000 chars is at most 16 000 bytes of UTF-8,
/// comfortably inside the 64 KiB frame limit even after JSON escaping.
pub const MAX_BODY_CHARS: usize = 4000;
/// Messages in a join reply without `last_seen_id`: enough to fill a screen, small enough to keep joins cheap.
pub const JOIN_HISTORY: usize = 50;
/// Most messages a rejoin may recover after `last_seen_id`. Beyond this the reply falls back to the latest
/// [`JOIN_HISTORY`] with `recovered: false`, so one long-offline client cannot make the server build a huge reply.
pub const MAX_RECOVERY: usize = 1000;
/// `history:before` page size when the client gives no `limit`.
pub const HISTORY_DEFAULT_LIMIT: u32 = 50;
/// Largest `history:before` page; bigger requests are clamped so a page stays a bounded store query and frame.
pub const HISTORY_MAX_LIMIT: u32 = 100;

/// One stored chat message, as sent in join replies, history replies and `message:new` broadcasts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Per-room id, strictly increasing from 1 and never reused.
    pub id: u64,
    /// The author's display name (the presence key).
    pub user: String,
    /// The trimmed body; text, never HTML.
    pub body: String,
    /// Server clock when stored, milliseconds since the Unix epoch.
    pub timestamp: i64,
}

/// Payload of `phx_join` on `room:<slug>`: `{}` or `{"last_seen_id": N}`. Unknown fields are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinParams {
    /// Highest message id the client already has in this room; asks the server to recover the gap after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_id: Option<u64>,
}

/// Response of a successful room join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinReply {
    /// The identity the server assigned to this socket.
    pub user: String,
    /// Messages, oldest first.
    pub messages: Vec<Message>,
    /// `true` when `messages` is exactly the gap after `last_seen_id` (always `true` without it).
    pub recovered: bool,
}

/// Payload of a client `message:new` push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    /// The raw body; the server normalizes it with [`normalize_body`].
    pub body: String,
    /// Client-chosen id that makes a retry idempotent within a room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// Response of a successful `message:new`: the stored message's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessageReply {
    /// Id of the stored (or, for a retry, previously stored) message.
    pub id: u64,
}

/// Payload of `history:before`: messages with `id < before_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryBefore {
    /// Exclusive upper bound on message ids.
    pub before_id: u64,
    /// Page size; [`HISTORY_DEFAULT_LIMIT`] when absent, clamped to [`HISTORY_MAX_LIMIT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

impl HistoryBefore {
    /// The page size to use: the default when absent, at most [`HISTORY_MAX_LIMIT`]. Oversized requests are clamped
    /// rather than refused because the client loses nothing: it pages again from the oldest id it got.
    pub fn effective_limit(&self) -> u32 {
        self.limit.unwrap_or(HISTORY_DEFAULT_LIMIT).min(HISTORY_MAX_LIMIT)
    }
}

/// Response of `history:before`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryReply {
    /// Messages, oldest first.
    pub messages: Vec<Message>,
}

/// Payload of a `typing` push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Typing {
    /// Whether the user is typing now.
    pub typing: bool,
}

/// Response of an `error` reply, and the shape of the `phx_error` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// One of the [`crate::reasons`] strings.
    pub reason: String,
}

impl ErrorReply {
    /// An error reply with the given reason, usually a [`crate::reasons`] constant.
    pub fn new(reason: &str) -> Self {
        Self { reason: reason.to_owned() }
    }
}

/// The meta of one connection under a presence key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceMeta {
    /// When this connection joined, milliseconds since the Unix epoch.
    pub online_at: i64,
    /// Whether this connection's user is typing.
    pub typing: bool,
    /// Unique opaque ref of this meta version.
    pub phx_ref: String,
    /// The previous `phx_ref`, present only on metas produced by an update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phx_ref_prev: Option<String>,
}

/// Why a message body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum BodyError {
    /// Nothing left after trimming.
    #[error("empty message")]
    Empty,
    /// More than [`MAX_BODY_CHARS`] characters after trimming.
    #[error("message too long: {chars} characters, at most {MAX_BODY_CHARS}")]
    TooLong {
        /// Length of the trimmed body in characters.
        chars: usize,
    },
}

impl BodyError {
    /// The wire reason for the error reply ([`reasons::EMPTY_MESSAGE`] or [`reasons::MESSAGE_TOO_LONG`]).
    pub fn reason(self) -> &'static str {
        match self {
            Self::Empty => reasons::EMPTY_MESSAGE,
            Self::TooLong { .. } => reasons::MESSAGE_TOO_LONG,
        }
    }
}

/// Trims surrounding whitespace (Unicode `White_Space`) and checks the length limits. Inner whitespace and newlines are
/// kept: the body is exactly what the author typed, minus the edges.
pub fn normalize_body(raw: &str) -> Result<String, BodyError> {
    let body = raw.trim();
    if body.is_empty() {
        return Err(BodyError::Empty);
    }
    // Count lazily: stop one past the limit so a huge body costs no more than a legal one.
    let chars = body.chars().take(MAX_BODY_CHARS + 1).count();
    if chars > MAX_BODY_CHARS {
        return Err(BodyError::TooLong { chars: body.chars().count() });
    }
    Ok(body.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::{from_value, json, to_value};

    use super::*;

    #[test]
    fn message_wire_shape() {
        let message = Message { id: 17, user: "alice".into(), body: "hello".into(), timestamp: 1_763_780_000_000 };
        let value = json!({"id": 17, "user": "alice", "body": "hello", "timestamp": 1_763_780_000_000_i64});
        assert_eq!(to_value(&message).unwrap(), value);
        assert_eq!(from_value::<Message>(value).unwrap(), message);
    }

    #[test]
    fn join_params_accepts_empty_null_and_unknown_fields() {
        assert_eq!(from_value::<JoinParams>(json!({})).unwrap(), JoinParams::default());
        assert_eq!(from_value::<JoinParams>(json!({"last_seen_id": null})).unwrap().last_seen_id, None);
        let params: JoinParams = from_value(json!({"last_seen_id": 10, "extra": true})).unwrap();
        assert_eq!(params.last_seen_id, Some(10));
        assert!(from_value::<JoinParams>(json!({"last_seen_id": "10"})).is_err());
        assert!(from_value::<JoinParams>(json!({"last_seen_id": -1})).is_err());
    }

    #[test]
    fn join_reply_wire_shape() {
        let reply = JoinReply { user: "bob".into(), messages: vec![], recovered: true };
        assert_eq!(to_value(&reply).unwrap(), json!({"user": "bob", "messages": [], "recovered": true}));
    }

    #[test]
    fn new_message_client_id_is_optional() {
        let plain = NewMessage { body: "hi".into(), client_id: None };
        assert_eq!(to_value(&plain).unwrap(), json!({"body": "hi"}));
        assert_eq!(from_value::<NewMessage>(json!({"body": "hi"})).unwrap(), plain);
        let with_id: NewMessage = from_value(json!({"body": "hi", "client_id": "u-1"})).unwrap();
        assert_eq!(with_id.client_id.as_deref(), Some("u-1"));
        assert!(from_value::<NewMessage>(json!({})).is_err());
        assert!(from_value::<NewMessage>(json!({"body": 5})).is_err());
    }

    #[test]
    fn small_payloads() {
        assert_eq!(to_value(NewMessageReply { id: 3 }).unwrap(), json!({"id": 3}));
        assert_eq!(from_value::<Typing>(json!({"typing": true})).unwrap(), Typing { typing: true });
        assert_eq!(to_value(ErrorReply::new(reasons::RATE_LIMITED)).unwrap(), json!({"reason": "rate limited"}));
        assert_eq!(to_value(HistoryReply { messages: vec![] }).unwrap(), json!({"messages": []}));
    }

    #[test]
    fn history_limit_defaults_and_clamps() {
        let request: HistoryBefore = from_value(json!({"before_id": 9})).unwrap();
        assert_eq!(request.effective_limit(), HISTORY_DEFAULT_LIMIT);
        let request: HistoryBefore = from_value(json!({"before_id": 9, "limit": 20})).unwrap();
        assert_eq!(request.effective_limit(), 20);
        let request: HistoryBefore = from_value(json!({"before_id": 9, "limit": 5000})).unwrap();
        assert_eq!(request.effective_limit(), HISTORY_MAX_LIMIT);
        assert!(from_value::<HistoryBefore>(json!({"limit": 5})).is_err());
    }

    #[test]
    fn presence_meta_skips_absent_prev() {
        let mut meta = PresenceMeta { online_at: 1, typing: false, phx_ref: "a".into(), phx_ref_prev: None };
        assert_eq!(to_value(&meta).unwrap(), json!({"online_at": 1, "typing": false, "phx_ref": "a"}));
        meta.phx_ref_prev = Some("z".into());
        let value = to_value(&meta).unwrap();
        assert_eq!(value["phx_ref_prev"], "z");
        assert_eq!(from_value::<PresenceMeta>(value).unwrap(), meta);
    }

    #[test]
    fn body_is_trimmed() {
        assert_eq!(normalize_body("  hi there \n").unwrap(), "hi there");
        assert_eq!(normalize_body("a\n\nb").unwrap(), "a\n\nb");
        assert_eq!(normalize_body("\u{3000}全角\u{3000}").unwrap(), "全角");
    }

    #[test]
    fn empty_body_is_refused() {
        for raw in ["", "   ", "\n\t ", "\u{a0}"] {
            let error = normalize_body(raw).unwrap_err();
            assert_eq!(error, BodyError::Empty);
            assert_eq!(error.reason(), "empty message");
        }
    }

    #[test]
    fn body_limit_counts_chars_not_bytes() {
        // 4000 three-byte chars are 12 000 bytes and still allowed.
        let at_limit = "語".repeat(MAX_BODY_CHARS);
        assert_eq!(normalize_body(&at_limit).unwrap().chars().count(), MAX_BODY_CHARS);
        // Surrounding whitespace does not count.
        assert!(normalize_body(&format!("  {at_limit}  ")).is_ok());
        let over = "a".repeat(MAX_BODY_CHARS + 1);
        let error = normalize_body(&over).unwrap_err();
        assert_eq!(error, BodyError::TooLong { chars: MAX_BODY_CHARS + 1 });
        assert_eq!(error.reason(), "message too long");
    }
}
