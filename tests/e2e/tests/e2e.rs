//! End-to-end tests: one test binary, one module per journey.

mod owner;
mod platform;
mod support;
