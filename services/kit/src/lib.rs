//! The platform kit: mechanisms every kem service shares, so no service copies them.
//!
//! - [`secret`]: the redacting wrapper configuration uses for credentials;
//! - [`store`]: database pools and per-service migrations (PostgreSQL, embedded SQLite);
//! - [`cache`]: cache-aside over Redis (`fred`) or in-process (`moka`), never failing a request;
//! - [`queue`]: the `Queue` trait with a store-backed and an Azure Service Bus implementation;
//! - [`outbox`]: transactional outbox relay, idempotent inbox and the consumer runner;
//! - [`jwt`]: ES256 access tokens (issue, verify, JWKS, rotation) and opaque refresh tokens;
//! - [`runtime`]: the context a service role starts with (store, cache, queue, mesh peers);
//! - [`external`]: the base of every client of an external HTTP API (timeouts, retries, breaker);
//! - [`status`]: the `ErrorInfo` / `BadRequest` details of the statuses services answer with;
//! - [`validate`]: the character, length and id-shape checks of caller input, and [`validate::excerpt`]
//!   for quoting it.
#![forbid(unsafe_code)]

pub mod cache;
pub mod external;
pub mod jwt;
pub mod outbox;
pub mod queue;
pub mod runtime;
pub mod secret;
pub mod status;
pub mod store;
pub mod validate;

pub use secret::Secret;
