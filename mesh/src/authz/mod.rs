//! Authorization: default deny, per method, by peer identity.
//!
//! A [`Policy`] maps each gRPC method (or a whole service) to the workloads allowed to call it.
//! The platform policy is derived from the published contracts: methods reachable through the
//! REST edge (`ACCESS_PUBLIC` / `ACCESS_OWNER`) may be called by the gateway only, and internal
//! methods by the workloads listed in their `(kem.api.v1.callers)` option — one source of truth,
//! also used to render Kubernetes NetworkPolicies.
//!
//! End-user claims travel as `x-kem-user-*` metadata set by the gateway; the [`layer`] strips
//! them from any request whose peer is not the gateway, so no other workload can impersonate a
//! user.

pub mod layer;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kem_proto::contract::{Access, access, callers};
use prost_reflect::DescriptorPool;

use crate::identity::SpiffeId;

pub use layer::AuthzLayer;

/// Metadata prefix of end-user claims forwarded by the gateway.
pub const END_USER_METADATA_PREFIX: &str = "x-kem-user-";

/// Metadata carrying the verified end-user (owner) id, the access token's subject. The gateway
/// sets it; the [`layer`] strips it from every other caller, so services can trust it.
pub const END_USER_ID_METADATA: &str = "x-kem-user-id";

/// Metadata carrying the end user's IP address as the edge determined it (the peer, or the
/// `X-Forwarded-For` entry of a trusted proxy); trusted like [`END_USER_ID_METADATA`].
pub const END_USER_CLIENT_IP_METADATA: &str = "x-kem-user-client-ip";

// The layer strips by prefix: a key outside it would reach services from any caller.
const _: () = {
    assert!(starts_with(END_USER_ID_METADATA, END_USER_METADATA_PREFIX));
    assert!(starts_with(END_USER_CLIENT_IP_METADATA, END_USER_METADATA_PREFIX));
};

const fn starts_with(text: &str, prefix: &str) -> bool {
    let (text, prefix) = (text.as_bytes(), prefix.as_bytes());
    if text.len() < prefix.len() {
        return false;
    }
    let mut i = 0;
    while i < prefix.len() {
        if text[i] != prefix[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// What happens to a call no rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultPolicy {
    /// Refuse with PERMISSION_DENIED (production default).
    Deny,
    /// Allow any peer with a valid mesh certificate.
    AllAuthenticated,
    /// Allow, but log and count what `Deny` would have refused (for rolling out a policy).
    Audit,
}

/// Who may call a method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// Only these workloads (service-account names in our trust domain and namespace).
    Workloads(BTreeSet<String>),
    /// Any peer with a valid mesh certificate.
    AllAuthenticated,
    /// Anyone, even without a certificate (health probes, the identity CA's bootstrap).
    Unauthenticated,
}

/// The outcome for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Let it through.
    Allow,
    /// Refuse with PERMISSION_DENIED.
    Deny,
    /// Let it through although the policy would refuse it (audit mode).
    AuditOnly,
}

/// Counters of decisions, for metrics and tests.
#[derive(Debug, Default)]
pub struct AuthzStats {
    /// Calls allowed.
    pub allowed: AtomicU64,
    /// Calls refused.
    pub denied: AtomicU64,
    /// Calls that audit mode let through but would have refused.
    pub audited: AtomicU64,
}

/// The authorization policy of one server.
#[derive(Debug, Clone)]
pub struct Policy {
    trust_domain: String,
    namespace: String,
    default: DefaultPolicy,
    methods: HashMap<String, Rule>,
    services: HashMap<String, Rule>,
    stats: Arc<AuthzStats>,
}

impl Policy {
    /// An empty policy: nothing is allowed unless a rule says so (or `default` is permissive).
    pub fn new(trust_domain: &str, namespace: &str, default: DefaultPolicy) -> Policy {
        Policy {
            trust_domain: trust_domain.to_owned(),
            namespace: namespace.to_owned(),
            default,
            methods: HashMap::new(),
            services: HashMap::new(),
            stats: Arc::new(AuthzStats::default()),
        }
    }

    /// Allows every call, authenticated or not. Only for plaintext admin listeners.
    pub fn allow_all() -> Policy {
        Policy::new("", "", DefaultPolicy::Deny).allow_service("*", Rule::Unauthenticated)
    }

    /// Sets the rule of a whole service (`package.Service`), or of every service with `*`.
    pub fn allow_service(mut self, service: &str, rule: Rule) -> Policy {
        self.services.insert(service.to_owned(), rule);
        self
    }

    /// Sets the rule of one method (`package.Service/Method`).
    pub fn allow_method(mut self, method: &str, rule: Rule) -> Policy {
        self.methods.insert(method.trim_start_matches('/').to_owned(), rule);
        self
    }

    /// The platform policy for `services`, derived from the contracts in `pool`: edge methods
    /// are callable by `gateway`, internal methods by their declared callers (`*` = anyone), and
    /// health checks and reflection by any authenticated peer.
    pub fn from_contracts(
        pool: &DescriptorPool,
        services: &[&str],
        trust_domain: &str,
        namespace: &str,
        gateway: &str,
    ) -> Policy {
        let mut policy = Policy::new(trust_domain, namespace, DefaultPolicy::Deny)
            .allow_service("grpc.health.v1.Health", Rule::AllAuthenticated)
            .allow_service("grpc.reflection.v1.ServerReflection", Rule::AllAuthenticated);
        for name in services {
            let Some(service) = pool.get_service_by_name(name) else { continue };
            for method in service.methods() {
                let path = format!("{}/{}", service.full_name(), method.name());
                let rule = match access(pool, &method) {
                    Access::Public | Access::Owner => Rule::Workloads(BTreeSet::from([gateway.to_owned()])),
                    Access::Internal | Access::Unspecified => {
                        let declared = callers(pool, &method);
                        if declared.iter().any(|c| c == "*") {
                            Rule::Unauthenticated
                        } else {
                            Rule::Workloads(declared.into_iter().collect())
                        }
                    }
                };
                policy.methods.insert(path, rule);
            }
        }
        policy
    }

