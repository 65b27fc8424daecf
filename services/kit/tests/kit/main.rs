//! Platform-kit integration tests against real PostgreSQL and Redis: one test binary, a module
//! per mechanism.

mod cache;
mod external;
mod outbox;
mod queue;
mod servicebus;
mod store;
