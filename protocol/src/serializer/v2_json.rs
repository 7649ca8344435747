//! V2 JSON text frames: `[join_ref, ref, topic, event, payload]` in both directions (docs/protocol.md §4.1).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Value, value::RawValue};

use super::fields::{ReplyBody, json_object, raw_object, take_ref, take_string};
use super::{DecodeError, EncodeError, Outgoing};
use crate::events::{PHX_REPLY, STATUS_OK};
use crate::frame::{Frame, Payload};

/// Decodes a V2 array from either side. Like Phoenix, elements after the fifth are ignored, and the payload may be any
/// JSON value (the server checks payload shapes per event, not per frame).
pub(super) fn decode(text: &str) -> Result<Frame, DecodeError> {
    let items = match serde_json::from_str(text).map_err(DecodeError::InvalidJson)? {
        Value::Array(items) => items,
        _ => return Err(DecodeError::NotAnArray),
    };
    let arity = items.len();
    let mut items = items.into_iter();
    let (Some(join_ref), Some(msg_ref), Some(topic), Some(event), Some(payload)) =
        (items.next(), items.next(), items.next(), items.next(), items.next())
    else {
        return Err(DecodeError::WrongArity(arity));
    };
    Ok(Frame {
        join_ref: take_ref(join_ref, "join_ref")?,
        msg_ref: take_ref(msg_ref, "ref")?,
        topic: take_string(topic, "topic")?,
        event: take_string(event, "event")?,
        payload: Payload::Json(payload),
    })
}

/// Encodes a server message whose payload is JSON. Serializes a tuple of borrowed fields, which serde writes as a JSON
/// array, so the payload is never cloned: this runs once per broadcast for every subscriber.
pub(super) fn encode_server(msg: &Outgoing<'_>) -> Result<String, EncodeError> {
    let text = match *msg {
        Outgoing::Push { join_ref, topic, event, payload } => {
            to_array(join_ref, None, topic, event, json_object(payload)?)?
        }
        Outgoing::RawPush { join_ref, topic, event, json } => {
            to_array(join_ref, None, topic, event, raw_object(json)?)?
        }
        Outgoing::Message { join_ref, msg_ref, topic, event, payload } => {
            to_array(join_ref, msg_ref, topic, event, json_object(payload)?)?
        }
        Outgoing::Reply { join_ref, msg_ref, topic, status, response } => {
            let body = ReplyBody { response: json_object(response)?, status };
            to_array(join_ref, msg_ref, topic, PHX_REPLY, &body)?
        }
        Outgoing::Broadcast { topic, event, payload } => to_array(None, None, topic, event, json_object(payload)?)?,
    };
    Ok(text)
}

/// Encodes a client frame with a JSON payload. Unlike server frames, any JSON value is allowed as the payload, as in
/// phoenix.js.
pub(super) fn encode_client(frame: &Frame, payload: &Value) -> Result<String, EncodeError> {
    to_array(frame.join_ref.as_deref(), frame.msg_ref.as_deref(), &frame.topic, &frame.event, payload)
}

fn to_array<P: Serialize + ?Sized>(
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    event: &str,
    payload: &P,
) -> Result<String, EncodeError> {
    Ok(serde_json::to_string(&(join_ref, msg_ref, topic, event, payload))?)
}

/// Client side: a V2 text frame from the server whose topic, event and payload borrow from the received text, for
/// clients that read many frames and decode each payload straight into its own type (the load generator) with no
/// `Value` tree in between.
#[derive(Debug, Deserialize)]
pub struct BorrowedFrame<'a>(
    Option<Cow<'a, str>>,
    Option<Cow<'a, str>>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] &'a RawValue,
);

impl<'a> BorrowedFrame<'a> {
    /// The join_ref.
    pub fn join_ref(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// The ref (set on replies).
    pub fn msg_ref(&self) -> Option<&str> {
        self.1.as_deref()
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.2
    }

    /// The event name.
    pub fn event(&self) -> &str {
        &self.3
    }

    /// The payload as JSON text.
    pub fn payload_json(&self) -> &'a str {
        self.4.get()
    }

    /// The payload decoded as `T`.
    pub fn payload<T: Deserialize<'a>>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.4.get())
    }

    /// The reply this frame carries, when it is a well-formed `phx_reply`.
    pub fn reply(&self) -> Option<BorrowedReply<'a>> {
        if self.event() != PHX_REPLY {
            return None;
        }
        self.payload().ok()
    }
}

