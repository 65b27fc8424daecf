//! Adapters of the ports and of the platform:
//!
//! - [`claude`]: the Claude Messages API client (`LanguageModel`);
//! - [`local`]: the built-in local stand-in (`LanguageModel`): its data tables, generator and
//!   copy writing;
//! - [`reporter`]: ReportJobResult over the mesh (`JobReporter`);
//! - [`ledger`]: the job ledger and inbox in the database (`JobLedger`);
//! - [`consumer`]: the `ai-event-generation` queue consumer;
//! - [`telemetry`]: the metrics.

pub mod claude;
pub mod consumer;
pub mod ledger;
pub mod local;
pub mod reporter;
pub mod telemetry;
