//! The use cases, written against ports (traits) that `infra` implements:
//!
//! - [`trends`]: GetTrends, cached 24 h;
//! - [`recommendations`]: three recommendations on top of the trends, cached 24 h;
//! - [`jobs`]: the `ai-event-generation` job, reported to the event service exactly once in effect;
//! - [`generation`]: the one model path (prompt → model → strict parser → one repair);
//! - [`ports`]: `LanguageModel` (Claude or the local stand-in), `JobReporter`, `JobLedger` (with
//!   in-memory doubles in the jobs tests);
//! - [`cache`]: results cached by input hash;
//! - [`error`], [`metrics`].

pub mod cache;
pub mod error;
pub mod generation;
pub mod jobs;
pub mod metrics;
pub mod ports;
pub mod recommendations;
pub mod trends;
