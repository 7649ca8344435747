//! Password hashing with argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes, 1 lane, random 16-byte salt),
//! stored as PHC strings. Verification is constant-time inside argon2. Both are CPU-heavy by design, so callers run
//! them on the blocking pool.

use argon2::{
    Argon2,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng},
};

/// Shortest accepted password.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest accepted password (bounds the hashing work an attacker can ask for).
pub const MAX_PASSWORD_CHARS: usize = 128;

/// A PHC-format argon2id hash of `password`.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default().hash_password(password.as_bytes(), &salt)?.to_string())
}

/// Whether `password` matches `stored` (false for malformed hashes).
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A dummy verification with the same cost as a real one, so "no such user" takes as long as "wrong password".
pub fn verify_nothing(password: &str) {
    const DUMMY: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Q2SvjgA1Hf4NuyGphBhzryAJ4yUdYxyG8R3Vw0D7o2c";
    let _ = verify(password, DUMMY);
}

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
}
