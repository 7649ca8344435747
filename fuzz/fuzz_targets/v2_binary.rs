//! The V2 binary decoders (docs/protocol.md §4.3) on any bytes: the server's `decode_client_binary` (pushes with
//! the 5-byte header) and the client's `decode_server_binary` / `decode_server` (push, reply, broadcast).
//!
//! Checks: no input panics; V1 refuses every binary frame; and since every field is length-prefixed and taken
//! verbatim, a decoded frame encodes back to exactly the input bytes, through `encode_client` for a client push
//! and through `encode_server` (push, reply with its header status, broadcast) for a server frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::events::PHX_REPLY;
use protocol::frame::PayloadRef;
use protocol::serializer::{
    DecodeError, Outgoing, Vsn, WireFrame, decode_client_binary, decode_server, decode_server_binary, encode_client,
    encode_server,
};

fuzz_target!(|data: &[u8]| {
    assert!(matches!(decode_client_binary(Vsn::V1, data), Err(DecodeError::BinaryUnsupported)));

    if let Ok(frame) = decode_client_binary(Vsn::V2, data) {
        assert_eq!(encode_client(&frame), Ok(WireFrame::Binary(data.to_vec())), "client push re-encodes exactly");
    }

    let decoded = decode_server_binary(data);
    let via_wire = decode_server(&WireFrame::Binary(data.to_vec()));
    assert_eq!(decoded.as_ref().ok(), via_wire.as_ref().ok());
    let Ok(server) = decoded else { return };
    let frame = &server.frame;
    let message = match (data[0], &server.reply_status) {
        (0, None) => {
            assert_eq!(frame.msg_ref, None);
            Outgoing::Push {
                join_ref: frame.join_ref.as_deref(),
                topic: &frame.topic,
                event: &frame.event,
                payload: &frame.payload,
            }
        }
        (1, Some(status)) => {
            assert_eq!(frame.event, PHX_REPLY);
            let reply = server.reply().expect("a binary reply reads as a reply");
            assert_eq!(reply.status, status);
            assert!(matches!(reply.response, PayloadRef::Binary(_)));
            Outgoing::Reply {
                join_ref: frame.join_ref.as_deref(),
                msg_ref: frame.msg_ref.as_deref(),
                topic: &frame.topic,
                status,
                response: &frame.payload,
            }
        }
        (2, None) => {
            assert_eq!((frame.join_ref.as_deref(), frame.msg_ref.as_deref()), (None, None));
            Outgoing::Broadcast { topic: &frame.topic, event: &frame.event, payload: &frame.payload }
        }
        (kind, status) => panic!("kind {kind} decoded with reply status {status:?}"),
    };
    assert_eq!(encode_server(Vsn::V2, &message), Ok(WireFrame::Binary(data.to_vec())), "server frame re-encodes");
});
