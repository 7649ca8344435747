//! V2 binary frames (docs/protocol.md §4.3): a kind byte, one length byte per string field, the strings, then the
//! raw payload. Each direction has its own layouts:
//!
//! | Kind | Direction | Header |
//! |---|---|---|
//! | push 0 | client → server | `0, len(join_ref), len(ref), len(topic), len(event)` |
//! | push 0 | server → client | `0, len(join_ref), len(topic), len(event)` (no ref) |
//! | reply 1 | server → client | `1, len(join_ref), len(ref), len(topic), len(status)` |
//! | broadcast 2 | server → client | `2, len(topic), len(event)` |
//!
//! A ref of length zero decodes as `None`, and `None` encodes as length zero: the layout has no other way to say
//! "absent".

use super::{DecodeError, EncodeError, Outgoing};
use crate::events::PHX_REPLY;
use crate::frame::{Frame, ServerFrame};

const KIND_PUSH: u8 = 0;
const KIND_REPLY: u8 = 1;
const KIND_BROADCAST: u8 = 2;

// The struct literals below read the fields in source order, which is the wire order; Rust evaluates field
// initializers in the order they are written.

/// Decodes what a client may send: a kind-0 push with the 5-byte header.
pub(super) fn decode_client(bytes: &[u8]) -> Result<Frame, DecodeError> {
    let mut reader = Reader::new(bytes);
    match reader.byte()? {
        KIND_PUSH => {
            let [join_ref, msg_ref, topic, event] = reader.lengths()?;
            Ok(Frame {
                join_ref: reader.optional(join_ref, "join_ref")?,
                msg_ref: reader.optional(msg_ref, "ref")?,
                topic: reader.string(topic, "topic")?,
                event: reader.string(event, "event")?,
                payload: reader.rest().into(),
            })
        }
        kind => Err(DecodeError::UnexpectedKind(kind)),
    }
}

/// Decodes what a server may send: push (0), reply (1) or broadcast (2).
pub(super) fn decode_server(bytes: &[u8]) -> Result<ServerFrame, DecodeError> {
    let mut reader = Reader::new(bytes);
    match reader.byte()? {
        KIND_PUSH => {
            let [join_ref, topic, event] = reader.lengths()?;
            let frame = Frame {
                join_ref: reader.optional(join_ref, "join_ref")?,
                msg_ref: None,
                topic: reader.string(topic, "topic")?,
                event: reader.string(event, "event")?,
                payload: reader.rest().into(),
            };
            Ok(frame.into())
        }
        KIND_REPLY => {
            let [join_ref, msg_ref, topic, status] = reader.lengths()?;
            let join_ref = reader.optional(join_ref, "join_ref")?;
            let msg_ref = reader.optional(msg_ref, "ref")?;
            let topic = reader.string(topic, "topic")?;
            let status = reader.string(status, "status")?;
            let frame = Frame { join_ref, msg_ref, topic, event: PHX_REPLY.to_owned(), payload: reader.rest().into() };
            Ok(ServerFrame { frame, reply_status: Some(status) })
        }
        KIND_BROADCAST => {
            let [topic, event] = reader.lengths()?;
            let frame = Frame {
                join_ref: None,
                msg_ref: None,
                topic: reader.string(topic, "topic")?,
                event: reader.string(event, "event")?,
                payload: reader.rest().into(),
            };
            Ok(frame.into())
        }
        kind => Err(DecodeError::UnexpectedKind(kind)),
    }
}

/// Encodes a client push (kind 0, 5-byte header).
pub(super) fn encode_client(frame: &Frame, payload: &[u8]) -> Result<Vec<u8>, EncodeError> {
    build(
        KIND_PUSH,
        &[
            ("join_ref", frame.join_ref.as_deref().unwrap_or_default()),
            ("ref", frame.msg_ref.as_deref().unwrap_or_default()),
            ("topic", &frame.topic),
            ("event", &frame.event),
        ],
        payload,
    )
}

