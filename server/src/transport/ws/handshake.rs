//! The WebSocket opening handshake (RFC 6455 §4.2): checks that a request asks for a version 13 WebSocket and
//! builds the `101 Switching Protocols` answer. The upgraded connection itself comes from hyper
//! (`hyper::upgrade::on`), which hands over the socket once the 101 has been written.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use base64::Engine;
use sha1::{Digest, Sha1};

/// The GUID every server appends to the client's key (RFC 6455 §1.3).
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Why a request is not a WebSocket upgrade this server can accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NotUpgrade {
    #[error("WebSocket upgrades use GET")]
    Method,
    #[error("not a WebSocket upgrade request")]
    Headers,
    #[error("unsupported WebSocket version (13 required)")]
    Version,
}

impl NotUpgrade {
    /// The HTTP status of the refusal (426 tells the client which version to use).
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Self::Method => StatusCode::METHOD_NOT_ALLOWED,
            Self::Headers => StatusCode::BAD_REQUEST,
            Self::Version => StatusCode::UPGRADE_REQUIRED,
        }
    }
}

/// Checks the upgrade headers; returns the `Sec-WebSocket-Accept` value for the 101 answer.
pub(crate) fn accept(method: &Method, headers: &HeaderMap) -> Result<HeaderValue, NotUpgrade> {
    if method != Method::GET {
        return Err(NotUpgrade::Method);
    }
    if !has_token(headers, header::CONNECTION, "upgrade") || !has_token(headers, header::UPGRADE, "websocket") {
        return Err(NotUpgrade::Headers);
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).is_none_or(|version| version != "13") {
        return Err(NotUpgrade::Version);
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY).ok_or(NotUpgrade::Headers)?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(key.as_bytes()).map_err(|_| NotUpgrade::Headers)?;
    if decoded.len() != 16 {
        return Err(NotUpgrade::Headers);
    }
    Ok(accept_value(key.as_bytes()))
}

/// `base64(sha1(key ++ GUID))`.
fn accept_value(key: &[u8]) -> HeaderValue {
    let digest = Sha1::new().chain_update(key).chain_update(ACCEPT_GUID).finalize();
    let encoded = base64::engine::general_purpose::STANDARD.encode(digest);
    HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Whether the comma-separated header `name` holds `token` (case-insensitive), in any of its values.
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|part| part.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn upgrade_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        headers.insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="));
        headers
    }

    #[test]
    fn answers_the_rfc_example() {
        // RFC 6455 §1.3: this key must be answered with this accept value.
        assert_eq!(accept(&Method::GET, &upgrade_headers()).unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn refuses_requests_that_are_not_version_13_upgrades() {
        assert_eq!(accept(&Method::POST, &upgrade_headers()), Err(NotUpgrade::Method));
        let mut plain = upgrade_headers();
        plain.remove(header::UPGRADE);
        assert_eq!(accept(&Method::GET, &plain), Err(NotUpgrade::Headers));
        let mut old = upgrade_headers();
        old.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        assert_eq!(accept(&Method::GET, &old).map_err(NotUpgrade::status), Err(StatusCode::UPGRADE_REQUIRED));
        let mut short_key = upgrade_headers();
        short_key.insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_static("c2hvcnQ="));
        assert_eq!(accept(&Method::GET, &short_key), Err(NotUpgrade::Headers));
    }
}
