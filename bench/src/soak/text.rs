//! What the soak's clients say and are called: message bodies in many scripts (accents, CJK, Cyrillic, Hebrew,
//! Devanagari, emoji with modifiers and joiners), each starting with its `client_id` so a stored or delivered message
//! can be matched to the send it came from; guest names that follow the protocol's name rules; and the URL encoding
//! the socket's query string needs for them.

use rand::{Rng, seq::IndexedRandom};

/// Phrases bodies are built from: multi-byte on purpose (2-, 3- and 4-byte UTF-8, combining sequences, a ZWJ emoji,
/// a skin-tone modifier, a newline inside the text).
const PHRASES: &[&str] = &[
    "Grüße aus Köln 🌧️",
    "明天见 👋",
    "naïve café ☕",
    "Привет, как дела? 🙂",
    "🦀 rustaceans unite 🦀",
    "שלום עולם 🌍",
    "こんにちは世界 ✨",
    "¿Qué tal? 🎉",
    "Zoë's 🐈‍⬛ says hi",
    "नमस्ते 🙏🏽",
    "ok 👍🏾",
    "línea\nnueva ⏎",
    "Ελληνικά και 😀",
    "한국어 메시지 🇰🇷",
];

/// Bases of guest names; each gets a `-<n>` suffix. All are valid under `protocol::names::normalize_user_name`.
const NAME_BASES: &[&str] =
    &["Zoë", "李雷", "Ana Lúcia", "o'brien", "Søren", "Ngozi", "Dmitrï", "Yū", "Ørjan", "Amélie"];

/// A body of about `chars` characters (at least the client id and one phrase) that starts with `client_id`. Now and
/// then it carries surrounding whitespace, which the server trims (the stored body is
/// `protocol::chat::normalize_body` of what was sent).
pub fn body(client_id: &str, chars: usize, rng: &mut impl Rng) -> String {
    let mut body = String::with_capacity(chars * 2);
    if rng.random_bool(0.1) {
        body.push_str("  ");
    }
    body.push_str(client_id);
    let mut count = body.chars().count();
    loop {
        let phrase = PHRASES.choose(rng).copied().unwrap_or("hi");
        let phrase_chars = phrase.chars().count() + 1;
        if count > client_id.len() + 2 && count + phrase_chars > chars {
            break;
        }
        body.push(' ');
        body.push_str(phrase);
        count += phrase_chars;
    }
    if rng.random_bool(0.1) {
        body.push_str(" \n");
    }
    body
}

/// The client id a body starts with (its first word once trimmed).
pub fn client_id_of(body: &str) -> Option<&str> {
    body.split_whitespace().next()
}

/// Guest name number `n` of the run tagged `run`: a base from [`NAME_BASES`] and a unique suffix.
pub fn guest_name(run: &str, n: usize) -> String {
    let base = NAME_BASES[n % NAME_BASES.len()];
    format!("{base}-{run}-{n}")
}

/// Percent-encoding for query strings and form bodies: the protocol crate's, which the app uses too.
pub use protocol::url::encode as url_encode;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use protocol::{
        chat::{MAX_BODY_CHARS, normalize_body},
        names::normalize_user_name,
    };
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;

    #[test]
    fn bodies_start_with_their_client_id_and_stay_within_the_limit() {
        let mut rng = StdRng::seed_from_u64(7);
        for chars in [1, 40, 200, 3900] {
            for n in 0..50 {
                let id = format!("r1-m2-{n}");
                let raw = body(&id, chars, &mut rng);
                let stored = normalize_body(&raw).unwrap();
                assert_eq!(client_id_of(&stored), Some(id.as_str()));
                assert!(stored.chars().count() <= MAX_BODY_CHARS.min(chars.max(id.len() + 40)), "{chars}: {stored}");
                assert!(stored.len() > stored.chars().count(), "multi-byte text: {stored}");
            }
        }
    }

    #[test]
    fn guest_names_are_valid_and_distinct() {
        let names: Vec<String> = (0..40).map(|n| guest_name("k3f9", n)).collect();
        for name in &names {
            assert_eq!(normalize_user_name(name).as_ref(), Ok(name), "{name}");
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
    }

    #[test]
    fn url_encoding() {
        assert_eq!(url_encode("Zoë o'b c"), "Zo%C3%AB%20o%27b%20c");
        assert_eq!(url_encode("a-b_c.d~"), "a-b_c.d~");
    }
}
