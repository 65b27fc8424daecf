//! The ai domain: pure rules, no I/O.
//!
//! - [`values`]: categories, objectives, methods, channels, weekdays, the Korea-time calendar;
//! - [`input`]: trend queries and event briefs, validated, normalised and hashed;
//! - [`channel`]: per-channel copy limits;
//! - [`output`]: trend analyses and recommendations as the model writes them;
//! - [`prompt`]: the prompts and the repair message;
//! - [`parse`]: the strict reader of model output.

pub mod channel;
pub mod input;
pub mod output;
pub mod parse;
pub mod prompt;
pub mod values;
