//! Which characters a chat text may carry: the rules behind message bodies ([`crate::chat::normalize_body`]) and
//! display names ([`crate::names::normalize_user_name`]).
//!
//! * **Stripped from bodies**: control characters other than newline and tab (NUL, BEL, ESC and so ANSI escape
//!   sequences' lead byte, CR, DEL, the C1 block) and the bidirectional embedding, override and isolate controls
//!   (U+202A–U+202E, U+2066–U+2069), which can make a message display reversed or spill its direction into what
//!   follows. Stripped rather than refused: pasted text with a stray CR or ESC still sends, minus the character.
//! * **Invisible**: whitespace and the default-ignorable code points (zero-width spaces and joiners, word joiner,
//!   byte order mark, soft hyphen, variation selectors, Hangul fillers, tag characters, …). They may appear inside a
//!   text (a ZWJ joins emoji), but a text made only of them is empty.

/// Whether `c` is removed from message bodies (module docs).
pub fn is_stripped_from_body(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Whether `c` shows nothing on its own: whitespace or a default-ignorable code point (Unicode's
/// `Default_Ignorable_Code_Point`, plus the fillers that render blank).
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFF8}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_but_newline_and_tab_are_stripped() {
        for c in ['\0', '\u{7}', '\u{1b}', '\r', '\u{7f}', '\u{9b}', '\u{202E}', '\u{2066}'] {
            assert!(is_stripped_from_body(c), "{c:?}");
        }
        for c in ['\n', '\t', 'a', ' ', '\u{200D}', 'é'] {
            assert!(!is_stripped_from_body(c), "{c:?}");
        }
    }

    #[test]
    fn invisible_characters() {
        for c in [' ', '\u{200B}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{3164}', '\u{FE0F}', '\u{E0041}', '\u{2800}']
        {
            assert!(is_invisible(c), "{c:?}");
        }
        for c in ['a', '.', '😀', '李', '\u{301}'] {
            assert!(!is_invisible(c), "{c:?}");
        }
    }
}
