//! Every adapter, on the platform kit:
//!
//! - [`repository`]: the aggregate tables on PostgreSQL or embedded SQLite (same SQL);
//! - [`cache`]: owner-facing answers cached with generation-based invalidation;
//! - [`consumer`]: the `analytics-aggregation` consumer (`kem.messaging.v1.AnalyticsEvent` in,
//!   facts out);
//! - [`maintenance`]: the periodic purge of old idempotency records and tombstones.

pub mod cache;
pub mod consumer;
pub mod maintenance;
pub mod repository;

pub use cache::ViewCache;
pub use consumer::AggregationHandler;
pub use repository::Repository;
