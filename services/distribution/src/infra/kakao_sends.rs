//! The progress of an event's Kakao 친구톡 send (`kakao_sends`), batch by batch, so nothing SENS
//! accepted is ever sent again: recipients are sent in phone order, and the row keeps the last
//! phone whose batch is settled (`after_phone`) and the last phone of the batch being sent
//! (`in_flight`, written before the request and cleared with its answer). The row outlives the
//! delivery's attempts and the owner's Retry (which start a new generation of the delivery, but
//! must not reach the same people twice). Every change is guarded by the cursor it read, so two
//! workers that both believe they hold the delivery cannot both advance it.

use kem_kit::store::{self, Store, StoreError};

/// An event's send progress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendProgress {
    /// Last phone of the last settled batch (empty: none yet).
    pub after_phone: String,
    /// Last phone of a batch sent whose answer never came, if any.
    pub in_flight: Option<String>,
    /// Messages SENS accepted (`A000`).
    pub accepted: i64,
    /// Messages SENS answered with another status (e.g. not a friend of the channel).
    pub not_delivered: i64,
    /// Messages of batches whose outcome is unknown (skipped, never repeated).
    pub unknown: i64,
    /// SENS requests answered.
    pub requests: i64,
    /// The first request's id (shown as the delivery's external id).
    pub first_request: String,
}

/// The `kakao_sends` table.
#[derive(Debug, Clone)]
pub struct KakaoSends {
    store: Store,
}

impl KakaoSends {
    /// The table of `store` (migrated).
    pub fn new(store: Store) -> KakaoSends {
        KakaoSends { store }
    }

    /// The progress of `event_id`, created empty on first use.
    pub async fn open(&self, event_id: &str, owner_id: &str, now: i64) -> Result<SendProgress, StoreError> {
        store::query(
            "INSERT INTO kakao_sends (event_id, owner_id, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(event_id.to_owned())
        .bind(owner_id.to_owned())
        .bind(now)
        .execute(self.store.primary())
        .await?;
        let row = store::query(
            "SELECT after_phone, in_flight, accepted, not_delivered, unknown, requests, first_request \
             FROM kakao_sends WHERE event_id = $1",
        )
        .bind(event_id.to_owned())
        .fetch_one(self.store.primary())
        .await?;
        Ok(SendProgress {
            after_phone: row.get("after_phone")?,
            in_flight: row.get("in_flight")?,
            accepted: row.get("accepted")?,
            not_delivered: row.get("not_delivered")?,
            unknown: row.get("unknown")?,
            requests: row.get("requests")?,
            first_request: row.get("first_request")?,
        })
    }

    /// Records that the batch ending with `last_phone` is about to be sent, if the progress is
    /// still at `after` with nothing in flight. Whether it was recorded.
    pub async fn start_batch(
        &self,
        event_id: &str,
        after: &str,
        last_phone: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let changed = store::query(
            "UPDATE kakao_sends SET in_flight = $1, updated_at = $2 \
             WHERE event_id = $3 AND after_phone = $4 AND in_flight IS NULL",
        )
        .bind(last_phone.to_owned())
        .bind(now)
        .bind(event_id.to_owned())
        .bind(after.to_owned())
        .execute(self.store.primary())
        .await?;
        Ok(changed == 1)
    }

    /// The batch in flight was answered: `accepted` and `not_delivered` messages, SENS request
    /// `request_id`.
    pub async fn settle_batch(
        &self,
        event_id: &str,
        last_phone: &str,
        accepted: i64,
        not_delivered: i64,
        request_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let changed = store::query(
            "UPDATE kakao_sends SET after_phone = $1, in_flight = NULL, accepted = accepted + $2, \
               not_delivered = not_delivered + $3, requests = requests + 1, \
               first_request = CASE WHEN first_request = '' THEN $4 ELSE first_request END, updated_at = $5 \
             WHERE event_id = $6 AND in_flight = $1",
        )
        .bind(last_phone.to_owned())
        .bind(accepted)
        .bind(not_delivered)
        .bind(request_id.to_owned())
        .bind(now)
        .bind(event_id.to_owned())
        .execute(self.store.primary())
        .await?;
        Ok(changed == 1)
    }

    /// The batch in flight was refused as a whole (SENS answered an error, so it sent nothing):
    /// it may be sent again.
    pub async fn abandon_batch(&self, event_id: &str, last_phone: &str, now: i64) -> Result<(), StoreError> {
        store::query("UPDATE kakao_sends SET in_flight = NULL, updated_at = $1 WHERE event_id = $2 AND in_flight = $3")
            .bind(now)
            .bind(event_id.to_owned())
            .bind(last_phone.to_owned())
            .execute(self.store.primary())
            .await?;
        Ok(())
    }

    /// A batch found in flight by a later step (its worker died or its answer never came):
    /// `count` messages whose outcome is unknown; skipped so they are never sent twice.
    pub async fn skip_in_flight(
        &self,
        event_id: &str,
        in_flight: &str,
        count: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let changed = store::query(
            "UPDATE kakao_sends SET after_phone = $1, in_flight = NULL, unknown = unknown + $2, updated_at = $3 \
             WHERE event_id = $4 AND in_flight = $1",
        )
        .bind(in_flight.to_owned())
        .bind(count)
        .bind(now)
        .bind(event_id.to_owned())
        .execute(self.store.primary())
        .await?;
        Ok(changed == 1)
    }

    /// Forgets the progress of a send that reached nobody and has nothing in flight (so the
    /// owner's Retry, e.g. once customers befriended the channel, starts over). Whether it did.
    pub async fn forget_if_nothing_sent(&self, event_id: &str) -> Result<bool, StoreError> {
        let deleted = store::query(
            "DELETE FROM kakao_sends WHERE event_id = $1 AND accepted = 0 AND unknown = 0 AND in_flight IS NULL",
        )
        .bind(event_id.to_owned())
        .execute(self.store.primary())
        .await?;
        Ok(deleted == 1)
    }
}
