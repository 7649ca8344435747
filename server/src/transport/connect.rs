//! Connect-time checks shared by every transport: Origin, serializer version, and who the client is.
//!
//! Order follows Phoenix: the Origin check first, then the version, then the connect params. Every refusal is an
//! HTTP 403 with a short plain-text reason (never internals). Who the client is comes from the one identity rule in
//! [`crate::auth::identity`], which the room page applies too.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::http::{HeaderMap, header};
use protocol::serializer::Vsn;

use crate::{
    auth::identity::{Credential, Identities, Rejection},
    channel::SocketInfo,
    socket::SocketServices,
};

/// Why a connection attempt is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// The Origin header names a site that may not open sockets here.
    #[error("origin not allowed")]
    Origin,
    /// The `vsn` param matches no supported serializer.
    #[error("unsupported protocol version")]
    Version,
    /// The `user` param is not a valid display name.
    #[error("invalid user name")]
    UserName,
    /// The token is invalid, tampered with or expired, or missing on a members-only server.
    #[error("invalid token")]
    Token,
    /// Subprotocols were offered but `phoenix` was not among them.
    #[error("unsupported subprotocol")]
    Subprotocol,
    /// A guest asked for a name that belongs to an account.
    #[error("that name belongs to an account")]
    NameTaken,
}

impl From<Rejection> for Refusal {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::InvalidToken | Rejection::LoginRequired => Self::Token,
            Rejection::InvalidName => Self::UserName,
            Rejection::NameTaken(_) => Self::NameTaken,
        }
    }
}

/// What the socket routes need from the server: the narrow state of `/socket/*`.
#[derive(Clone)]
pub(crate) struct SocketRoute {
    pub(crate) origins: Arc<OriginPolicy>,
    identities: Identities,
    pub(crate) services: Arc<SocketServices>,
    next_conn: Arc<AtomicU64>,
}

impl SocketRoute {
    pub(crate) fn new(origins: OriginPolicy, identities: Identities, services: Arc<SocketServices>) -> Self {
        Self { origins: Arc::new(origins), identities, services, next_conn: Arc::new(AtomicU64::new(1)) }
    }

    /// Checks the version and decides who the client is; the transport has checked the Origin first. `auth_token`
    /// is a token the transport found outside the query params (the WebSocket `authToken` subprotocol); it takes
    /// precedence over the `token` param.
    pub(crate) async fn admit(
        &self,
        params: &HashMap<String, String>,
        auth_token: Option<&str>,
    ) -> Result<SocketInfo, Refusal> {
        let vsn = Vsn::negotiate(params.get("vsn").map(String::as_str)).ok_or(Refusal::Version)?;
        let credential = match auth_token.or(params.get("token").map(String::as_str)) {
            Some(token) => Credential::Token(token),
            None => Credential::None,
        };
        let identity = self.identities.decide(credential, params.get("user").map(String::as_str)).await?;
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        Ok(SocketInfo { conn, user: Arc::from(identity.name), account: identity.account, vsn })
    }
}

/// Who may open sockets and post forms: the site's public origins, plus an allow-list.
///
/// The request's `Host` is never trusted for this: a DNS-rebinding page can make it say anything, so comparing the
/// `Origin` against it would let any site in.
#[derive(Debug, Clone, Default)]
pub(crate) struct OriginPolicy {
    /// Where the site is served from (`--public-origins`, or the loopback names of the listening port).
    pub(crate) public: Vec<String>,
    /// Extra allowed origins (`--allowed-origins`): `https://example.com`, `//example.com:8080`, `//*.example.com`.
    pub(crate) allowed: Vec<String>,
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

impl OriginPolicy {
    /// The default public origins of a server listening on `port`: its loopback names, any scheme.
    pub(crate) fn loopback(port: u16) -> Vec<String> {
        ["localhost", "127.0.0.1", "[::1]"].iter().map(|host| format!("//{host}:{port}")).collect()
    }

