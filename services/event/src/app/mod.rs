//! Use cases of the event service and the ports they need (implemented in `infra`).

pub mod error;
pub mod ids;
pub mod page;
pub mod ports;
pub mod service;

pub use error::{AppError, Resource};
pub use ports::{
    Clock, CloseEntriesError, EntryGate, EventCache, EventRepository, Inserted, ListQuery, NoStoreDirectory, RepoError,
    Saved, StoreDirectory,
};
pub use service::{AppSettings, Batch, EventApp, EventPage, UpdateCommand};
