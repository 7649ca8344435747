//! Shared pieces of the fuzz targets: the server and client modules they reach by source path, and a reference model
//! of phoenix.js presence to check the Rust port against.
//!
//! Why source paths: the token verifier and the Erlang term decoder live in the `server` crate, and the channel
//! presence wrapper in `app`; depending on those crates would build Leptos, axum, sqlx and redis with libFuzzer's
//! instrumentation (many minutes on two cores) for a few hundred lines that need only `protocol`, the RustCrypto MACs
//! and base64. Compiling the very same files here fuzzes the code the server and the client run, and the build
//! breaks (in the fuzz smoke of `scripts/test.sh`) the day one of them starts to need more of its crate.

#[path = "../../server/src/auth/etf.rs"]
pub mod etf;

#[path = "../../server/src/auth/token.rs"]
pub mod token;

/// The long-poll POST body parser (`server::transport::longpoll::body`).
#[path = "../../server/src/transport/longpoll/body.rs"]
pub mod longpoll_body;

/// The Rust client's per-channel presence (`app::realtime::presence`).
#[path = "../../app/src/realtime/presence.rs"]
pub mod channel_presence;

pub mod js_presence;

/// The salt of socket tokens, `server::auth::SOCKET_SALT` (its `Auth::verify_socket_token` is
/// `TokenSigner::new(secret, SOCKET_SALT).verify_user(token, now)`).
pub const SOCKET_SALT: &str = "user socket";
/// The salt of session cookies, `server::auth::SESSION_SALT` (`Auth::session_user`).
pub const SESSION_SALT: &str = "session cookie";

/// The input as text, or `None` when it is not UTF-8 (the text decoders take `&str`, as the WebSocket layer hands
/// them only valid UTF-8 text frames).
pub fn as_text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Whether a JSON value holds a float anywhere. serde_json (without its `float_roundtrip` feature, which the product
/// does not enable) may print and re-read a float one ulp off, so the round-trip checks skip such payloads.
pub fn has_float(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Number(number) => number.is_f64(),
        serde_json::Value::Array(items) => items.iter().any(has_float),
        serde_json::Value::Object(fields) => fields.values().any(has_float),
        _ => false,
    }
}

/// Builds Erlang terms from fuzz input for the round-trip checks of the `etf` and `token` targets: every kind of
/// [`etf::Term`], nested up to four levels, and always encodable (finite floats, atoms of at most 255 characters, map
/// keys distinct as Erlang sees them).
pub fn arbitrary_term(u: &mut arbitrary::Unstructured<'_>, depth: usize) -> arbitrary::Result<etf::Term> {
    use etf::Term;
    let kinds = if depth >= 4 { 4 } else { 7 };
    Ok(match u.int_in_range(0..=kinds)? {
        0 => Term::Int(match u.int_in_range(0..=2)? {
            0 => i128::from(u.arbitrary::<u8>()?),
            1 => i128::from(u.arbitrary::<i32>()?),
            _ => u.arbitrary::<i128>()?,
        }),
        1 => Term::Binary(u.arbitrary()?),
        2 => Term::Atom(u.arbitrary::<String>()?.chars().take(255).collect()),
        3 => Term::Float(Some(u.arbitrary::<f64>()?).filter(|x| x.is_finite()).unwrap_or(0.5)),
        4 => Term::Nil,
        5 => Term::Tuple(terms(u, depth)?),
        6 => Term::List(terms(u, depth)?),
        _ => {
            let mut pairs: Vec<(Term, Term)> = Vec::new();
            for _ in 0..u.int_in_range(0..=4)? {
                let key = arbitrary_term(u, depth + 1)?;
                let value = arbitrary_term(u, depth + 1)?;
                // Erlang compares map keys as terms; equal terms have equal encodings.
                let encoded = etf::try_encode(&key);
                if pairs.iter().all(|(other, _)| etf::try_encode(other) != encoded) {
                    pairs.push((key, value));
                }
            }
            Term::Map(pairs)
        }
    })
}

fn terms(u: &mut arbitrary::Unstructured<'_>, depth: usize) -> arbitrary::Result<Vec<etf::Term>> {
    (0..u.int_in_range(0..=4)?).map(|_| arbitrary_term(u, depth + 1)).collect()
}

/// The term as the decoder gives it back: every empty list is `[]` ([`etf::Term::Nil`]).
pub fn canonical_term(term: &etf::Term) -> etf::Term {
    use etf::Term;
    match term {
        Term::List(items) if items.is_empty() => Term::Nil,
        Term::List(items) => Term::List(items.iter().map(canonical_term).collect()),
        Term::Tuple(items) => Term::Tuple(items.iter().map(canonical_term).collect()),
        Term::Map(pairs) => Term::Map(pairs.iter().map(|(k, v)| (canonical_term(k), canonical_term(v))).collect()),
        other => other.clone(),
    }
}
