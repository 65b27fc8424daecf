//! Entries: admission (duplicate, capacity and gate checks in one transaction with the analytics
//! message), pages, counts, anonymization.

use kem_kit::outbox::Outbox;
use kem_kit::queue::OutgoingMessage;
use kem_kit::store::{AssertSqlSafe, Row, query};

use super::{Repository, Result, col, placeholders};

/// An entry as it is inserted (personal data already sealed and hashed).
#[derive(Clone)]
pub struct NewEntryRow {
    /// Entry id.
    pub id: String,
    /// The event.
    pub event_id: String,
    /// Keyed hash of the phone within the event.
    pub phone_hash: String,
    /// Sealed name.
    pub name_sealed: Vec<u8>,
    /// Sealed phone.
    pub phone_sealed: Vec<u8>,
    /// Privacy consent text version.
    pub privacy_consent_version: String,
    /// Marketing consent (granted, version), when asked.
    pub marketing_consent: Option<(bool, String)>,
    /// Source channel.
    pub source_channel: i32,
    /// Receive time.
    pub created_at_ms: i64,
}

/// What happened to an entry submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryAdmission {
    /// Stored (and its message queued).
    Admitted,
    /// The phone already entered this event.
    Duplicate,
    /// A first-come event already has its capacity of entries.
    Full,
    /// Entries were closed by a draw.
    Closed,
}

/// An entry row as stored.
#[derive(Clone)]
pub struct StoredEntry {
    /// Entry id.
    pub id: String,
    /// The event.
    pub event_id: String,
    /// Receive order.
    pub seq: i64,
    /// Sealed name; `None` once anonymized.
    pub name_sealed: Option<Vec<u8>>,
    /// Sealed phone; `None` once anonymized.
    pub phone_sealed: Option<Vec<u8>>,
    /// Privacy consent text version.
    pub privacy_consent_version: String,
    /// Marketing consent granted; `None` when not asked.
    pub marketing_consent_granted: Option<bool>,
    /// Marketing consent text version.
    pub marketing_consent_version: Option<String>,
    /// Source channel.
    pub source_channel: i32,
    /// Receive time.
    pub created_at_ms: i64,
    /// When the personal data was erased.
    pub anonymized_at_ms: Option<i64>,
}

/// Entries of one event from one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelCount {
    /// The event.
    pub event_id: String,
    /// Source channel.
    pub channel: i32,
    /// Number of entries.
    pub count: i64,
    /// Latest receive time among them.
    pub last_entry_ms: i64,
}

pub(super) const ENTRY_COLUMNS: &str = "e.id, e.event_id, e.seq, e.name_sealed, e.phone_sealed, \
     e.privacy_consent_version, e.marketing_consent_granted, e.marketing_consent_version, e.source_channel, \
     e.created_at, e.anonymized_at";

pub(super) fn stored_entry(row: &Row) -> Result<StoredEntry> {
    Ok(StoredEntry {
        id: col(row, "id")?,
        event_id: col(row, "event_id")?,
        seq: col(row, "seq")?,
        name_sealed: col(row, "name_sealed")?,
        phone_sealed: col(row, "phone_sealed")?,
        privacy_consent_version: col(row, "privacy_consent_version")?,
        marketing_consent_granted: col(row, "marketing_consent_granted")?,
        marketing_consent_version: col(row, "marketing_consent_version")?,
        source_channel: col(row, "source_channel")?,
        created_at_ms: col(row, "created_at")?,
        anonymized_at_ms: col(row, "anonymized_at")?,
    })
}

