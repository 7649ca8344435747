//! Phoenix.Token-compatible signed tokens: what `Phoenix.Token.sign/4` and `verify/4` (via `Plug.Crypto`) produce and
//! accept, byte for byte, so a Phoenix backend sharing the secret key base can mint tokens for this server and the
//! other way round.
//!
//! A token is `"SFMyNTY." <> b64url(payload) <> "." <> b64url(HMAC-SHA256(key, first two parts))`, where
//! `payload = term_to_binary({data, signed_at_ms, max_age_s})` and `key = PBKDF2-HMAC-SHA256(secret_key_base, salt,
//! 1000 iterations, 32 bytes)`. Tokens are signed, not encrypted: anyone can read `data`.
//!
//! Owns signing, verification and the age rules. Does not own the secret key base (see `secret`), the byte format
//! of Erlang terms (see [`super::etf`]) or the clock: callers pass `now_ms`, which keeps every rule testable.

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384, Sha512};

use super::etf::{self, Term};

/// Max age embedded in a token when the signer names none, in seconds (Phoenix's default: one day).
pub(crate) const DEFAULT_MAX_AGE_S: i64 = 86_400;

/// PBKDF2 rounds and key length: Plug.Crypto's defaults, which a Phoenix peer must also use for keys to agree.
/// (1000 rounds is weak for passwords but the input is a long random secret, not a password.)
const KEY_ITERATIONS: u32 = 1000;
const KEY_BYTES: usize = 32;

/// `base64url("HS256")` etc.: the token's "protected header". Plug.Crypto only signs HS256 but accepts all three.
const HS256: &str = "SFMyNTY";
const HS384: &str = "SFMzODQ";
const HS512: &str = "SFM1MTI";

/// Why a token was refused; Phoenix's `:invalid`, `:expired` and `:missing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Malformed, forged, signed with another secret or salt, of an unknown shape, or dated in the future.
    #[error("invalid token")]
    Invalid,
    /// Genuine but older than its max age (or its max age is not positive).
    #[error("expired token")]
    Expired,
    /// No token was given (the empty string).
    #[error("missing token")]
    Missing,
}

/// Signs and verifies tokens for one secret key base and salt (Phoenix's "context" and "namespace").
///
/// The key is derived once here; Plug.Crypto caches it in ETS for the same reason (PBKDF2 is slow on purpose).
#[derive(Clone)]
pub struct TokenSigner {
    salt: String,
    key: [u8; KEY_BYTES],
    /// The longest a token may live here whatever it says (`:infinity` included), in milliseconds.
    age_cap_ms: Option<i128>,
}

impl fmt::Debug for TokenSigner {
    // Secrets stay out of logs and panic messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSigner").field("salt", &self.salt).finish_non_exhaustive()
    }
}

/// How long a token lives, as embedded or overridden.
enum MaxAge {
    Infinity,
    /// `positive` is checked on the value as given (0.0004 s is positive even though it truncates to 0 ms).
    Finite {
        positive: bool,
        millis: i128,
    },
}

impl TokenSigner {
    /// A signer for `salt`, keyed by PBKDF2-HMAC-SHA256 of `secret_key_base`.
    ///
    /// Any length is accepted, as by `Plug.Crypto.sign/4` (the row-1 vector signs with `"abc123"`); how long a
    /// secret must be (Phoenix.Token wants 20 bytes, generated endpoint secrets have 64) is for whoever loads it.
    pub fn new(secret_key_base: &[u8], salt: &str) -> Self {
        let mut key = [0u8; KEY_BYTES];
        pbkdf2::pbkdf2_hmac::<Sha256>(secret_key_base, salt.as_bytes(), KEY_ITERATIONS, &mut key);
        Self { salt: salt.to_owned(), key, age_cap_ms: None }
    }

    /// Refuses tokens older than `seconds` as expired, whatever max age they carry: a leaked token signed with
    /// `:infinity` (or a year) stops working after the cap.
    pub fn with_age_cap(mut self, seconds: u64) -> Self {
        self.age_cap_ms = Some(i128::from(seconds) * 1000);
        self
    }

