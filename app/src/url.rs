//! Tiny URL helpers shared by the server functions and the browser code.

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

/// Turns what someone typed as a room name into a slug: lowercase, spaces and other separators become `-`.
///
/// Slugs are ASCII, so only ASCII letters are lowercased (full Unicode case mapping would put its ~10 KB tables into
/// the WASM for nothing: every other character becomes a separator anyway).
pub fn slugify(text: &str) -> String {
    let mut slug = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').chars().take(64).collect::<String>().trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_slugifies() {
        assert_eq!(encode("Zoë K"), "Zo%C3%AB%20K");
        assert_eq!(slugify("  Panther Silk  Empire! "), "panther-silk-empire");
        assert_eq!(slugify("a__b"), "a-b");
        assert_eq!(slugify("!!"), "");
    }
}
