//! Mesh integration tests over real sockets on loopback: one test binary, a module per concern.

mod authz;
mod bootstrap;
mod interop;
mod mtls;
mod rotation;
mod support;