    /// A token carrying `data`, dated `signed_at_ms` (Unix milliseconds) and valid for `max_age_s` seconds unless the
    /// verifier overrides it. Always HS256, as Plug.Crypto.
    ///
    /// # Panics
    ///
    /// If `data` has no Erlang encoding (see [`etf::encode`]); terms built by this crate always have one.
    pub fn sign(&self, data: &Term, signed_at_ms: i64, max_age_s: i64) -> String {
        let payload = etf::encode(&Term::Tuple(vec![
            data.clone(),
            Term::Int(i128::from(signed_at_ms)),
            Term::Int(i128::from(max_age_s)),
        ]));
        let mut token = format!("{HS256}.{}", URL_SAFE_NO_PAD.encode(payload));
        let mac = hmac_sha256(&self.key, token.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(mac));
        token
    }

    /// The data of a genuine, unexpired token, following Plug.Crypto's `verify/4`: the MAC must match (HS256, HS384 or
    /// HS512, compared in constant time); the payload must be `{data, signed_ms, max_age}`, the legacy
    /// `{data, signed_ms}` or `%{data: _, signed: _}` (both with a max age of one day); then, with `max_age_override`
    /// (seconds) replacing the embedded max age: `:infinity` passes, a max age `<= 0` is expired, a token signed after
    /// `now_ms` is invalid, and one signed more than max age before `now_ms` is expired.
    pub fn verify(&self, token: &str, now_ms: i64, max_age_override: Option<i64>) -> Result<Term, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        let payload = self.verified_payload(token).ok_or(TokenError::Invalid)?;
        let term = etf::decode(&payload).map_err(|_| TokenError::Invalid)?;
        let (data, signed_ms, embedded) = unpack(term)?;
        let max_age = match max_age_override {
            Some(seconds) => MaxAge::Finite { positive: seconds > 0, millis: i128::from(seconds) * 1000 },
            None => embedded,
        };
        let max_age = match (max_age, self.age_cap_ms) {
            (MaxAge::Infinity, Some(cap)) => MaxAge::Finite { positive: true, millis: cap },
            (MaxAge::Finite { positive, millis }, Some(cap)) => MaxAge::Finite { positive, millis: millis.min(cap) },
            (max_age, None) => max_age,
        };
        check_age(signed_ms, &max_age, i128::from(now_ms))?;
        Ok(data)
    }

    /// A token naming `user` (an Elixir string), signed at `now_ms` and valid for a day.
    pub fn sign_user(&self, user: &str, now_ms: i64) -> String {
        self.sign(&Term::Binary(user.as_bytes().to_vec()), now_ms, DEFAULT_MAX_AGE_S)
    }

    /// The user named by a token from [`Self::sign_user`] (or a Phoenix peer signing a string), with its embedded max
    /// age. Data that is not a UTF-8 binary is [`TokenError::Invalid`].
    pub fn verify_user(&self, token: &str, now_ms: i64) -> Result<String, TokenError> {
        match self.verify(token, now_ms, None)? {
            Term::Binary(bytes) => String::from_utf8(bytes).map_err(|_| TokenError::Invalid),
            _ => Err(TokenError::Invalid),
        }
    }

    /// The decoded payload if the token is well-formed and its MAC matches.
    fn verified_payload(&self, token: &str) -> Option<Vec<u8>> {
        let mut parts = token.split('.');
        let (Some(protected), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        // The MAC covers the text as sent ("protected.payload"), not the decoded bytes.
        let plain_text = token.get(..protected.len() + 1 + payload.len())?.as_bytes();
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let genuine = match protected {
            HS256 => mac_matches::<Hmac<Sha256>>(&self.key, plain_text, &signature),
            HS384 => mac_matches::<Hmac<Sha384>>(&self.key, plain_text, &signature),
            HS512 => mac_matches::<Hmac<Sha512>>(&self.key, plain_text, &signature),
            _ => false,
        };
        genuine.then_some(payload)
    }
}

