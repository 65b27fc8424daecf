//! The event domain: pure rules, no I/O (no tonic, sqlx or fred).
//!
//! - [`lifecycle`]: DRAFT → RECOMMENDED → CONTENT_READY → PUBLISHED → ENDED as one table;
//! - [`event`]: the event entity and the owner's actions on it;
//! - [`job`]: asynchronous jobs and worker reports;
//! - [`validation`] and [`mask`]: what an owner may send, and partial updates;
//! - [`message`]: the facts the service announces on its queues;
//! - [`terms`]: the personal-information notice participants consent to, fixed at publication;
//! - [`public`]: what the public sees of a published event (its participant-facing state, links);
//! - [`values`]: objectives, channels, money, periods, prizes, recommendations.

pub mod event;
pub mod job;
pub mod lifecycle;
pub mod mask;
pub mod message;
pub mod public;
pub mod terms;
pub mod validation;
pub mod values;
