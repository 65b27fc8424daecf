//! Which methods may be retried: the proto's `idempotency_level`, read from the descriptors.

use std::collections::HashMap;

use kem_proto::contract::{Idempotency, grpc_path, idempotency};

/// Retry eligibility by gRPC path (`/pkg.Service/Method`).
#[derive(Debug, Clone, Default)]
pub struct RetryPolicy {
    overrides: HashMap<String, Idempotency>,
}

/// `/package.Service/Method` → declared idempotency, for every method of the embedded contracts.
/// Built once: reading a method's options decodes them, far too slow for every call.
fn descriptor_levels() -> &'static HashMap<String, Idempotency> {
    static LEVELS: std::sync::OnceLock<HashMap<String, Idempotency>> = std::sync::OnceLock::new();
    LEVELS.get_or_init(|| {
        let mut levels = HashMap::new();
        for service in kem_proto::descriptor_pool().services() {
            for method in service.methods() {
                levels.insert(grpc_path(&method), idempotency(&method));
            }
        }
        levels
    })
}

impl RetryPolicy {
    /// The policy of kem's contracts: `kem_proto::descriptor_pool()` decides.
    pub fn from_descriptors() -> RetryPolicy {
        RetryPolicy::default()
    }

    /// Declares the idempotency of a path the descriptor pool does not know (test services).
    /// Production clients use the descriptors only.
    pub fn with_override(mut self, path: impl Into<String>, level: Idempotency) -> RetryPolicy {
        self.overrides.insert(path.into(), level);
        self
    }

    /// The idempotency of the method at `path`; `Unknown` for paths the pool does not hold.
    pub fn idempotency(&self, path: &str) -> Idempotency {
        if let Some(level) = self.overrides.get(path) {
            return *level;
        }
        descriptor_levels().get(path).copied().unwrap_or(Idempotency::Unknown)
    }

    /// Whether a failed call to `path` may be retried.
    pub fn is_retryable(&self, path: &str) -> bool {
        self.idempotency(path).is_retryable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_idempotency_from_the_descriptors() {
        let policy = RetryPolicy::from_descriptors();
        assert!(policy.is_retryable("/kem.event.v1.EventService/GetEvent"));
        assert!(!policy.is_retryable("/kem.event.v1.EventService/CreateEvent"));
        assert!(!policy.is_retryable("/kem.test.v1.Echo/Echo"));
        assert!(!policy.is_retryable("garbage"));
        let policy = policy.with_override("/kem.test.v1.Echo/Echo", Idempotency::Idempotent);
        assert!(policy.is_retryable("/kem.test.v1.Echo/Echo"));
    }
}
