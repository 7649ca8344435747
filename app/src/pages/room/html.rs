//! The one HTML escaper of the room's views. The lists of plain text (who's online, the other rooms) and message
//! bodies are rendered as HTML strings set with `inner_html` (cheaper in WASM than a view per item), and every
//! character of user text in them goes through [`escape_into`].

/// Escapes text for HTML (element content and quoted attribute values).
pub fn escape_into(html: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => html.push_str("&amp;"),
            '<' => html.push_str("&lt;"),
            '>' => html.push_str("&gt;"),
            '"' => html.push_str("&quot;"),
            '\'' => html.push_str("&#39;"),
            c => html.push(c),
        }
    }
}
