//! Integration tests of the event service on real PostgreSQL and Redis (and one module on
//! embedded SQLite), through the `EventService` trait of the adapter `start_api` returns — and,
//! in `wire`, through the service `start` returns served over gRPC.

mod crud;
mod ending;
mod entry_rules;
mod internal;
mod jobs;
mod public;
mod retention;
mod schedule;
mod sqlite;
mod support;
mod validation;
mod wire;
