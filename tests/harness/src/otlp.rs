//! The in-process OTLP/gRPC trace collector, shared with the mesh's own tests: see
//! [`kem_mesh::testing::otlp`].

pub use kem_mesh::testing::otlp::*;