/// `(data, signed_ms, max_age)` from one of the three payload shapes Plug.Crypto accepts.
fn unpack(term: Term) -> Result<(Term, i128, MaxAge), TokenError> {
    let default_max_age = || MaxAge::Finite { positive: true, millis: i128::from(DEFAULT_MAX_AGE_S) * 1000 };
    match term {
        Term::Tuple(items) if items.len() == 3 => {
            let mut items = items.into_iter();
            match (items.next(), items.next(), items.next()) {
                (Some(data), Some(Term::Int(signed)), Some(max_age)) => Ok((data, signed, max_age_of(&max_age)?)),
                _ => Err(TokenError::Invalid),
            }
        }
        Term::Tuple(items) if items.len() == 2 => {
            let mut items = items.into_iter();
            match (items.next(), items.next()) {
                (Some(data), Some(Term::Int(signed))) => Ok((data, signed, default_max_age())),
                _ => Err(TokenError::Invalid),
            }
        }
        Term::Map(pairs) => {
            let (mut data, mut signed) = (None, None);
            // Extra keys are ignored, as by Elixir's `%{data: data, signed: signed}` pattern; keys are unique.
            for (key, value) in pairs {
                match (key, value) {
                    (Term::Atom(key), value) if key == "data" => data = Some(value),
                    (Term::Atom(key), Term::Int(value)) if key == "signed" => signed = Some(value),
                    _ => {}
                }
            }
            match (data, signed) {
                (Some(data), Some(signed)) => Ok((data, signed, default_max_age())),
                _ => Err(TokenError::Invalid),
            }
        }
        _ => Err(TokenError::Invalid),
    }
}

/// An embedded max age: integer or float seconds, or `:infinity`. Anything else would crash Elixir's check.
fn max_age_of(term: &Term) -> Result<MaxAge, TokenError> {
    match term {
        Term::Atom(atom) if atom == "infinity" => Ok(MaxAge::Infinity),
        Term::Int(seconds) => Ok(MaxAge::Finite { positive: *seconds > 0, millis: seconds.saturating_mul(1000) }),
        // `as` saturates, and the float is finite (etf rejects NaN and infinities); `trunc` as in Elixir.
        Term::Float(seconds) => {
            Ok(MaxAge::Finite { positive: *seconds > 0.0, millis: (seconds * 1000.0).trunc() as i128 })
        }
        _ => Err(TokenError::Invalid),
    }
}

