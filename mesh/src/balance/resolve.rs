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
}
