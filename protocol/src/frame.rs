//! The logical Phoenix message (`{join_ref, ref, topic, event, payload}`, docs/protocol.md §4) and read-only views
//! of replies.
//!
//! This module owns the in-memory shape only. How a [`Frame`] becomes bytes on a socket (V1/V2 JSON, V2 binary) lives in
//! [`crate::serializer`]; what the events and payloads mean lives in [`crate::events`] and [`crate::chat`].

use serde_json::{Map, Value};

use crate::events::PHX_REPLY;

/// The body of a message: JSON for text frames, raw bytes for V2 binary frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// A JSON value. Client payloads may be any value; server text frames require an object.
    Json(Value),
    /// Opaque bytes carried by a V2 binary frame (an `ArrayBuffer` in phoenix.js).
    Binary(Vec<u8>),
}

impl Payload {
    /// The empty JSON object `{}`, the payload of heartbeats, leaves, `phx_close` and bare `ok` replies.
    pub fn empty() -> Self {
        Self::Json(Value::Object(Map::new()))
    }

    /// The JSON value, if this is a JSON payload.
    pub fn as_json(&self) -> Option<&Value> {
        match self {
            Self::Json(value) => Some(value),
            Self::Binary(_) => None,
        }
    }

    /// The bytes, if this is a binary payload.
    pub fn as_binary(&self) -> Option<&[u8]> {
        match self {
            Self::Json(_) => None,
            Self::Binary(bytes) => Some(bytes),
        }
    }

    /// Borrows the payload without cloning it.
    pub fn as_payload_ref(&self) -> PayloadRef<'_> {
        match self {
            Self::Json(value) => PayloadRef::Json(value),
            Self::Binary(bytes) => PayloadRef::Binary(bytes),
        }
    }
}

impl From<Value> for Payload {
    fn from(value: Value) -> Self {
        Self::Json(value)
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Binary(bytes)
    }
}

/// A borrowed payload. Exists because a JSON reply's response sits *inside* the `{"status", "response"}` object, so
/// there is no owned [`Payload`] to hand out a reference to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadRef<'a> {
    /// A borrowed JSON value.
    Json(&'a Value),
    /// Borrowed binary bytes.
    Binary(&'a [u8]),
}

/// One logical Phoenix message `{join_ref, ref, topic, event, payload}`.
///
/// Refs are opaque strings chosen by the client (`"1"`, `"2"`, …); the server only echoes them. `None` is JSON `null`
/// (and a zero-length ref in binary frames, which have no other way to say "absent").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The ref of the `phx_join` that opened the channel instance this message belongs to.
    pub join_ref: Option<String>,
    /// The ref of this message; a reply carries the ref of the message it answers.
    pub msg_ref: Option<String>,
    /// The channel topic, e.g. `room:lobby` or `phoenix` for heartbeats.
    pub topic: String,
    /// The event name, e.g. `phx_join` or `message:new`.
    pub event: String,
    /// The message body.
    pub payload: Payload,
}

impl Frame {
    /// Builds a frame from borrowed parts; a convenience for clients and tests.
    pub fn new(
        join_ref: Option<&str>,
        msg_ref: Option<&str>,
        topic: &str,
        event: &str,
        payload: impl Into<Payload>,
    ) -> Self {
        Self {
            join_ref: join_ref.map(str::to_owned),
            msg_ref: msg_ref.map(str::to_owned),
            topic: topic.to_owned(),
            event: event.to_owned(),
            payload: payload.into(),
        }
    }

    /// Views a JSON `phx_reply` (payload `{"status": s, "response": r}`) as a [`Reply`].
    ///
    /// Returns `None` for other events, for binary payloads (a binary reply's status travels outside the payload, see
    /// [`ServerFrame::reply`]) and for malformed reply payloads.
    pub fn reply(&self) -> Option<Reply<'_>> {
        if self.event != PHX_REPLY {
            return None;
        }
        let object = self.payload.as_json()?.as_object()?;
        let status = object.get("status")?.as_str()?;
        let response = object.get("response")?;
        Some(Reply { status, response: PayloadRef::Json(response) })
    }
}

