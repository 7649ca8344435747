//! Presence payloads as they arrive on the wire, on any UTF-8 text: `PresenceState` / `PresenceDiff` parsing and the
//! client's `ChannelPresence::handle` fed a JSON script of channel messages.
//!
//! A JSON array is read as a script: each element `[event, join_ref, payload]` is delivered to `ChannelPresence`
//! (the Rust client's) and to the phoenix.js reference model, which must end in the same state, in the same key
//! order, with the same callbacks; a key with no metas may only survive if one arrived that way. Any other JSON is
//! parsed as a state and as a diff: what parses serializes back to equal JSON in the same key order, and keys
//! iterate in JavaScript order (array indices ascending, then the rest).
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_fuzz::as_text;
use parley_fuzz::channel_presence::ChannelPresence;
use parley_fuzz::js_presence::{self, JsClient, JsObject};
use protocol::events::{PRESENCE_DIFF, PRESENCE_STATE};
use protocol::frame::Payload;
use protocol::presence::{PresenceDiff, PresenceState};
use protocol::typed::from_json;
use serde_json::Value;

/// The array index a JavaScript engine sees in `key`, if any.
fn js_index(key: &str) -> Option<u64> {
    let n: u64 = key.parse().ok()?;
    (n.to_string() == key && n < u64::from(u32::MAX)).then_some(n)
}

fn check_state(state: &PresenceState) {
    let keys: Vec<&str> = state.keys().collect();
    let named = keys.iter().position(|key| js_index(key).is_none()).unwrap_or(keys.len());
    assert!(keys[named..].iter().all(|key| js_index(key).is_none()), "an index key after a named one: {keys:?}");
    assert!(keys[..named].windows(2).all(|w| js_index(w[0]) < js_index(w[1])), "index keys out of order: {keys:?}");
    let text = serde_json::to_string(state).expect("a state serializes");
    let again: PresenceState = serde_json::from_str(&text).expect("a serialized state parses");
    assert_eq!(&again, state);
    assert!(again.keys().eq(state.keys()));
}

fn has_empty(state: &PresenceState) -> bool {
    state.iter().any(|(_, presence)| presence.metas.is_empty())
}

fn run_script(messages: &[Value]) {
    let mut channel = ChannelPresence::new();
    let mut model = JsClient::default();
    let mut empty_arrived = false;
    for message in messages.iter().take(32) {
        let Some([event, join_ref, payload]) = message.as_array().map(Vec::as_slice) else { continue };
        let (Some(event), Some(join_ref)) =
            (event.as_str(), join_ref.as_str().map(Some).or(join_ref.is_null().then_some(None)))
        else {
            continue;
        };
        let events = channel.handle(event, &Payload::Json(payload.clone()), join_ref);
        let mut expected = Vec::new();
        match event {
            PRESENCE_STATE => {
                if let Ok(state) = from_json::<PresenceState>(payload) {
                    empty_arrived |= has_empty(&state);
                    model.on_state(join_ref, &JsObject::from_state(&state), &mut expected);
                }
            }
            PRESENCE_DIFF => {
                if let Ok(diff) = from_json::<PresenceDiff>(payload) {
                    empty_arrived |= has_empty(&diff.joins);
                    model.on_diff(join_ref, &diff, &mut expected);
                }
            }
            _ => {}
        }
        assert_eq!(events, expected, "callbacks differ from phoenix.js");
        js_presence::assert_same(channel.state(), &model.state, "ChannelPresence");
        assert!(empty_arrived || !has_empty(channel.state()), "a key with no metas survived");
        check_state(channel.state());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(text) = as_text(data) else { return };
    let Ok(value) = serde_json::from_str::<Value>(text) else { return };
    if let Value::Array(messages) = &value {
        run_script(messages);
        return;
    }
    if let Ok(state) = serde_json::from_str::<PresenceState>(text) {
        check_state(&state);
    }
    if let Ok(diff) = serde_json::from_str::<PresenceDiff>(text) {
        check_state(&diff.joins);
        check_state(&diff.leaves);
        let again: PresenceDiff =
            serde_json::from_str(&serde_json::to_string(&diff).expect("serializes")).expect("parses");
        assert_eq!(again, diff);
    }
});
