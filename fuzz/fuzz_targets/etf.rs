//! The Erlang External Term Format decoder behind token verification (`server::auth::etf`), on any bytes.
//!
//! Checks, on the input read as bytes: no input panics, recurses past `MAX_DEPTH` or allocates beyond the input (a
//! huge declared length must fail, not abort on memory); a decoded term has an encoding, and re-encoding is a fixed
//! point (decode ∘ encode gives the term back, encode ∘ decode ∘ encode gives the same bytes). On the input read as
//! a recipe for a term: encoding then decoding any term gives it back (empty lists as `[]`).
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use parley_fuzz::{arbitrary_term, canonical_term, etf};

fuzz_target!(|data: &[u8]| {
    if let Ok(term) = etf::decode(data) {
        let encoded = etf::try_encode(&term).expect("a decoded term has an encoding");
        let again = etf::decode(&encoded).expect("our own encoding decodes");
        assert_eq!(again, term);
        assert_eq!(etf::try_encode(&again).as_ref(), Ok(&encoded), "encoding is canonical");
    }

    let mut recipe = Unstructured::new(data);
    if let Ok(term) = arbitrary_term(&mut recipe, 1) {
        let encoded = etf::try_encode(&term).expect("generated terms are encodable");
        assert_eq!(etf::decode(&encoded), Ok(canonical_term(&term)), "{term:?}");
    }
});