impl PayloadRef<'_> {
    /// An owned copy.
    pub fn to_payload(self) -> Payload {
        match self {
            Self::Json(value) => Payload::Json(value.clone()),
            Self::Binary(bytes) => Payload::Binary(bytes.to_vec()),
        }
    }
}

/// A reply to a client message, whichever frame type carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply<'a> {
    /// `"ok"`, `"error"` or any other status the channel chose.
    pub status: &'a str,
    /// The response body: JSON for text replies, bytes for V2 binary replies.
    pub response: PayloadRef<'a>,
}

/// A message as a client receives it from the server.
///
/// Why not just a [`Frame`]: a V2 binary reply (kind 1) carries its status in the header and the raw response bytes as
/// the payload, so the status has nowhere to live inside `Frame` without inventing a fake JSON wrapper around the bytes.
/// `ServerFrame` keeps the decoded frame exactly as sent (event `phx_reply`, payload = the response bytes) and the
/// status beside it; [`ServerFrame::reply`] gives one view over JSON and binary replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFrame {
    /// The decoded message. For a binary reply the payload is the raw response.
    pub frame: Frame,
    /// The status of a binary reply; `None` for everything else, including JSON replies (whose status is in the payload).
    pub reply_status: Option<String>,
}

impl ServerFrame {
    /// The reply carried by this frame, if it is a `phx_reply` (JSON or binary).
    pub fn reply(&self) -> Option<Reply<'_>> {
        match (&self.reply_status, &self.frame.payload) {
            (Some(status), Payload::Binary(bytes)) if self.frame.event == PHX_REPLY => {
                Some(Reply { status, response: PayloadRef::Binary(bytes) })
            }
            _ => self.frame.reply(),
        }
    }
}

impl From<Frame> for ServerFrame {
    fn from(frame: Frame) -> Self {
        Self { frame, reply_status: None }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_reply_view() {
        let frame =
            Frame::new(Some("1"), Some("2"), "room:a", PHX_REPLY, json!({"status": "ok", "response": {"id": 3}}));
        let reply = frame.reply().unwrap();
        assert_eq!(reply.status, "ok");
        assert_eq!(reply.response, PayloadRef::Json(&json!({"id": 3})));
        // The same view through a ServerFrame built from a text frame.
        assert_eq!(ServerFrame::from(frame.clone()).reply(), Some(reply));
    }

    #[test]
    fn binary_reply_view() {
        let server = ServerFrame {
            frame: Frame::new(Some("1"), Some("2"), "t", PHX_REPLY, vec![1, 2]),
            reply_status: Some("ok".to_owned()),
        };
        let reply = server.reply().unwrap();
        assert_eq!(reply.status, "ok");
        assert_eq!(reply.response, PayloadRef::Binary(&[1, 2]));
        // Without the out-of-band status there is no reply to see.
        assert_eq!(server.frame.reply(), None);
    }

    #[test]
    fn not_a_reply() {
        let push = Frame::new(Some("1"), None, "t", "message:new", json!({"status": "ok", "response": {}}));
        assert_eq!(push.reply(), None);
        let malformed = Frame::new(None, Some("1"), "t", PHX_REPLY, json!({"status": 1, "response": {}}));
        assert_eq!(malformed.reply(), None);
        let no_response = Frame::new(None, Some("1"), "t", PHX_REPLY, json!({"status": "ok"}));
        assert_eq!(no_response.reply(), None);
    }

    #[test]
    fn payload_helpers() {
        assert_eq!(Payload::empty(), Payload::Json(json!({})));
        assert_eq!(Payload::Binary(vec![7]).as_binary(), Some(&[7u8][..]));
        assert_eq!(Payload::Binary(vec![7]).as_json(), None);
        assert_eq!(Payload::empty().as_payload_ref(), PayloadRef::Json(&json!({})));
        assert_eq!(Payload::Binary(vec![7]).as_payload_ref().to_payload(), Payload::Binary(vec![7]));
    }
}
