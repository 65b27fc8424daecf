//! The guestbook's table on the kit's [`Store`]: one SQL text for PostgreSQL and embedded SQLite
//! (`$n` placeholders, times as epoch milliseconds), see `migrations/`.

use kem_kit::store::{Row, Store, StoreError, query};

use crate::domain::{Entry, PageRequest, RequestId, Signature};

/// A `SELECT` of every column [`entry`] reads, as a `&'static str`: the kit's [`query`] takes
/// SQL text known at compile time, and values only through `bind`.
macro_rules! select {
    ($rest:literal) => {
        concat!("SELECT seq, id, event_id, name, message, created_at FROM entries ", $rest)
    };
}

/// What [`Repository::insert`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// The entry was stored now.
    New(Entry),
    /// The request id had already stored this entry (a retry): nothing was written.
    Existing(Entry),
}

/// The `entries` table.
#[derive(Debug, Clone)]
pub struct Repository {
    store: Store,
}

impl Repository {
    /// The repository over a migrated `store`.
    pub fn new(store: Store) -> Repository {
        Repository { store }
    }

    /// Stores `signature` as entry `id`, unless `request_id` already stored one in this event's
    /// guestbook: then that entry comes back instead. The unique constraint decides, not a
    /// read before the write, so two racing retries still store one entry.
    pub async fn insert(
        &self,
        id: &str,
        signature: &Signature,
        request_id: Option<&RequestId>,
        now_ms: i64,
    ) -> Result<Inserted, StoreError> {
        let request_id = request_id.map(|r| r.as_str().to_owned());
        let written = query(
            "INSERT INTO entries (id, event_id, name, message, request_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id, request_id) DO NOTHING",
        )
        .bind(id)
        .bind(signature.event_id.as_str())
        .bind(signature.name.as_str())
        .bind(signature.message.as_str())
        .bind(request_id.clone())
        .bind(now_ms)
        .execute(&self.store)
        .await?;
        // Read back from the primary either way: the new row's `seq` is the database's, and a
        // replica may not have the row yet.
        let (sql, key) = match (written, &request_id) {
            (0, Some(request_id)) => (select!("WHERE event_id = $1 AND request_id = $2"), request_id.as_str()),
            _ => (select!("WHERE event_id = $1 AND id = $2"), id),
        };
        let row = query(sql).bind(signature.event_id.as_str()).bind(key).fetch_one(&self.store).await?;
        let entry = entry(&row)?;
        Ok(if written == 0 { Inserted::Existing(entry) } else { Inserted::New(entry) })
    }

    /// One page of `event_id`'s guestbook in signing order, and whether more entries follow.
    pub async fn page(&self, event_id: &str, page: PageRequest) -> Result<(Vec<Entry>, bool), StoreError> {
        // One more than asked tells whether there is a next page without a COUNT. Reads go to
        // the replica when there is one: a guestbook may lag it by a moment.
        let limit = i64::try_from(page.size).unwrap_or(i64::MAX).saturating_add(1);
        let rows = query(select!("WHERE event_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"))
            .bind(event_id)
            .bind(page.after_seq)
            .bind(limit)
            .fetch_all(self.store.reader())
            .await?;
        let mut entries = rows.iter().map(entry).collect::<Result<Vec<_>, _>>()?;
        let more = entries.len() > page.size;
        entries.truncate(page.size);
        Ok((entries, more))
    }
}

fn entry(row: &Row) -> Result<Entry, StoreError> {
    Ok(Entry {
        seq: row.get("seq")?,
        id: row.get("id")?,
        signature: Signature { event_id: row.get("event_id")?, name: row.get("name")?, message: row.get("message")? },
        created_at_ms: row.get("created_at")?,
    })
}
