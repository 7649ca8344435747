//! Tests of the public serializer API: the JSON vectors of docs/protocol.md §4.1 and phoenix.js, version dispatch, and properties
//! (no input panics a decoder; client encode → server decode round-trips). Layout details are tested beside each
//! serializer.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::frame::{PayloadRef, Reply};

fn text(frame: WireFrame) -> String {
    match frame {
        WireFrame::Text(text) => text,
        WireFrame::Binary(bytes) => panic!("expected a text frame, got {bytes:?}"),
    }
}

// phoenix.js serializer_test.js JSON vectors.
#[test]
fn js_json_encode_vector() {
    let frame = Frame::new(Some("0"), Some("1"), "t", "e", json!({"foo": 1}));
    assert_eq!(text(encode_client(&frame).unwrap()), r#"["0","1","t","e",{"foo":1}]"#);
}

#[test]
fn js_json_decode_vector() {
    let frame = decode_server_text(r#"["0","1","t","e",{"foo":1}]"#).unwrap();
    assert_eq!(frame, Frame::new(Some("0"), Some("1"), "t", "e", json!({"foo": 1})));
}

// Phoenix server: %Message{topic: "t", event: "e", payload: %{m: 1}} and the heartbeat from socket_test.js.
#[test]
fn server_json_vectors() {
    let payload = Payload::Json(json!({"m": 1}));
    let message = Outgoing::Push { join_ref: None, topic: "t", event: "e", payload: &payload };
    assert_eq!(text(encode_server(Vsn::V2, &message).unwrap()), r#"[null,null,"t","e",{"m":1}]"#);
    let heartbeat = decode_client_text(Vsn::V2, r#"[null,"1","phoenix","heartbeat",{}]"#).unwrap();
    assert_eq!(heartbeat, Frame::new(None, Some("1"), "phoenix", "heartbeat", json!({})));
}

#[test]
fn payload_type_picks_the_frame_type() {
    let json = Payload::Json(json!({"a": 1}));
    let bytes = Payload::Binary(vec![1, 2]);
    let push = |payload| Outgoing::Push { join_ref: Some("1"), topic: "t", event: "e", payload };
    assert!(matches!(encode_server(Vsn::V2, &push(&json)), Ok(WireFrame::Text(_))));
    assert!(matches!(encode_server(Vsn::V1, &push(&json)), Ok(WireFrame::Text(_))));
    assert!(matches!(encode_server(Vsn::V2, &push(&bytes)), Ok(WireFrame::Binary(_))));
    assert_eq!(encode_server(Vsn::V1, &push(&bytes)), Err(EncodeError::BinaryUnsupported));
    let reply = Outgoing::Reply { join_ref: None, msg_ref: Some("2"), topic: "t", status: "ok", response: &bytes };
    assert_eq!(encode_server(Vsn::V1, &reply), Err(EncodeError::BinaryUnsupported));
    assert!(matches!(encode_server(Vsn::V2, &reply), Ok(WireFrame::Binary(b)) if b[0] == 1));
}

#[test]
fn v1_has_no_binary_input() {
    let bytes = [0, 1, 1, 1, 1, b'0', b'1', b't', b'e'];
    assert!(matches!(decode_client_binary(Vsn::V1, &bytes), Err(DecodeError::BinaryUnsupported)));
    assert!(decode_client_binary(Vsn::V2, &bytes).is_ok());
}

#[test]
fn vsn_selects_the_text_decoder() {
    let array = r#"["1","2","t","e",{}]"#;
    let object = r#"{"topic":"t","event":"e","payload":{},"ref":"2","join_ref":"1"}"#;
    assert_eq!(decode_client_text(Vsn::V2, array).unwrap(), decode_client_text(Vsn::V1, object).unwrap());
    assert!(matches!(decode_client_text(Vsn::V2, object), Err(DecodeError::NotAnArray)));
    assert!(matches!(decode_client_text(Vsn::V1, array), Err(DecodeError::NotAnObject)));
}

#[test]
fn client_reads_json_and_binary_replies_alike() {
    let response = Payload::Json(json!({"id": 4}));
    let reply =
        Outgoing::Reply { join_ref: Some("1"), msg_ref: Some("3"), topic: "room:a", status: "ok", response: &response };
    let decoded = decode_server(&encode_server(Vsn::V2, &reply).unwrap()).unwrap();
    assert_eq!(decoded.reply(), Some(Reply { status: "ok", response: PayloadRef::Json(&json!({"id": 4})) }));
    assert_eq!(decoded.frame.msg_ref.as_deref(), Some("3"));

    let response = Payload::Binary(vec![5, 6]);
    let reply = Outgoing::Reply {
        join_ref: Some("1"),
        msg_ref: Some("3"),
        topic: "room:a",
        status: "error",
        response: &response,
    };
    let decoded = decode_server(&encode_server(Vsn::V2, &reply).unwrap()).unwrap();
    assert_eq!(decoded.reply(), Some(Reply { status: "error", response: PayloadRef::Binary(&[5, 6]) }));
}

#[test]
fn error_messages_are_lowercase() {
    let errors: Vec<String> = vec![
        decode_client_text(Vsn::V2, "{").unwrap_err().to_string(),
        decode_client_text(Vsn::V2, "[1]").unwrap_err().to_string(),
        decode_client_binary(Vsn::V2, &[]).unwrap_err().to_string(),
        EncodeError::NonObjectPayload.to_string(),
    ];
    for message in errors {
        let first = message.chars().next().unwrap();
        assert!(!first.is_uppercase() && !message.ends_with('.'), "{message}");
    }
}

#[test]
fn wire_frame_bytes() {
    assert_eq!(WireFrame::Text("ab".into()).as_bytes(), b"ab");
    assert_eq!(WireFrame::Binary(vec![1]).as_bytes(), &[1]);
}

/// Arbitrary JSON without floats: float text is not guaranteed to round-trip bit-exactly through serde_json without
/// its `float_roundtrip` feature, and refs/payload handling does not depend on floats.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..5).prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn json_frame() -> impl Strategy<Value = Frame> {
    (proptest::option::of(".{0,10}"), proptest::option::of(".{0,10}"), ".{0,30}", ".{0,20}", json_value()).prop_map(
        |(join_ref, msg_ref, topic, event, payload)| Frame {
            join_ref,
            msg_ref,
            topic,
            event,
            payload: Payload::Json(payload),
        },
    )
}

fn binary_frame() -> impl Strategy<Value = Frame> {
    // Refs are non-empty: an empty binary ref means "absent" and decodes as None.
    (
        proptest::option::of(".{1,10}"),
        proptest::option::of(".{1,10}"),
        ".{0,60}",
        ".{0,60}",
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(join_ref, msg_ref, topic, event, payload)| Frame {
            join_ref,
            msg_ref,
            topic,
            event,
            payload: Payload::Binary(payload),
        })
}

proptest! {
    #[test]
    fn text_decoders_never_panic(input in ".*") {
        let _ = decode_client_text(Vsn::V1, &input);
        let _ = decode_client_text(Vsn::V2, &input);
        let _ = decode_server_text(&input);
    }

    #[test]
    fn text_decoders_never_panic_on_json(value in json_value()) {
        let input = value.to_string();
        let _ = decode_client_text(Vsn::V1, &input);
        let _ = decode_client_text(Vsn::V2, &input);
        let _ = decode_server_text(&input);
    }

    #[test]
    fn binary_decoders_never_panic(input in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_client_binary(Vsn::V1, &input);
        let _ = decode_client_binary(Vsn::V2, &input);
        let _ = decode_server_binary(&input);
    }

    #[test]
    fn binary_decoders_never_panic_on_plausible_headers(
        kind in 0u8..4,
        lengths in prop::collection::vec(0u8..8, 4),
        body in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let input: Vec<u8> = std::iter::once(kind).chain(lengths).chain(body).collect();
        let _ = decode_client_binary(Vsn::V2, &input);
        let _ = decode_server_binary(&input);
    }

    #[test]
    fn json_client_frames_round_trip(frame in json_frame()) {
        let WireFrame::Text(text) = encode_client(&frame).unwrap() else {
            panic!("json payload must encode as text");
        };
        prop_assert_eq!(decode_client_text(Vsn::V2, &text).unwrap(), frame);
    }

    #[test]
    fn binary_client_frames_round_trip(frame in binary_frame()) {
        let WireFrame::Binary(bytes) = encode_client(&frame).unwrap() else {
            panic!("binary payload must encode as binary");
        };
        prop_assert_eq!(decode_client_binary(Vsn::V2, &bytes).unwrap(), frame);
    }

    #[test]
    fn broadcasts_round_trip_to_clients(topic in ".{0,60}", event in ".{0,60}", value in json_value()) {
        let payload = Payload::Json(json!({"v": value}));
        let broadcast = Outgoing::Broadcast { topic: &topic, event: &event, payload: &payload };
        let decoded = decode_server(&encode_server(Vsn::V2, &broadcast).unwrap()).unwrap();
        prop_assert_eq!(decoded.frame, Frame { join_ref: None, msg_ref: None, topic, event, payload });
    }
}
