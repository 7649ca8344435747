//! Turning [`Frame`]s into WebSocket frames and back: the V1 JSON, V2 JSON and V2 binary serializers of Phoenix
//! (docs/protocol.md §4), for both sides of the wire.
//!
//! * Server side: [`decode_client_text`] / [`decode_client_binary`] read what a client sent under the negotiated
//!   [`Vsn`]; [`encode_server`] writes an [`Outgoing`] message (push, reply, broadcast) from borrowed parts.
//! * Client side (our Rust client and the bench tool, which always speak V2): [`encode_client`],
//!   [`decode_server_text`], [`decode_server_binary`] and [`decode_server`].
//!
//! This module knows layouts only. Which events exist and what their payloads mean is [`crate::events`] and
//! [`crate::chat`]; what the server does with a decode error (close 1007) is [`crate::reasons`].
//!
//! Why decoding is lenient where it is: Phoenix ignores array elements after the fifth and treats refs as opaque, so
//! we do too (and also accept integer refs). Why encoding is strict: Phoenix raises on non-object text payloads and
//! on binary fields over 255 bytes, and clients rely on both, so we return [`EncodeError`] instead of sending
//! something Phoenix never would.

mod error;
mod fields;
mod v1_json;
mod v2_binary;
mod v2_json;
mod vsn;

pub use error::{DecodeError, EncodeError};
pub use vsn::{DEFAULT_VSN, Vsn};

use serde_json::value::RawValue;

use crate::frame::{Frame, Payload, ServerFrame};

pub use v2_json::{BorrowedFrame, BorrowedReply, decode_server_text_borrowed};

/// One WebSocket data frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireFrame {
    /// A text frame (JSON).
    Text(String),
    /// A binary frame (V2 binary layout).
    Binary(Vec<u8>),
}

impl WireFrame {
    /// The frame's bytes, whatever its type; handy for size limits and metrics.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(text) => text.as_bytes(),
            Self::Binary(bytes) => bytes,
        }
    }
}

/// A server → client message, borrowing everything so encoding never clones a payload.
#[derive(Debug, Clone, Copy)]
pub enum Outgoing<'a> {
    /// A channel push (`push/3` in Phoenix): `[join_ref, null, topic, event, payload]`.
    Push {
        /// The channel's join_ref (omitted under V1).
        join_ref: Option<&'a str>,
        /// The channel topic.
        topic: &'a str,
        /// The event name.
        event: &'a str,
        /// A JSON object, or bytes (V2 only).
        payload: &'a Payload,
    },
    /// A push whose JSON payload was encoded beforehand: the text is copied into the frame, never parsed again. For a
    /// payload many recipients share, such as a big room's `presence_state`, encoded once and wrapped per joiner.
    RawPush {
        /// The channel's join_ref (omitted under V1).
        join_ref: Option<&'a str>,
        /// The channel topic.
        topic: &'a str,
        /// The event name.
        event: &'a str,
        /// The payload, which must be a JSON object.
        json: &'a RawValue,
    },
    /// A channel message with an explicit ref: `[join_ref, ref, topic, event, payload]`. Exists for `phx_close` and
    /// `phx_error`, which Phoenix sends with `ref = join_ref`. In a binary frame the ref is dropped (the server push
    /// layout has no ref field), as in Phoenix.
    Message {
        /// The channel's join_ref (omitted under V1).
        join_ref: Option<&'a str>,
        /// The message ref; for `phx_close`/`phx_error` the join_ref again.
        msg_ref: Option<&'a str>,
        /// The channel topic.
        topic: &'a str,
        /// The event name.
        event: &'a str,
        /// A JSON object, or bytes (V2 only).
        payload: &'a Payload,
    },
    /// A reply to a client message: event `phx_reply`, payload `{"status": status, "response": response}`.
    Reply {
        /// The join_ref the client sent (null for heartbeats and `unmatched topic`; omitted under V1).
        join_ref: Option<&'a str>,
        /// The ref of the message being answered.
        msg_ref: Option<&'a str>,
        /// The topic of the message being answered.
        topic: &'a str,
        /// `"ok"`, `"error"`, …
        status: &'a str,
        /// A JSON object, or bytes (V2 only, sent as a binary reply).
        response: &'a Payload,
    },
    /// A broadcast to every subscriber of a topic: `[null, null, topic, event, payload]`. Identical for all
    /// subscribers, so the server encodes it once per [`Vsn`].
    Broadcast {
        /// The topic.
        topic: &'a str,
        /// The event name.
        event: &'a str,
        /// A JSON object, or bytes (V2 only).
        payload: &'a Payload,
    },
}

