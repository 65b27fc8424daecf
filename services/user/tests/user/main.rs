//! User-service integration tests against real PostgreSQL and Redis (one database and key prefix
//! per test, from `kem_testkit`), an NTS contract server, and embedded SQLite: one test binary, a
//! module per concern.

mod keys;
mod nts;
mod password;
mod profile;
mod registration;
mod revocations;
mod sessions;
mod sqlite;
mod support;
mod throttle;
mod validation;
