//! Persistence of the user service, on the kit's [`Store`] (PostgreSQL in production, SQLite for
//! `kem up`): every statement is portable SQL with `$n` placeholders, times in epoch
//! milliseconds, and races settled by the database (unique keys, conditional updates,
//! `ON CONFLICT`), never by a read-then-write in the application.

mod keys;
mod owners;
mod revocations;
mod sessions;
mod throttle;
mod verifications;

pub use keys::{KeyRow, KeySet};
pub use owners::ProfileUpdate;
pub use revocations::{ListFrom, RevocationRow};
pub use sessions::Rotation;

use kem_kit::store::{Row, Store};

pub use kem_kit::store::RepositoryError;

/// Result of a repository call.
pub type Result<T, E = RepositoryError> = std::result::Result<T, E>;

/// The user service's tables.
#[derive(Debug, Clone)]
pub struct Repository {
    store: Store,
}

impl Repository {
    /// Over `store` (migrated with [`MIGRATIONS`](crate::MIGRATIONS)).
    pub fn new(store: Store) -> Repository {
        Repository { store }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// Reads a column.
fn col<T: kem_kit::store::Decodable>(row: &Row, name: &str) -> Result<T> {
    Ok(row.get::<T>(name)?)
}