impl Repository {
    /// Stores `entry` with `message` (its analytics fact) unless the phone already entered, the
    /// event holds `capacity` entries already, or a draw closed entries. Concurrent submissions of
    /// one phone end in exactly one [`EntryAdmission::Admitted`].
    ///
    /// The gate row is updated last, so the per-event lock it takes is held only for the commit.
    pub async fn admit_entry(
        &self,
        entry: &NewEntryRow,
        capacity: Option<u32>,
        message: OutgoingMessage,
    ) -> Result<EntryAdmission> {
        let mut tx = self.store.begin().await?;
        let (marketing_granted, marketing_version) = match &entry.marketing_consent {
            Some((granted, version)) => (Some(*granted), Some(version.clone())),
            None => (None, None),
        };
        let inserted = query(
            "INSERT INTO entries (id, event_id, phone_hash, name_sealed, phone_sealed, privacy_consent_version, \
             marketing_consent_granted, marketing_consent_version, source_channel, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (event_id, phone_hash) DO NOTHING",
        )
        .bind(entry.id.clone())
        .bind(entry.event_id.clone())
        .bind(entry.phone_hash.clone())
        .bind(entry.name_sealed.clone())
        .bind(entry.phone_sealed.clone())
        .bind(entry.privacy_consent_version.clone())
        .bind(marketing_granted)
        .bind(marketing_version)
        .bind(entry.source_channel)
        .bind(entry.created_at_ms)
        .execute(&mut tx)
        .await?;
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(EntryAdmission::Duplicate);
        }
        Outbox::enqueue(&mut tx, message).await?;
        let limit = capacity.map_or(i64::MAX, i64::from);
        let counted = query(
            "INSERT INTO event_gates (event_id, entries) VALUES ($1, 1) ON CONFLICT (event_id) DO UPDATE \
             SET entries = event_gates.entries + 1 WHERE event_gates.closed_at IS NULL AND event_gates.entries < $2",
        )
        .bind(entry.event_id.clone())
        .bind(limit)
        .execute(&mut tx)
        .await?;
        if counted == 0 {
            let gate = query("SELECT closed_at FROM event_gates WHERE event_id = $1")
                .bind(entry.event_id.clone())
                .fetch_optional(&mut tx)
                .await?;
            let closed = match gate {
                Some(row) => col::<Option<i64>>(&row, "closed_at")?.is_some(),
                None => false,
            };
            tx.rollback().await?;
            return Ok(if closed { EntryAdmission::Closed } else { EntryAdmission::Full });
        }
        tx.commit().await?;
        self.wake_outbox();
        Ok(EntryAdmission::Admitted)
    }

    /// Up to `limit` entries of `event_id` after receive position `after_seq`, oldest first.
    pub async fn entries_page(&self, event_id: &str, after_seq: i64, limit: u32) -> Result<Vec<StoredEntry>> {
        let sql = AssertSqlSafe(format!(
            "SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.event_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3"
        ));
        let rows = query(sql)
            .bind(event_id.to_owned())
            .bind(after_seq)
            .bind(i64::from(limit))
            .fetch_all(self.store.reader())
            .await?;
        rows.iter().map(stored_entry).collect()
    }

    /// The entry `entry_id` of `event_id`.
    pub async fn entry(&self, event_id: &str, entry_id: &str) -> Result<Option<StoredEntry>> {
        let sql = AssertSqlSafe(format!("SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.event_id = $1 AND e.id = $2"));
        let row = query(sql).bind(event_id.to_owned()).bind(entry_id.to_owned()).fetch_optional(&self.store).await?;
        row.as_ref().map(stored_entry).transpose()
    }

    /// Number of entries of `event_id`.
    pub async fn count_entries(&self, event_id: &str) -> Result<i64> {
        let row = query("SELECT COUNT(*) AS n FROM entries WHERE event_id = $1")
            .bind(event_id.to_owned())
            .fetch_one(self.store.reader())
            .await?;
        col(&row, "n")
    }

    /// Entry counts per event and source channel for `event_ids` (events without entries are
    /// absent).
    pub async fn count_by_channel(&self, event_ids: &[String]) -> Result<Vec<ChannelCount>> {
        if event_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = AssertSqlSafe(format!(
            "SELECT event_id, source_channel, COUNT(*) AS n, MAX(created_at) AS last_at FROM entries \
             WHERE event_id IN ({}) GROUP BY event_id, source_channel ORDER BY event_id, source_channel",
            placeholders(1, event_ids.len())
        ));
        let rows = event_ids.iter().fold(query(sql), |q, id| q.bind(id.clone())).fetch_all(self.store.reader()).await?;
        rows.iter()
            .map(|row| {
                Ok(ChannelCount {
                    event_id: col(row, "event_id")?,
                    channel: col(row, "source_channel")?,
                    count: col(row, "n")?,
                    last_entry_ms: col(row, "last_at")?,
                })
            })
            .collect()
    }

    /// Erases the personal data of the entries of `event_id` received before `before_ms`:
    /// ciphertexts are dropped and the phone hash is replaced by a value derived from the entry id
    /// alone (unique, and unrelated to the number). Already anonymized entries are skipped.
    /// Returns how many entries were anonymized.
    pub async fn anonymize(&self, event_id: &str, before_ms: i64, now_ms: i64) -> Result<u64> {
        let erased = query(
            "UPDATE entries SET name_sealed = NULL, phone_sealed = NULL, phone_hash = 'anonymized:' || id, \
             anonymized_at = $3 WHERE event_id = $1 AND created_at < $2 AND anonymized_at IS NULL",
        )
        .bind(event_id.to_owned())
        .bind(before_ms)
        .bind(now_ms)
        .execute(&self.store)
        .await?;
        Ok(erased)
    }
}
