//! Entries: admission (duplicate, gate and capacity checks in one transaction with the analytics
//! message), pages in arrival order, counts, anonymization.

use kem_kit::outbox::Outbox;
use kem_kit::queue::OutgoingMessage;
use kem_kit::store::{AssertSqlSafe, Row, Tx, query};

use super::blocks::{anonymize_entry_blocks, anonymize_other_blocks, count_address, entry_blocked, phone_blocked};
use super::gate::{GateLock, gate_state, lock_gate};
use super::marketing::learn_owner_in;
use super::{Repository, Result, col, placeholders};

/// An entry as it is inserted (personal data already sealed and hashed).
#[derive(Clone)]
pub struct NewEntryRow {
    /// Entry id.
    pub id: String,
    /// The event.
    pub event_id: String,
    /// The event's owner, as the facts the entry was admitted on say: recorded in
    /// `event_owners` with the entry (ListMarketingRecipients finds the entry through it).
    pub owner_id: String,
    /// Keyed hash of the phone within the event.
    pub phone_hash: String,
    /// Sealed name.
    pub name_sealed: Vec<u8>,
    /// Sealed phone.
    pub phone_sealed: Vec<u8>,
    /// Privacy consent text version (the terms' version when the event has terms).
    pub privacy_consent_version: String,
    /// SHA-256 of the terms consented to; `None` for an event published before terms existed.
    pub terms_sha256: Option<String>,
    /// When the consents were recorded.
    pub consented_at_ms: i64,
    /// Marketing consent (granted, version), when asked.
    pub marketing_consent: Option<(bool, String)>,
    /// Source channel.
    pub source_channel: i32,
    /// Receive time.
    pub created_at_ms: i64,
    /// The `x-request-id` of the call that submits it (see
    /// [`RequestId`](crate::domain::entry::RequestId)); `None` when it carried none.
    pub request_id: Option<String>,
    /// The participant's receipt code (stored form), unique within the event.
    pub receipt_code: String,
    /// The client address's quota when the event limits entries per address; `None` when it does
    /// not, or the call carried no address (such an entry is not counted).
    pub address_quota: Option<AddressQuota>,
}

/// How many entries one client address may make in an event (`entry_rules.max_entries_per_address`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressQuota {
    /// Keyed hash of the client address key within the event.
    pub address_hash: String,
    /// The most entries it may make.
    pub max: u32,
}

/// What happened to an entry submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryAdmission {
    /// Stored (and its message queued).
    Admitted,
    /// The phone already entered this event (perhaps through an earlier attempt of the same
    /// request: [`Repository::entry_of_request`] tells).
    Duplicate,
    /// A first-come event already has its capacity of entries.
    Full,
    /// Entries were closed by a draw (of an event ended before EndEvent closed entries).
    Closed,
    /// Entries were closed because the event ended (CloseEntries).
    Ended,
    /// Another entry of the event already has this receipt code (nothing was stored): draw
    /// another code and submit again.
    ReceiptTaken,
    /// The owner blocked the phone in this event (nothing was stored).
    Blocked,
    /// The client address already made the event's most entries per address (nothing was
    /// stored).
    AddressLimit,
}

/// Where a page of entries starts: after this arrival position, `(created_at, id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrivalCursor {
    /// Receive time of the last entry of the previous page.
    pub created_at_ms: i64,
    /// Its id.
    pub id: String,
}

