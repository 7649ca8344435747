//! Serializer version negotiation from the `vsn` connect parameter (docs/protocol.md §3.1).
//!
//! Phoenix matches the client's version against Elixir requirements `~> 1.0.0` (V1) and `~> 2.0.0` (V2). Rather than
//! pull in a semver crate for two patterns, this file parses the one version grammar Elixir accepts
//! (`MAJOR.MINOR.PATCH[-PRE][+BUILD]`) and checks the two ranges directly.

/// A serializer version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vsn {
    /// JSON objects `{"topic","event","payload","ref"}`; no binary frames. Phoenix's default when `vsn` is absent.
    V1,
    /// JSON arrays `[join_ref, ref, topic, event, payload]` plus binary frames. What phoenix.js sends (`vsn=2.0.0`).
    V2,
}

/// What Phoenix assumes when the client sends no `vsn` parameter.
pub const DEFAULT_VSN: &str = "1.0.0";

impl Vsn {
    /// Picks the serializer for the `vsn` query parameter, as Phoenix does.
    ///
    /// Absent → V1 (Phoenix defaults to `"1.0.0"`). A version matching `~> 2.0.0` (`>= 2.0.0` and `< 2.1.0`) → V2;
    /// `~> 1.0.0` → V1. Anything else — unparsable, empty, `"2.1.0"`, `"3.0.0"` — → `None`, which the server answers
    /// with HTTP 403.
    pub fn negotiate(vsn: Option<&str>) -> Option<Vsn> {
        let version = Version::parse(vsn.unwrap_or(DEFAULT_VSN))?;
        if version.matches_tilde_patch(2, 0) {
            Some(Vsn::V2)
        } else if version.matches_tilde_patch(1, 0) {
            Some(Vsn::V1)
        } else {
            None
        }
    }
}

/// The parts of a version that matter for `~>` matching.
struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre_release: bool,
}

impl Version {
    fn parse(text: &str) -> Option<Self> {
        // Build metadata never affects precedence; it only has to be well formed.
        let (rest, build) = match text.split_once('+') {
            Some((rest, build)) => (rest, Some(build)),
            None => (text, None),
        };
        if let Some(build) = build
            && !build.split('.').all(is_identifier)
        {
            return None;
        }
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (rest, None),
        };
        if let Some(pre) = pre
            && !pre.split('.').all(|id| is_identifier(id) && (!id.bytes().all(|b| b.is_ascii_digit()) || is_number(id)))
        {
            return None;
        }
        let mut parts = core.split('.');
        let major = parse_number(parts.next()?)?;
        let minor = parse_number(parts.next()?)?;
        let patch = parse_number(parts.next()?)?;
        if parts.next().is_some() {
            return None;
        }
        Some(Self { major, minor, patch, pre_release: pre.is_some() })
    }

    /// Elixir's `~> MAJOR.MINOR.0`: `>= MAJOR.MINOR.0` and `< MAJOR.(MINOR+1).0`. A pre-release sorts before its
    /// release, so `2.0.0-rc` is below `2.0.0` and fails, while `2.0.1-rc` passes.
    fn matches_tilde_patch(&self, major: u64, minor: u64) -> bool {
        self.major == major && self.minor == minor && !(self.patch == 0 && self.pre_release)
    }
}

/// A non-empty run of `[0-9A-Za-z-]`, the semver identifier alphabet.
fn is_identifier(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Digits without leading zeros (semver and Elixir both refuse `01`).
fn is_number(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'))
}

fn parse_number(text: &str) -> Option<u64> {
    if is_number(text) { text.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_table() {
        let cases = [
            (None, Some(Vsn::V1)),
            (Some("1.0.0"), Some(Vsn::V1)),
            (Some("1.0.5"), Some(Vsn::V1)),
            (Some("2.0.0"), Some(Vsn::V2)),
            (Some("2.0.9"), Some(Vsn::V2)),
            (Some("2.0.10"), Some(Vsn::V2)),
            (Some("2.1.0"), None),
            (Some("3.0.0"), None),
            (Some("123.1.1"), None),
            (Some("1.1.0"), None),
            (Some("0.9.0"), None),
            (Some("abc"), None),
            (Some(""), None),
        ];
        for (vsn, expected) in cases {
            assert_eq!(Vsn::negotiate(vsn), expected, "{vsn:?}");
        }
    }

    #[test]
    fn version_grammar() {
        for bad in [
            "2", "2.0", "2.0.0.0", "2.0.x", "02.0.0", "2.00.0", "2.0.01", " 2.0.0", "2.0.0 ", "2.0.0-", "2.0.0+",
            "-2.0.0",
        ] {
            assert_eq!(Vsn::negotiate(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(Vsn::negotiate(Some("2.0.0+build.7")), Some(Vsn::V2));
        assert_eq!(Vsn::negotiate(Some("2.0.0-rc.1")), None);
        assert_eq!(Vsn::negotiate(Some("2.0.1-rc.1")), Some(Vsn::V2));
        assert_eq!(Vsn::negotiate(Some("2.0.1-rc.01")), None);
        assert_eq!(Vsn::negotiate(Some("99999999999999999999999.0.0")), None);
    }
}
