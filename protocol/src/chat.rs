//! Payload types and limits of the chat application protocol (`docs/protocol.md`): join params and reply, messages,
//! history paging, typing, presence metas, and message body normalization.
//!
//! Each client push is a [`Request`] tied to its event name and reply type, and `message:new` broadcasts are an
//! [`Event`], so the server, the Rust client and the load generator share one definition of every payload. The
//! Phoenix envelope around these payloads is [`crate::frame`]; event names are [`crate::events`]; room and user name
//! rules are [`crate::names`]; error replies are [`crate::reasons::ErrorReply`].

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::{
    events::{HISTORY_BEFORE, MESSAGE_NEW, PRESENCE_DIFF, PRESENCE_STATE, TYPING},
    presence::Meta,
    reasons, text,
    typed::{Event, Request},
};

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
/// Largest `history:before` page by default (a server's `--max-history-page` may change it); bigger requests are
/// clamped so a page stays a bounded store query and frame.
pub const HISTORY_MAX_LIMIT: u32 = 100;

/// The size of a history page (`history:before`, the HTTP API's history) asked with `requested`: the default when
/// absent, at most `max`, the server's largest page. Oversized requests are clamped rather than refused because the
/// client loses nothing: it pages again from the oldest id it got.
pub fn page_limit(requested: Option<u32>, max: u32) -> u32 {
    requested.unwrap_or(HISTORY_DEFAULT_LIMIT).min(max)
}
/// Largest [`WatchReply::unread`]: a room with more unread messages than this answers exactly this, which a client
/// shows as "99+".
pub const MAX_UNREAD: u32 = 100;

/// One stored chat message, as sent in join replies, history replies and `message:new` broadcasts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// Payload of `phx_join` on `room:<slug>`: `{}`, `{"last_seen_id": N}`, optionally with `"watch": true`. Unknown
/// fields are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinParams {
    /// Highest message id the client already has in this room; asks the server to recover the gap after it (or, for
    /// a watch, to count the messages after it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_id: Option<u64>,
    /// Watch the room instead of joining it: the reply is a [`WatchReply`] instead of a [`JoinReply`], the socket
    /// gets the room's `message:new` broadcasts and nothing else, does not appear in its presence and may not send
    /// `message:new` or `typing`. Absent means `false`, and `false` is left out when serialized, so a plain join's
    /// params are unchanged on the wire.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub watch: bool,
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

/// Response of a successful room join with `"watch": true`: where the room stands, without history or presence.
///
/// On the wire `last_id` is always present, `null` for a room without messages:
/// `{"last_id": 42, "unread": 3}` or `{"last_id": null, "unread": 0}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchReply {
    /// The room's newest message id when the watch began (`None` for an empty room). Every `message:new` broadcast
    /// the watcher gets afterwards has a larger id.
    pub last_id: Option<u64>,
    /// Messages with an id above the join's `last_seen_id`, at most [`MAX_UNREAD`]; 0 without `last_seen_id` (and
    /// when `last_seen_id` is at or above `last_id`).
    pub unread: u32,
}

impl WatchReply {
    /// The reply for a room whose newest id is `last_id`, to a client that has seen up to `last_seen_id`. Counts by
    /// ids because a room's ids are dense (1, 2, 3, … with none skipped or reused).
    pub fn new(last_id: Option<u64>, last_seen_id: Option<u64>) -> Self {
        let unread = match (last_id, last_seen_id) {
            (Some(last), Some(seen)) => u32::try_from(last.saturating_sub(seen)).unwrap_or(u32::MAX).min(MAX_UNREAD),
            _ => 0,
        };
        Self { last_id, unread }
    }
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
    /// Page size; [`HISTORY_DEFAULT_LIMIT`] when absent, clamped to the server's largest page ([`HISTORY_MAX_LIMIT`]
    /// unless it says otherwise): see [`page_limit`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

impl HistoryBefore {
    /// The page size a server whose largest page is `max` answers with ([`page_limit`]).
    pub fn limit_within(&self, max: u32) -> u32 {
        page_limit(self.limit, max)
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

/// The `ok` response of a request that returns nothing but success (`typing`): `{}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {}

impl Request for NewMessage {
    const EVENT: &'static str = MESSAGE_NEW;
    type Reply = NewMessageReply;
}

impl Request for HistoryBefore {
    const EVENT: &'static str = HISTORY_BEFORE;
    type Reply = HistoryReply;
}

impl Request for Typing {
    const EVENT: &'static str = TYPING;
    type Reply = Ack;
}

/// The server broadcasts every stored message under the event its author pushed it with.
impl Event for Message {
    const EVENT: &'static str = MESSAGE_NEW;
}

/// The presence meta field holding [`MemberStatus::online_at`].
pub const META_ONLINE_AT: &str = "online_at";
/// The presence meta field holding [`MemberStatus::typing`].
pub const META_TYPING: &str = "typing";

/// What a room tracks for one connection of a member: the fields of its presence meta besides Phoenix's refs, which
/// the server's presence tracker adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    /// When this connection joined, milliseconds since the Unix epoch.
    pub online_at: i64,
    /// Whether this connection's user is typing.
    pub typing: bool,
}

impl MemberStatus {
    /// The presence meta to track: these fields and no refs yet.
    pub fn to_meta(self) -> Meta {
        Meta::new().with(META_ONLINE_AT, self.online_at).with(META_TYPING, self.typing)
    }

