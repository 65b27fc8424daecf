//! The resilient client of a logical mesh service, assembled in one place:
//!
//! ```text
//! BalancedChannel = Deadlines   (every call gets a deadline; inbound deadline propagated)
//!                 → Retry       (idempotent methods, UNAVAILABLE, 64 KiB buffer, budget; any
//!                                method when the attempt provably reached no server)
//!                 → Balancer    (P2C over peak-EWMA, failure accrual, resolver)
//!                 → MeshChannel (one per endpoint: mTLS, rotation, 1 s connect timeout)
//! ```
//!
//! The deadline is outermost so it bounds every attempt and backoff together; retry is above the
//! balancer so each attempt picks an endpoint again (and avoids the ones already tried).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use kem_proto::contract::Idempotency;
use tower::Layer;

use super::channel::ChannelError;
use crate::balance::{Balancer, EndpointConfig, Resolver};
use crate::deadline::{DeadlineLayer, Deadlines};
use crate::identity::{SpiffeId, WorkloadIdentity};
use crate::retry::{Retry, RetryConfig, RetryLayer};

/// Counters of one [`BalancedChannel`] (shared by its clones), for the telemetry exporter.
///
/// All are monotonic totals since the client was built, updated with relaxed atomics:
/// - `requests`: calls made by the application (retries not included);
/// - `retries`: extra attempts sent (so attempts = `requests + retries`);
/// - `budget_exhausted`: calls that wanted a retry the [`RetryBudget`](crate::retry::RetryBudget)
///   refused (their last failure went back to the caller);
/// - `ejections`: endpoints ejected by failure accrual (a failed probe ejects again and counts);
/// - `transparent_retries`: attempts sent again because the previous one provably reached no
///   server (any method, idempotent or not).
#[derive(Debug, Default)]
pub struct ClientCounters {
    /// Calls made by the application.
    pub requests: AtomicU64,
    /// Retry attempts sent.
    pub retries: AtomicU64,
    /// Retries refused by the budget.
    pub budget_exhausted: AtomicU64,
    /// Endpoint ejections.
    pub ejections: AtomicU64,
    /// Requests sent again because the previous attempt provably reached no server.
    pub transparent_retries: AtomicU64,
}

/// A point-in-time copy of [`ClientCounters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CountersSnapshot {
    /// Calls made by the application.
    pub requests: u64,
    /// Retry attempts sent.
    pub retries: u64,
    /// Retries refused by the budget.
    pub budget_exhausted: u64,
    /// Endpoint ejections.
    pub ejections: u64,
    /// Requests sent again because the previous attempt provably reached no server.
    pub transparent_retries: u64,
}

impl ClientCounters {
    /// Reads every counter.
    pub fn snapshot(&self) -> CountersSnapshot {
        CountersSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            budget_exhausted: self.budget_exhausted.load(Ordering::Relaxed),
            ejections: self.ejections.load(Ordering::Relaxed),
            transparent_retries: self.transparent_retries.load(Ordering::Relaxed),
        }
    }
}

/// Configuration of a [`BalancedChannel`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Deadline of calls that carry none (and have no inbound deadline to inherit).
    pub default_deadline: Duration,
    /// Retries.
    pub retry: RetryConfig,
    /// Endpoints: failure accrual, ejection backoff, EWMA decay, concurrency limit.
    pub endpoint: EndpointConfig,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            default_deadline: Duration::from_secs(10),
            retry: RetryConfig::default(),
            endpoint: EndpointConfig::default(),
        }
    }
}

impl ClientConfig {
    /// Declares the idempotency of a path missing from kem's descriptors (test services only).
    pub fn with_idempotency_override(mut self, path: &str, level: Idempotency) -> ClientConfig {
        self.retry.policy = self.retry.policy.with_override(path, level);
        self
    }
}

/// A balanced, retrying, deadline-carrying client of one logical mesh service, usable by
/// generated tonic clients (`FooClient::new(channel)`).
#[derive(Clone)]
pub struct BalancedChannel {
    stack: Deadlines<Retry<Balancer>>,
    balancer: Balancer,
    counters: Arc<ClientCounters>,
}

impl BalancedChannel {
    /// A client of `service_name`, whose endpoints come from `resolver` and must present
    /// `expected` over mTLS as `identity`.
    pub fn new(
        identity: &WorkloadIdentity,
        service_name: &str,
        expected: &SpiffeId,
        resolver: Resolver,
        config: ClientConfig,
    ) -> Result<BalancedChannel, ChannelError> {
        let counters = Arc::new(ClientCounters::default());
        let balancer = Balancer::new(identity, service_name, expected, resolver, config.endpoint, counters.clone())?;
        let stack = DeadlineLayer::new(config.default_deadline)
            .layer(RetryLayer::new(config.retry, counters.clone()).layer(balancer.clone()));
        Ok(BalancedChannel { stack, balancer, counters })
    }

    /// The client's counters.
    pub fn counters(&self) -> &Arc<ClientCounters> {
        &self.counters
    }

    /// Addresses of the endpoints currently known.
    pub fn endpoints(&self) -> Vec<String> {
        self.balancer.endpoints()
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for BalancedChannel {
    type Response = http::Response<tonic::body::Body>;
    type Error = tonic::transport::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.stack.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        self.stack.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the gateway's `Upstream` and generated tonic clients require.
    #[test]
    fn fits_the_gateway_upstream_and_generated_clients() {
        type Upstream = tower::util::BoxCloneSyncService<
            http::Request<tonic::body::Body>,
            http::Response<tonic::body::Body>,
            tonic::transport::Error,
        >;
        fn upstream(channel: BalancedChannel) -> Upstream {
            Upstream::new(channel)
        }
        fn generated(
            channel: BalancedChannel,
        ) -> kem_proto::kem::event::v1::event_service_client::EventServiceClient<BalancedChannel> {
            kem_proto::kem::event::v1::event_service_client::EventServiceClient::new(channel)
        }
        let _ = (upstream, generated);
    }
}