/// Encodes a server message with a binary payload. A [`Outgoing::Message`] is written as a push: the server push
/// layout has no ref field, so its ref is dropped, as Phoenix does. (A [`Outgoing::RawPush`] has a JSON payload and
/// never gets here.)
pub(super) fn encode_server(msg: &Outgoing<'_>, payload: &[u8]) -> Result<Vec<u8>, EncodeError> {
    match *msg {
        Outgoing::Push { join_ref, topic, event, .. }
        | Outgoing::Message { join_ref, topic, event, .. }
        | Outgoing::RawPush { join_ref, topic, event, .. } => {
            build(KIND_PUSH, &[("join_ref", join_ref.unwrap_or_default()), ("topic", topic), ("event", event)], payload)
        }
        Outgoing::Reply { join_ref, msg_ref, topic, status, .. } => build(
            KIND_REPLY,
            &[
                ("join_ref", join_ref.unwrap_or_default()),
                ("ref", msg_ref.unwrap_or_default()),
                ("topic", topic),
                ("status", status),
            ],
            payload,
        ),
        Outgoing::Broadcast { topic, event, .. } => {
            build(KIND_BROADCAST, &[("topic", topic), ("event", event)], payload)
        }
    }
}

/// Writes kind, length bytes, fields and payload into one exactly-sized buffer.
fn build(kind: u8, fields: &[(&'static str, &str)], payload: &[u8]) -> Result<Vec<u8>, EncodeError> {
    let fields_len: usize = fields.iter().map(|(_, value)| value.len()).sum();
    let mut out = Vec::with_capacity(1 + fields.len() + fields_len + payload.len());
    out.push(kind);
    for &(field, value) in fields {
        // Lengths are UTF-8 bytes, not chars (phoenix.js measured chars before 1.8.7 and produced corrupt frames).
        let len = u8::try_from(value.len()).map_err(|_| EncodeError::FieldTooLong { field, len: value.len() })?;
        out.push(len);
    }
    for (_, value) in fields {
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(payload);
    Ok(out)
}

/// A bounds-checked cursor: every read that would run past the end is [`DecodeError::Truncated`], never a panic.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let (&first, rest) = self.rest.split_first().ok_or(DecodeError::Truncated)?;
        self.rest = rest;
        Ok(first)
    }

    fn lengths<const N: usize>(&mut self) -> Result<[usize; N], DecodeError> {
        let mut lengths = [0; N];
        for len in &mut lengths {
            *len = usize::from(self.byte()?);
        }
        Ok(lengths)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if len > self.rest.len() {
            return Err(DecodeError::Truncated);
        }
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(taken)
    }

    fn string(&mut self, len: usize, field: &'static str) -> Result<String, DecodeError> {
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| DecodeError::InvalidUtf8(field))
    }

    fn optional(&mut self, len: usize, field: &'static str) -> Result<Option<String>, DecodeError> {
        let text = self.string(len, field)?;
        Ok((!text.is_empty()).then_some(text))
    }

    fn rest(self) -> Vec<u8> {
        self.rest.to_vec()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::frame::{Payload, PayloadRef, Reply};

    /// Concatenates header bytes and string fields, like the `<<...>>` vectors in the Phoenix tests.
    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn client_push(join_ref: Option<&str>, msg_ref: Option<&str>, topic: &str, event: &str, payload: &[u8]) -> Vec<u8> {
        let frame = Frame::new(join_ref, msg_ref, topic, event, payload.to_vec());
        encode_client(&frame, payload).unwrap()
    }

    // phoenix.js serializer_test.js: binary encode vectors.
    #[test]
    fn js_encode_push_vectors() {
        assert_eq!(
            client_push(Some("0"), Some("1"), "t", "e", &[1]),
            cat(&[&[0, 1, 1, 1, 1], b"0", b"1", b"t", b"e", &[1]])
        );
        assert_eq!(
            client_push(Some("10"), Some("1"), "top", "ev", &[1]),
            cat(&[&[0, 2, 1, 3, 2], b"10", b"1", b"top", b"ev", &[1]])
        );
    }

    #[test]
    fn lengths_are_utf8_bytes() {
        // "tôpîc" is 5 chars but 7 bytes; "évént" 5 chars, 7 bytes.
        let bytes = client_push(Some("10"), Some("1"), "tôpîc", "évént", &[1]);
        assert_eq!(&bytes[..5], &[0, 2, 1, 7, 7]);
        assert_eq!(decode_client(&bytes).unwrap().topic, "tôpîc");
    }

    #[test]
    fn fields_over_255_bytes_are_refused() {
        // 128 two-byte chars: only 128 chars, but 256 bytes.
        let topic = "é".repeat(128);
        let frame = Frame::new(Some("1"), Some("2"), &topic, "e", vec![]);
        assert_eq!(encode_client(&frame, &[]), Err(EncodeError::FieldTooLong { field: "topic", len: 256 }));
        // 255 bytes is still fine.
        let topic = "a".repeat(255);
        let frame = Frame::new(Some("1"), Some("2"), &topic, "e", vec![]);
        assert!(encode_client(&frame, &[]).is_ok());
        let status = "s".repeat(300);
        let reply = Outgoing::Reply {
            join_ref: None,
            msg_ref: Some("1"),
            topic: "t",
            status: &status,
            response: &Payload::Binary(vec![]),
        };
        assert_eq!(encode_server(&reply, &[]), Err(EncodeError::FieldTooLong { field: "status", len: 300 }));
    }

    // phoenix.js serializer_test.js: binary decode vectors.
    #[test]
    fn js_decode_push_vector() {
        let bytes = cat(&[&[0, 3, 3, 10], b"123", b"top", b"some-event", &[1, 1]]);
        let decoded = decode_server(&bytes).unwrap();
        assert_eq!(decoded.frame, Frame::new(Some("123"), None, "top", "some-event", vec![1, 1]));
        assert_eq!(decoded.reply_status, None);
        assert_eq!(decoded.reply(), None);
    }

    #[test]
    fn js_decode_reply_vector() {
        let bytes = cat(&[&[1, 3, 2, 3, 2], b"100", b"12", b"top", b"ok", &[1, 1]]);
        let decoded = decode_server(&bytes).unwrap();
        assert_eq!(decoded.frame, Frame::new(Some("100"), Some("12"), "top", "phx_reply", vec![1, 1]));
        assert_eq!(decoded.reply_status.as_deref(), Some("ok"));
        assert_eq!(decoded.reply(), Some(Reply { status: "ok", response: PayloadRef::Binary(&[1, 1]) }));
    }

    #[test]
    fn js_decode_broadcast_vector() {
        let bytes = cat(&[&[2, 3, 10], b"top", b"some-event", &[1, 1]]);
        let decoded = decode_server(&bytes).unwrap();
        assert_eq!(decoded.frame, Frame::new(None, None, "top", "some-event", vec![1, 1]));
    }

    // Phoenix v2_json_serializer_test.exs vectors.
    #[test]
    fn server_decodes_client_push() {
        let bytes = cat(&[&[0, 2, 3, 5, 5], b"12", b"123", b"topic", b"event", &[101, 102, 103]]);
        assert_eq!(
            decode_client(&bytes).unwrap(),
            Frame::new(Some("12"), Some("123"), "topic", "event", vec![101, 102, 103])
        );
    }

    #[test]
    fn server_encodes_reply_broadcast_and_push() {
        let payload = Payload::Binary(vec![101, 102, 103]);
        let reply = Outgoing::Reply {
            join_ref: Some("12"),
            msg_ref: Some("123"),
            topic: "topic",
            status: "ok",
            response: &payload,
        };
        assert_eq!(
            encode_server(&reply, &[101, 102, 103]).unwrap(),
            cat(&[&[1, 2, 3, 5, 2], b"12", b"123", b"topic", b"ok", &[101, 102, 103]])
        );
        let broadcast = Outgoing::Broadcast { topic: "topic", event: "event", payload: &payload };
        assert_eq!(
            encode_server(&broadcast, &[101, 102, 103]).unwrap(),
            cat(&[&[2, 5, 5], b"topic", b"event", &[101, 102, 103]])
        );
        let push = Outgoing::Push { join_ref: Some("12"), topic: "topic", event: "event", payload: &payload };
        let expected_push = cat(&[&[0, 2, 5, 5], b"12", b"topic", b"event", &[101, 102, 103]]);
        assert_eq!(encode_server(&push, &[101, 102, 103]).unwrap(), expected_push);
        // A ref-carrying message has nowhere to put the ref in a server push.
        let message = Outgoing::Message {
            join_ref: Some("12"),
            msg_ref: Some("12"),
            topic: "topic",
            event: "event",
            payload: &payload,
        };
        assert_eq!(encode_server(&message, &[101, 102, 103]).unwrap(), expected_push);
    }

    #[test]
    fn absent_refs_are_empty_fields() {
        let bytes = client_push(None, None, "t", "e", &[9]);
        assert_eq!(bytes, cat(&[&[0, 0, 0, 1, 1], b"t", b"e", &[9]]));
        assert_eq!(decode_client(&bytes).unwrap(), Frame::new(None, None, "t", "e", vec![9]));
    }

    #[test]
    fn empty_payload_is_allowed() {
        let bytes = cat(&[&[0, 0, 0, 1, 1], b"t", b"e"]);
        assert_eq!(decode_client(&bytes).unwrap().payload, Payload::Binary(vec![]));
    }

    #[test]
    fn truncated_frames() {
        assert!(matches!(decode_client(&[]), Err(DecodeError::Truncated)));
        assert!(matches!(decode_client(&[0]), Err(DecodeError::Truncated)));
        assert!(matches!(decode_client(&[0, 1, 1, 1]), Err(DecodeError::Truncated)));
        assert!(matches!(decode_client(&cat(&[&[0, 1, 1, 1, 1], b"0", b"1", b"t"])), Err(DecodeError::Truncated)));
        assert!(matches!(decode_client(&[0, 255, 0, 0, 0, 1]), Err(DecodeError::Truncated)));
        assert!(matches!(decode_server(&[]), Err(DecodeError::Truncated)));
        assert!(matches!(decode_server(&[1, 1, 1, 1]), Err(DecodeError::Truncated)));
        assert!(matches!(decode_server(&cat(&[&[2, 3, 10], b"top", b"some"])), Err(DecodeError::Truncated)));
    }

    #[test]
    fn wrong_kinds() {
        let reply = cat(&[&[1, 2, 3, 5, 2], b"12", b"123", b"topic", b"ok"]);
        assert!(matches!(decode_client(&reply), Err(DecodeError::UnexpectedKind(1))));
        assert!(matches!(decode_client(&[2, 1, 1, b't', b'e']), Err(DecodeError::UnexpectedKind(2))));
        assert!(matches!(decode_client(&[7, 0, 0, 0, 0]), Err(DecodeError::UnexpectedKind(7))));
        assert!(matches!(decode_server(&[3, 0, 0]), Err(DecodeError::UnexpectedKind(3))));
    }

    #[test]
    fn invalid_utf8_fields() {
        let bytes = cat(&[&[0, 0, 0, 1, 1], &[0xff], b"e"]);
        assert!(matches!(decode_client(&bytes), Err(DecodeError::InvalidUtf8("topic"))));
        let bytes = cat(&[&[1, 0, 0, 1, 2], b"t", &[0xc3, 0x28]]);
        assert!(matches!(decode_server(&bytes), Err(DecodeError::InvalidUtf8("status"))));
        // The payload is opaque bytes: anything goes.
        let bytes = cat(&[&[2, 1, 1], b"t", b"e", &[0xff, 0xfe]]);
        assert_eq!(decode_server(&bytes).unwrap().frame.payload, Payload::Binary(vec![0xff, 0xfe]));
    }
}
