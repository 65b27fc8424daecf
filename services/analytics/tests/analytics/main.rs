//! Integration tests of the analytics service on real PostgreSQL and Redis (and one module on
//! embedded SQLite), with its real `analytics-aggregation` consumer over a store-backed queue,
//! through the `AnalyticsService` trait of the adapter `start_api` returns — and, in `wire`,
//! through the service `start` returns, served on a mesh role server over mTLS.

mod access;
mod cache;
mod messages;
mod reported;
mod scenario;
mod sqlite;
mod support;
mod validation;
mod wire;