/// An entry row as stored.
#[derive(Clone)]
pub struct StoredEntry {
    /// Entry id.
    pub id: String,
    /// The event.
    pub event_id: String,
    /// Sealed name; `None` once anonymized.
    pub name_sealed: Option<Vec<u8>>,
    /// Sealed phone; `None` once anonymized.
    pub phone_sealed: Option<Vec<u8>>,
    /// Whether the privacy consent was granted (always, for a stored entry).
    pub privacy_consent_granted: bool,
    /// Privacy consent text version (the terms' version when the event has terms).
    pub privacy_consent_version: String,
    /// SHA-256 of the terms consented to; `None` before terms existed.
    pub terms_sha256: Option<String>,
    /// When the consents were recorded (the receive time for entries stored before the consent
    /// time was recorded apart).
    pub consented_at_ms: i64,
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
    /// The participant's receipt code (stored form); `None` for entries stored before receipts.
    pub receipt_code: Option<String>,
    /// Whether its phone is on the event's block list now.
    pub blocked: bool,
    /// When the participant withdrew it.
    pub withdrawn_at_ms: Option<i64>,
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

pub(super) const ENTRY_COLUMNS: &str = concat!(
    "e.id, e.event_id, e.name_sealed, e.phone_sealed, \
     e.privacy_consent_granted, e.privacy_consent_version, e.terms_sha256, \
     COALESCE(e.consented_at, e.created_at) AS consented_at, e.marketing_consent_granted, \
     e.marketing_consent_version, e.source_channel, e.created_at, e.anonymized_at, e.receipt_code, e.withdrawn_at, ",
    // An integer on both backends (SQLite has no boolean expressions).
    "CASE WHEN ",
    entry_blocked!(),
    " THEN 1 ELSE 0 END AS blocked"
);

pub(super) fn stored_entry(row: &Row) -> Result<StoredEntry> {
    Ok(StoredEntry {
        id: col(row, "id")?,
        event_id: col(row, "event_id")?,
        name_sealed: col(row, "name_sealed")?,
        phone_sealed: col(row, "phone_sealed")?,
        privacy_consent_granted: col(row, "privacy_consent_granted")?,
        privacy_consent_version: col(row, "privacy_consent_version")?,
        terms_sha256: col(row, "terms_sha256")?,
        consented_at_ms: col(row, "consented_at")?,
        marketing_consent_granted: col(row, "marketing_consent_granted")?,
        marketing_consent_version: col(row, "marketing_consent_version")?,
        source_channel: col(row, "source_channel")?,
        created_at_ms: col(row, "created_at")?,
        anonymized_at_ms: col(row, "anonymized_at")?,
        receipt_code: col(row, "receipt_code")?,
        blocked: col::<i32>(row, "blocked")? != 0,
        withdrawn_at_ms: col(row, "withdrawn_at")?,
    })
}

/// Whether `phone_hash` has an entry in `event_id`, as `tx` sees it (after its insert found a
/// conflict: on READ COMMITTED this statement's snapshot includes the conflicting commit).
async fn phone_entered(tx: &mut Tx, event_id: &str, phone_hash: &str) -> Result<bool> {
    let row = query("SELECT 1 AS found FROM entries WHERE event_id = $1 AND phone_hash = $2")
        .bind(event_id.to_owned())
        .bind(phone_hash.to_owned())
        .fetch_optional(tx)
        .await?;
    Ok(row.is_some())
}

impl Repository {
    /// Stores `entry` with `message` (its analytics fact) unless the phone already entered, the
    /// event's entries were closed (EndEvent or a draw), the event holds `capacity` entries
    /// already, or its receipt code is taken in the event. Concurrent submissions of one phone end
    /// in exactly one [`EntryAdmission::Admitted`].
    ///
    /// Race-free against a concurrent close without a per-entry write to a shared row: the
    /// transaction first takes the event's gate lock in shared mode (entries never wait for each
    /// other; a close takes it exclusively, see [`Repository::close_entries`]), then inserts only
    /// if no close is recorded. The insert's snapshot is taken after the lock is granted, so on
    /// READ COMMITTED it sees every close that committed before, and no close can commit until
    /// this transaction ends: an entry is committed before a close or refused.
    pub async fn admit_entry(
        &self,
        entry: &NewEntryRow,
        capacity: Option<u32>,
        message: OutgoingMessage,
    ) -> Result<EntryAdmission> {
        let mut tx = self.store.begin().await?;
        lock_gate(&mut tx, &entry.event_id, GateLock::Shared).await?;
        let (marketing_granted, marketing_version) = match &entry.marketing_consent {
            Some((granted, version)) => (Some(*granted), Some(version.clone())),
            None => (None, None),
        };
        // SQLite needs a WHERE on an INSERT … SELECT followed by ON CONFLICT (parsing ambiguity);
        // this one is the gate check itself, and the block list's (a block committed before this
        // statement refuses the entry; one committing after it leaves the entry out of draws). Any unique conflict does nothing — the phone's
        // (event, phone hash) or the receipt code's (event, receipt code) — so the transaction
        // stays usable to tell which one it was.
        let inserted = query(
            "INSERT INTO entries (id, event_id, phone_hash, name_sealed, phone_sealed, privacy_consent_version, \
             marketing_consent_granted, marketing_consent_version, source_channel, created_at, request_id, \
             privacy_consent_granted, terms_sha256, consented_at, receipt_code) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, TRUE, $12, $13, $14 WHERE NOT EXISTS \
             (SELECT 1 FROM event_gates g WHERE g.event_id = $2 AND (g.ended_at IS NOT NULL OR g.closed_at IS NOT NULL)) \
             AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.event_id = $2 AND b.phone_hash = $3 AND b.removed_at IS NULL) \
             ON CONFLICT DO NOTHING",
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
        .bind(entry.request_id.clone())
        .bind(entry.terms_sha256.clone())
        .bind(entry.consented_at_ms)
        .bind(entry.receipt_code.clone())
        .execute(&mut tx)
        .await?;
        if inserted == 0 {
            let gate = gate_state(&mut tx, &entry.event_id).await?;
            let admission = match gate {
                Some(gate) if gate.ended_at_ms.is_some() => EntryAdmission::Ended,
                Some(gate) if gate.closed_at_ms.is_some() => EntryAdmission::Closed,
                _ if phone_blocked(&mut tx, &entry.event_id, &entry.phone_hash).await? => EntryAdmission::Blocked,
                // The phone's entry wins over a receipt collision: it is what the caller hears.
                _ if phone_entered(&mut tx, &entry.event_id, &entry.phone_hash).await? => EntryAdmission::Duplicate,
                _ => EntryAdmission::ReceiptTaken,
            };
            tx.rollback().await?;
            return Ok(admission);
        }
        Outbox::enqueue(&mut tx, message).await?;
        learn_owner_in(&mut tx, &entry.event_id, &entry.owner_id, entry.created_at_ms).await?;
        if let Some(quota) = &entry.address_quota
            && !count_address(&mut tx, &entry.event_id, &quota.address_hash, quota.max).await?
        {
            tx.rollback().await?;
            return Ok(EntryAdmission::AddressLimit);
        }
        if let Some(capacity) = capacity {
            // Only capacity-limited (first-come) events count on the gate row, last, so its row
            // lock is held only for the commit; their capacity is the prize's winner count, so few
            // entries ever queue on it.
            let counted = query(
                "INSERT INTO event_gates (event_id, entries) VALUES ($1, 1) ON CONFLICT (event_id) DO UPDATE \
                 SET entries = event_gates.entries + 1 WHERE event_gates.entries < $2",
            )
            .bind(entry.event_id.clone())
            .bind(i64::from(capacity))
            .execute(&mut tx)
            .await?;
            if counted == 0 {
                tx.rollback().await?;
                return Ok(EntryAdmission::Full);
            }
        }
        tx.commit().await?;
        self.wake_outbox();
        Ok(EntryAdmission::Admitted)
    }

    /// Up to `limit` entries of `event_id` in arrival order (`created_at`, then `id`), after
    /// `after` (from the first entry when `None`).
    pub async fn entries_page(
        &self,
        event_id: &str,
        after: Option<&ArrivalCursor>,
        limit: u32,
    ) -> Result<Vec<StoredEntry>> {
        // Row-value comparison (PostgreSQL and SQLite): one index range scan on
        // entries_event_arrival. Ids are UUIDs (fixed-width lower-case hex and hyphens), so every
        // collation orders them as their bytes.
        let sql = AssertSqlSafe(format!(
            "SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.event_id = $1 AND (e.created_at, e.id) > ($2, $3) \
             ORDER BY e.created_at, e.id LIMIT $4"
        ));
        let (after_ms, after_id) = match after {
            Some(cursor) => (cursor.created_at_ms, cursor.id.clone()),
            None => (i64::MIN, String::new()),
        };
        let rows = query(sql)
            .bind(event_id.to_owned())
            .bind(after_ms)
            .bind(after_id)
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

    /// The entry of `phone_hash` in `event_id` if the request `request_id` stored it: what a
    /// retry of that request answers with. Asked only after a refusal (the duplicate path, or an
    /// event that closed since), never on the way of a new entry. Read from the primary, where
    /// the conflicting entry has just committed.
    ///
    /// Goes through the unique (event, phone hash) index: one row at most, compared with the
    /// stored id, so a request id alone never finds anything.
    pub async fn entry_of_request(
        &self,
        event_id: &str,
        phone_hash: &str,
        request_id: &str,
    ) -> Result<Option<StoredEntry>> {
        let sql = AssertSqlSafe(format!(
            "SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.event_id = $1 AND e.phone_hash = $2 AND e.request_id = $3"
        ));
        let row = query(sql)
            .bind(event_id.to_owned())
            .bind(phone_hash.to_owned())
            .bind(request_id.to_owned())
            .fetch_optional(self.store.primary())
            .await?;
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
    /// alone (unique, and unrelated to the number); the request id goes too (a client chooses
    /// it, so it may carry anything, and without the phone hash it can never be replayed).
    /// Already anonymized entries are skipped.
    /// Returns how many entries were anonymized.
    ///
    /// One transaction with the blocks of those entries and the event's erasure record (see
    /// [`anonymize_entry_blocks`] and [`anonymize_other_blocks`]).
    pub async fn anonymize(&self, event_id: &str, before_ms: i64, now_ms: i64) -> Result<u64> {
        let mut tx = self.store.begin().await?;
        anonymize_entry_blocks(&mut tx, event_id, before_ms, now_ms).await?;
        let erased = query(
            "UPDATE entries SET name_sealed = NULL, phone_sealed = NULL, phone_hash = 'anonymized:' || id, \
             request_id = NULL, anonymized_at = $3 WHERE event_id = $1 AND created_at < $2 AND anonymized_at IS NULL",
        )
        .bind(event_id.to_owned())
        .bind(before_ms)
        .bind(now_ms)
        .execute(&mut tx)
        .await?;
        anonymize_other_blocks(&mut tx, event_id, before_ms, now_ms).await?;
        tx.commit().await?;
        Ok(erased)
    }
}
