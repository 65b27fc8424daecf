//! Mesh integration tests over real sockets on loopback: one test binary, a module per concern.

mod authz;
mod balance;
mod bootstrap;
mod deadline;
mod hostile;
mod interop;
mod issuance;
mod mtls;
mod retry;
mod rotation;
mod support;
mod telemetry;
