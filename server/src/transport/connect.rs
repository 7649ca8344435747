//! Connect-time checks shared by every transport: serializer version, Origin, and who the client is.
//!
//! Order follows Phoenix: the Origin check first, then the version, then the connect params. Every refusal is an
//! HTTP 403 with a short plain-text reason (never internals).

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use protocol::{names::normalize_user_name, serializer::Vsn};

use crate::auth::Auth;

/// Why a connection attempt is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The Origin header names a site that may not open sockets here.
    #[error("origin not allowed")]
    Origin,
    /// The `vsn` param matches no supported serializer.
    #[error("unsupported protocol version")]
    Version,
    /// The `user` param is not a valid display name.
    #[error("invalid user name")]
    UserName,
    /// The token is invalid, tampered with or expired.
    #[error("invalid token")]
    Token,
    /// Subprotocols were offered but `phoenix` was not among them.
    #[error("unsupported subprotocol")]
    Subprotocol,
    /// A guest asked for a name that belongs to an account.
    #[error("that name belongs to an account")]
    NameTaken,
}

/// Who may open sockets: the request's own host, plus an allow-list.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    /// Extra allowed origins: `https://example.com`, `//example.com:8080`, `//*.example.com`.
    pub allowed: Vec<String>,
}

/// The parts of an origin that are compared.
#[derive(Debug, PartialEq, Eq)]
struct OriginParts<'a> {
    scheme: Option<&'a str>,
    host: &'a str,
    port: Option<&'a str>,
}

fn parse_origin(origin: &str) -> Option<OriginParts<'_>> {
    let (scheme, rest) = match origin.split_once("//") {
        Some((scheme, rest)) => (scheme.strip_suffix(':').filter(|s| !s.is_empty()), rest),
        None => return None,
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || port.chars().all(|c| c.is_ascii_digit()) => (host, Some(port)),
        _ => (authority, None),
    };
    if host.is_empty() {
        return None;
    }
    Some(OriginParts { scheme, host, port })
}

fn host_only(host_header: &str) -> &str {
    match host_header.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => host_header,
    }
}

impl OriginPolicy {
    /// Phoenix's `check_origin`: no Origin header is allowed; otherwise the origin's host must equal the request's
    /// host, or match an allow-list entry (scheme and port compared when the entry has them, `*.` for subdomains).
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Ok(());
        };
        let origin = origin.to_str().map_err(|_| Refusal::Origin)?;
        let parts = parse_origin(origin).ok_or(Refusal::Origin)?;
        let request_host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).map(host_only);
        if request_host.is_some_and(|host| host.eq_ignore_ascii_case(parts.host)) {
            return Ok(());
        }
        let allowed = self.allowed.iter().filter_map(|entry| parse_origin(entry)).any(|entry| {
            let host_ok = match entry.host.strip_prefix("*.") {
                Some(domain) => {
                    parts.host.eq_ignore_ascii_case(domain)
                        || parts.host.to_ascii_lowercase().ends_with(&format!(".{}", domain.to_ascii_lowercase()))
                }
                None => parts.host.eq_ignore_ascii_case(entry.host),
            };
            host_ok
                && entry.scheme.is_none_or(|s| parts.scheme == Some(s))
                && entry.port.is_none_or(|p| parts.port == Some(p))
        });
        if allowed { Ok(()) } else { Err(Refusal::Origin) }
    }
}

/// The identity and serializer a connection was accepted with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Negotiated serializer.
    pub vsn: Vsn,
    /// Display name (presence key).
    pub user: String,
    /// True when a verified token fixed the identity.
    pub authenticated: bool,
}

