//! A real gateway in front of real gRPC services (over mesh mTLS) on loopback.

mod api;
mod fuzz;
mod hostile;
mod images;
mod media;
mod pages;
mod participant;
mod support;
mod tokens;
