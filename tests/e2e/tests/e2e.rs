//! End-to-end tests: one test binary, one module per journey.

mod hostile;
mod owner;
mod platform;
mod sign_out;
mod support;