    /// The status a meta carries; `None` when it lacks one of the fields (a meta some other server tracked).
    pub fn from_meta(meta: &Meta) -> Option<Self> {
        Some(Self {
            online_at: meta.get(META_ONLINE_AT).and_then(Value::as_i64)?,
            typing: meta.get(META_TYPING).and_then(Value::as_bool)?,
        })
    }
}

/// One presence meta of a room as it travels in `presence_state` and `presence_diff`: a [`MemberStatus`] with the
/// refs Phoenix adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

impl PresenceMeta {
    /// The chat fields without the refs.
    pub fn status(&self) -> MemberStatus {
        MemberStatus { online_at: self.online_at, typing: self.typing }
    }
}

/// One member in a room's presence payloads: the metas of their connections, `{"metas": [PresenceMeta, …]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberPresence {
    /// One meta per connection (two tabs are two metas).
    pub metas: Vec<PresenceMeta>,
}

/// A room's `presence_state` with typed metas: member name → [`MemberPresence`].
///
/// For readers that only count or look up members. A client that renders the room as phoenix.js would syncs the
/// generic [`crate::presence::PresenceState`] instead, which keeps JavaScript's key order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct RoomPresenceState(pub HashMap<String, MemberPresence>);

impl Event for RoomPresenceState {
    const EVENT: &'static str = PRESENCE_STATE;
}

/// A room's `presence_diff` with typed metas (see [`RoomPresenceState`] for when to use it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomPresenceDiff {
    /// Metas that appeared, by member.
    pub joins: HashMap<String, MemberPresence>,
    /// Metas that went away, by member.
    pub leaves: HashMap<String, MemberPresence>,
}

