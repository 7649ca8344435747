//! Rules for the names users see: room slugs (and the `room:<slug>` topic built from them) and guest display names.
//!
//! Both the server (join and connect checks) and the client (form validation, links) use these functions, so a name
//! the UI accepts is exactly a name the server accepts.

use thiserror::Error;

/// First path segments that belong to the server, so a room can never shadow them (`/healthz` is a probe, not a room).
pub const RESERVED_SEGMENTS: &[&str] = &[
    "socket",
    "pkg",
    "assets",
    "api",
    "healthz",
    "readyz",
    "metrics",
    "login",
    "logout",
    "register",
    "dashboard",
    "favicon.ico",
    "robots.txt",
];

/// Longest room slug. Slugs are URL path segments and topic suffixes; 64 fits a three-word random name with room to spare.
pub const MAX_SLUG_LEN: usize = 64;
/// Longest display name in characters (not bytes), so non-Latin names get the same room as Latin ones.
pub const MAX_USER_NAME_CHARS: usize = 32;
/// Prefix of every room topic; the router sends `room:*` to the room channel.
pub const ROOM_TOPIC_PREFIX: &str = "room:";

/// Why a room slug is invalid (the join is refused with [`crate::reasons::INVALID_ROOM`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SlugError {
    /// The slug is empty.
    #[error("room name is empty")]
    Empty,
    /// More than [`MAX_SLUG_LEN`] characters.
    #[error("room name is longer than {MAX_SLUG_LEN} characters")]
    TooLong,
    /// A character outside `a-z`, `0-9` and `-`.
    #[error("room name contains {0:?}; only a-z, 0-9 and '-' are allowed")]
    InvalidChar(char),
    /// Starts or ends with `-`.
    #[error("room name starts or ends with '-'")]
    EdgeHyphen,
    /// One of [`RESERVED_SEGMENTS`].
    #[error("room name {0:?} is reserved")]
    Reserved(String),
}

/// Checks a room slug: 1–64 characters of `a-z`, `0-9` and `-`, not starting or ending with `-`, not reserved.
pub fn validate_room_slug(slug: &str) -> Result<(), SlugError> {
    if slug.is_empty() {
        return Err(SlugError::Empty);
    }
    if let Some(bad) = slug.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return Err(SlugError::InvalidChar(bad));
    }
    // Every char is ASCII from here on, so the byte length is the char count.
    if slug.len() > MAX_SLUG_LEN {
        return Err(SlugError::TooLong);
    }
    if slug.starts_with('-') || slug.ends_with('-') {
        return Err(SlugError::EdgeHyphen);
    }
    if RESERVED_SEGMENTS.contains(&slug) {
        return Err(SlugError::Reserved(slug.to_owned()));
    }
    Ok(())
}

/// The channel topic of a room: `room:` + slug. Does not validate the slug.
pub fn room_topic(slug: &str) -> String {
    format!("{ROOM_TOPIC_PREFIX}{slug}")
}

/// The slug part of a `room:` topic, or `None` for any other topic.
///
/// Deliberately does not validate: `room:Bad!` must yield `Some("Bad!")` so the server can answer `invalid room`,
/// while `lobby` yields `None` and gets Phoenix's `unmatched topic`.
pub fn slug_from_topic(topic: &str) -> Option<&str> {
    topic.strip_prefix(ROOM_TOPIC_PREFIX)
}

/// Why a display name is invalid (HTTP 403 at connect).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// Nothing left after trimming.
    #[error("name is empty")]
    Empty,
    /// More than [`MAX_USER_NAME_CHARS`] characters after trimming.
    #[error("name is longer than {MAX_USER_NAME_CHARS} characters")]
    TooLong,
    /// A control character (checked separately because it is never a typo worth echoing back).
    #[error("name contains a control character")]
    ControlChar,
    /// A character that is not a letter, digit, space or one of `-_.'`.
    #[error("name contains {0:?}; only letters, digits, spaces and -_.' are allowed")]
    InvalidChar(char),
}

/// Trims a guest display name and checks it: 1–32 characters of Unicode letters, digits, spaces and `-_.'`, no control
/// characters. Returns the trimmed name.
///
/// "Letters" and "digits" are Unicode `Alphabetic` and `Numeric`, so `Zoë`, `Ørjan` and `李雷` are fine; only the plain
/// space is allowed as whitespace and invisible letters (the Hangul filler) are refused, so names cannot hide tabs or
/// zero-width tricks. The server also applies NFKC first and refuses a guest or new account whose confusable skeleton
/// matches an account's: that policy needs Unicode tables the browser does not, so it lives on the server.
pub fn normalize_user_name(raw: &str) -> Result<String, NameError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.chars().any(char::is_control) {
        return Err(NameError::ControlChar);
    }
    if let Some(bad) = name.chars().find(|c| !is_name_char(*c) || (*c != ' ' && crate::text::is_invisible(*c))) {
        return Err(NameError::InvalidChar(bad));
    }
    if name.chars().count() > MAX_USER_NAME_CHARS {
        return Err(NameError::TooLong);
    }
    Ok(name.to_owned())
}

