//! SPIFFE IDs of kem workloads: `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
//!
//! The service account is the workload's name (`user`, `gateway`, ...), exactly as in Kubernetes,
//! so an identity reads the same in a certificate, a policy, a NetworkPolicy and a pod spec.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Why a string is not a kem SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a kem SPIFFE ID (want spiffe://<trust-domain>/ns/<namespace>/sa/<service>): {reason}")]
pub struct SpiffeIdError {
    input: String,
    reason: &'static str,
}

/// A workload identity.
///
/// Cheap to clone (one shared allocation): every request carries its peer's identity, and
/// metrics and policy read its URI form without formatting it again.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId(Arc<Parts>);

#[derive(PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Parts {
    trust_domain: String,
    namespace: String,
    service: String,
    /// `spiffe://<trust-domain>/ns/<namespace>/sa/<service>`, derived from the fields above
    /// (so it never changes equality or order).
    uri: String,
}

impl fmt::Debug for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SpiffeId").field(&self.0.uri).finish()
    }
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_'))
}

impl SpiffeId {
    /// Builds an ID from its parts, validating each one.
    pub fn new(trust_domain: &str, namespace: &str, service: &str) -> Result<SpiffeId, SpiffeIdError> {
        let input = format!("spiffe://{trust_domain}/ns/{namespace}/sa/{service}");
        let fail = |reason| Err(SpiffeIdError { input: input.clone(), reason });
        if !valid_segment(trust_domain) {
            return fail("the trust domain must be lower-case letters, digits, '-', '.' or '_'");
        }
        if !valid_segment(namespace) {
            return fail("the namespace must be lower-case letters, digits, '-', '.' or '_'");
        }
        if !valid_segment(service) {
            return fail("the service account must be lower-case letters, digits, '-', '.' or '_'");
        }
        Ok(SpiffeId(Arc::new(Parts {
            trust_domain: trust_domain.to_owned(),
            namespace: namespace.to_owned(),
            service: service.to_owned(),
            uri: input,
        })))
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &str {
        &self.0.trust_domain
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.0.namespace
    }

    /// The service account (workload name).
    pub fn service(&self) -> &str {
        &self.0.service
    }

    /// The URI form.
    pub fn uri(&self) -> String {
        self.0.uri.clone()
    }

    /// The URI form, borrowed.
    pub fn as_str(&self) -> &str {
        &self.0.uri
    }

    /// The DNS name also put in certificates, for TLS stacks that can only verify DNS names
    /// (e.g. gRPC clients in other languages): `<sa>.<ns>.serviceaccount.identity.<trust-domain>`.
    pub fn dns_name(&self) -> String {
        format!("{}.{}.serviceaccount.identity.{}", self.0.service, self.0.namespace, self.0.trust_domain)
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.uri)
    }
}

impl FromStr for SpiffeId {
    type Err = SpiffeIdError;

    fn from_str(s: &str) -> Result<SpiffeId, SpiffeIdError> {
        let fail = |reason| SpiffeIdError { input: s.to_owned(), reason };
        let rest = s.strip_prefix("spiffe://").ok_or_else(|| fail("missing the spiffe:// scheme"))?;
        let mut parts = rest.split('/');
        let (Some(td), Some("ns"), Some(ns), Some("sa"), Some(sa), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(fail("the path must be /ns/<namespace>/sa/<service>"));
        };
        SpiffeId::new(td, ns, sa).map_err(|e| SpiffeIdError { input: s.to_owned(), reason: e.reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_its_uri() {
        let id = SpiffeId::new("kem.local", "kem", "participation").expect("valid");
        assert_eq!(id.to_string(), "spiffe://kem.local/ns/kem/sa/participation");
        assert_eq!(id.to_string().parse::<SpiffeId>().expect("parses"), id);
        assert_eq!(id.dns_name(), "participation.kem.serviceaccount.identity.kem.local");
        assert_eq!(id.as_str(), id.uri());
        assert_eq!(format!("{id:?}"), "SpiffeId(\"spiffe://kem.local/ns/kem/sa/participation\")");
    }

    #[test]
    fn order_and_equality_follow_the_parts() {
        let a = SpiffeId::new("kem.local", "kem", "analytics").expect("valid");
        let b = SpiffeId::new("kem.local", "kem", "user").expect("valid");
        let other_domain = SpiffeId::new("kem.prod", "kem", "analytics").expect("valid");
        assert!(a < b && b < other_domain);
        assert_eq!(a, SpiffeId::new("kem.local", "kem", "analytics").expect("valid"));
    }

    #[test]
    fn rejects_foreign_shapes() {
        for bad in [
            "https://kem.local/ns/kem/sa/user",
            "spiffe://kem.local/ns/kem",
            "spiffe://kem.local/ns/kem/sa/user/extra",
            "spiffe://kem.local/namespace/kem/sa/user",
            "spiffe://KEM/ns/kem/sa/user",
            "spiffe:///ns/kem/sa/user",
        ] {
            assert!(bad.parse::<SpiffeId>().is_err(), "{bad} must be rejected");
        }
    }
}
