//! End-to-end tests: one test binary, one module per journey.

mod platform;
