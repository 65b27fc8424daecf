//! Integration tests of the content service on real PostgreSQL and Redis (one module on embedded
//! SQLite), with an in-test event service over mTLS and local contract servers of Stability AI and
//! Azure Blob Storage.

mod azure;
mod cache;
mod contracts;
mod generation;
mod media;
mod public;
mod redelivery;
mod sqlite;
mod stability;
mod support;
mod validation;
mod wire;
