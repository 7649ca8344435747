//! Who the client is, by address: the peer, or what `X-Forwarded-For` says when the peer is a trusted proxy.
//!
//! The header is a comma-separated chain that every proxy appends to, so only its right end can be trusted: walking
//! from the right, the first address that is not one of our proxies is the client. From an untrusted peer the header
//! is ignored entirely (anyone can send one), so a client cannot dodge a per-address limit by inventing addresses.

use std::net::IpAddr;

use axum::http::HeaderMap;

/// A trusted proxy: one address or a CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProxyBlock {
    network: IpAddr,
    prefix: u8,
}

/// A `--trusted-proxies` entry that is neither an address nor a CIDR block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an address or CIDR block: {0:?}")]
pub(crate) struct BadProxy(pub(crate) String);

impl ProxyBlock {
    /// `10.0.0.7`, `10.0.0.0/8`, `::1`, `fd00::/8`.
    pub(crate) fn parse(text: &str) -> Result<Self, BadProxy> {
        let bad = || BadProxy(text.to_owned());
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix.parse::<u8>().map_err(|_| bad())?)),
            None => (text.trim(), None),
        };
        let network = canonical(address.parse::<IpAddr>().map_err(|_| bad())?);
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(bits);
        if prefix > bits {
            return Err(bad());
        }
        Ok(Self { network, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(network) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(network) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 address seen through an IPv6 socket (`::ffff:1.2.3.4`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The trusted proxies and the rule of the module docs.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientAddresses {
    proxies: Vec<ProxyBlock>,
}

impl ClientAddresses {
    /// From the `--trusted-proxies` entries.
    pub(crate) fn new(entries: &[String]) -> Result<Self, BadProxy> {
        let proxies = entries.iter().filter(|e| !e.trim().is_empty()).map(|e| ProxyBlock::parse(e));
        Ok(Self { proxies: proxies.collect::<Result<_, _>>()? })
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.proxies.iter().any(|block| block.contains(ip))
    }

    /// The client's address for a request from `peer`.
    pub(crate) fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusted(peer) {
            return peer;
        }
        let chain = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        let mut client = peer;
        for hop in chain.iter().rev() {
            // A malformed hop ends the walk: what is left of it was written by someone we do not trust.
            let Ok(ip) = hop.parse::<IpAddr>().map(canonical) else { break };
            client = ip;
            if !self.trusted(ip) {
                break;
            }
        }
        client
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn forwarded(chain: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_str(chain).unwrap());
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn blocks() {
        assert!(ProxyBlock::parse("10.0.0.0/8").unwrap().contains(ip("10.200.1.1")));
        assert!(!ProxyBlock::parse("10.0.0.0/8").unwrap().contains(ip("11.0.0.1")));
        assert!(ProxyBlock::parse("10.0.0.7").unwrap().contains(ip("::ffff:10.0.0.7")));
        assert!(ProxyBlock::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(ProxyBlock::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        assert!(!ProxyBlock::parse("fd00::/8").unwrap().contains(ip("10.0.0.1")));
        for bad in ["10.0.0.0/33", "proxy.local", "10.0.0.0/x", ""] {
            assert!(ProxyBlock::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let addresses = ClientAddresses::new(&["10.0.0.0/8".into()]).unwrap();
        let headers = forwarded("203.0.113.9");
        assert_eq!(addresses.resolve(ip("198.51.100.1"), &headers), ip("198.51.100.1"), "spoofed from outside");
        assert_eq!(addresses.resolve(ip("10.1.1.1"), &headers), ip("203.0.113.9"));
        assert_eq!(addresses.resolve(ip("10.1.1.1"), &HeaderMap::new()), ip("10.1.1.1"), "no header: the proxy");
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let addresses = ClientAddresses::new(&["10.0.0.0/8".into(), "192.0.2.1".into()]).unwrap();
        // The client wrote a fake first hop; our two proxies appended the real one and themselves.
        let headers = forwarded("1.2.3.4, 203.0.113.9, 192.0.2.1");
        assert_eq!(addresses.resolve(ip("10.0.0.2"), &headers), ip("203.0.113.9"));
        let garbage = forwarded("1.2.3.4, not-an-ip, 192.0.2.1");
        assert_eq!(addresses.resolve(ip("10.0.0.2"), &garbage), ip("192.0.2.1"), "stops at what it cannot read");
        let none = ClientAddresses::new(&[]).unwrap();
        assert_eq!(none.resolve(ip("10.0.0.2"), &headers), ip("10.0.0.2"), "no trusted proxies: the peer");
    }
}
