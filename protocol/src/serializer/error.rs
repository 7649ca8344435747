//! Errors of decoding and encoding frames. Every decode failure is the client's fault (the server closes with 1007);
//! every encode failure is a bug or a limit on our side.

use thiserror::Error;

/// Why incoming bytes are not a valid frame.
#[derive(Debug, Error)]
pub enum DecodeError {
    /// The text is not JSON at all.
    #[error("invalid json: {0}")]
    InvalidJson(#[source] serde_json::Error),
    /// V2 text must be a JSON array.
    #[error("expected a json array [join_ref, ref, topic, event, payload]")]
    NotAnArray,
    /// A V2 array with fewer than five elements.
    #[error("expected at least 5 elements, got {0}")]
    WrongArity(usize),
    /// V1 text must be a JSON object.
    #[error("expected a json object")]
    NotAnObject,
    /// A V1 object without one of the required keys.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// `join_ref` or `ref` is neither a string, an integer nor null.
    #[error("field `{0}` must be a string, an integer or null")]
    InvalidRef(&'static str),
    /// `topic`, `event` (or a reply's `status`) is not a string.
    #[error("field `{0}` must be a string")]
    NotAString(&'static str),
    /// A binary frame under a serializer without binary support (V1).
    #[error("binary frames are not supported by the v1 serializer")]
    BinaryUnsupported,
    /// A binary frame of a kind this side does not accept (clients may only send pushes).
    #[error("unexpected binary frame kind {0}")]
    UnexpectedKind(u8),
    /// A binary frame shorter than its header says.
    #[error("binary frame truncated")]
    Truncated,
    /// A binary header field that is not UTF-8.
    #[error("binary frame field `{0}` is not valid utf-8")]
    InvalidUtf8(&'static str),
}

/// Why a message cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// A binary header field longer than 255 bytes (lengths are single bytes).
    #[error("field `{field}` is {len} bytes; binary frames allow at most 255")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length in UTF-8 bytes.
        len: usize,
    },
    /// A server text frame whose payload (or reply response) is not a JSON object; Phoenix raises in this case too.
    #[error("text frame payload must be a json object")]
    NonObjectPayload,
    /// A binary payload under V1, which has no binary frames.
    #[error("binary payloads are not supported by the v1 serializer")]
    BinaryUnsupported,
    /// JSON serialization failed (not expected for `serde_json::Value`, kept so nothing can panic).
    #[error("json encoding failed: {0}")]
    Json(String),
}

impl From<serde_json::Error> for EncodeError {
    fn from(error: serde_json::Error) -> Self {
        Self::Json(error.to_string())
    }
}
