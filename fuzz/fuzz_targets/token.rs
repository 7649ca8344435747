//! Token verification (`server::auth::token`, Phoenix.Token format) with a fixed secret, so that fuzzed input gets
//! past the MAC into the payload decoder and the age rules instead of stopping at the signature.
//!
//! Input layout: byte 0 picks the mode (mod 3), byte 1 the options (bits 0–1 salt: socket, session or the test
//! vectors' `user auth`; bits 2–3 header: HS256, HS384, HS512 or an unknown one; bit 4 a max-age override), bytes
//! 2–9 `now_ms` and bytes 10–17 the override (both big-endian i64), the rest is the mode's data:
//!
//! * mode 0, any text as a token: no panic, `""` is `Missing`, `verify_user` agrees with `verify`.
//! * mode 1, any bytes as the payload of a correctly signed token: a payload that is not a term is `Invalid`; an
//!   accepted one is one of the three payload shapes with `data` inside, signed no later than `now` unless its max
//!   age is `:infinity`, and an unknown header is never accepted.
//! * mode 2, a generated term signed with `TokenSigner::sign` at a fuzzed time and max age: the outcome is exactly
//!   the one Plug.Crypto's rules give (data back, `Expired` or `Invalid`), and a string user round-trips through
//!   `sign_user`'s shape.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Unstructured;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use parley_fuzz::etf::{self, Term};
use parley_fuzz::token::{TokenError, TokenSigner};
use parley_fuzz::{SESSION_SALT, SOCKET_SALT, arbitrary_term, as_text, canonical_term};
use sha2::{Sha256, Sha384, Sha512};

/// The secret of the token module's own test vectors (rows 2 and 3 of docs/protocol.md verify under `user auth`).
const SECRET: &[u8] = b"kjoy3o1zeidquwy1398juxzldjlksahdk3";
const SALTS: [&str; 3] = [SOCKET_SALT, SESSION_SALT, "user auth"];
const HEADERS: [&str; 4] = ["SFMyNTY", "SFMzODQ", "SFM1MTI", "SFMyNTZ"];

/// A signer and its derived key per salt, made once: PBKDF2 is slow on purpose.
struct Keys {
    signers: Vec<TokenSigner>,
    keys: Vec<[u8; 32]>,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let signers: Vec<TokenSigner> = SALTS.iter().map(|salt| TokenSigner::new(SECRET, salt)).collect();
        let keys: Vec<[u8; 32]> = SALTS
            .iter()
            .map(|salt| {
                let mut key = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(SECRET, salt.as_bytes(), 1000, &mut key);
                key
            })
            .collect();
        // The harness's own signing must agree with the module's, or mode 1 would test nothing.
        let payload = etf::encode(&Term::Tuple(vec![Term::Int(1), Term::Int(0), Term::Int(86_400)]));
        assert_eq!(forge(&keys[0], HEADERS[0], &payload), signers[0].sign(&Term::Int(1), 0, 86_400));
        Keys { signers, keys }
    })
}

/// `header.b64(payload).b64(mac)` with the MAC the header names (HMAC-SHA256 for the unknown header).
fn forge(key: &[u8], header: &str, payload: &[u8]) -> String {
    let plain = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
    let mac = match header {
        "SFMzODQ" => mac::<Hmac<Sha384>>(key, plain.as_bytes()),
        "SFM1MTI" => mac::<Hmac<Sha512>>(key, plain.as_bytes()),
        _ => mac::<Hmac<Sha256>>(key, plain.as_bytes()),
    };
    format!("{plain}.{}", URL_SAFE_NO_PAD.encode(mac))
}

fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("hmac takes any key");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn i64_at(data: &[u8], at: usize) -> i64 {
    let mut bytes = [0u8; 8];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = data.get(at + i).copied().unwrap_or(0);
    }
    i64::from_be_bytes(bytes)
}

/// Plug.Crypto's verdict for a genuine `{data, signed, max_age}` token, written from its rules.
fn expected(signed: i64, max_age_s: i64, now: i64) -> Result<(), TokenError> {
    if max_age_s <= 0 {
        Err(TokenError::Expired)
    } else if signed > now {
        Err(TokenError::Invalid)
    } else if i128::from(signed) + i128::from(max_age_s) * 1000 < i128::from(now) {
        Err(TokenError::Expired)
    } else {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let options = rest.first().copied().unwrap_or(0);
    let salt = usize::from(options & 3).min(2);
    let header = HEADERS[usize::from((options >> 2) & 3)];
    let now = i64_at(data, 2);
    let max_age_override = (options & 16 != 0).then(|| i64_at(data, 10));
    let body = data.get(18..).unwrap_or_default();
    let keys = keys();
    let signer = &keys.signers[salt];

    match mode % 3 {
        0 => {
            let Some(token) = as_text(body) else { return };
            let verdict = signer.verify(token, now, max_age_override);
            if token.is_empty() {
                assert_eq!(verdict, Err(TokenError::Missing));
            }
            if let Ok(user) = signer.verify_user(token, now) {
                assert_eq!(signer.verify(token, now, None), Ok(Term::Binary(user.into_bytes())));
            }
        }
        1 => {
            let token = forge(&keys.keys[salt], header, body);
            let verdict = signer.verify(&token, now, max_age_override);
            let Ok(data) = verdict else { return };
            assert_ne!(header, HEADERS[3], "an unknown header verified");
            let term = etf::decode(body).expect("an accepted payload is a term");
            let (found, signed) = match &term {
                Term::Tuple(items) if (2..=3).contains(&items.len()) => (items[0] == data, items[1].clone()),
                Term::Map(pairs) => (
                    pairs.iter().any(|(k, v)| *k == Term::Atom("data".into()) && *v == data),
                    pairs.iter().find(|(k, _)| *k == Term::Atom("signed".into())).map_or(Term::Nil, |(_, v)| v.clone()),
                ),
                other => panic!("accepted payload {other:?}"),
            };
            assert!(found, "the data returned is not the payload's: {term:?}");
            let Term::Int(signed) = signed else { panic!("accepted without an integer signed time: {term:?}") };
            let infinite = matches!(&term, Term::Tuple(items) if items.len() == 3
                && items[2] == Term::Atom("infinity".into()) && max_age_override.is_none());
            assert!(infinite || signed <= i128::from(now), "a token from the future verified: {term:?}");
        }
        _ => {
            let mut recipe = Unstructured::new(body);
            let (Ok(signed), Ok(max_age), Ok(term)) =
                (recipe.arbitrary::<i64>(), recipe.arbitrary::<i64>(), arbitrary_term(&mut recipe, 2))
            else {
                return;
            };
            let token = signer.sign(&term, signed, max_age);
            let verdict = signer.verify(&token, now, max_age_override);
            let rule = expected(signed, max_age_override.unwrap_or(max_age), now);
            assert_eq!(verdict, rule.map(|()| canonical_term(&term)), "signed {signed} max age {max_age} now {now}");
            if let Term::Binary(bytes) = &term {
                // `verify_user` always uses the embedded max age.
                let user = signer.verify_user(&token, now);
                match (expected(signed, max_age, now), std::str::from_utf8(bytes)) {
                    (Ok(()), Ok(text)) => assert_eq!(user.as_deref(), Ok(text)),
                    (Ok(()), Err(_)) => assert_eq!(user, Err(TokenError::Invalid)),
                    (Err(error), _) => assert_eq!(user, Err(error)),
                }
            }
        }
    }
});
