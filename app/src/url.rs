//! Tiny URL helpers shared by the server functions and the browser code.

pub use protocol::url::encode;

/// Reverses [`encode`] (and any other percent-encoding); invalid escapes and invalid UTF-8 are kept as they are.
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%')
            .then(|| text.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                index += 3;
            }
            None => {
                out.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
        for text in ["Zoë K", "O'Brien", "李雷", "a%b", ""] {
            assert_eq!(decode(&encode(text)), text);
        }
        assert_eq!(decode("100%"), "100%", "a stray % stays");
        assert_eq!(decode("%zz"), "%zz");
        assert_eq!(slugify("  Panther Silk  Empire! "), "panther-silk-empire");
        assert_eq!(slugify("a__b"), "a-b");
        assert_eq!(slugify("!!"), "");
    }
}