/// Decides whether a client with these query params may connect, and as whom. A token (the `token` param or the
/// phoenix 1.8 `authToken` subprotocol) fixes the identity and overrides `user`; an invalid one is refused.
pub fn accept(params: &HashMap<String, String>, auth_token: Option<&str>, auth: &Auth) -> Result<Accepted, Refusal> {
    let vsn = Vsn::negotiate(params.get("vsn").map(String::as_str)).ok_or(Refusal::Version)?;
    if let Some(token) = auth_token.or(params.get("token").map(String::as_str)) {
        let user = auth.verify_socket_token(token).map_err(|_| Refusal::Token)?;
        return Ok(Accepted { vsn, user, authenticated: true });
    }
    if auth.require_token {
        return Err(Refusal::Token);
    }
    let user = match params.get("user") {
        Some(raw) => normalize_user_name(raw).map_err(|_| Refusal::UserName)?,
        None => crate::names::random_guest_name(),
    };
    Ok(Accepted { vsn, user, authenticated: false })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        headers
    }

    #[test]
    fn origin_matrix() {
        let policy = OriginPolicy { allowed: vec!["https://app.example.com".into(), "//*.other.org".into()] };
        let host = "chat.local:3000";
        assert_eq!(policy.check(&headers(None, host)), Ok(()), "no Origin header is allowed");
        assert_eq!(policy.check(&headers(Some("http://chat.local:3000"), host)), Ok(()));
        assert_eq!(policy.check(&headers(Some("https://chat.local"), host)), Ok(()), "host only, like Phoenix");
        assert_eq!(policy.check(&headers(Some("http://evil.com"), host)), Err(Refusal::Origin));
        assert_eq!(policy.check(&headers(Some("null"), host)), Err(Refusal::Origin));
        assert_eq!(policy.check(&headers(Some("https://app.example.com"), host)), Ok(()));
        assert_eq!(policy.check(&headers(Some("http://app.example.com"), host)), Err(Refusal::Origin));
        assert_eq!(policy.check(&headers(Some("http://a.b.other.org"), host)), Ok(()));
        assert_eq!(policy.check(&headers(Some("http://other.org"), host)), Ok(()));
        assert_eq!(policy.check(&headers(Some("http://notother.org"), host)), Err(Refusal::Origin));
    }

    fn auth() -> Auth {
        Auth::new(&[7u8; 64])
    }

    #[test]
    fn tokens_fix_the_identity() {
        let auth = auth();
        let token = auth.socket_token("Ada");
        let params: HashMap<String, String> = [("vsn", "2.0.0"), ("user", "mallory"), ("token", token.as_str())]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let accepted = accept(&params, None, &auth).unwrap();
        assert_eq!((accepted.user.as_str(), accepted.authenticated), ("Ada", true));
        let via_subprotocol =
            accept(&HashMap::from([("vsn".to_owned(), "2.0.0".to_owned())]), Some(&token), &auth).unwrap();
        assert_eq!(via_subprotocol.user, "Ada");
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        let params: HashMap<String, String> =
            HashMap::from([("vsn".into(), "2.0.0".into()), ("token".into(), tampered)]);
        assert_eq!(accept(&params, None, &auth), Err(Refusal::Token));
        let required = Auth::new(&[7u8; 64]).requiring_tokens(true);
        assert_eq!(
            accept(&HashMap::from([("vsn".into(), "2.0.0".into())]), None, &required),
            Err(Refusal::Token),
            "missing"
        );
        assert!(accept(&HashMap::from([("vsn".into(), "2.0.0".into())]), Some(&token), &required).is_ok());
        let foreign = Auth::new(&[8u8; 64]).socket_token("Ada");
        assert_eq!(
            accept(&HashMap::from([("vsn".into(), "2.0.0".into())]), Some(&foreign), &auth),
            Err(Refusal::Token)
        );
    }

    #[test]
    fn version_and_names() {
        let auth = auth();
        let params = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert_eq!(accept(&params(&[("vsn", "2.0.0"), ("user", " Ada ")]), None, &auth).unwrap().user, "Ada");
        assert_eq!(accept(&params(&[]), None, &auth).unwrap().vsn, Vsn::V1);
        assert_eq!(accept(&params(&[("vsn", "3.0.0")]), None, &auth), Err(Refusal::Version));
        assert_eq!(accept(&params(&[("vsn", "2.0.0"), ("user", "")]), None, &auth), Err(Refusal::UserName));
        assert_eq!(accept(&params(&[("vsn", "2.0.0"), ("user", "a\u{7}b")]), None, &auth), Err(Refusal::UserName));
        let guest = accept(&params(&[("vsn", "2.0.0")]), None, &auth).unwrap();
        assert!(normalize_user_name(&guest.user).is_ok(), "random guest names are valid names: {}", guest.user);
    }
}
