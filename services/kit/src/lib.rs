//! The platform kit: mechanisms every kem service shares, so no service copies them.
//!
//! - [`secret`]: the redacting wrapper configuration uses for credentials;
//! - [`config`]: the one reader of settings from the environment (typed parsers, `_FILE`, every
//!   bad variable reported at once);
//! - [`store`]: database pools and per-service migrations (PostgreSQL, embedded SQLite);
//! - [`cache`]: cache-aside over Redis (`fred`) or in-process (`moka`), never failing a request;
//! - [`queue`]: the `Queue` trait with a store-backed and an Azure Service Bus implementation;
//! - [`outbox`]: transactional outbox relay, idempotent inbox and the consumer runner;
//! - [`jwt`]: ES256 access tokens (issue, verify, JWKS, rotation) and opaque refresh tokens;
//! - [`media`]: signed, expiring public media links (`/media/{token}` at the edge) and their keys;
//! - [`runtime`]: the context a service role starts with (store, cache, queue, mesh peers);
//! - [`external`]: the base of every client of an external HTTP API (timeouts, retries, breaker);
//! - [`status`]: the `ErrorInfo` / `BadRequest` / `RetryInfo` details of the statuses services
//!   answer with;
//! - [`clock`]: the injected wall clock (and its test double, feature `testing`);
//! - [`channel`]: the six distribution channels every service names the same way;
//! - [`hex`]: lower-case hex (re-exported from `kem_mesh::hex`), and [`ids`]: ids in UUID form;
//! - [`validate`]: the character, length and id-shape checks of caller input, and [`validate::excerpt`]
//!   for quoting it.
#![forbid(unsafe_code)]

pub mod cache;
pub mod channel;
pub mod clock;
pub mod config;
pub mod external;
pub mod ids;
pub mod jwt;
pub mod media;
pub mod outbox;
pub mod queue;
pub mod runtime;
pub mod sealing;
pub mod secret;
pub mod status;
pub mod store;
pub mod validate;

pub use kem_mesh::hex;
pub use secret::Secret;
