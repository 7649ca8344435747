//! Random memorable names: guest display names (two words) and room slugs (three words).
//!
//! Words come from the `petname` crate's lists (adverbs, adjectives, animals), all lowercase ASCII, so every name
//! is a valid display name and every slug a valid room slug.

/// A guest name such as `quiet-otter`.
pub fn random_guest_name() -> String {
    petname::petname(2, "-").unwrap_or_else(|| "guest".to_owned())
}

/// A room slug such as `gladly-quiet-otter` that is valid and not reserved.
pub fn random_room_slug() -> String {
    loop {
        let slug = petname::petname(3, "-").unwrap_or_else(|| "quiet-little-room".to_owned());
        if protocol::names::validate_room_slug(&slug).is_ok() {
            return slug;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_and_varied() {
        let slugs: std::collections::HashSet<String> = (0..50).map(|_| random_room_slug()).collect();
        assert!(slugs.len() > 40, "slugs should rarely repeat");
        for slug in &slugs {
            assert_eq!(slug.split('-').count(), 3, "{slug}");
        }
        for _ in 0..50 {
            let name = random_guest_name();
            assert!(protocol::names::normalize_user_name(&name).is_ok(), "{name}");
            assert_eq!(name.split('-').count(), 2, "{name}");
        }
    }
}
