//! Process-level tests of the `kem` binary: one test binary, one module per concern.

mod binary;
mod config;
mod deploy;
mod faults;
mod readme;