impl Outgoing<'_> {
    /// The payload that decides the frame type (for a reply, its response); `None` for a pre-encoded JSON push.
    pub fn payload(&self) -> Option<&Payload> {
        match self {
            Self::Push { payload, .. } | Self::Message { payload, .. } | Self::Broadcast { payload, .. } => {
                Some(payload)
            }
            Self::Reply { response, .. } => Some(response),
            Self::RawPush { .. } => None,
        }
    }
}

/// Server side: decodes a text frame a client sent.
///
/// V2: a JSON array `[join_ref, ref, topic, event, payload, ...]` (extra elements ignored; fewer than five is an error).
/// V1: a JSON object with `topic`, `event`, `payload` and `ref` (may be null) and an optional `join_ref`. Refs may be
/// strings, null or integers; topic and event must be strings; the payload may be any JSON value.
pub fn decode_client_text(vsn: Vsn, text: &str) -> Result<Frame, DecodeError> {
    match vsn {
        Vsn::V1 => v1_json::decode(text),
        Vsn::V2 => v2_json::decode(text),
    }
}

/// Server side: decodes a binary frame a client sent. Only a V2 push (kind 0, 5-byte header) is valid; V1 has no
/// binary frames.
pub fn decode_client_binary(vsn: Vsn, bytes: &[u8]) -> Result<Frame, DecodeError> {
    match vsn {
        Vsn::V1 => Err(DecodeError::BinaryUnsupported),
        Vsn::V2 => v2_binary::decode_client(bytes),
    }
}

/// Server side: encodes a message for a client speaking `vsn`.
///
/// JSON payloads become text frames (V2 array or V1 object) and must be JSON objects. Binary payloads become V2
/// binary frames (push kind 0 without a ref, reply kind 1, broadcast kind 2); under V1 they are an error. V1 never
/// carries `join_ref`, and its pushes and broadcasts have `"ref": null`.
pub fn encode_server(vsn: Vsn, msg: &Outgoing<'_>) -> Result<WireFrame, EncodeError> {
    match (vsn, msg.payload()) {
        (Vsn::V1, Some(Payload::Binary(_))) => Err(EncodeError::BinaryUnsupported),
        (Vsn::V2, Some(Payload::Binary(bytes))) => v2_binary::encode_server(msg, bytes).map(WireFrame::Binary),
        (Vsn::V1, _) => v1_json::encode_server(msg).map(WireFrame::Text),
        (Vsn::V2, _) => v2_json::encode_server(msg).map(WireFrame::Text),
    }
}

/// Client side: encodes a frame as V2, the version phoenix.js and our clients always use. A JSON payload (any value)
/// becomes a text array; a binary payload becomes a kind-0 push with the 5-byte header.
pub fn encode_client(frame: &Frame) -> Result<WireFrame, EncodeError> {
    match &frame.payload {
        Payload::Json(value) => v2_json::encode_client(frame, value).map(WireFrame::Text),
        Payload::Binary(bytes) => v2_binary::encode_client(frame, bytes).map(WireFrame::Binary),
    }
}

/// Client side: decodes a V2 text frame from the server. A JSON reply keeps its `{"status", "response"}` payload;
/// read it with [`Frame::reply`].
pub fn decode_server_text(text: &str) -> Result<Frame, DecodeError> {
    v2_json::decode(text)
}

/// Client side: decodes a V2 binary frame from the server (push 0, reply 1, broadcast 2).
///
/// Returns a [`ServerFrame`] rather than a [`Frame`] because a binary reply's status lives in the frame header, not in
/// the payload: the frame gets event `phx_reply` and the raw response bytes as payload, and the status goes into
/// [`ServerFrame::reply_status`]. [`ServerFrame::reply`] reads JSON and binary replies alike.
pub fn decode_server_binary(bytes: &[u8]) -> Result<ServerFrame, DecodeError> {
    v2_binary::decode_server(bytes)
}

/// Client side: decodes any V2 frame from the server into one type, so a client's read loop needs a single path.
pub fn decode_server(frame: &WireFrame) -> Result<ServerFrame, DecodeError> {
    match frame {
        WireFrame::Text(text) => decode_server_text(text).map(ServerFrame::from),
        WireFrame::Binary(bytes) => decode_server_binary(bytes),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
