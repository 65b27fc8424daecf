//! The aggregates on the kit's [`Store`] (PostgreSQL in production and tests, SQLite for
//! `kem up`): portable SQL with `$n` placeholders, times in epoch milliseconds, and every race
//! settled in the database (upserts, conditional updates), never by read-then-write.
//!
//! Writes of one event serialize on its `analytics_events` row: each one upserts that row first
//! (which also tells whether the event was deleted), then the aggregate rows, always in this
//! order, so concurrent facts of one event cannot deadlock.
//!
//! - [`facts`]: applying a queue fact (inside the inbox transaction);
//! - [`metrics`]: recording a RecordChannelMetrics report;
//! - [`reads`]: what the views are built from;
//! - [`maintenance`]: purging idempotency records and tombstones past their retention.

mod facts;
mod maintenance;
mod metrics;
mod reads;

use kem_kit::store::{Decodable, Row, Store};

pub use kem_kit::store::RepositoryError;

/// Result of a repository call.
pub type Result<T, E = RepositoryError> = std::result::Result<T, E>;

/// What applying a fact or a report did to an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touched {
    /// The event's aggregates changed; its owner ('' while unknown) sees new figures.
    Changed {
        /// The event's owner after the change.
        owner_id: String,
    },
    /// The event was deleted: nothing changed.
    Deleted,
}

/// The analytics tables.
#[derive(Debug, Clone)]
pub struct Repository {
    store: Store,
}

impl Repository {
    /// Over `store` (migrated with [`migrations`](crate::migrations)).
    pub fn new(store: Store) -> Repository {
        Repository { store }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// Reads a column.
fn col<T: Decodable>(row: &Row, name: &str) -> Result<T> {
    Ok(row.get::<T>(name)?)
}

/// Channels as stored: comma-separated enum numbers.
fn encode_channels(channels: &[i32]) -> String {
    channels.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

fn decode_channels(text: &str) -> Result<Vec<i32>> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<i32>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| RepositoryError::Corrupt { what: "event channels", reason: format!("{text:?}: {e}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_round_trip() {
        assert_eq!(encode_channels(&[4, 6]), "4,6");
        assert_eq!(decode_channels("4,6").ok(), Some(vec![4, 6]));
        assert_eq!(decode_channels("").ok(), Some(vec![]));
        assert!(decode_channels("4,x").is_err());
    }
}
