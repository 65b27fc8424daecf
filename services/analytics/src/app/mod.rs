//! The use cases of the analytics service, over the concrete adapters of [`crate::infra`]:
//! applying queue facts exactly once, recording channel metrics, and answering owners from the
//! aggregates through the answer cache. Transport-free: the gRPC adapter ([`crate::api`]) and the
//! queue consumer ([`crate::infra::consumer`]) map requests and messages in and
//! [`AnalyticsError`]s out.

pub mod error;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kem_kit::cache::CacheStats;
use kem_kit::clock::Clock;
use kem_kit::outbox::{Inbox, InboxError, Processed};
use kem_kit::store::millis;

pub use error::AnalyticsError;

use crate::config::AnalyticsConfig;
use crate::domain::validation::check_event_id;
use crate::domain::{DashboardView, EventAnalyticsView, EventFact, MetricsInput, Recorded};
use crate::infra::cache::{ViewCache, event_scope, owner_scope};
use crate::infra::repository::{Repository, RepositoryError, Touched};

/// How fresh an answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// Served from the cache.
    pub cached: bool,
    /// How long answers are cached at most.
    pub max_age: Duration,
}

/// What ingesting a fact did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// The aggregates changed.
    Applied,
    /// The message had been applied before (a redelivery): nothing changed.
    Duplicate,
    /// The event was deleted: the fact was recorded as processed and changed nothing.
    EventDeleted,
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

    /// GetEventAnalytics: `event_id`'s analytics if `owner_id` owns it.
    pub async fn event_analytics(
        &self,
        owner_id: &str,
        event_id: &str,
    ) -> Result<(EventAnalyticsView, Freshness), AnalyticsError> {
        check_event_id(event_id).map_err(|v| AnalyticsError::Invalid(vec![v]))?;
        let cached = self.cache.get_or_load(&event_scope(event_id), || self.load_event(event_id)).await?;
        match cached.value {
            // Someone else's event is indistinguishable from an unknown one.
            Some(view) if view.owner_id == owner_id => Ok((view, self.freshness(cached.from_cache))),
            _ => Err(AnalyticsError::EventNotFound { event_id: event_id.to_owned() }),
        }
    }

    /// GetDashboard: totals and summaries over `owner_id`'s published events.
    pub async fn dashboard(&self, owner_id: &str) -> Result<(DashboardView, Freshness), AnalyticsError> {
        let cached = self.cache.get_or_load(&owner_scope(owner_id), || self.load_dashboard(owner_id)).await?;
        let freshness = self.freshness(cached.from_cache);
        match cached.value {
            Some(view) => Ok((view, freshness)),
            None => Err(AnalyticsError::Internal(format!("the dashboard of {owner_id} loaded as nothing"))),
        }
    }

    /// RecordChannelMetrics: stores the report unless seen before or older than the stored one.
    pub async fn record_metrics(&self, input: MetricsInput) -> Result<Recorded, AnalyticsError> {
        let now = self.clock.now_ms();
        let report = input.check(now).map_err(AnalyticsError::Invalid)?;
        let (recorded, touched) = self.repo.record_metrics(&report, now).await?;
        if let Some(Touched::Changed { owner_id }) = touched {
            self.invalidate(&report.event_id, &owner_id).await;
        }
        tracing::debug!(
            report_id = %report.report_id, event_id = %report.event_id, channel = report.channel,
            duplicate = recorded.duplicate, stale = recorded.stale, "channel metrics recorded"
        );
        Ok(recorded)
    }

    /// Applies a queue fact exactly once: the inbox record of its message id and the aggregate
    /// change commit together, so a redelivery finds the record and changes nothing.
    pub async fn ingest(&self, fact: EventFact) -> Result<Ingested, InboxError<RepositoryError>> {
        let repo = self.repo.clone();
        let applying = fact.clone();
        let now = self.clock.now_ms();
        let processed = Inbox::process(self.repo.store(), &self.consumer, &fact.message_id, move |tx| {
            Box::pin(async move { repo.apply_fact(tx, &applying, now).await })
        })
        .await?;
        let outcome = match processed {
            Processed::Applied(Touched::Changed { owner_id }) => {
                self.invalidate(&fact.event_id, &owner_id).await;
                Ingested::Applied
            }
            Processed::Applied(Touched::Deleted) => Ingested::EventDeleted,
            Processed::Duplicate => Ingested::Duplicate,
        };
        tracing::debug!(
            message_id = %fact.message_id, event_id = %fact.event_id, fact = fact.fact.kind(), ?outcome,
            "analytics fact ingested"
        );
        Ok(outcome)
    }

    /// One round of upkeep: forget processed message ids, report ids and deletion tombstones older
    /// than the retention.
    pub async fn maintain(&self) {
        let cutoff =
            millis(self.clock.now().checked_sub(self.config.dedupe_retention).unwrap_or(SystemTime::UNIX_EPOCH));
        match Inbox::purge(self.repo.store(), self.config.dedupe_retention).await {
            Ok(n) if n > 0 => tracing::debug!(purged = n, "old inbox records purged"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot purge old inbox records; retrying next round"),
        }
        if let Err(error) = self.repo.purge_reports(cutoff).await {
            tracing::warn!(%error, "cannot purge old channel metrics report ids; retrying next round");
        }
        if let Err(error) = self.repo.purge_tombstones(cutoff).await {
            tracing::warn!(%error, "cannot purge deleted events' tombstones; retrying next round");
        }
    }

    async fn load_event(&self, event_id: &str) -> Result<Option<EventAnalyticsView>, AnalyticsError> {
        let Some(event) = self.repo.event(event_id).await? else { return Ok(None) };
        let hourly = self.repo.hourly(event_id).await?;
        let outcomes = self.repo.outcomes(event_id).await?;
        let snapshots = self.repo.snapshots(event_id).await?;
        Ok(Some(EventAnalyticsView::build(
            &event,
            &hourly,
            &outcomes,
            &snapshots,
            &self.config.values,
            self.clock.now_ms(),
        )))
    }

    async fn load_dashboard(&self, owner_id: &str) -> Result<Option<DashboardView>, AnalyticsError> {
        let events = self.repo.owner_events(owner_id).await?;
        if events.is_empty() {
            return Ok(Some(DashboardView::build(
                owner_id,
                &[],
                &[],
                &[],
                &[],
                &self.config.values,
                self.clock.now_ms(),
            )));
        }
        let counts = self.repo.owner_channel_counts(owner_id).await?;
        let outcomes = self.repo.owner_outcomes(owner_id).await?;
        let snapshots = self.repo.owner_snapshots(owner_id).await?;
        let values = &self.config.values;
        Ok(Some(DashboardView::build(owner_id, &events, &counts, &outcomes, &snapshots, values, self.clock.now_ms())))
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