impl Event for RoomPresenceDiff {
    const EVENT: &'static str = PRESENCE_DIFF;
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

/// Strips the characters [`crate::text`] names (control characters but newline and tab; bidirectional controls),
/// trims surrounding whitespace (Unicode `White_Space`) and checks the limits: a body of nothing but invisible
/// characters is empty. Inner whitespace and newlines are kept: the body is what the author typed, minus the edges
/// and the stripped characters.
pub fn normalize_body(raw: &str) -> Result<String, BodyError> {
    let cleaned: std::borrow::Cow<'_, str> = if raw.chars().any(text::is_stripped_from_body) {
        raw.chars().filter(|c| !text::is_stripped_from_body(*c)).collect::<String>().into()
    } else {
        raw.into()
    };
    let body = cleaned.trim();
    if body.chars().all(text::is_invisible) {
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
    fn join_params_watch_is_an_optional_boolean() {
        assert!(!from_value::<JoinParams>(json!({})).unwrap().watch, "absent is false");
        assert!(!from_value::<JoinParams>(json!({"watch": false})).unwrap().watch);
        let params: JoinParams = from_value(json!({"watch": true, "last_seen_id": 4, "extra": 1})).unwrap();
        assert_eq!(params, JoinParams { last_seen_id: Some(4), watch: true });
        for bad in [json!("true"), json!(1), json!(null), json!({})] {
            assert!(from_value::<JoinParams>(json!({"watch": bad})).is_err(), "watch: {bad}");
        }
        assert_eq!(to_value(JoinParams::default()).unwrap(), json!({}), "a plain join is unchanged on the wire");
        assert_eq!(to_value(JoinParams { last_seen_id: Some(3), watch: false }).unwrap(), json!({"last_seen_id": 3}));
        let watch = JoinParams { last_seen_id: None, watch: true };
        assert_eq!(to_value(&watch).unwrap(), json!({"watch": true}));
        assert_eq!(from_value::<JoinParams>(to_value(&watch).unwrap()).unwrap(), watch);
    }

    #[test]
    fn watch_reply_wire_shape() {
        let reply = WatchReply { last_id: Some(42), unread: 3 };
        assert_eq!(to_value(reply).unwrap(), json!({"last_id": 42, "unread": 3}));
        assert_eq!(from_value::<WatchReply>(json!({"last_id": 42, "unread": 3})).unwrap(), reply);
        assert_eq!(to_value(WatchReply::default()).unwrap(), json!({"last_id": null, "unread": 0}), "null, not absent");
        assert_eq!(from_value::<WatchReply>(json!({"unread": 0})).unwrap(), WatchReply::default());
        assert!(from_value::<WatchReply>(json!({"last_id": 1})).is_err(), "unread is required");
    }

    #[test]
    fn watch_reply_counts_unread_after_last_seen_up_to_the_cap() {
        assert_eq!(WatchReply::new(None, None), WatchReply { last_id: None, unread: 0 });
        assert_eq!(WatchReply::new(None, Some(5)), WatchReply { last_id: None, unread: 0 });
        assert_eq!(WatchReply::new(Some(10), None), WatchReply { last_id: Some(10), unread: 0 }, "no cursor: 0");
        assert_eq!(WatchReply::new(Some(10), Some(7)).unread, 3);
        assert_eq!(WatchReply::new(Some(10), Some(0)).unread, 10);
        assert_eq!(WatchReply::new(Some(10), Some(10)).unread, 0);
        assert_eq!(WatchReply::new(Some(10), Some(12)).unread, 0, "a cursor from another server counts nothing");
        assert_eq!(WatchReply::new(Some(100), Some(0)).unread, MAX_UNREAD);
        assert_eq!(WatchReply::new(Some(101), Some(0)).unread, MAX_UNREAD);
        assert_eq!(WatchReply::new(Some(u64::MAX), Some(0)).unread, MAX_UNREAD);
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
        assert_eq!(to_value(Ack {}).unwrap(), json!({}));
        assert_eq!(from_value::<Ack>(json!({"extra": 1})).unwrap(), Ack {});
        assert_eq!(to_value(HistoryReply { messages: vec![] }).unwrap(), json!({"messages": []}));
    }

    #[test]
    fn history_limit_defaults_and_clamps() {
        let request: HistoryBefore = from_value(json!({"before_id": 9})).unwrap();
        assert_eq!(request.limit_within(HISTORY_MAX_LIMIT), HISTORY_DEFAULT_LIMIT);
        assert_eq!(request.limit_within(10), 10, "the server's cap also bounds the default");
        let request: HistoryBefore = from_value(json!({"before_id": 9, "limit": 20})).unwrap();
        assert_eq!(request.limit_within(HISTORY_MAX_LIMIT), 20);
        let request: HistoryBefore = from_value(json!({"before_id": 9, "limit": 5000})).unwrap();
        assert_eq!(request.limit_within(HISTORY_MAX_LIMIT), HISTORY_MAX_LIMIT);
        assert_eq!(request.limit_within(500), 500, "a server may allow more than the protocol's default");
        assert_eq!(page_limit(Some(5000), 500), 500);
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
    fn member_status_is_the_meta_without_refs() {
        let status = MemberStatus { online_at: 7, typing: true };
        let meta = status.to_meta();
        assert_eq!(to_value(&meta).unwrap(), json!({"online_at": 7, "typing": true}));
        assert_eq!(MemberStatus::from_meta(&meta.with("phx_ref", "r")), Some(status));
        assert_eq!(MemberStatus::from_meta(&Meta::with_ref("r").with("online_at", 7)), None);
        let wire: PresenceMeta =
            from_value(json!({"online_at": 7, "typing": true, "phx_ref": "r", "phx_ref_prev": "q"})).unwrap();
        assert_eq!(wire.status(), status);
    }

    #[test]
    fn typed_room_presence() {
        let meta = json!({"online_at": 1, "typing": false, "phx_ref": "a"});
        let state: RoomPresenceState = from_value(json!({"ada": {"metas": [meta]}})).unwrap();
        assert_eq!(state.0["ada"].metas[0].phx_ref, "a");
        let diff: RoomPresenceDiff = from_value(json!({"joins": {}, "leaves": {"ada": {"metas": [meta]}}})).unwrap();
        assert!(diff.joins.is_empty());
        assert_eq!(diff.leaves["ada"].metas[0].status(), MemberStatus { online_at: 1, typing: false });
        assert_eq!(<RoomPresenceDiff as Event>::EVENT, "presence_diff");
    }

    #[test]
    fn requests_name_their_events() {
        assert_eq!(<NewMessage as Request>::EVENT, "message:new");
        assert_eq!(<Message as Event>::EVENT, "message:new");
        assert_eq!(<HistoryBefore as Request>::EVENT, "history:before");
        assert_eq!(<Typing as Request>::EVENT, "typing");
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
    fn invisible_only_bodies_are_empty() {
        for raw in ["\u{200B}", "\u{200B}\u{200D}\u{FEFF}", " \u{2060} ", "\u{3164}", "\u{0}\u{7}", "\u{202E}"] {
            assert_eq!(normalize_body(raw), Err(BodyError::Empty), "{raw:?}");
        }
        assert_eq!(normalize_body("👩\u{200D}👩\u{200D}👧").unwrap(), "👩\u{200D}👩\u{200D}👧", "ZWJ inside is kept");
    }

    #[test]
    fn control_and_bidi_characters_are_stripped() {
        assert_eq!(normalize_body("a\u{0}b\u{7}c").unwrap(), "abc");
        assert_eq!(normalize_body("\u{1b}[31mred\u{1b}[0m").unwrap(), "[31mred[0m", "no escape sequence survives");
        assert_eq!(normalize_body("line\r\nnext").unwrap(), "line\nnext");
        assert_eq!(normalize_body("file\u{202E}gpj.exe").unwrap(), "filegpj.exe");
        assert_eq!(normalize_body("tab\there\nnewline").unwrap(), "tab\there\nnewline");
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
