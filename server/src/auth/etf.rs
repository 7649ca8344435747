//! The subset of Erlang's External Term Format that Phoenix.Token payloads use (`term_to_binary` /
//! `non_executable_binary_to_term`): integers, binaries, atoms, tuples, proper lists, maps and floats.
//!
//! Owns the byte format only; what a token payload must look like is `token`'s business. Pids, references, ports,
//! funs, improper lists, bit strings and compressed terms are rejected: a token never needs them, and refusing
//! funs is exactly what `non_executable_binary_to_term` exists for. Two tags beyond that list are read because
//! Erlang writes them for ordinary data: `STRING_EXT` (a short list of bytes such as `[1, 2]` or a charlist) and the
//! Latin-1 `SMALL_ATOM_EXT`; `STRING_EXT` is also written where Erlang would, so [`encode`] matches `term_to_binary`
//! byte for byte except for map order.
//!
//! The decoder reads bytes from the network (a token's payload is only decoded after its MAC checks out, but this
//! module does not rely on that), so it never panics, never recurses deeper than [`MAX_DEPTH`], and checks every
//! length against the bytes that are left before it allocates.

use std::collections::HashSet;

/// Nesting limit for decoded terms. A token payload is a tuple around user data, a few levels at most; 32 leaves
/// room for real data while keeping recursion (one stack frame per level) far from the stack's limit.
pub const MAX_DEPTH: usize = 32;

/// Erlang's limit on an atom's length, in characters.
const MAX_ATOM_CHARS: usize = 255;

const VERSION: u8 = 131;
const NEW_FLOAT_EXT: u8 = 70;
const SMALL_INTEGER_EXT: u8 = 97;
const INTEGER_EXT: u8 = 98;
const ATOM_EXT: u8 = 100;
const SMALL_TUPLE_EXT: u8 = 104;
const LARGE_TUPLE_EXT: u8 = 105;
const NIL_EXT: u8 = 106;
const STRING_EXT: u8 = 107;
const LIST_EXT: u8 = 108;
const BINARY_EXT: u8 = 109;
const SMALL_BIG_EXT: u8 = 110;
const LARGE_BIG_EXT: u8 = 111;
const SMALL_ATOM_EXT: u8 = 115;
const MAP_EXT: u8 = 116;
const ATOM_UTF8_EXT: u8 = 118;
const SMALL_ATOM_UTF8_EXT: u8 = 119;

/// An Erlang term from the supported subset.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    /// An integer. Erlang integers are unbounded; values outside `i128` are rejected on decode.
    Int(i128),
    /// A binary (an Elixir string when it holds UTF-8).
    Binary(Vec<u8>),
    /// An atom. Elixir's `nil`, `true` and `false` are atoms too: `Atom("nil")`, not [`Term::Nil`].
    Atom(String),
    /// A tuple.
    Tuple(Vec<Term>),
    /// A proper list. An empty one encodes as `[]` and decodes back as [`Term::Nil`].
    List(Vec<Term>),
    /// A map, in the order its pairs are encoded. Keys are unique (checked on decode).
    Map(Vec<(Term, Term)>),
    /// A finite float (Erlang has no NaN or infinities).
    Float(f64),
    /// The empty list `[]` (`NIL_EXT`).
    Nil,
}

/// Why bytes are not a supported term, or a term cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EtfError {
    /// The input ended inside a term.
    #[error("unexpected end of input")]
    UnexpectedEnd,
    /// The first byte is not the format version 131.
    #[error("unsupported format version {0}")]
    BadVersion(u8),
    /// A tag outside the supported subset (pids, funs, compressed terms, ...).
    #[error("unsupported term tag {0}")]
    UnsupportedTag(u8),
    /// Bytes follow the term.
    #[error("{0} trailing bytes after the term")]
    TrailingBytes(usize),
    /// The term nests deeper than [`MAX_DEPTH`].
    #[error("term nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// An integer does not fit in `i128`, or a bignum's sign byte is neither 0 nor 1.
    #[error("integer out of range")]
    IntegerOutOfRange,
    /// A float is NaN or infinite.
    #[error("float is not finite")]
    NonFiniteFloat,
    /// An atom is not valid UTF-8 or is longer than Erlang allows.
    #[error("invalid atom")]
    InvalidAtom,
    /// A list's tail is not `[]`.
    #[error("improper list")]
    ImproperList,
    /// A map has the same key twice.
    #[error("duplicate map key")]
    DuplicateMapKey,
    /// A length does not fit the format's length field (encode only).
    #[error("term too large to encode")]
    TooLarge,
}

