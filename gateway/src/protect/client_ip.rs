//! The client's address: the TCP peer, or what a *trusted* proxy says in `X-Forwarded-For`.
//!
//! In production the edge sits behind Azure Application Gateway, which appends the address it saw
//! (as `ip:port`) to `X-Forwarded-For`. Anything left of that entry was written by the client and
//! cannot be trusted; so the header is read only when the direct peer is a configured proxy, and
//! from the right, skipping trusted proxies, up to the first untrusted address.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

/// The `X-Forwarded-For` header name.
pub const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// Most `X-Forwarded-For` entries examined; a longer chain is not a real proxy path.
const MAX_HOPS: usize = 16;

/// Addresses and networks of proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

/// A trusted-proxy entry that is neither an IP address nor a CIDR network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("trusted proxy `{entry}` is not an IP address or CIDR network (e.g. 10.1.0.0/24)")]
pub struct TrustedProxyError {
    /// The entry as configured.
    pub entry: String,
}

impl TrustedProxies {
    /// Trusts no proxy: the client is always the TCP peer (local runs, direct exposure).
    pub fn none() -> Self {
        Self::default()
    }

    /// Trusts these networks.
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Self {
        Self { nets: nets.into_iter().collect() }
    }

    /// Parses entries like `10.1.0.0/24` (the Application Gateway subnet) or `10.1.0.4`.
    pub fn parse<S: AsRef<str>>(entries: impl IntoIterator<Item = S>) -> Result<Self, TrustedProxyError> {
        let nets = entries
            .into_iter()
            .map(|entry| {
                let entry = entry.as_ref().trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| TrustedProxyError { entry: entry.to_owned() })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { nets })
    }

    /// Whether `ip` is a trusted proxy.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }
}

/// The client address for a request from `peer` with `headers`.
///
/// If `peer` is not trusted, it is the client and `X-Forwarded-For` is ignored (a client can write
/// anything there). Otherwise the header's entries (all `X-Forwarded-For` lines, in order) are read
/// right to left, skipping trusted proxies; the first untrusted address is the client. An entry
/// that does not parse stops the walk, and the last trusted hop seen is used: the garbage was
/// written by someone we cannot vouch for. IPv4-mapped IPv6 addresses are reported as IPv4.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let mut client = peer.ip().to_canonical();
    if !trusted.is_trusted(client) {
        return client;
    }
    let lines: Vec<&str> =
        headers.get_all(X_FORWARDED_FOR).iter().map(|v| v.to_str().unwrap_or("unparseable")).collect();
    for entry in lines.iter().rev().flat_map(|line| line.rsplit(',')).take(MAX_HOPS) {
        let Some(hop) = parse_hop(entry.trim()) else {
            return client;
        };
        client = hop;
        if !trusted.is_trusted(hop) {
            return hop;
        }
    }
    client
}

/// An `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678` (Application Gateway adds the port),
/// `2001:db8::1` or `[2001:db8::1]:5678`.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|addr| addr.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted() -> TrustedProxies {
        TrustedProxies::parse(["10.1.0.0/24", "10.2.0.9"]).expect("trusted proxies")
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(X_FORWARDED_FOR, value.parse().expect("header value"));
        }
        headers
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().expect("ip"), 50_000)
    }

    fn ip(ip: &str) -> IpAddr {
        ip.parse().expect("ip")
    }

    #[test]
    fn without_a_proxy_the_peer_is_the_client() {
        assert_eq!(client_ip(peer("198.51.100.7"), &HeaderMap::new(), &trusted()), ip("198.51.100.7"));
    }

    #[test]
    fn an_untrusted_peer_cannot_spoof_its_address() {
        let spoofed = xff(&["1.1.1.1", "10.1.0.5"]);
        assert_eq!(client_ip(peer("198.51.100.7"), &spoofed, &trusted()), ip("198.51.100.7"));
        assert_eq!(client_ip(peer("198.51.100.7"), &spoofed, &TrustedProxies::none()), ip("198.51.100.7"));
    }

    #[test]
    fn behind_the_gateway_the_rightmost_untrusted_entry_is_the_client() {
        // The client prepended a fake entry; the Application Gateway appended the real one with a port.
        let headers = xff(&["6.6.6.6, 203.0.113.9:51234"]);
        assert_eq!(client_ip(peer("10.1.0.5"), &headers, &trusted()), ip("203.0.113.9"));
        // Several lines and a chain of trusted proxies.
        let headers = xff(&["6.6.6.6", "203.0.113.9, 10.2.0.9", "10.1.0.7"]);
        assert_eq!(client_ip(peer("10.1.0.5"), &headers, &trusted()), ip("203.0.113.9"));
        let headers = xff(&["[2001:db8::7]:443"]);
        assert_eq!(client_ip(peer("10.1.0.5"), &headers, &trusted()), ip("2001:db8::7"));
    }

    #[test]
    fn garbage_or_missing_headers_fall_back_to_the_last_trusted_hop() {
        assert_eq!(client_ip(peer("10.1.0.5"), &HeaderMap::new(), &trusted()), ip("10.1.0.5"));
        let headers = xff(&["203.0.113.9, not-an-ip, 10.2.0.9"]);
        assert_eq!(client_ip(peer("10.1.0.5"), &headers, &trusted()), ip("10.2.0.9"));
        let headers = xff(&["10.1.0.1, 10.1.0.2"]);
        assert_eq!(client_ip(peer("10.1.0.5"), &headers, &trusted()), ip("10.1.0.1"), "all trusted: leftmost");
    }

    #[test]
    fn ipv4_mapped_addresses_are_normalized() {
        let mapped = SocketAddr::new(ip("::ffff:10.1.0.5"), 1);
        let headers = xff(&["::ffff:203.0.113.9"]);
        assert_eq!(client_ip(mapped, &headers, &trusted()), ip("203.0.113.9"));
    }

    #[test]
    fn bad_trusted_proxy_entries_are_refused() {
        assert_eq!(TrustedProxies::parse(["10.0.0.0/33"]), Err(TrustedProxyError { entry: "10.0.0.0/33".to_owned() }));
        assert!(trusted().is_trusted(ip("10.1.0.200")));
        assert!(!trusted().is_trusted(ip("10.2.0.10")));
    }
}
