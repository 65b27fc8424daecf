//! Where a logical service's endpoints are.

use std::time::Duration;

/// How a [`Balancer`](super::Balancer) finds the endpoints of one logical service.
#[derive(Debug, Clone)]
pub enum Resolver {
    /// A fixed list of `host:port` addresses.
    Static(Vec<String>),
    /// DNS: every address of `host` (a Kubernetes headless service returns one A record per
    /// pod), re-resolved every `refresh` and soon after an endpoint is ejected.
    Dns {
        /// The name to resolve.
        host: String,
        /// The port of every endpoint.
        port: u16,
        /// Re-resolution period.
        refresh: Duration,
    },
}

impl Resolver {
    /// A fixed list of addresses.
    pub fn fixed<I: IntoIterator<Item = S>, S: Into<String>>(addresses: I) -> Resolver {
        Resolver::Static(addresses.into_iter().map(Into::into).collect())
    }

    /// DNS resolution of `host:port`, refreshed every 5 s.
    pub fn dns(host: impl Into<String>, port: u16) -> Resolver {
        Resolver::Dns { host: host.into(), port, refresh: Duration::from_secs(5) }
    }

    /// From configuration: `host:port` resolves through DNS (a headless service), and a list
    /// `host:port|host:port|…` is fixed (several replicas on one machine, each on its own port).
    pub fn parse(spec: &str) -> Result<Resolver, String> {
        let split = |addr: &str| -> Result<(String, u16), String> {
            let (host, port) =
                addr.trim().rsplit_once(':').ok_or_else(|| format!("endpoint {addr:?} must be host:port"))?;
            let port = port.parse::<u16>().map_err(|_| format!("endpoint {addr:?} has no valid port"))?;
            let host = host.trim_matches(['[', ']']);
            if host.is_empty() {
                return Err(format!("endpoint {addr:?} has no host"));
            }
            Ok((host.to_owned(), port))
        };
        if spec.contains('|') {
            let list = spec.split('|').map(|a| split(a).map(|_| a.trim().to_owned())).collect::<Result<Vec<_>, _>>()?;
            Ok(Resolver::fixed(list))
        } else {
            let (host, port) = split(spec)?;
            Ok(Resolver::dns(host, port))
        }
    }

    /// The current endpoint addresses (`ip:port`), sorted and deduplicated.
    pub async fn resolve(&self) -> std::io::Result<Vec<String>> {
        let mut addresses = match self {
            Resolver::Static(list) => list.clone(),
            Resolver::Dns { host, port, .. } => {
                tokio::net::lookup_host((host.as_str(), *port)).await?.map(|a| a.to_string()).collect()
            }
        };
        addresses.sort();
        addresses.dedup();
        Ok(addresses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dns_returns_every_address_with_the_port() {
        let found = Resolver::dns("localhost", 8443).resolve().await.unwrap_or_default();
        assert!(!found.is_empty() && found.iter().all(|a| a.ends_with(":8443")), "{found:?}");
        let fixed = Resolver::fixed(["b:1", "a:1", "b:1"]).resolve().await.unwrap_or_default();
        assert_eq!(fixed, vec!["a:1".to_owned(), "b:1".to_owned()]);
    }

    #[tokio::test]
    async fn configuration_names_one_dns_name_or_a_fixed_list() {
        assert!(matches!(Resolver::parse("kem-event:7102"), Ok(Resolver::Dns { port: 7102, .. })));
        let list = Resolver::parse("127.0.0.1:7102|127.0.0.1:7112").expect("list");
        assert_eq!(list.resolve().await.unwrap_or_default(), vec!["127.0.0.1:7102", "127.0.0.1:7112"]);
        assert!(Resolver::parse("no-port").is_err());
        assert!(Resolver::parse("a:1|b").is_err());
        assert!(Resolver::parse(":80").is_err());
    }
}
