//! V1 JSON text frames: objects `{"topic", "event", "payload", "ref"}` (docs/protocol.md §4.2). Selected when the
//! client sends no `vsn` or `~> 1.0.0`; phoenix.js never uses it by default, but other Phoenix clients do.

use serde::Serialize;
use serde_json::Value;

use super::fields::{ReplyBody, json_object, raw_object, take_ref, take_string};
use super::{DecodeError, EncodeError, Outgoing};
use crate::events::PHX_REPLY;
use crate::frame::{Frame, Payload};

/// A V1 server frame. V1 has no `join_ref` on the way out, ever. Fields are in Jason's sorted key order so the bytes
/// match Phoenix's; the order carries no meaning.
#[derive(Serialize)]
struct V1Frame<'a, P: Serialize + ?Sized> {
    event: &'a str,
    payload: &'a P,
    #[serde(rename = "ref")]
    msg_ref: Option<&'a str>,
    topic: &'a str,
}

/// Decodes a client object. `topic`, `event`, `payload` and `ref` are required (`ref` may be null), `join_ref` is
/// optional, other keys are ignored: exactly Phoenix's `Message.from_map!`.
pub(super) fn decode(text: &str) -> Result<Frame, DecodeError> {
    let mut object = match serde_json::from_str(text).map_err(DecodeError::InvalidJson)? {
        Value::Object(object) => object,
        _ => return Err(DecodeError::NotAnObject),
    };
    let mut required = |field: &'static str| object.remove(field).ok_or(DecodeError::MissingField(field));
    let topic = take_string(required("topic")?, "topic")?;
    let event = take_string(required("event")?, "event")?;
    let payload = required("payload")?;
    let msg_ref = take_ref(required("ref")?, "ref")?;
    let join_ref = match object.remove("join_ref") {
        Some(value) => take_ref(value, "join_ref")?,
        None => None,
    };
    Ok(Frame { join_ref, msg_ref, topic, event, payload: Payload::Json(payload) })
}

/// Encodes a server message whose payload is JSON, from borrowed parts (no payload clone).
pub(super) fn encode_server(msg: &Outgoing<'_>) -> Result<String, EncodeError> {
    let text = match *msg {
        Outgoing::Push { topic, event, payload, .. } => to_object(None, topic, event, json_object(payload)?)?,
        Outgoing::RawPush { topic, event, json, .. } => to_object(None, topic, event, raw_object(json)?)?,
        Outgoing::Message { msg_ref, topic, event, payload, .. } => {
            to_object(msg_ref, topic, event, json_object(payload)?)?
        }
        Outgoing::Reply { msg_ref, topic, status, response, .. } => {
            let body = ReplyBody { response: json_object(response)?, status };
            to_object(msg_ref, topic, PHX_REPLY, &body)?
        }
        Outgoing::Broadcast { topic, event, payload } => to_object(None, topic, event, json_object(payload)?)?,
    };
    Ok(text)
}

fn to_object<P: Serialize + ?Sized>(
    msg_ref: Option<&str>,
    topic: &str,
    event: &str,
    payload: &P,
) -> Result<String, EncodeError> {
    Ok(serde_json::to_string(&V1Frame { event, payload, msg_ref, topic })?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn decodes_client_object() {
        let frame = decode(r#"{"topic":"t","event":"e","payload":{"a":1},"ref":"2","join_ref":"1"}"#).unwrap();
        assert_eq!(frame, Frame::new(Some("1"), Some("2"), "t", "e", json!({"a": 1})));
        // join_ref optional, ref may be null or an integer, unknown keys ignored, payload any JSON value.
        let frame = decode(r#"{"topic":"t","event":"e","payload":[1],"ref":null,"x":0}"#).unwrap();
        assert_eq!(frame, Frame::new(None, None, "t", "e", json!([1])));
        let frame = decode(r#"{"topic":"t","event":"e","payload":{},"ref":7}"#).unwrap();
        assert_eq!(frame.msg_ref.as_deref(), Some("7"));
    }

    #[test]
    fn malformed_objects() {
        assert!(matches!(decode("{"), Err(DecodeError::InvalidJson(_))));
        assert!(matches!(decode(r#"["1","2","t","e",{}]"#), Err(DecodeError::NotAnObject)));
        assert!(matches!(decode("null"), Err(DecodeError::NotAnObject)));
        for (missing, text) in [
            ("topic", r#"{"event":"e","payload":{},"ref":null}"#),
            ("event", r#"{"topic":"t","payload":{},"ref":null}"#),
            ("payload", r#"{"topic":"t","event":"e","ref":null}"#),
            ("ref", r#"{"topic":"t","event":"e","payload":{}}"#),
        ] {
            assert!(matches!(decode(text), Err(DecodeError::MissingField(field)) if field == missing), "{text}");
        }
        let bad_topic = r#"{"topic":1,"event":"e","payload":{},"ref":null}"#;
        assert!(matches!(decode(bad_topic), Err(DecodeError::NotAString("topic"))));
        let bad_ref = r#"{"topic":"t","event":"e","payload":{},"ref":false}"#;
        assert!(matches!(decode(bad_ref), Err(DecodeError::InvalidRef("ref"))));
        let bad_join_ref = r#"{"topic":"t","event":"e","payload":{},"ref":null,"join_ref":[]}"#;
        assert!(matches!(decode(bad_join_ref), Err(DecodeError::InvalidRef("join_ref"))));
    }

    #[test]
    fn push_and_broadcast_have_null_ref_and_no_join_ref() {
        let payload = Payload::Json(json!({"m": 1}));
        let expected = r#"{"event":"e","payload":{"m":1},"ref":null,"topic":"t"}"#;
        let push = Outgoing::Push { join_ref: Some("3"), topic: "t", event: "e", payload: &payload };
        assert_eq!(encode_server(&push).unwrap(), expected);
        let broadcast = Outgoing::Broadcast { topic: "t", event: "e", payload: &payload };
        assert_eq!(encode_server(&broadcast).unwrap(), expected);
        let json = serde_json::value::to_raw_value(&json!({"m": 1})).unwrap();
        let raw = Outgoing::RawPush { join_ref: Some("3"), topic: "t", event: "e", json: &json };
        assert_eq!(encode_server(&raw).unwrap(), expected, "a pre-encoded payload is framed the same way");
    }

    #[test]
    fn reply_and_close_shapes() {
        let response = Payload::Json(json!({"id": 9}));
        let reply =
            Outgoing::Reply { join_ref: Some("1"), msg_ref: Some("4"), topic: "t", status: "ok", response: &response };
        assert_eq!(
            encode_server(&reply).unwrap(),
            r#"{"event":"phx_reply","payload":{"response":{"id":9},"status":"ok"},"ref":"4","topic":"t"}"#
        );
        let close = Outgoing::Message {
            join_ref: Some("1"),
            msg_ref: Some("1"),
            topic: "t",
            event: "phx_close",
            payload: &Payload::empty(),
        };
        assert_eq!(encode_server(&close).unwrap(), r#"{"event":"phx_close","payload":{},"ref":"1","topic":"t"}"#);
    }

    #[test]
    fn payload_must_be_object() {
        let payload = Payload::Json(json!([]));
        let push = Outgoing::Push { join_ref: None, topic: "t", event: "e", payload: &payload };
        assert_eq!(encode_server(&push), Err(EncodeError::NonObjectPayload));
    }
}
