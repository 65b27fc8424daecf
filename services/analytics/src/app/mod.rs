//! The use cases of the analytics service, over the concrete adapters of [`crate::infra`], one
//! file per group: applying queue facts exactly once (`ingest`), recording channel metrics
//! (`metrics`), answering owners from the aggregates through the answer cache (`views`), and
//! upkeep (`maintenance`). Transport-free: the gRPC adapter ([`crate::api`]) and the
//! queue consumer ([`crate::infra::consumer`]) map requests and messages in and
//! [`AnalyticsError`]s out.

pub mod error;
mod ingest;
mod maintenance;
mod metrics;
mod views;

use std::sync::Arc;
use std::time::Duration;

use kem_kit::cache::CacheStats;
use kem_kit::clock::Clock;

pub use error::AnalyticsError;
pub use ingest::Ingested;

use crate::config::AnalyticsConfig;
use crate::infra::cache::{ViewCache, event_scope, owner_scope};
use crate::infra::repository::Repository;

/// How fresh an answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// Served from the cache.
    pub cached: bool,
    /// How long answers are cached at most.
    pub max_age: Duration,
}

/// The analytics use cases and what they run on.
#[derive(Debug)]
pub struct AnalyticsCore {
    repo: Repository,
    cache: ViewCache,
    config: AnalyticsConfig,
    /// The inbox consumer name (the service name).
    consumer: String,
    /// Where "now" comes from.
    clock: Arc<dyn Clock>,
}

impl AnalyticsCore {
    /// Assembles the use cases; `consumer` names this service in the inbox, and "now" comes
    /// from `clock`.
    pub fn new(
        repo: Repository,
        cache: ViewCache,
        config: AnalyticsConfig,
        consumer: String,
        clock: Arc<dyn Clock>,
    ) -> AnalyticsCore {
        AnalyticsCore { repo, cache, config, consumer, clock }
    }

    /// The configuration.
    pub fn config(&self) -> &AnalyticsConfig {
        &self.config
    }

    /// Counters of the answer cache (loads are database computations).
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// New data for `event_id`: its analytics and its owner's dashboard are recomputed next time.
    async fn invalidate(&self, event_id: &str, owner_id: &str) {
        self.cache.invalidate(&event_scope(event_id)).await;
        if !owner_id.is_empty() {
            self.cache.invalidate(&owner_scope(owner_id)).await;
        }
    }

    fn freshness(&self, cached: bool) -> Freshness {
        Freshness { cached, max_age: self.cache.ttl() }
    }
}