    /// Phoenix's `check_origin` against a fixed list: no Origin header is allowed (not a browser); otherwise the
    /// origin must match a public origin or an allow-list entry (scheme and port compared when the entry has them,
    /// `*.` for subdomains).
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Ok(());
        };
        let origin = origin.to_str().map_err(|_| Refusal::Origin)?;
        let parts = parse_origin(origin).ok_or(Refusal::Origin)?;
        let allowed = self.public.iter().chain(&self.allowed).filter_map(|entry| parse_origin(entry)).any(|entry| {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::auth::Auth;

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
        let policy = OriginPolicy {
            public: vec!["//chat.local".into()],
            allowed: vec!["https://app.example.com".into(), "//*.other.org".into()],
        };
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

    #[test]
    fn the_host_header_is_not_trusted() {
        // DNS rebinding: evil.example resolves to this server, so the browser sends its own name as Host.
        let policy = OriginPolicy { public: OriginPolicy::loopback(3000), allowed: vec![] };
        let rebound = headers(Some("http://evil.example:3000"), "evil.example:3000");
        assert_eq!(policy.check(&rebound), Err(Refusal::Origin));
        assert_eq!(policy.check(&headers(Some("http://localhost:3000"), "evil.example:3000")), Ok(()));
        assert_eq!(policy.check(&headers(Some("http://127.0.0.1:3000"), "127.0.0.1:3000")), Ok(()));
        assert_eq!(policy.check(&headers(Some("http://[::1]:3000"), "[::1]:3000")), Ok(()));
        assert_eq!(policy.check(&headers(Some("http://127.0.0.1:4000"), "127.0.0.1:4000")), Err(Refusal::Origin));
    }

    fn socket_route(auth: Auth) -> SocketRoute {
        let services = Arc::new(SocketServices {
            router: crate::channel::ChannelRouter::new(),
            pubsub: Arc::new(crate::pubsub::LocalPubSub::new()),
            settings: crate::socket::SocketSettings::default(),
            drain: tokio_util::sync::CancellationToken::new(),
            connections: tokio_util::task::TaskTracker::new(),
            meters: crate::metrics::Meters::new(&crate::node::NodeId::random()),
            node: crate::node::NodeId::random(),
        });
        let identities = Identities::new(Arc::new(auth), Arc::new(crate::store::MemoryStore::new()));
        SocketRoute::new(OriginPolicy::default(), identities, services)
    }

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    async fn admit(
        route: &SocketRoute,
        pairs: &[(&str, &str)],
        auth_token: Option<&str>,
    ) -> Result<SocketInfo, Refusal> {
        route.admit(&params(pairs), auth_token).await
    }

    #[tokio::test]
    async fn tokens_fix_the_identity() {
        let auth = Auth::new(&[7u8; 64]);
        let token = auth.socket_token("Ada");
        let route = socket_route(auth);
        let admitted = admit(&route, &[("vsn", "2.0.0"), ("user", "mallory"), ("token", &token)], None).await;
        assert_eq!(&*admitted.unwrap().user, "Ada");
        let via_subprotocol = admit(&route, &[("vsn", "2.0.0")], Some(&token)).await.unwrap();
        assert_eq!(&*via_subprotocol.user, "Ada");
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(admit(&route, &[("vsn", "2.0.0"), ("token", &tampered)], None).await.err(), Some(Refusal::Token));
        let required = socket_route(Auth::new(&[7u8; 64]).requiring_tokens(true));
        assert_eq!(admit(&required, &[("vsn", "2.0.0")], None).await.err(), Some(Refusal::Token), "missing");
        assert!(admit(&required, &[("vsn", "2.0.0")], Some(&token)).await.is_ok());
        let foreign = Auth::new(&[8u8; 64]).socket_token("Ada");
        assert_eq!(admit(&route, &[("vsn", "2.0.0")], Some(&foreign)).await.err(), Some(Refusal::Token));
    }

    #[tokio::test]
    async fn version_and_names() {
        let route = socket_route(Auth::new(&[7u8; 64]));
        assert_eq!(&*admit(&route, &[("vsn", "2.0.0"), ("user", " Ada ")], None).await.unwrap().user, "Ada");
        assert_eq!(admit(&route, &[], None).await.unwrap().vsn, Vsn::V1);
        assert_eq!(admit(&route, &[("vsn", "3.0.0")], None).await.err(), Some(Refusal::Version));
        assert_eq!(admit(&route, &[("vsn", "2.0.0"), ("user", "")], None).await.err(), Some(Refusal::UserName));
        let control = admit(&route, &[("vsn", "2.0.0"), ("user", "a\u{7}b")], None).await;
        assert_eq!(control.err(), Some(Refusal::UserName));
        let guest = admit(&route, &[("vsn", "2.0.0")], None).await.unwrap();
        let name = protocol::names::normalize_user_name(&guest.user);
        assert!(name.is_ok(), "random guest names are valid names: {}", guest.user);
        let other = admit(&route, &[("vsn", "2.0.0")], None).await.unwrap();
        assert_ne!(guest.conn, other.conn, "every connection gets its own id");
    }
}
