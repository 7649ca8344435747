//! Encoded frames in shared buffers: the server's end of the serializers.
//!
//! `protocol::serializer` turns a message into bytes for one serializer version; this module wraps those bytes in
//! reference-counted buffers, so a broadcast encoded once is handed to every subscriber by cloning a pointer, and the
//! WebSocket transport sends them without copying.

use bytes::Bytes;
use protocol::serializer::{EncodeError, Outgoing, Vsn, WireFrame, encode_server};

/// An encoded frame whose buffer is shared (cloning it is a reference-count increment).
#[derive(Debug, Clone)]
pub(crate) enum Encoded {
    /// A text frame (JSON, so always UTF-8).
    Text(Bytes),
    /// A binary frame (V2 binary serializer).
    Binary(Bytes),
}

impl From<WireFrame> for Encoded {
    fn from(frame: WireFrame) -> Self {
        match frame {
            WireFrame::Text(text) => Self::Text(Bytes::from(text.into_bytes())),
            WireFrame::Binary(bytes) => Self::Binary(Bytes::from(bytes)),
        }
    }
}

/// Encodes `message` for a client speaking `vsn`.
pub(crate) fn encode(vsn: Vsn, message: &Outgoing<'_>) -> Result<Encoded, EncodeError> {
    encode_server(vsn, message).map(Encoded::from)
}
