//! Persistence of the participation service on the kit's [`Store`] (PostgreSQL in production and
//! tests, SQLite for `kem up`): portable SQL with `$n` placeholders, times in epoch
//! milliseconds, and every race settled by the database — the unique (event, phone hash)
//! constraint for duplicate entries (a retried request finds its own entry through it and the
//! request id stored with the entry), the per-event gate lock ([`gate`]) that orders entries
//! against the close of the event's entries (EndEvent's CloseEntries, or a draw taking its
//! snapshot), the gate row's count for first-come capacity, the partial unique index for the
//! current draw.
//!
//! Messages for other services are written to the kit's outbox in the same transaction as the
//! state change they report.

mod blocks;
mod claims;
mod codes;
mod draws;
mod entries;
mod exports;
pub mod gate;
mod marketing;
mod notifications;

pub use blocks::{EntryPhone, NewBlock, StoredBlock, Unblocked};
pub use claims::{NewClaim, NewNotification, Retire, StoredClaim};
pub use codes::{NewCode, StoredCode, Withdrawal};
pub use draws::{DrawSession, EntrySplit, StoredWinner};
pub use entries::{AddressQuota, ArrivalCursor, ChannelCount, EntryAdmission, NewEntryRow, StoredEntry};
pub use exports::ExportRow;
pub use gate::GateState;
pub use marketing::MarketingRow;
pub use notifications::{NoticeState, NoticeUpdate, StoredNotice};

use kem_kit::outbox::OutboxWaker;
use kem_kit::store::{Decodable, Row, Store};

pub use kem_kit::store::RepositoryError;

/// Result of a repository call.
pub type Result<T, E = RepositoryError> = std::result::Result<T, E>;

/// The participation tables.
#[derive(Debug, Clone)]
pub struct Repository {
    store: Store,
    outbox: Option<OutboxWaker>,
}

impl Repository {
    /// Over `store` (migrated with [`MIGRATIONS`](crate::MIGRATIONS)); `outbox` is woken after
    /// every commit that wrote a message.
    pub fn new(store: Store, outbox: Option<OutboxWaker>) -> Repository {
        Repository { store, outbox }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn wake_outbox(&self) {
        if let Some(waker) = &self.outbox {
            waker.wake();
        }
    }
}

/// Reads column `name`.
fn col<T: Decodable>(row: &Row, name: &str) -> Result<T> {
    Ok(row.get::<T>(name)?)
}

/// `$first, $first+1, …` placeholders for `count` values (SQL built from trusted pieces only).
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}
