//! Percent-encoding of connect params and form fields: the one encoder every client of the protocol uses (the
//! browser client's socket URL, the server functions' redirects, the load generator).

/// Percent-encodes a query component (RFC 3986 unreserved characters stay as they are).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