/// Encodes `term` as `term_to_binary` would (map pairs are written in the given order, so a map's bytes can differ
/// from Erlang's, which sorts small maps).
///
/// # Panics
///
/// Only for terms Erlang itself cannot hold: a non-finite float, an atom over 255 characters, or a binary or
/// collection over `u32::MAX` elements. Use [`try_encode`] for terms built from untrusted input.
pub fn encode(term: &Term) -> Vec<u8> {
    match try_encode(term) {
        Ok(bytes) => bytes,
        Err(err) => panic!("term cannot be encoded: {err}"),
    }
}

/// Encodes `term` as `term_to_binary` would, or says why it has no encoding.
pub fn try_encode(term: &Term) -> Result<Vec<u8>, EtfError> {
    let mut out = vec![VERSION];
    encode_into(term, &mut out)?;
    Ok(out)
}

fn encode_into(term: &Term, out: &mut Vec<u8>) -> Result<(), EtfError> {
    match term {
        Term::Int(n) => encode_int(*n, out),
        Term::Binary(bytes) => {
            out.push(BINARY_EXT);
            out.extend_from_slice(&len_u32(bytes.len())?);
            out.extend_from_slice(bytes);
        }
        Term::Atom(name) => {
            if name.chars().count() > MAX_ATOM_CHARS {
                return Err(EtfError::InvalidAtom);
            }
            // 255 characters are at most 1020 UTF-8 bytes, so the u16 length always fits.
            match u8::try_from(name.len()) {
                Ok(len) => out.extend_from_slice(&[SMALL_ATOM_UTF8_EXT, len]),
                Err(_) => {
                    let len = u16::try_from(name.len()).map_err(|_| EtfError::InvalidAtom)?;
                    out.push(ATOM_UTF8_EXT);
                    out.extend_from_slice(&len.to_be_bytes());
                }
            }
            out.extend_from_slice(name.as_bytes());
        }
        Term::Tuple(items) => {
            match u8::try_from(items.len()) {
                Ok(arity) => out.extend_from_slice(&[SMALL_TUPLE_EXT, arity]),
                Err(_) => {
                    out.push(LARGE_TUPLE_EXT);
                    out.extend_from_slice(&len_u32(items.len())?);
                }
            }
            for item in items {
                encode_into(item, out)?;
            }
        }
        Term::List(items) if items.is_empty() => out.push(NIL_EXT),
        Term::List(items) => {
            // Like Erlang, a short list of bytes is written as a "string".
            let bytes: Option<Vec<u8>> =
                items.iter().map(|item| if let Term::Int(n) = item { u8::try_from(*n).ok() } else { None }).collect();
            match (bytes, u16::try_from(items.len())) {
                (Some(bytes), Ok(len)) => {
                    out.push(STRING_EXT);
                    out.extend_from_slice(&len.to_be_bytes());
                    out.extend_from_slice(&bytes);
                }
                _ => {
                    out.push(LIST_EXT);
                    out.extend_from_slice(&len_u32(items.len())?);
                    for item in items {
                        encode_into(item, out)?;
                    }
                    out.push(NIL_EXT);
                }
            }
        }
        Term::Map(pairs) => {
            out.push(MAP_EXT);
            out.extend_from_slice(&len_u32(pairs.len())?);
            for (key, value) in pairs {
                encode_into(key, out)?;
                encode_into(value, out)?;
            }
        }
        Term::Float(x) => {
            if !x.is_finite() {
                return Err(EtfError::NonFiniteFloat);
            }
            out.push(NEW_FLOAT_EXT);
            out.extend_from_slice(&x.to_be_bytes());
        }
        Term::Nil => out.push(NIL_EXT),
    }
    Ok(())
}

fn encode_int(n: i128, out: &mut Vec<u8>) {
    if let Ok(small) = u8::try_from(n) {
        out.extend_from_slice(&[SMALL_INTEGER_EXT, small]);
    } else if let Ok(int) = i32::try_from(n) {
        out.push(INTEGER_EXT);
        out.extend_from_slice(&int.to_be_bytes());
    } else {
        // Bignum: sign byte, then the magnitude's bytes little-endian without high zero bytes (at most 16).
        let magnitude = n.unsigned_abs().to_le_bytes();
        let digits = magnitude.iter().rposition(|&b| b != 0).map_or(0, |last| last + 1);
        out.push(SMALL_BIG_EXT);
        out.push(u8::try_from(digits).unwrap_or(16));
        out.push(u8::from(n < 0));
        out.extend_from_slice(&magnitude[..digits]);
    }
}

