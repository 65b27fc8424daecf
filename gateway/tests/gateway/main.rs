//! A real gateway in front of real gRPC services (over mesh mTLS) on loopback.

mod api;
mod fuzz;
mod hostile;
mod images;
mod pages;
mod support;
mod tokens;
