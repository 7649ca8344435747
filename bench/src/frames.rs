//! The Phoenix frames the bench clients send and read, all through the `protocol` crate: [`join`] and [`push`] build
//! V2 text frames from typed payloads ([`protocol::typed::Request`]), [`decode`] borrows a server frame without a
//! `Value` tree, and [`event`] and [`response`] read its payload as the type its event or request promises.
//!
//! No scenario writes or scans a JSON array itself, so a change of the wire format or of a payload breaks the build
//! here rather than a measurement at runtime.

use protocol::{
    chat::JoinParams,
    events::{HEARTBEAT, PHOENIX_TOPIC, PHX_JOIN, PHX_LEAVE},
    frame::{Frame, Payload},
    reasons::ErrorReply,
    serializer::{self, DecodeError, EncodeError, WireFrame},
    typed::{Event, PayloadError, Request, to_payload},
};
use serde::de::DeserializeOwned;

pub use protocol::serializer::{BorrowedFrame, BorrowedReply};

/// Why a frame could not be built or read, or why its reply was not `ok`.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A payload that does not serialize to JSON.
    #[error("payload: {0}")]
    Payload(#[from] PayloadError),
    /// The serializer refused the frame.
    #[error("encode: {0}")]
    Encode(#[from] EncodeError),
    /// The encoder made a binary frame where a text frame was expected (only binary payloads do that).
    #[error("encode: expected a text frame")]
    NotText,
    /// The server sent something that is not a V2 text frame.
    #[error("decode: {0}")]
    Decode(#[from] DecodeError),
    /// A payload or reply response that does not have the type its event or request promises.
    #[error("payload shape: {0}")]
    Shape(#[from] serde_json::Error),
    /// The server answered with an error reply.
    #[error("refused: {}", .0.reason)]
    Refused(ErrorReply),
}

/// A `phx_join` of `topic` whose join_ref and ref are both `join_ref`, as phoenix.js sends it.
pub fn join(join_ref: &str, topic: &str, params: &JoinParams) -> Result<String, FrameError> {
    text(&Frame::new(Some(join_ref), Some(join_ref), topic, PHX_JOIN, to_payload(params)?))
}

/// A push of `request` under its event, with ref `msg_ref`, on the channel of `topic` joined with `join_ref`.
pub fn push<R: Request>(join_ref: &str, msg_ref: &str, topic: &str, request: &R) -> Result<String, FrameError> {
    text(&Frame::new(Some(join_ref), Some(msg_ref), topic, R::EVENT, to_payload(request)?))
}

/// A `phx_leave` of the channel of `topic` joined with `join_ref`, with ref `msg_ref`.
pub fn leave(join_ref: &str, msg_ref: &str, topic: &str) -> Result<String, FrameError> {
    text(&Frame::new(Some(join_ref), Some(msg_ref), topic, PHX_LEAVE, Payload::empty()))
}

/// A heartbeat with ref `msg_ref` (phoenix.js sends one every 30 s; the server closes a socket silent for 60 s).
pub fn heartbeat(msg_ref: &str) -> Result<String, FrameError> {
    text(&Frame::new(None, Some(msg_ref), PHOENIX_TOPIC, HEARTBEAT, Payload::empty()))
}

fn text(frame: &Frame) -> Result<String, FrameError> {
    match serializer::encode_client(frame)? {
        WireFrame::Text(text) => Ok(text),
        WireFrame::Binary(_) => Err(FrameError::NotText),
    }
}

/// Decodes a text frame from the server; topic, event and payload borrow from `text`.
pub fn decode(text: &str) -> Result<BorrowedFrame<'_>, FrameError> {
    Ok(serializer::decode_server_text_borrowed(text)?)
}

/// The payload of `frame` as `E` when the frame carries event `E::EVENT`; `None` for every other event.
pub fn event<E: Event>(frame: &BorrowedFrame<'_>) -> Option<Result<E, FrameError>> {
    (frame.event() == E::EVENT).then(|| frame.payload().map_err(FrameError::from))
}

/// The response of an `ok` reply as `T`; an error reply becomes [`FrameError::Refused`] with its reason.
pub fn response<T: DeserializeOwned>(reply: &BorrowedReply<'_>) -> Result<T, FrameError> {
    if reply.is_ok() { Ok(reply.response()?) } else { Err(FrameError::Refused(reply.response()?)) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use protocol::chat::{Message, NewMessage, NewMessageReply};

    use super::*;

    #[test]
    fn builds_join_and_push_frames() {
        assert_eq!(join("1", "room:a", &JoinParams::default()).unwrap(), r#"["1","1","room:a","phx_join",{}]"#);
        let message = NewMessage { body: "hi".into(), client_id: Some("c0".into()) };
        assert_eq!(
            push("1", "2", "room:a", &message).unwrap(),
            r#"["1","2","room:a","message:new",{"body":"hi","client_id":"c0"}]"#
        );
        assert_eq!(heartbeat("9").unwrap(), r#"[null,"9","phoenix","heartbeat",{}]"#);
        assert_eq!(leave("1", "4", "room:a").unwrap(), r#"["1","4","room:a","phx_leave",{}]"#);
    }

    #[test]
    fn reads_events_and_replies() {
        let text = r#"[null,null,"room:a","message:new",{"id":3,"user":"u","body":"b","timestamp":1}]"#;
        let frame = decode(text).unwrap();
        assert_eq!(event::<Message>(&frame).unwrap().unwrap().id, 3);
        let ok = decode(r#"["1","2","room:a","phx_reply",{"response":{"id":7},"status":"ok"}]"#).unwrap();
        assert!(event::<Message>(&ok).is_none());
        assert_eq!(response::<NewMessageReply>(&ok.reply().unwrap()).unwrap(), NewMessageReply { id: 7 });
        let error = r#"["1","3","room:a","phx_reply",{"response":{"reason":"rate limited"},"status":"error"}]"#;
        let refused = response::<NewMessageReply>(&decode(error).unwrap().reply().unwrap());
        assert!(matches!(refused, Err(FrameError::Refused(ErrorReply { reason })) if reason == "rate limited"));
        assert!(decode(r#"["1","2","t"]"#).is_err());
    }
}
