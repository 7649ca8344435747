//! Password hashing with argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes, 1 lane, random 16-byte salt),
//! stored as PHC strings. Verification is constant-time inside argon2. Both are CPU-heavy by design, so callers run
//! them on the blocking pool.

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier},
};

/// Shortest accepted password.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest accepted password (bounds the hashing work an attacker can ask for).
pub const MAX_PASSWORD_CHARS: usize = 128;

/// A PHC-format argon2id hash of `password`, under a fresh salt from the operating system's random source.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    Ok(Argon2::default().hash_password(password.as_bytes())?.to_string())
}

/// Whether `password` matches `stored` (false for malformed hashes). The parameters are the hash's own, so hashes
/// stored under other parameters still verify.
pub fn verify(password: &str, stored: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), stored).is_ok()
}

/// A dummy verification with the same cost as a real one, so "no such user" takes as long as "wrong password".
pub fn verify_nothing(password: &str) {
    let _ = verify(password, DUMMY);
}

/// A well-formed hash under the default parameters: verifying against it costs what a real verification does.
const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Q2SvjgA1Hf4NuyGphBhzryAJ4yUdYxyG8R3Vw0D7o2c";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_argon2id_and_verify() {
        let first = hash("correct horse").unwrap();
        let second = hash("correct horse").unwrap();
        assert!(first.starts_with("$argon2id$"));
        assert_ne!(first, second, "a fresh salt every time");
        assert!(verify("correct horse", &first));
        assert!(!verify("wrong horse", &first));
        assert!(!verify("correct horse", "not a hash"));
    }

    #[test]
    fn hashes_are_phc_strings_under_the_default_parameters() {
        let hash = hash("correct horse").unwrap();
        let fields: Vec<&str> = hash.split('$').collect();
        assert_eq!(fields[..4], ["", "argon2id", "v=19", "m=19456,t=2,p=1"]);
        // 16-byte salt and 32-byte output, unpadded base64.
        assert_eq!((fields[4].len(), fields[5].len()), (22, 43));
    }

    #[test]
    fn hashes_stored_by_argon2_0_5_still_verify() {
        // Made by argon2 0.5.3 (`SaltString::generate` + `hash_password`), the version before 0.6.
        const STORED: &str =
            "$argon2id$v=19$m=19456,t=2,p=1$fInP8OQysAqPMW66pvmSng$Uuh6tz/55fo24a7hCiBtTAYWD4Jscrmblt0kvNkmQp4";
        assert!(verify("correct horse", STORED));
        assert!(!verify("correct horsf", STORED));
    }

    #[test]
    fn the_dummy_is_a_hash_that_verifies_nothing_else() {
        // A malformed dummy would fail fast and make "no such user" quicker than "wrong password".
        assert!(argon2::password_hash::phc::PasswordHash::new(DUMMY).is_ok());
        assert!(!verify("correct horse", DUMMY));
    }
}
