//! The event domain: pure rules, no I/O (no tonic, sqlx or fred).
//!
//! - [`lifecycle`]: DRAFT → RECOMMENDED → CONTENT_READY → PUBLISHED → ENDED as one table;
//! - [`event`]: the event entity and the owner's actions on it;
//! - [`job`]: asynchronous jobs and worker reports;
//! - [`validation`] and [`mask`]: what an owner may send, and partial updates;
//! - [`message`]: the facts the service announces on its queues;
//! - [`values`]: objectives, channels, money, periods, prizes, recommendations.

pub mod event;
pub mod job;
pub mod lifecycle;
pub mod mask;
pub mod message;
pub mod validation;
pub mod values;
