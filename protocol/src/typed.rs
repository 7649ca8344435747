//! Events with types: an event name tied to the payload it carries and, for client requests, to the reply it gets.
//!
//! The chat payloads ([`crate::chat`]) implement these traits, and every party (the server's room channel, the Rust
//! client, the load generator) sends and reads them through [`to_payload`] and [`from_payload`]. So a payload field
//! or an event name exists once, and changing it breaks the build wherever it is used instead of a test at runtime.

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use thiserror::Error;

use crate::frame::Payload;

/// A client push that the server answers with a reply of type [`Request::Reply`].
pub trait Request: Serialize + DeserializeOwned {
    /// The event name the push travels under.
    const EVENT: &'static str;
    /// The response of an `ok` reply.
    type Reply: Serialize + DeserializeOwned;
}

/// A push or broadcast from the server, carried by [`Event::EVENT`].
pub trait Event: Serialize + DeserializeOwned {
    /// The event name.
    const EVENT: &'static str;
}

/// Why a payload does not have the type its event promises.
#[derive(Debug, Error)]
pub enum PayloadError {
    /// A binary payload where a JSON object was expected.
    #[error("expected a json payload, got binary")]
    Binary,
    /// JSON that is not an object (every typed payload is one).
    #[error("expected a json object")]
    NotAnObject,
    /// JSON of the wrong shape (a missing field, a wrong type, not an object).
    #[error("payload does not match: {0}")]
    Shape(#[from] serde_json::Error),
}

/// Encodes a typed payload as a JSON payload.
pub fn to_payload<T: Serialize>(value: &T) -> Result<Payload, PayloadError> {
    Ok(Payload::Json(serde_json::to_value(value)?))
}

/// Reads a typed payload out of a JSON value without copying the value first.
pub fn from_json<T: DeserializeOwned>(value: &Value) -> Result<T, PayloadError> {
    Ok(T::deserialize(value)?)
}

/// Reads a typed payload; every chat payload is a JSON object, so anything else is an error.
pub fn from_payload<T: DeserializeOwned>(payload: &Payload) -> Result<T, PayloadError> {
    match payload {
        Payload::Json(value @ Value::Object(_)) => from_json(value),
        Payload::Json(_) => Err(PayloadError::NotAnObject),
        Payload::Binary(_) => Err(PayloadError::Binary),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Ping {
        n: u32,
    }

    #[test]
    fn round_trip_and_shape_errors() {
        let payload = to_payload(&Ping { n: 3 }).unwrap();
        assert_eq!(payload, Payload::Json(json!({"n": 3})));
        assert_eq!(from_payload::<Ping>(&payload).unwrap(), Ping { n: 3 });
        assert!(matches!(from_payload::<Ping>(&Payload::Json(json!({"n": "3"}))), Err(PayloadError::Shape(_))));
        assert!(matches!(from_payload::<Ping>(&Payload::Json(json!([3]))), Err(PayloadError::NotAnObject)));
        assert!(matches!(from_payload::<Ping>(&Payload::Binary(vec![3])), Err(PayloadError::Binary)));
    }
}
