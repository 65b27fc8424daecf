//! Event owners and the owner-wide read behind ListMarketingRecipients.
//!
//! Entries do not carry their event's owner; `event_owners` (migration 0007) records it whenever
//! participation learns an event's facts: in each entry's own transaction (so every entry stored
//! from now on is covered) and on the owner paths (so entries stored before the table existed are
//! covered as soon as their owner opens the event again).

use kem_kit::store::{Tx, query};

use super::blocks::entry_blocked;
use super::{Repository, Result, col};

/// One of an owner's entries that still holds a number, as ListMarketingRecipients reads it.
#[derive(Clone)]
pub struct MarketingRow {
    /// Entry id (the AAD of its sealed phone).
    pub id: String,
    /// Sealed phone (E.164).
    pub phone_sealed: Vec<u8>,
    /// Its answer to the marketing question; `None` when the event did not ask.
    pub marketing_consent_granted: Option<bool>,
    /// When its consents were recorded.
    pub consented_at_ms: i64,
    /// Receive time.
    pub created_at_ms: i64,
    /// Whether its phone is on its event's block list now.
    pub blocked: bool,
}

/// Records `owner_id` as the owner of `event_id` unless some owner is recorded already, inside an
/// entry's transaction. DO NOTHING takes no row lock, so concurrent entries to one event never
/// wait on each other here (a DO UPDATE would lock the row until each entry commits).
pub(super) async fn learn_owner_in(tx: &mut Tx, event_id: &str, owner_id: &str, now_ms: i64) -> Result<()> {
    query(
        "INSERT INTO event_owners (event_id, owner_id, learned_at) VALUES ($1, $2, $3) \
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id.to_owned())
    .bind(owner_id.to_owned())
    .bind(now_ms)
    .execute(tx)
    .await?;
    Ok(())
}

const MARKETING_SQL: &str = concat!(
    "SELECT e.id, e.phone_sealed, e.marketing_consent_granted, COALESCE(e.consented_at, e.created_at) AS consented_at, \
     e.created_at, CASE WHEN ",
    entry_blocked!(),
    " THEN 1 ELSE 0 END AS blocked \
     FROM event_owners o JOIN entries e ON e.event_id = o.event_id \
     WHERE o.owner_id = $1 AND e.phone_sealed IS NOT NULL AND e.anonymized_at IS NULL AND e.withdrawn_at IS NULL"
);

impl Repository {
    /// Records (or corrects) `owner_id` as the owner of `event_id`, as the event service reported
    /// it. Writes nothing when that owner is recorded already.
    pub async fn learn_owner(&self, event_id: &str, owner_id: &str, now_ms: i64) -> Result<()> {
        query(
            "INSERT INTO event_owners (event_id, owner_id, learned_at) VALUES ($1, $2, $3) \
             ON CONFLICT (event_id) DO UPDATE SET owner_id = excluded.owner_id, learned_at = excluded.learned_at \
             WHERE event_owners.owner_id <> excluded.owner_id",
        )
        .bind(event_id.to_owned())
        .bind(owner_id.to_owned())
        .bind(now_ms)
        .execute(&self.store)
        .await?;
        Ok(())
    }

    /// The recorded owner of `event_id`.
    pub async fn event_owner(&self, event_id: &str) -> Result<Option<String>> {
        let row = query("SELECT owner_id FROM event_owners WHERE event_id = $1")
            .bind(event_id.to_owned())
            .fetch_optional(&self.store)
            .await?;
        row.as_ref().map(|row| col(row, "owner_id")).transpose()
    }

    /// Every entry of `owner_id`'s known events that still holds a number: not withdrawn, not
    /// anonymized. Blocked ones are included (flagged): a block in one event removes the number
    /// from the whole list, which only the caller can tell once the numbers are opened.
    pub async fn marketing_rows(&self, owner_id: &str) -> Result<Vec<MarketingRow>> {
        let rows = query(MARKETING_SQL).bind(owner_id.to_owned()).fetch_all(self.store.reader()).await?;
        rows.iter()
            .map(|row| {
                Ok(MarketingRow {
                    id: col(row, "id")?,
                    phone_sealed: col(row, "phone_sealed")?,
                    marketing_consent_granted: col(row, "marketing_consent_granted")?,
                    consented_at_ms: col(row, "consented_at")?,
                    created_at_ms: col(row, "created_at")?,
                    blocked: col::<i32>(row, "blocked")? != 0,
                })
            })
            .collect()
    }
}