fn is_name_char(c: char) -> bool {
    c.is_alphabetic() || c.is_numeric() || matches!(c, ' ' | '-' | '_' | '.' | '\'')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn valid_slugs() {
        for slug in ["a", "lobby", "panther-silk-empire", "room-42", "0", "a-b-c", &"x".repeat(MAX_SLUG_LEN)] {
            assert_eq!(validate_room_slug(slug), Ok(()), "{slug}");
        }
    }

    #[test]
    fn slug_length() {
        assert_eq!(validate_room_slug(""), Err(SlugError::Empty));
        assert_eq!(validate_room_slug(&"x".repeat(MAX_SLUG_LEN + 1)), Err(SlugError::TooLong));
    }

    #[test]
    fn slug_charset() {
        assert_eq!(validate_room_slug("Lobby"), Err(SlugError::InvalidChar('L')));
        assert_eq!(validate_room_slug("a_b"), Err(SlugError::InvalidChar('_')));
        assert_eq!(validate_room_slug("a b"), Err(SlugError::InvalidChar(' ')));
        assert_eq!(validate_room_slug("a/b"), Err(SlugError::InvalidChar('/')));
        assert_eq!(validate_room_slug("café"), Err(SlugError::InvalidChar('é')));
        assert_eq!(validate_room_slug("a:b"), Err(SlugError::InvalidChar(':')));
    }

    #[test]
    fn slug_edge_hyphens() {
        assert_eq!(validate_room_slug("-a"), Err(SlugError::EdgeHyphen));
        assert_eq!(validate_room_slug("a-"), Err(SlugError::EdgeHyphen));
        assert_eq!(validate_room_slug("-"), Err(SlugError::EdgeHyphen));
        assert_eq!(validate_room_slug("a--b"), Ok(()));
    }

    #[test]
    fn reserved_slugs() {
        for reserved in [
            "socket",
            "pkg",
            "assets",
            "api",
            "healthz",
            "readyz",
            "metrics",
            "login",
            "logout",
            "register",
            "dashboard",
        ] {
            assert_eq!(validate_room_slug(reserved), Err(SlugError::Reserved(reserved.into())));
        }
        // These two contain '.', so the charset rule already refuses them; they stay in the list for the HTTP router.
        assert!(validate_room_slug("favicon.ico").is_err());
        assert!(validate_room_slug("robots.txt").is_err());
        assert_eq!(validate_room_slug("sockets"), Ok(()));
        assert_eq!(RESERVED_SEGMENTS.len(), 13);
    }

    #[test]
    fn topics() {
        assert_eq!(room_topic("lobby"), "room:lobby");
        assert_eq!(slug_from_topic("room:lobby"), Some("lobby"));
        assert_eq!(slug_from_topic("room:"), Some(""));
        assert_eq!(slug_from_topic("room:Bad!"), Some("Bad!"));
        assert_eq!(slug_from_topic("lobby"), None);
        assert_eq!(slug_from_topic("rooms:lobby"), None);
        assert_eq!(slug_from_topic("phoenix"), None);
    }

    #[test]
    fn names_are_trimmed() {
        assert_eq!(normalize_user_name("  alice ").unwrap(), "alice");
        assert_eq!(normalize_user_name("Mary Jane").unwrap(), "Mary Jane");
        assert_eq!(normalize_user_name("o'brien-jr_2.0").unwrap(), "o'brien-jr_2.0");
    }

    #[test]
    fn unicode_letters_and_digits() {
        for name in ["Zoë", "Ørjan", "李雷", "Дмитрий", "user٣", "ünïcödé"] {
            assert_eq!(normalize_user_name(name).unwrap(), name);
        }
    }

    #[test]
    fn name_length_counts_chars() {
        assert_eq!(normalize_user_name(""), Err(NameError::Empty));
        assert_eq!(normalize_user_name("   "), Err(NameError::Empty));
        // 32 two-byte chars are 64 bytes and still fine.
        let at_limit = "é".repeat(MAX_USER_NAME_CHARS);
        assert_eq!(normalize_user_name(&at_limit).unwrap(), at_limit);
        assert_eq!(normalize_user_name(&"a".repeat(MAX_USER_NAME_CHARS + 1)), Err(NameError::TooLong));
        // Trimmed edges do not count.
        assert!(normalize_user_name(&format!(" {} ", "a".repeat(MAX_USER_NAME_CHARS))).is_ok());
    }

    #[test]
    fn control_characters() {
        for name in ["a\u{0}b", "a\tb", "a\nb", "a\u{7f}b", "a\u{9b}b"] {
            assert_eq!(normalize_user_name(name), Err(NameError::ControlChar), "{name:?}");
        }
    }

    #[test]
    fn invalid_characters() {
        assert_eq!(normalize_user_name("a<b"), Err(NameError::InvalidChar('<')));
        assert_eq!(normalize_user_name("a@b"), Err(NameError::InvalidChar('@')));
        assert_eq!(normalize_user_name("smile😀"), Err(NameError::InvalidChar('😀')));
        assert_eq!(normalize_user_name("zero\u{200b}width"), Err(NameError::InvalidChar('\u{200b}')));
        assert_eq!(normalize_user_name("nb\u{a0}sp"), Err(NameError::InvalidChar('\u{a0}')));
        assert_eq!(
            normalize_user_name("\u{3164}"),
            Err(NameError::InvalidChar('\u{3164}')),
            "the Hangul filler is blank"
        );
    }
}
