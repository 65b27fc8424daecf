//! `kem bench`: benchmarks that compare kem against a baseline side by side, in one run, on this
//! machine, and print ratios (absolute numbers on a shared 2-core machine mean little alone).

pub mod gateway;
pub mod load;
pub mod mesh;
pub mod queue;
