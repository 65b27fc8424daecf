//! End-to-end tests: one test binary, one module per journey.

mod entry_page;
mod hostile;
mod owner;
mod platform;
mod sign_out;
mod support;
