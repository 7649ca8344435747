//! Conversions from decoded JSON values into frame fields, shared by the V1 and V2 text decoders so both apply the
//! same leniency rules, plus the "payload must be an object" check of server text frames.

use serde::Serialize;
use serde_json::{Map, Value, value::RawValue};

use super::{DecodeError, EncodeError};
use crate::frame::Payload;

/// The payload of a `phx_reply`, serialized straight from borrowed parts. Fields are in Jason's (sorted) key order so
/// our replies are byte-identical to Phoenix's (`{"response":{},"status":"ok"}`); the order carries no meaning.
#[derive(Serialize)]
pub(super) struct ReplyBody<'a> {
    pub(super) response: &'a Map<String, Value>,
    pub(super) status: &'a str,
}

/// A `join_ref` or `ref`: a string or null as Phoenix sends them, or an integer (as its decimal string) because some
/// hand-written clients send numeric refs and refusing them would buy nothing. Anything else is an error.
pub(super) fn take_ref(value: Value, field: &'static str) -> Result<Option<String>, DecodeError> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text)),
        // `as_i64`/`as_u64` are `None` for floats, so `1.0` stays an error.
        Value::Number(number) if number.is_i64() || number.is_u64() => Ok(Some(number.to_string())),
        _ => Err(DecodeError::InvalidRef(field)),
    }
}

/// `topic`, `event` and similar fields must be strings; no coercion.
pub(super) fn take_string(value: Value, field: &'static str) -> Result<String, DecodeError> {
    match value {
        Value::String(text) => Ok(text),
        _ => Err(DecodeError::NotAString(field)),
    }
}

/// The JSON object a server text frame carries. Phoenix raises for non-map payloads in text frames; refusing here keeps
/// both clients' expectations (they index into the payload) intact.
pub(super) fn json_object(payload: &Payload) -> Result<&Map<String, Value>, EncodeError> {
    match payload {
        Payload::Json(Value::Object(object)) => Ok(object),
        Payload::Json(_) => Err(EncodeError::NonObjectPayload),
        Payload::Binary(_) => Err(EncodeError::BinaryUnsupported),
    }
}

/// The same rule for a payload encoded beforehand: it must be a JSON object.
pub(super) fn raw_object(json: &RawValue) -> Result<&RawValue, EncodeError> {
    if json.get().trim_start().starts_with('{') { Ok(json) } else { Err(EncodeError::NonObjectPayload) }
}