    /// The rule for `path` (`/package.Service/Method`), most specific first.
    pub fn rule_for(&self, path: &str) -> Option<&Rule> {
        let method = path.trim_start_matches('/');
        let service = method.split('/').next().unwrap_or_default();
        self.methods.get(method).or_else(|| self.services.get(service)).or_else(|| self.services.get("*"))
    }

    fn matches(&self, rule: &Rule, peer: Option<&SpiffeId>) -> bool {
        match (rule, peer) {
            (Rule::Unauthenticated, _) => true,
            (Rule::AllAuthenticated, Some(_)) => true,
            (Rule::Workloads(allowed), Some(peer)) => {
                peer.trust_domain() == self.trust_domain
                    && peer.namespace() == self.namespace
                    && allowed.contains(peer.service())
            }
            (_, None) => false,
        }
    }

    /// Decides one call and counts the decision.
    pub fn decide(&self, path: &str, peer: Option<&SpiffeId>) -> Decision {
        let allowed = match self.rule_for(path) {
            Some(rule) => self.matches(rule, peer),
            None => match self.default {
                DefaultPolicy::Deny => false,
                DefaultPolicy::AllAuthenticated | DefaultPolicy::Audit => {
                    self.default == DefaultPolicy::AllAuthenticated && peer.is_some()
                }
            },
        };
        let decision = match (allowed, self.default) {
            (true, _) => Decision::Allow,
            (false, DefaultPolicy::Audit) => Decision::AuditOnly,
            (false, _) => Decision::Deny,
        };
        let counter = match decision {
            Decision::Allow => &self.stats.allowed,
            Decision::Deny => &self.stats.denied,
            Decision::AuditOnly => &self.stats.audited,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        decision
    }

    /// Decision counters.
    pub fn stats(&self) -> Arc<AuthzStats> {
        self.stats.clone()
    }

    /// Workloads allowed to call anything on this server (for NetworkPolicy rendering).
    pub fn allowed_workloads(&self) -> BTreeSet<String> {
        self.methods
            .values()
            .chain(self.services.values())
            .filter_map(|r| match r {
                Rule::Workloads(w) => Some(w.iter().cloned()),
                _ => None,
            })
            .flatten()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(sa: &str) -> SpiffeId {
        SpiffeId::new("kem.local", "kem", sa).expect("valid")
    }

    fn platform(service: &str) -> Policy {
        Policy::from_contracts(kem_proto::descriptor_pool(), &[service], "kem.local", "kem", "gateway")
    }

    #[test]
    fn edge_methods_are_for_the_gateway_only() {
        let policy = platform("kem.participation.v1.ParticipationService");
        let enter = "/kem.participation.v1.ParticipationService/Enter";
        assert_eq!(policy.decide(enter, Some(&id("gateway"))), Decision::Allow);
        assert_eq!(policy.decide(enter, Some(&id("event"))), Decision::Deny);
        assert_eq!(policy.decide(enter, None), Decision::Deny);
    }

    #[test]
    fn internal_methods_follow_their_declared_callers() {
        let policy = platform("kem.event.v1.EventService");
        let lookup = "/kem.event.v1.EventService/GetEventForParticipation";
        assert_eq!(policy.decide(lookup, Some(&id("participation"))), Decision::Allow);
        assert_eq!(policy.decide(lookup, Some(&id("gateway"))), Decision::Deny, "the edge cannot reach internal RPCs");
        let other_ns = SpiffeId::new("kem.local", "other", "participation").expect("valid");
        assert_eq!(policy.decide(lookup, Some(&other_ns)), Decision::Deny);
        let other_td = SpiffeId::new("evil.local", "kem", "participation").expect("valid");
        assert_eq!(policy.decide(lookup, Some(&other_td)), Decision::Deny);
    }

    #[test]
    fn unknown_methods_are_denied_and_health_is_open_to_peers() {
        let policy = platform("kem.event.v1.EventService");
        assert_eq!(policy.decide("/kem.event.v1.EventService/Nope", Some(&id("gateway"))), Decision::Deny);
        assert_eq!(policy.decide("/grpc.health.v1.Health/Check", Some(&id("user"))), Decision::Allow);
        assert_eq!(policy.decide("/grpc.health.v1.Health/Check", None), Decision::Deny);
        assert_eq!(policy.stats().denied.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn audit_mode_lets_through_but_counts() {
        let policy = Policy::new("kem.local", "kem", DefaultPolicy::Audit);
        assert_eq!(policy.decide("/x.Y/Z", Some(&id("user"))), Decision::AuditOnly);
        assert_eq!(policy.stats().audited.load(Ordering::Relaxed), 1);
        let open = Policy::new("kem.local", "kem", DefaultPolicy::AllAuthenticated);
        assert_eq!(open.decide("/x.Y/Z", Some(&id("user"))), Decision::Allow);
        assert_eq!(open.decide("/x.Y/Z", None), Decision::Deny);
    }

    #[test]
    fn the_identity_ca_is_open_for_bootstrap() {
        let policy = platform("kem.identity.v1.IdentityService");
        assert_eq!(policy.decide("/kem.identity.v1.IdentityService/IssueCertificate", None), Decision::Allow);
    }
}
