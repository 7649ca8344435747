//! The V1 JSON decoder, `decode_client_text(Vsn::V1, _)` (docs/protocol.md §4.2), on any UTF-8 text.
//!
//! Checks: no input panics; an accepted object is read faithfully (topic, event and payload are the object's fields,
//! refs are its string or integer `ref` / `join_ref`); the same frame written as a V2 array decodes to the same frame
//! under V2; and the V2 decoder never panics on V1 text either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_fuzz::{as_text, has_float};
use protocol::frame::Payload;
use protocol::serializer::{Vsn, decode_client_text};
use serde_json::Value;

/// What a `ref` or `join_ref` field decodes to, by the documented rules.
fn expected_ref(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(text) = as_text(data) else { return };
    let _ = decode_client_text(Vsn::V2, text);
    let frame = match decode_client_text(Vsn::V1, text) {
        Ok(frame) => frame,
        Err(error) => {
            assert!(!error.to_string().is_empty());
            return;
        }
    };
    let object: Value = serde_json::from_str(text).expect("an accepted frame is JSON");
    assert_eq!(object["topic"].as_str(), Some(frame.topic.as_str()));
    assert_eq!(object["event"].as_str(), Some(frame.event.as_str()));
    assert_eq!(frame.msg_ref, expected_ref(object.get("ref")));
    assert_eq!(frame.join_ref, expected_ref(object.get("join_ref")));
    let Payload::Json(payload) = &frame.payload else { panic!("a text frame has a JSON payload") };
    assert_eq!(Some(payload), object.get("payload"));

    if !has_float(payload) {
        let array = serde_json::to_string(&(&frame.join_ref, &frame.msg_ref, &frame.topic, &frame.event, payload))
            .expect("a Value serializes");
        assert_eq!(decode_client_text(Vsn::V2, &array).expect("the V2 form decodes"), frame);
    }
});
