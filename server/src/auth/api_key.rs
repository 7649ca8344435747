//! API keys for the HTTP API (`/api`): how a key is made and the one form of it the store keeps.
//!
//! A key is `pk_` and 32 random bytes in unpadded base64url (256 bits: guessing one is hopeless, so a key needs no
//! attempt limit). It is shown once, when created; the store keeps only its SHA-256 in hex ([`key_hash`]) and a
//! request is authenticated by looking that hash up. No constant-time comparison is needed there: the lookup compares
//! hashes, so what its timing could leak is how a guess's *hash* relates to a stored hash, and with SHA-256's
//! preimage resistance that tells nothing about a key's bytes. A slow hash (argon2, as for passwords) would buy
//! nothing either: it protects low-entropy secrets, and it would cost every API request its time.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// What every key starts with, so a leaked one is recognisable (secret scanners, logs).
pub const KEY_PREFIX: &str = "pk_";

/// Random bytes in a key.
const KEY_BYTES: usize = 32;

/// A new random key (shown to the operator once, never stored).
pub fn generate() -> String {
    let mut bytes = [0u8; KEY_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The form the store keeps and looks keys up by: the SHA-256 of the key's text, in lowercase hex.
pub fn key_hash(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_prefixed_and_hashed_to_hex() {
        let (one, two) = (generate(), generate());
        assert_ne!(one, two);
        assert!(one.starts_with(KEY_PREFIX));
        assert_eq!(one.len(), KEY_PREFIX.len() + 43, "32 bytes of unpadded base64");
        assert_eq!(key_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_ne!(key_hash(&one), key_hash(&two));
    }
}
