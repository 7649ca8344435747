//! Every parser of client input in `protocol` besides the frame decoders, on any UTF-8 text: the message body rule
//! (`chat::normalize_body`), the display name rule (`names::normalize_user_name`), room slugs and topics
//! (`names::validate_room_slug`, `room_topic`, `slug_from_topic`), the `vsn` connect parameter
//! (`Vsn::negotiate`), and, when the text is JSON, every typed payload through `typed::from_payload` (join params,
//! `message:new`, `history:before`, `typing`, replies, watch replies, typed presence, error replies, presence metas).
//!
//! Checks, beyond "no panic": each rule's result satisfies the rule it documents (control and bidirectional
//! characters stripped from bodies, trimmed, never only invisible characters, within its length in
//! characters, only allowed characters, idempotent, errors exactly when the rule says), topics and slugs convert
//! both ways, the history page size is clamped, and every payload that parses serializes back to a payload that
//! parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_fuzz::as_text;
use protocol::chat::{
    Ack, BodyError, HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT, HistoryBefore, HistoryReply, JoinParams, JoinReply,
    MAX_BODY_CHARS, MAX_UNREAD, MemberPresence, MemberStatus, Message, NewMessage, NewMessageReply, PresenceMeta,
    RoomPresenceDiff, RoomPresenceState, Typing, WatchReply, normalize_body,
};
use protocol::frame::Payload;
use protocol::names::{
    MAX_SLUG_LEN, MAX_USER_NAME_CHARS, NameError, RESERVED_SEGMENTS, SlugError, normalize_user_name, room_topic,
    slug_from_topic, validate_room_slug,
};
use protocol::presence::Meta;
use protocol::reasons::ErrorReply;
use protocol::serializer::Vsn;
use protocol::text::{is_invisible, is_stripped_from_body};
use protocol::typed::{from_payload, to_payload};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn check_body(raw: &str) {
    // The documented rule: strip control and bidirectional characters, then trim; nothing visible left is empty.
    let stripped: String = raw.chars().filter(|c| !is_stripped_from_body(*c)).collect();
    let trimmed = stripped.trim();
    match normalize_body(raw) {
        Ok(body) => {
            assert_eq!(body, trimmed);
            assert!(!body.chars().all(is_invisible) && body.chars().count() <= MAX_BODY_CHARS);
            assert!(!body.chars().any(is_stripped_from_body));
            assert_eq!(normalize_body(&body).as_ref(), Ok(&body), "normalizing is idempotent");
        }
        Err(BodyError::Empty) => assert!(trimmed.chars().all(is_invisible)),
        Err(error @ BodyError::TooLong { chars }) => {
            assert_eq!(chars, trimmed.chars().count());
            assert!(chars > MAX_BODY_CHARS);
            assert!(!error.reason().is_empty());
        }
    }
}

fn check_user_name(raw: &str) {
    let trimmed = raw.trim();
    match normalize_user_name(raw) {
        Ok(name) => {
            assert_eq!(name, trimmed);
            assert!((1..=MAX_USER_NAME_CHARS).contains(&name.chars().count()));
            assert!(name.chars().all(|c| !c.is_control()
                && (c == ' ' || !is_invisible(c))
                && (c.is_alphabetic() || c.is_numeric() || matches!(c, ' ' | '-' | '_' | '.' | '\''))));
            assert_eq!(normalize_user_name(&name).as_ref(), Ok(&name), "normalizing is idempotent");
        }
        Err(NameError::Empty) => assert!(trimmed.is_empty()),
        Err(NameError::TooLong) => assert!(trimmed.chars().count() > MAX_USER_NAME_CHARS),
        Err(NameError::ControlChar) => assert!(trimmed.chars().any(char::is_control)),
        Err(NameError::InvalidChar(c)) => assert!(trimmed.contains(c)),
    }
}

fn check_slug(raw: &str) {
    match validate_room_slug(raw) {
        Ok(()) => {
            assert!((1..=MAX_SLUG_LEN).contains(&raw.len()));
            assert!(raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            assert!(!raw.starts_with('-') && !raw.ends_with('-') && !RESERVED_SEGMENTS.contains(&raw));
        }
        Err(SlugError::InvalidChar(c)) => assert!(raw.contains(c)),
        Err(SlugError::Reserved(slug)) => assert_eq!(slug, raw),
        Err(_) => {}
    }
    assert_eq!(slug_from_topic(&room_topic(raw)), Some(raw));
    if let Some(slug) = slug_from_topic(raw) {
        assert_eq!(room_topic(slug), raw);
    }
}

fn check_vsn(raw: &str) {
    match Vsn::negotiate(Some(raw)) {
        Some(Vsn::V2) => assert!(raw.starts_with("2.0."), "{raw:?} negotiated V2"),
        Some(Vsn::V1) => assert!(raw.starts_with("1.0."), "{raw:?} negotiated V1"),
        None => {}
    }
}

/// Parses `payload` as `T`; a value that parses must survive `to_payload` and parse back equal.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(payload: &Payload) -> Option<T> {
    let value: T = from_payload(payload).ok()?;
    let again = to_payload(&value).expect("a parsed payload serializes");
    assert_eq!(from_payload::<T>(&again).ok().as_ref(), Some(&value), "{again:?}");
    Some(value)
}

fn check_payloads(value: Value) {
    if let Some(meta) = value.as_object().cloned().map(Meta::from)
        && let Some(status) = MemberStatus::from_meta(&meta)
    {
        assert_eq!(MemberStatus::from_meta(&status.to_meta()), Some(status));
    }
    let payload = Payload::Json(value);
    round_trip::<JoinParams>(&payload);
    if let Some(message) = round_trip::<NewMessage>(&payload) {
        check_body(&message.body);
    }
    if let Some(request) = round_trip::<HistoryBefore>(&payload) {
        let limit = request.limit_within(HISTORY_MAX_LIMIT);
        assert!(limit <= HISTORY_MAX_LIMIT);
        assert_eq!(limit, request.limit.unwrap_or(HISTORY_DEFAULT_LIMIT).min(HISTORY_MAX_LIMIT));
    }
    round_trip::<Typing>(&payload);
    round_trip::<Ack>(&payload);
    round_trip::<Message>(&payload);
    round_trip::<JoinReply>(&payload);
    if let Some(reply) = round_trip::<WatchReply>(&payload) {
        // The server's count from any newest id and cursor: capped, and 0 without either.
        let counted = WatchReply::new(reply.last_id, Some(u64::from(reply.unread)));
        assert!(counted.unread <= MAX_UNREAD);
        assert_eq!(WatchReply::new(None, Some(u64::from(reply.unread))).unread, 0);
        assert_eq!(WatchReply::new(reply.last_id, None).unread, 0);
    }
    round_trip::<NewMessageReply>(&payload);
    round_trip::<HistoryReply>(&payload);
    round_trip::<ErrorReply>(&payload);
    round_trip::<PresenceMeta>(&payload);
    round_trip::<MemberPresence>(&payload);
    round_trip::<RoomPresenceState>(&payload);
    round_trip::<RoomPresenceDiff>(&payload);
}

fuzz_target!(|data: &[u8]| {
    let Some(text) = as_text(data) else { return };
    check_body(text);
    check_user_name(text);
    check_slug(text);
    check_vsn(text);
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        check_payloads(value);
    }
});
