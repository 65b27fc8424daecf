//! Integration tests of the ai service against real PostgreSQL and Redis (never skipped: the
//! harness fails loudly when they are missing), a Claude Messages contract server, and an event
//! service reached over the real mTLS mesh.
//!
//! - [`contract`]: the contract server is as strict as the API (so passing tests mean something);
//! - [`rpc`]: GetTrends and GenerateRecommendations over the mesh, labels, caching, validation;
//! - [`jobs`]: the `ai-event-generation` consumer: reports, repairs, redelivery, crashes;
//! - [`ledger`]: the job ledger's SQL on PostgreSQL and SQLite;
//! - [`resilience`]: 429 / 529 / timeouts / breaker / credentials, each ending in the right job state.

mod claude;
mod contract;
mod jobs;
mod ledger;
mod resilience;
mod rpc;
mod support;
mod validation;
