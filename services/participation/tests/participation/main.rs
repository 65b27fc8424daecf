//! Integration tests of the participation service on real PostgreSQL and Redis (one module on
//! embedded SQLite), with an in-test event service over mTLS: through the `ParticipationService`
//! trait of the adapter `start_api` returns, and in `wire` through the service `start` returns
//! served by a mesh role server.

mod address_limit;
mod blocks;
mod claims;
mod codes;
mod concurrency;
mod consent;
mod counts;
mod draws;
mod ending;
mod entries;
mod exports;
mod failover;
mod idempotency;
mod listing;
mod marketing;
mod notifications;
mod privacy;
mod public_winners;
mod receipts;
mod scheduled;
mod sqlite;
mod support;
mod validation;
mod wire;