fn len_u32(len: usize) -> Result<[u8; 4], EtfError> {
    u32::try_from(len).map(u32::to_be_bytes).map_err(|_| EtfError::TooLarge)
}

/// Decodes one complete term (version byte included); trailing bytes are an error.
pub fn decode(bytes: &[u8]) -> Result<Term, EtfError> {
    let mut decoder = Decoder { input: bytes, pos: 0 };
    let version = decoder.u8()?;
    if version != VERSION {
        return Err(EtfError::BadVersion(version));
    }
    let term = decoder.term(1)?;
    match decoder.remaining() {
        0 => Ok(term),
        extra => Err(EtfError::TrailingBytes(extra)),
    }
}

/// A decoded list; every empty list is [`Term::Nil`], however it was written, so decoding is canonical.
fn list(items: Vec<Term>) -> Term {
    if items.is_empty() { Term::Nil } else { Term::List(items) }
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], EtfError> {
        let slice = self.input.get(self.pos..).and_then(|rest| rest.get(..n)).ok_or(EtfError::UnexpectedEnd)?;
        self.pos += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], EtfError> {
        self.take(N)?.try_into().map_err(|_| EtfError::UnexpectedEnd)
    }

    fn u8(&mut self) -> Result<u8, EtfError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<usize, EtfError> {
        Ok(usize::from(u16::from_be_bytes(self.array()?)))
    }

    fn u32(&mut self) -> Result<usize, EtfError> {
        usize::try_from(u32::from_be_bytes(self.array()?)).map_err(|_| EtfError::UnexpectedEnd)
    }

    /// Checks that `count` items of at least `min_bytes` each can still follow, before anything is allocated for them.
    fn check_room(&self, count: usize, min_bytes: usize) -> Result<usize, EtfError> {
        match count.checked_mul(min_bytes) {
            Some(needed) if needed <= self.remaining() => Ok(count),
            _ => Err(EtfError::UnexpectedEnd),
        }
    }

    fn term(&mut self, depth: usize) -> Result<Term, EtfError> {
        if depth > MAX_DEPTH {
            return Err(EtfError::TooDeep);
        }
        let tag = self.u8()?;
        match tag {
            SMALL_INTEGER_EXT => Ok(Term::Int(i128::from(self.u8()?))),
            INTEGER_EXT => Ok(Term::Int(i128::from(i32::from_be_bytes(self.array()?)))),
            SMALL_BIG_EXT => {
                let n = usize::from(self.u8()?);
                self.big(n)
            }
            LARGE_BIG_EXT => {
                let n = self.u32()?;
                self.big(n)
            }
            NEW_FLOAT_EXT => {
                let x = f64::from_be_bytes(self.array()?);
                if x.is_finite() { Ok(Term::Float(x)) } else { Err(EtfError::NonFiniteFloat) }
            }
            BINARY_EXT => {
                let len = self.u32()?;
                Ok(Term::Binary(self.take(len)?.to_vec()))
            }
            SMALL_ATOM_UTF8_EXT => {
                let len = usize::from(self.u8()?);
                self.utf8_atom(len)
            }
            ATOM_UTF8_EXT => {
                let len = self.u16()?;
                self.utf8_atom(len)
            }
            SMALL_ATOM_EXT => {
                let len = usize::from(self.u8()?);
                self.latin1_atom(len)
            }
            ATOM_EXT => {
                let len = self.u16()?;
                self.latin1_atom(len)
            }
            SMALL_TUPLE_EXT => {
                let arity = usize::from(self.u8()?);
                Ok(Term::Tuple(self.items(arity, depth)?))
            }
            LARGE_TUPLE_EXT => {
                let arity = self.u32()?;
                Ok(Term::Tuple(self.items(arity, depth)?))
            }
            NIL_EXT => Ok(Term::Nil),
            STRING_EXT => {
                let len = self.u16()?;
                Ok(list(self.take(len)?.iter().map(|&b| Term::Int(i128::from(b))).collect()))
            }
            LIST_EXT => {
                let len = self.u32()?;
                // One byte per element plus the tail.
                self.check_room(len, 1)?;
                let items = self.items(len, depth)?;
                match self.u8()? {
                    NIL_EXT => Ok(list(items)),
                    _ => Err(EtfError::ImproperList),
                }
            }
            MAP_EXT => {
                let arity = self.u32()?;
                self.check_room(arity, 2)?;
                let mut pairs = Vec::with_capacity(arity);
                // Keys are compared by their canonical encoding: equal terms encode identically.
                let mut seen = HashSet::with_capacity(arity);
                for _ in 0..arity {
                    let key = self.term(depth + 1)?;
                    if !seen.insert(try_encode(&key)?) {
                        return Err(EtfError::DuplicateMapKey);
                    }
                    let value = self.term(depth + 1)?;
                    pairs.push((key, value));
                }
                Ok(Term::Map(pairs))
            }
            other => Err(EtfError::UnsupportedTag(other)),
        }
    }

    fn items(&mut self, count: usize, depth: usize) -> Result<Vec<Term>, EtfError> {
        let mut items = Vec::with_capacity(self.check_room(count, 1)?);
        for _ in 0..count {
            items.push(self.term(depth + 1)?);
        }
        Ok(items)
    }

    fn big(&mut self, n: usize) -> Result<Term, EtfError> {
        let sign = self.u8()?;
        let digits = self.take(n)?;
        // High zero digits are legal (if unusual); only significant digits must fit.
        let significant = digits.iter().rposition(|&d| d != 0).map_or(0, |last| last + 1);
        if significant > 16 || sign > 1 {
            return Err(EtfError::IntegerOutOfRange);
        }
        let mut le = [0u8; 16];
        le[..significant].copy_from_slice(&digits[..significant]);
        let magnitude = u128::from_le_bytes(le);
        let value = if sign == 0 {
            i128::try_from(magnitude).ok()
        } else {
            // -(2^127) is i128::MIN, one past i128::MAX in magnitude.
            0i128.checked_sub_unsigned(magnitude)
        };
        value.map(Term::Int).ok_or(EtfError::IntegerOutOfRange)
    }

    fn utf8_atom(&mut self, len: usize) -> Result<Term, EtfError> {
        let name = std::str::from_utf8(self.take(len)?).map_err(|_| EtfError::InvalidAtom)?;
        if name.chars().count() > MAX_ATOM_CHARS {
            return Err(EtfError::InvalidAtom);
        }
        Ok(Term::Atom(name.to_owned()))
    }

    fn latin1_atom(&mut self, len: usize) -> Result<Term, EtfError> {
        if len > MAX_ATOM_CHARS {
            return Err(EtfError::InvalidAtom);
        }
        Ok(Term::Atom(self.take(len)?.iter().map(|&b| char::from(b)).collect()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn atom(name: &str) -> Term {
        Term::Atom(name.to_owned())
    }

    #[test]
    fn integers_use_the_smallest_encoding() {
        let cases: &[(i128, &str)] = &[
            (0, "836100"),
            (255, "8361ff"),
            (256, "836200000100"),
            (-1, "8362ffffffff"),
            (86_400, "836200015180"),
            (i128::from(i32::MAX), "83627fffffff"),
            (i128::from(i32::MIN), "836280000000"),
            (i128::from(i32::MAX) + 1, "836e040000000080"),
            (i128::from(i32::MIN) - 1, "836e040101000080"),
            (1_700_000_000_000, "836e06000068e5cf8b01"),
            (i128::MAX, "836e1000ffffffffffffffffffffffffffffff7f"),
            (i128::MIN, "836e100100000000000000000000000000000080"),
        ];
        for &(n, expected) in cases {
            let bytes = encode(&Term::Int(n));
            assert_eq!(hex(&bytes), expected, "{n}");
            assert_eq!(decode(&bytes).unwrap(), Term::Int(n));
        }
    }

    #[test]
    fn bignums_decode_in_both_forms_and_reject_what_does_not_fit() {
        // LARGE_BIG_EXT, high zero digits.
        assert_eq!(decode(&unhex("836f0000000300000100")).unwrap(), Term::Int(256));
        assert_eq!(decode(&unhex("836e0001")).unwrap(), Term::Int(0));
        // 2^128 needs 17 digits.
        let mut too_big = unhex("836e1100");
        too_big.extend_from_slice(&[0; 16]);
        too_big.push(1);
        assert_eq!(decode(&too_big), Err(EtfError::IntegerOutOfRange));
        // i128::MIN - 1, and i128::MAX + 1.
        assert_eq!(decode(&unhex("836e100101000000000000000000000000000080")), Err(EtfError::IntegerOutOfRange));
        assert_eq!(decode(&unhex("836e100000000000000000000000000000000080")), Err(EtfError::IntegerOutOfRange));
        assert_eq!(decode(&unhex("836e010201")), Err(EtfError::IntegerOutOfRange));
    }

    #[test]
    fn token_payloads_match_the_protocol_vectors() {
        let row1 = Term::Tuple(vec![Term::Int(1), Term::Int(0), Term::Int(86_400)]);
        assert_eq!(hex(&encode(&row1)), "836803610161006200015180");
        let row2 = Term::Tuple(vec![Term::Int(99), Term::Int(1_700_000_000_000), Term::Int(86_400)]);
        assert_eq!(hex(&encode(&row2)), "83680361636e06000068e5cf8b016200015180");
        let row3 =
            Term::Tuple(vec![Term::Binary(b"user:42".to_vec()), Term::Int(1_700_000_000_000), Term::Int(86_400)]);
        assert_eq!(hex(&encode(&row3)), "8368036d00000007757365723a34326e06000068e5cf8b016200015180");
        for term in [row1, row2, row3] {
            assert_eq!(decode(&encode(&term)).unwrap(), term);
        }
    }

    #[test]
    fn every_kind_round_trips() {
        let long_atom = "é".repeat(200);
        let term = Term::Map(vec![
            (atom("data"), Term::List(vec![Term::Int(1), Term::Int(-5), Term::Binary(vec![0, 255])])),
            (atom("signed"), Term::Int(-(1 << 70))),
            (Term::Binary(b"k".to_vec()), Term::Tuple(vec![Term::Float(1.5), Term::Float(-0.0), Term::Nil])),
            (atom(&long_atom), Term::Tuple((0..300).map(Term::Int).collect())),
            (atom("nil"), Term::List(vec![Term::Int(104), Term::Int(105)])),
            (Term::Tuple(vec![]), Term::Map(vec![])),
        ]);
        let bytes = encode(&term);
        assert_eq!(decode(&bytes).unwrap(), term);
        assert_eq!(hex(&encode(&atom("v1"))), "8377027631");
        assert_eq!(hex(&encode(&Term::Float(1.5))), "83463ff8000000000000");
        assert_eq!(hex(&encode(&Term::List(vec![Term::Int(104), Term::Int(105)]))), "836b00026869");
        assert_eq!(hex(&encode(&Term::List(vec![Term::Int(256)]))), "836c0000000162000001006a");
        // However it is written, an empty list decodes as `[]`.
        assert_eq!(decode(&encode(&Term::List(vec![]))).unwrap(), Term::Nil);
        assert_eq!(decode(&unhex("836c000000006a")).unwrap(), Term::Nil);
        assert_eq!(decode(&unhex("836b0000")).unwrap(), Term::Nil);
    }

    #[test]
    fn legacy_atoms_and_large_tuples_decode() {
        assert_eq!(decode(&unhex("836400036e696c")).unwrap(), atom("nil"));
        assert_eq!(decode(&unhex("837301e9")).unwrap(), atom("é"));
        assert_eq!(decode(&unhex("83690000000261016102")).unwrap(), Term::Tuple(vec![Term::Int(1), Term::Int(2)]));
        assert_eq!(decode(&unhex("83760002c3a9")).unwrap(), atom("é"));
    }

    #[test]
    fn rejects_what_is_outside_the_subset() {
        let cases: &[(&str, EtfError)] = &[
            ("", EtfError::UnexpectedEnd),
            ("8461", EtfError::BadVersion(0x84)),
            ("836101ff", EtfError::TrailingBytes(1)),
            // fun, export, pid, reference, compressed, old float, bit binary
            ("8370", EtfError::UnsupportedTag(112)),
            ("8371", EtfError::UnsupportedTag(113)),
            ("8358", EtfError::UnsupportedTag(88)),
            ("835a", EtfError::UnsupportedTag(90)),
            ("8350", EtfError::UnsupportedTag(80)),
            ("8363", EtfError::UnsupportedTag(99)),
            ("834d", EtfError::UnsupportedTag(77)),
            ("836c0000000161016101", EtfError::ImproperList),
            ("8374000000026101610261016103", EtfError::DuplicateMapKey),
            ("83467ff0000000000000", EtfError::NonFiniteFloat),
            ("837702fffe", EtfError::InvalidAtom),
            ("836d00000005616263", EtfError::UnexpectedEnd),
            ("8368ff", EtfError::UnexpectedEnd),
            ("836cffffffff", EtfError::UnexpectedEnd),
            ("8374ffffffff", EtfError::UnexpectedEnd),
            ("836fffffffff00", EtfError::UnexpectedEnd),
        ];
        for (input, expected) in cases {
            assert_eq!(decode(&unhex(input)).as_ref(), Err(expected), "{input}");
        }
        let mut long_atom = vec![VERSION, ATOM_EXT, 1, 0];
        long_atom.extend_from_slice(&[b'a'; 256]);
        assert_eq!(decode(&long_atom), Err(EtfError::InvalidAtom));
        assert_eq!(try_encode(&atom(&"a".repeat(256))), Err(EtfError::InvalidAtom));
        assert_eq!(try_encode(&Term::Float(f64::NAN)), Err(EtfError::NonFiniteFloat));
    }

    #[test]
    fn depth_is_limited() {
        fn nested(levels: usize) -> Term {
            (1..levels).fold(Term::Nil, |inner, _| Term::Tuple(vec![inner]))
        }
        assert_eq!(decode(&encode(&nested(MAX_DEPTH))).unwrap(), nested(MAX_DEPTH));
        assert_eq!(decode(&encode(&nested(MAX_DEPTH + 1))), Err(EtfError::TooDeep));
        // A million nested one-element lists must not blow the stack.
        let mut deep = vec![VERSION];
        for _ in 0..1_000_000 {
            deep.extend_from_slice(&[LIST_EXT, 0, 0, 0, 1]);
        }
        assert_eq!(decode(&deep), Err(EtfError::TooDeep));
    }

    /// xorshift64*: deterministic, so a failure reproduces.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n as u64).unwrap()
        }
    }

    #[test]
    fn decode_never_panics_on_random_bytes() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        // Biased towards real tags and tiny length bytes so that inputs get past the first checks and nest.
        let tags = [VERSION, 70, 97, 98, 100, 104, 105, 106, 107, 108, 109, 110, 111, 115, 116, 118, 119, 255];
        let mut decoded = 0;
        for _ in 0..100_000 {
            let len = rng.below(40);
            let mut input: Vec<u8> = (0..len)
                .map(|_| match rng.below(3) {
                    0 => tags[rng.below(tags.len())],
                    1 => rng.next().to_le_bytes()[0] % 3,
                    _ => rng.next().to_le_bytes()[0],
                })
                .collect();
            if rng.below(4) != 0 && !input.is_empty() {
                input[0] = VERSION;
            }
            // Every prefix too: most random inputs hold a term followed by junk, or a term cut short.
            for end in 0..=input.len() {
                if let Ok(term) = decode(&input[..end]) {
                    // Whatever decodes re-encodes (maybe more canonically) and decodes to the same term.
                    assert_eq!(decode(&encode(&term)).unwrap(), term);
                    decoded += 1;
                }
            }
        }
        // The generator reaches past the error paths often enough to exercise the happy ones too.
        assert!(decoded > 3000, "{decoded}");
    }

    #[test]
    fn decode_never_panics_on_mutated_valid_terms() {
        let seed = encode(&Term::Tuple(vec![
            Term::Map(vec![(atom("data"), Term::Binary(b"user:42".to_vec())), (atom("signed"), Term::Int(1 << 40))]),
            Term::List(vec![Term::Float(2.0), Term::Int(-70_000), Term::Nil, Term::List(vec![Term::Int(7)])]),
            Term::Int(86_400),
        ]));
        let mut rng = Rng(42);
        for _ in 0..100_000 {
            let mut input = seed.clone();
            for _ in 0..=rng.below(3) {
                let at = rng.below(input.len());
                match rng.below(3) {
                    0 => input[at] = rng.next().to_le_bytes()[0],
                    1 => input.truncate(at),
                    _ => input.insert(at, rng.next().to_le_bytes()[0]),
                }
                if input.is_empty() {
                    break;
                }
            }
            let _ = decode(&input);
        }
    }
}