/// The `{"status", "response"}` payload of a [`BorrowedFrame`] reply.
#[derive(Debug, Deserialize)]
pub struct BorrowedReply<'a> {
    /// `ok`, `error`, …
    #[serde(borrow)]
    pub status: Cow<'a, str>,
    /// The response, still as JSON text.
    #[serde(borrow)]
    pub response: &'a RawValue,
}

impl<'a> BorrowedReply<'a> {
    /// Whether the status is `ok`.
    pub fn is_ok(&self) -> bool {
        self.status == STATUS_OK
    }

    /// The response decoded as `T`.
    pub fn response<T: Deserialize<'a>>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.response.get())
    }
}

/// Client side: decodes a V2 text frame from the server without building a `Value` (see [`BorrowedFrame`]). Stricter
/// than [`decode`] about the frame: exactly five elements and string or null refs, which is what every Phoenix server
/// sends. The payload is only checked to be JSON, not read, so a number no `f64` holds (`1e999`) passes here and
/// fails when the payload is read ([`BorrowedFrame::payload`]), where [`decode`] refuses the whole frame.
pub fn decode_server_text_borrowed(text: &str) -> Result<BorrowedFrame<'_>, DecodeError> {
    serde_json::from_str(text).map_err(DecodeError::InvalidJson)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn decodes_heartbeat() {
        let frame = decode(r#"[null,"1","phoenix","heartbeat",{}]"#).unwrap();
        assert_eq!(frame, Frame::new(None, Some("1"), "phoenix", "heartbeat", json!({})));
    }

    #[test]
    fn ignores_extra_elements_and_accepts_any_payload() {
        let frame = decode(r#"["1","2","t","e",[1,2],"extra",null]"#).unwrap();
        assert_eq!(frame, Frame::new(Some("1"), Some("2"), "t", "e", json!([1, 2])));
        let frame = decode(r#"[null,null,"t","e","just a string"]"#).unwrap();
        assert_eq!(frame.payload, Payload::Json(json!("just a string")));
    }

    #[test]
    fn integer_refs_become_strings() {
        let frame = decode(r#"[3,-4,"t","e",{}]"#).unwrap();
        assert_eq!(frame.join_ref.as_deref(), Some("3"));
        assert_eq!(frame.msg_ref.as_deref(), Some("-4"));
        let frame = decode(r#"[18446744073709551615,null,"t","e",{}]"#).unwrap();
        assert_eq!(frame.join_ref.as_deref(), Some("18446744073709551615"));
    }

    #[test]
    fn malformed_frames() {
        assert!(matches!(decode("not json"), Err(DecodeError::InvalidJson(_))));
        assert!(matches!(decode(r#"["1","2","t","e",{}"#), Err(DecodeError::InvalidJson(_))));
        assert!(matches!(decode(""), Err(DecodeError::InvalidJson(_))));
        assert!(matches!(decode(r#"{"topic":"t"}"#), Err(DecodeError::NotAnArray)));
        assert!(matches!(decode("42"), Err(DecodeError::NotAnArray)));
        assert!(matches!(decode(r#"["1","2","t","e"]"#), Err(DecodeError::WrongArity(4))));
        assert!(matches!(decode("[]"), Err(DecodeError::WrongArity(0))));
        assert!(matches!(decode(r#"["1","2",7,"e",{}]"#), Err(DecodeError::NotAString("topic"))));
        assert!(matches!(decode(r#"["1","2",null,"e",{}]"#), Err(DecodeError::NotAString("topic"))));
        assert!(matches!(decode(r#"["1","2","t",["e"],{}]"#), Err(DecodeError::NotAString("event"))));
        assert!(matches!(decode(r#"[true,"2","t","e",{}]"#), Err(DecodeError::InvalidRef("join_ref"))));
        assert!(matches!(decode(r#"["1",1.5,"t","e",{}]"#), Err(DecodeError::InvalidRef("ref"))));
        assert!(matches!(decode(r#"["1",{},"t","e",{}]"#), Err(DecodeError::InvalidRef("ref"))));
    }

    #[test]
    fn server_output_shapes() {
        let payload = Payload::Json(json!({"m": 1}));
        let push = Outgoing::Push { join_ref: Some("3"), topic: "t", event: "e", payload: &payload };
        assert_eq!(encode_server(&push).unwrap(), r#"["3",null,"t","e",{"m":1}]"#);
        let close = Outgoing::Message {
            join_ref: Some("3"),
            msg_ref: Some("3"),
            topic: "t",
            event: "phx_close",
            payload: &Payload::empty(),
        };
        assert_eq!(encode_server(&close).unwrap(), r#"["3","3","t","phx_close",{}]"#);
        let broadcast = Outgoing::Broadcast { topic: "t", event: "e", payload: &payload };
        assert_eq!(encode_server(&broadcast).unwrap(), r#"[null,null,"t","e",{"m":1}]"#);
    }

    #[test]
    fn reply_matches_phoenix_bytes() {
        let heartbeat = Outgoing::Reply {
            join_ref: None,
            msg_ref: Some("5"),
            topic: "phoenix",
            status: "ok",
            response: &Payload::empty(),
        };
        assert_eq!(
            encode_server(&heartbeat).unwrap(),
            r#"[null,"5","phoenix","phx_reply",{"response":{},"status":"ok"}]"#
        );
        let refused = Payload::Json(json!({"reason": "unmatched topic"}));
        let reply = Outgoing::Reply {
            join_ref: None,
            msg_ref: Some("6"),
            topic: "room:nope",
            status: "error",
            response: &refused,
        };
        assert_eq!(
            encode_server(&reply).unwrap(),
            r#"[null,"6","room:nope","phx_reply",{"response":{"reason":"unmatched topic"},"status":"error"}]"#
        );
    }

    #[test]
    fn server_payloads_must_be_objects() {
        for payload in [json!([1]), json!("s"), json!(null), json!(1)] {
            let payload = Payload::Json(payload);
            let push = Outgoing::Broadcast { topic: "t", event: "e", payload: &payload };
            assert_eq!(encode_server(&push), Err(EncodeError::NonObjectPayload));
            let reply = Outgoing::Reply { join_ref: None, msg_ref: None, topic: "t", status: "ok", response: &payload };
            assert_eq!(encode_server(&reply), Err(EncodeError::NonObjectPayload));
        }
    }

    #[test]
    fn raw_pushes_copy_their_payload() {
        let json = serde_json::value::to_raw_value(&json!({"alice": {"metas": []}})).unwrap();
        let push = Outgoing::RawPush { join_ref: Some("4"), topic: "room:a", event: "presence_state", json: &json };
        assert_eq!(encode_server(&push).unwrap(), r#"["4",null,"room:a","presence_state",{"alice":{"metas":[]}}]"#);
        let not_an_object = serde_json::value::to_raw_value(&json!([1])).unwrap();
        let push = Outgoing::RawPush { join_ref: None, topic: "t", event: "e", json: &not_an_object };
        assert_eq!(encode_server(&push), Err(EncodeError::NonObjectPayload));
    }

    #[test]
    fn borrowed_frames_and_replies() {
        let text = r#"["1","2","room:a","phx_reply",{"response":{"id":7},"status":"ok"}]"#;
        let frame = decode_server_text_borrowed(text).unwrap();
        assert_eq!((frame.join_ref(), frame.msg_ref(), frame.topic()), (Some("1"), Some("2"), "room:a"));
        let reply = frame.reply().unwrap();
        assert!(reply.is_ok());
        assert_eq!(reply.response::<Value>().unwrap(), json!({"id": 7}));
        let push = decode_server_text_borrowed(r#"[null,null,"r\"q","message:new",{"n":1}]"#).unwrap();
        assert_eq!((push.topic(), push.event(), push.payload_json()), (r#"r"q"#, "message:new", r#"{"n":1}"#));
        assert!(push.reply().is_none());
        assert!(decode_server_text_borrowed(r#"[null,null,"t","e"]"#).is_err());
        assert!(decode_server_text_borrowed("nope").is_err());
    }

    // Found by the v2_json fuzz target: the borrowing decoder is stricter about the frame but does not read the payload.
    #[test]
    fn borrowed_decoding_leaves_the_payload_unread() {
        let text = r#"[null,null,"t","e",{"n":1e999}]"#;
        assert!(matches!(decode(text), Err(DecodeError::InvalidJson(_))));
        let frame = decode_server_text_borrowed(text).unwrap();
        assert_eq!(frame.payload_json(), r#"{"n":1e999}"#);
        assert!(frame.payload::<Value>().is_err());
    }

    #[test]
    fn escapes_strings() {
        let frame = Frame::new(Some("1"), Some("2"), "room:\"q\"", "e\n", json!({"k": "é\u{0}"}));
        let text = encode_client(&frame, &json!({"k": "é\u{0}"})).unwrap();
        assert_eq!(decode(&text).unwrap(), frame);
    }
}