/// Plug.Crypto's `validate_age/2`, in its order: a future `signed_ms` is invalid rather than expired, because a
/// genuine token cannot come from the future (beyond clock skew) and such tokens would otherwise outlive max age.
fn check_age(signed_ms: i128, max_age: &MaxAge, now_ms: i128) -> Result<(), TokenError> {
    match *max_age {
        MaxAge::Infinity => Ok(()),
        MaxAge::Finite { positive: false, .. } => Err(TokenError::Expired),
        MaxAge::Finite { .. } if signed_ms > now_ms => Err(TokenError::Invalid),
        MaxAge::Finite { millis, .. } if signed_ms.saturating_add(millis) < now_ms => Err(TokenError::Expired),
        MaxAge::Finite { .. } => Ok(()),
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = new_mac::<Hmac<Sha256>>(key);
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Constant-time comparison via `verify_slice` (a wrong-length signature is simply a mismatch).
fn mac_matches<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let mut mac = new_mac::<M>(key);
    mac.update(message);
    mac.verify_slice(signature).is_ok()
}

fn new_mac<M: Mac + hmac::digest::KeyInit>(key: &[u8]) -> M {
    match <M as hmac::digest::KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC hashes or pads keys of any length; `new_from_slice` cannot fail for it.
        Err(_) => unreachable!("hmac accepts keys of any length"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// 2023-11-14T22:13:20Z, the `signed_at` of the protocol vectors.
    const T0: i64 = 1_700_000_000_000;
    const SECRET: &[u8] = b"kjoy3o1zeidquwy1398juxzldjlksahdk3";
    const SALT: &str = "user auth";
    const ROW1: &str = "SFMyNTY.g2gDYQFhAGIAAVGA.KXdBHt_mqSOGliRNUFeDbTg4AIlwgDAyz6NZFjYMFDQ";
    const ROW2: &str = "SFMyNTY.g2gDYWNuBgAAaOXPiwFiAAFRgA.uvJEDHa-IjTolIYW4Crh8PlZJCIGkSHuF4_nhnqPLRk";
    const ROW3: &str = "SFMyNTY.g2gDbQAAAAd1c2VyOjQybgYAAGjlz4sBYgABUYA.BfL56c1k8BZatwmclWjr85TlPfhqynrporCN01luwYc";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn signer() -> TokenSigner {
        TokenSigner::new(SECRET, SALT)
    }

    /// A token over an arbitrary payload, signed with any of the three digests.
    fn forge(signer: &TokenSigner, protected: &str, payload: &Term) -> String {
        let plain = format!("{protected}.{}", URL_SAFE_NO_PAD.encode(etf::encode(payload)));
        let mac = match protected {
            HS384 => {
                let mut mac = new_mac::<Hmac<Sha384>>(&signer.key);
                mac.update(plain.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
            HS512 => {
                let mut mac = new_mac::<Hmac<Sha512>>(&signer.key);
                mac.update(plain.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
            _ => hmac_sha256(&signer.key, plain.as_bytes()),
        };
        format!("{plain}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    #[test]
    fn pbkdf2_matches_plug_crypto_vectors() {
        let mut key = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(b"password", b"salt", 1000, &mut key);
        assert_eq!(hex(&key), "632c2812e46d4604102ba7618e9d6d7d2f8128f6266b4a03264d2a0460b7dcb3");
        let mut short = [0u8; 16];
        pbkdf2::pbkdf2_hmac::<Sha256>(b"password", b"salt", 1, &mut short);
        assert_eq!(hex(&short), "120fb6cffcf8b32c43e7225256c4f837");
        assert!(hex(&TokenSigner::new(b"abc123", "id").key).starts_with("7cb997f2"));
        assert!(hex(&signer().key).ends_with("1db07a01"));
    }

    #[test]
    fn signs_the_protocol_vectors() {
        let row1 = TokenSigner::new(b"abc123", "id");
        assert_eq!(row1.sign(&Term::Int(1), 0, DEFAULT_MAX_AGE_S), ROW1);
        assert_eq!(signer().sign(&Term::Int(99), T0, DEFAULT_MAX_AGE_S), ROW2);
        assert_eq!(signer().sign_user("user:42", T0), ROW3);
    }

    #[test]
    fn verifies_the_protocol_vectors() {
        assert_eq!(TokenSigner::new(b"abc123", "id").verify(ROW1, T0, None), Err(TokenError::Expired));
        assert_eq!(TokenSigner::new(b"abc123", "id").verify(ROW1, 1000, None), Ok(Term::Int(1)));
        let signer = signer();
        assert_eq!(signer.verify(ROW2, T0 + 1000, None), Ok(Term::Int(99)));
        assert_eq!(signer.verify_user(ROW3, T0 + 1000), Ok("user:42".to_owned()));
        // The boundary: exactly max age old is still valid, one millisecond later is not.
        assert_eq!(signer.verify(ROW2, T0 + 86_400_000, None), Ok(Term::Int(99)));
        assert_eq!(signer.verify(ROW2, T0 + 86_400_001, None), Err(TokenError::Expired));
        assert_eq!(signer.verify_user(ROW3, T0 + 86_400_001), Err(TokenError::Expired));
        // A data that is not a string is not a user.
        assert_eq!(signer.verify_user(ROW2, T0 + 1000), Err(TokenError::Invalid));
    }

    #[test]
    fn max_age_override_replaces_the_embedded_one() {
        let signer = signer();
        assert_eq!(signer.verify(ROW2, T0 + 10_000, Some(10)), Ok(Term::Int(99)));
        assert_eq!(signer.verify(ROW2, T0 + 10_001, Some(10)), Err(TokenError::Expired));
        assert_eq!(signer.verify(ROW2, T0 + 1_000_000_000, Some(1_000_000)), Ok(Term::Int(99)));
        assert_eq!(signer.verify(ROW2, T0, Some(0)), Err(TokenError::Expired));
        assert_eq!(signer.verify(ROW2, T0, Some(-1)), Err(TokenError::Expired));
        assert_eq!(signer.verify(ROW2, T0, Some(i64::MAX)), Ok(Term::Int(99)));
    }

    #[test]
    fn the_age_cap_expires_old_tokens_whatever_they_carry() {
        let day_ms = 86_400_000;
        let capped = signer().with_age_cap(30 * 86_400);
        let infinite = Term::Tuple(vec![Term::Int(1), Term::Int(i128::from(T0)), Term::Atom("infinity".into())]);
        let forever = forge(&capped, HS256, &infinite);
        assert_eq!(capped.verify(&forever, T0 + 30 * day_ms, None), Ok(Term::Int(1)));
        assert_eq!(capped.verify(&forever, T0 + 400 * day_ms, None), Err(TokenError::Expired), "400 days old");
        let year = capped.sign(&Term::Int(2), T0, 365 * 86_400);
        assert_eq!(capped.verify(&year, T0 + 31 * day_ms, None), Err(TokenError::Expired));
        let hour = capped.sign(&Term::Int(3), T0, 3600);
        assert_eq!(capped.verify(&hour, T0 + 3_600_001, None), Err(TokenError::Expired), "shorter ages still hold");
        assert_eq!(signer().verify(&forever, T0 + 400 * day_ms, None), Ok(Term::Int(1)), "uncapped: Phoenix's rule");
    }

    #[test]
    fn future_dated_tokens_are_invalid() {
        let signer = signer();
        assert_eq!(signer.verify(ROW2, T0 - 1, None), Err(TokenError::Invalid));
        let token = signer.sign(&Term::Int(1), i64::MAX, i64::MAX);
        assert_eq!(signer.verify(&token, T0, None), Err(TokenError::Invalid));
        // ... but the max age check comes first, and `:infinity` skips both (Plug.Crypto's order).
        assert_eq!(signer.verify(ROW2, T0 - 1, Some(0)), Err(TokenError::Expired));
        let infinite = Term::Tuple(vec![Term::Int(1), Term::Int(i128::from(T0)), Term::Atom("infinity".into())]);
        assert_eq!(signer.verify(&forge(&signer, HS256, &infinite), 0, None), Ok(Term::Int(1)));
        assert_eq!(signer.verify(&forge(&signer, HS256, &infinite), i64::MAX, None), Ok(Term::Int(1)));
    }

    #[test]
    fn tampering_or_another_key_is_invalid() {
        let signer = signer();
        let flip = |token: &str, at: usize| {
            let mut bytes = token.as_bytes().to_vec();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            String::from_utf8(bytes).unwrap()
        };
        let payload_at = HS256.len() + 3;
        assert_eq!(signer.verify(&flip(ROW3, payload_at), T0 + 1000, None), Err(TokenError::Invalid));
        assert_eq!(signer.verify(&flip(ROW3, ROW3.len() - 5), T0 + 1000, None), Err(TokenError::Invalid));
        assert_eq!(signer.verify(&flip(ROW3, 2), T0 + 1000, None), Err(TokenError::Invalid));
        let other_secret = TokenSigner::new(b"another secret key base of some length", SALT);
        assert_eq!(other_secret.verify(ROW3, T0 + 1000, None), Err(TokenError::Invalid));
        let other_salt = TokenSigner::new(SECRET, "user socket");
        assert_eq!(other_salt.verify(ROW3, T0 + 1000, None), Err(TokenError::Invalid));
        assert_eq!(other_salt.verify_user(&other_salt.sign_user("ann", T0), T0), Ok("ann".to_owned()));
        // A truncated or extended MAC.
        assert_eq!(signer.verify(&ROW3[..ROW3.len() - 1], T0 + 1000, None), Err(TokenError::Invalid));
        assert_eq!(signer.verify(&format!("{ROW3}AA"), T0 + 1000, None), Err(TokenError::Invalid));
    }

    #[test]
    fn garbage_is_invalid_and_empty_is_missing() {
        let signer = signer();
        assert_eq!(signer.verify("", T0, None), Err(TokenError::Missing));
        assert_eq!(signer.verify_user("", T0), Err(TokenError::Missing));
        let (head, rest) = ROW3.split_once('.').unwrap();
        let (payload, mac) = rest.split_once('.').unwrap();
        let cases = [
            "no dots at all".to_owned(),
            ".".to_owned(),
            "..".to_owned(),
            "...".to_owned(),
            format!("{head}.{payload}"),
            format!("{head}.{payload}.{mac}.{mac}"),
            format!("{ROW3}."),
            format!("SFMyNTZ.{payload}.{mac}"),
            format!("HS256.{payload}.{mac}"),
            format!("{head}.{payload}=.{mac}"),
            format!("{head}.{payload}.{mac}="),
            format!("{head}.{payload}!.{mac}"),
            format!("{head}.{}.{mac}", payload.replace('A', "+")),
            format!("{head}..{mac}"),
            "SFMyNTY.%%%.###".to_owned(),
            "é.é.é".to_owned(),
        ];
        for token in &cases {
            assert_eq!(signer.verify(token, T0 + 1000, None), Err(TokenError::Invalid), "{token}");
        }
    }

    #[test]
    fn genuine_but_malformed_payloads_are_invalid() {
        let signer = signer();
        let at = Term::Int(i128::from(T0));
        let payloads = [
            Term::Int(5),
            Term::Tuple(vec![]),
            Term::Tuple(vec![Term::Int(1)]),
            Term::Tuple(vec![Term::Int(1), Term::Binary(b"now".to_vec())]),
            Term::Tuple(vec![Term::Int(1), at.clone(), Term::Atom("forever".into())]),
            Term::Tuple(vec![Term::Int(1), at.clone(), Term::Binary(b"60".to_vec())]),
            Term::Tuple(vec![Term::Int(1), at.clone(), Term::Int(60), Term::Int(0)]),
            Term::Map(vec![(Term::Atom("data".into()), Term::Int(1))]),
            Term::Map(vec![(Term::Binary(b"data".to_vec()), Term::Int(1)), (Term::Binary(b"signed".to_vec()), at)]),
        ];
        for payload in &payloads {
            assert_eq!(
                signer.verify(&forge(&signer, HS256, payload), T0, None),
                Err(TokenError::Invalid),
                "{payload:?}"
            );
        }
        // A genuine MAC over bytes that are not a term.
        let plain = format!("{HS256}.{}", URL_SAFE_NO_PAD.encode([131, 112, 0]));
        let token = format!("{plain}.{}", URL_SAFE_NO_PAD.encode(hmac_sha256(&signer.key, plain.as_bytes())));
        assert_eq!(signer.verify(&token, T0, None), Err(TokenError::Invalid));
    }

    #[test]
    fn legacy_payload_shapes_verify() {
        let signer = signer();
        let data = Term::Binary(b"user:42".to_vec());
        let legacy = Term::Tuple(vec![data.clone(), Term::Int(i128::from(T0))]);
        let token = forge(&signer, HS256, &legacy);
        assert_eq!(signer.verify(&token, T0 + 1000, None), Ok(data.clone()));
        assert_eq!(signer.verify(&token, T0 + 86_400_001, None), Err(TokenError::Expired));
        assert_eq!(signer.verify(&token, T0 + 86_400_001, Some(100_000)), Ok(data.clone()));

        let map = Term::Map(vec![
            (Term::Atom("signed".into()), Term::Int(i128::from(T0))),
            (Term::Atom("extra".into()), Term::Nil),
            (Term::Atom("data".into()), data.clone()),
        ]);
        let token = forge(&signer, HS256, &map);
        assert_eq!(signer.verify_user(&token, T0 + 1000), Ok("user:42".to_owned()));
        assert_eq!(signer.verify(&token, T0 + 86_400_001, None), Err(TokenError::Expired));
        assert_eq!(signer.verify(&token, T0 - 1, None), Err(TokenError::Invalid));
    }

    #[test]
    fn float_max_ages_truncate_like_elixir() {
        let signer = signer();
        let with_max_age = |max_age: f64| {
            forge(&signer, HS256, &Term::Tuple(vec![Term::Int(7), Term::Int(i128::from(T0)), Term::Float(max_age)]))
        };
        assert_eq!(signer.verify(&with_max_age(1.5), T0 + 1500, None), Ok(Term::Int(7)));
        assert_eq!(signer.verify(&with_max_age(1.5), T0 + 1501, None), Err(TokenError::Expired));
        // Positive but under a millisecond: valid only at the signing instant.
        assert_eq!(signer.verify(&with_max_age(0.0004), T0, None), Ok(Term::Int(7)));
        assert_eq!(signer.verify(&with_max_age(0.0004), T0 + 1, None), Err(TokenError::Expired));
        assert_eq!(signer.verify(&with_max_age(0.0), T0, None), Err(TokenError::Expired));
        assert_eq!(signer.verify(&with_max_age(1e300), T0 + 1, None), Ok(Term::Int(7)));
    }

    #[test]
    fn hs384_and_hs512_tokens_verify() {
        let signer = signer();
        let payload = Term::Tuple(vec![Term::Binary(b"ann".to_vec()), Term::Int(i128::from(T0)), Term::Int(60)]);
        for protected in [HS256, HS384, HS512] {
            let token = forge(&signer, protected, &payload);
            assert!(token.starts_with(protected));
            assert_eq!(signer.verify_user(&token, T0 + 60_000), Ok("ann".to_owned()), "{protected}");
            assert_eq!(signer.verify_user(&token, T0 + 60_001), Err(TokenError::Expired), "{protected}");
        }
        // A SHA-512 MAC under the SHA-256 header (and the reverse) is a forgery.
        let hs512 = forge(&signer, HS512, &payload);
        let swapped = format!("{HS256}{}", &hs512[HS512.len()..]);
        assert_eq!(signer.verify(&swapped, T0, None), Err(TokenError::Invalid));
        let hs256 = forge(&signer, HS256, &payload);
        let swapped = format!("{HS384}{}", &hs256[HS256.len()..]);
        assert_eq!(signer.verify(&swapped, T0, None), Err(TokenError::Invalid));
    }

    #[test]
    fn round_trips_arbitrary_data_and_hides_secrets_from_debug() {
        let signer = signer();
        let data = Term::Map(vec![
            (Term::Atom("id".into()), Term::Int(-(1 << 80))),
            (Term::Binary(b"tags".to_vec()), Term::List(vec![Term::Float(0.5), Term::Atom("nil".into())])),
        ]);
        let token = signer.sign(&data, T0, 5);
        assert_eq!(signer.verify(&token, T0 + 5000, None), Ok(data));
        assert_eq!(signer.verify_user(&signer.sign_user("zoë", T0), T0), Ok("zoë".to_owned()));
        let debug = format!("{signer:?}");
        assert!(debug.contains("user auth") && !debug.contains("kjoy3o1"), "{debug}");
    }

    #[test]
    fn verify_never_panics_on_random_tokens() {
        let signer = signer();
        let alphabet = b"SFMyNTYzODQ1MTI.-_=+/AaZz09.\xc3\xa9";
        let mut state: u64 = 0x1234_5678_9abc_def0;
        for _ in 0..20_000 {
            let len = usize::try_from(state % 90).unwrap();
            let mut bytes = Vec::with_capacity(len);
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bytes.push(alphabet[usize::try_from(state % alphabet.len() as u64).unwrap()]);
            }
            let token = String::from_utf8_lossy(&bytes);
            assert!(signer.verify(&token, T0, None).is_err());
        }
    }
}
