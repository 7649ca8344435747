//! The V2 JSON decoders (docs/protocol.md §4.1) on any UTF-8 text: the server's `decode_client_text(Vsn::V2, _)`,
//! the client's `decode_server_text` / `decode_server`, and the client's zero-copy `decode_server_text_borrowed`.
//!
//! Checks: no input panics; a decoded frame round-trips through the client encoder and, when its payload is an
//! object, through the server encoders of both versions (V1 drops the join_ref, as Phoenix does); the borrowing
//! decoder, which is stricter about the frame, accepts nothing the owned one refuses (but for a payload it does not
//! read, which must then fail to read) and reads the same fields and reply.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_fuzz::{as_text, has_float};
use protocol::frame::{Payload, PayloadRef};
use protocol::serializer::{
    Outgoing, Vsn, WireFrame, decode_client_text, decode_server, decode_server_text, decode_server_text_borrowed,
    encode_client, encode_server,
};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some(text) = as_text(data) else { return };
    let owned = decode_client_text(Vsn::V2, text);
    let client_side = decode_server_text(text);
    assert_eq!(owned.as_ref().ok(), client_side.as_ref().ok(), "both sides read V2 text alike");
    let via_wire = decode_server(&WireFrame::Text(text.to_owned()));
    assert_eq!(via_wire.as_ref().ok().map(|s| &s.frame), owned.as_ref().ok());

    if let Ok(borrowed) = decode_server_text_borrowed(text) {
        let frame = match &owned {
            Ok(frame) => frame,
            // The borrowing decoder does not read the payload, so it may hold what no `Value` can (`1e999`).
            Err(error) => {
                assert!(borrowed.payload::<Value>().is_err(), "the owned decoder refused a good frame: {error}");
                return;
            }
        };
        assert_eq!(borrowed.join_ref(), frame.join_ref.as_deref());
        assert_eq!(borrowed.msg_ref(), frame.msg_ref.as_deref());
        assert_eq!(borrowed.topic(), frame.topic);
        assert_eq!(borrowed.event(), frame.event);
        let payload: Value = serde_json::from_str(borrowed.payload_json()).expect("a raw payload is JSON");
        assert_eq!(Some(&payload), frame.payload.as_json());
        if let Some(reply) = borrowed.reply() {
            let seen = frame.reply().expect("a reply for one decoder is a reply for the other");
            assert_eq!(seen.status, reply.status);
            let response: Value = reply.response().expect("a raw response is JSON");
            assert_eq!(seen.response, PayloadRef::Json(&response));
        }
    }

    let Ok(frame) = owned else { return };
    let Payload::Json(payload) = &frame.payload else { panic!("a text frame has a JSON payload") };
    if has_float(payload) {
        return;
    }
    let WireFrame::Text(again) = encode_client(&frame).expect("a decoded frame encodes") else {
        panic!("a JSON payload encodes as text")
    };
    assert_eq!(decode_client_text(Vsn::V2, &again).expect("our own encoding decodes"), frame);

    if payload.is_object() {
        let message = Outgoing::Message {
            join_ref: frame.join_ref.as_deref(),
            msg_ref: frame.msg_ref.as_deref(),
            topic: &frame.topic,
            event: &frame.event,
            payload: &frame.payload,
        };
        let Ok(WireFrame::Text(v2)) = encode_server(Vsn::V2, &message) else { panic!("object payloads encode") };
        assert_eq!(decode_server_text(&v2).expect("server V2 text decodes"), frame);
        let Ok(WireFrame::Text(v1)) = encode_server(Vsn::V1, &message) else { panic!("object payloads encode") };
        let mut without_join_ref = frame.clone();
        without_join_ref.join_ref = None;
        assert_eq!(decode_client_text(Vsn::V1, &v1).expect("server V1 text decodes"), without_join_ref);
    }
});
