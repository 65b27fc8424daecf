//! The distribution tables on PostgreSQL or embedded SQLite (the same SQL on both).
//!
//! Every state change of a delivery goes through a guarded statement, which is what makes
//! delivery exactly-once: a worker only changes a row it holds (`lease_token`), a claim only
//! takes rows in PENDING, QUEUED_RATE_LIMITED or SENDING whose time has come, and `Retry` only
//! re-queues FAILED rows — so a PUBLISHED delivery can never be sent again.

use kem_kit::outbox::Outbox;
use kem_kit::queue::OutgoingMessage;
use kem_kit::store::{self, Row, Store, StoreError, Tx};

use crate::domain::{
    Channel, Delivery, DeliveryError, DeliveryState, ErrorReason, Failure, ManualPost, ProviderLabel, SourceKind,
};

/// Every column of a delivery, in the order [`delivery`] reads them.
const COLUMNS: &str = "event_id, channel, owner_id, state, attempts, generation, outcome_seq, poll_errors, \
    next_attempt_at, lease_until, work_ref, external_id, permalink, provider_status, provider_name, provider_kind, \
    provider_model, error_reason, error_message, error_retryable, error_code, error_at, manual_post, reach, views, \
    published_at, created_at, updated_at";

/// A published event as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    /// The event.
    pub event_id: String,
    /// Its owner.
    pub owner_id: String,
    /// The `DistributionJob` message (protobuf binary).
    pub job: Vec<u8>,
    /// End of the entry period (ms; 0 when unknown).
    pub period_end_at: i64,
    /// When the job arrived (ms).
    pub received_at: i64,
}

/// A delivery taken by a worker.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The row after the claim (a started attempt is SENDING with its attempt counted).
    pub delivery: Delivery,
    /// Whether the claim started a new attempt (the row was PENDING or QUEUED_RATE_LIMITED), as
    /// opposed to polling a provider-side job or recovering an attempt whose worker vanished.
    pub started: bool,
}

/// The distribution tables.
#[derive(Debug, Clone)]
pub struct Repository {
    store: Store,
}

impl Repository {
    /// The tables of `store` (migrated).
    pub fn new(store: Store) -> Repository {
        Repository { store }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Records a publication inside `tx` (the inbox transaction of its message). Rows that exist
    /// already are left alone — a redelivered or re-sent job never resets a delivery. Returns
    /// how many deliveries were created.
    pub async fn insert_job(tx: &mut Tx, event: &EventRow, deliveries: &[Delivery]) -> Result<u64, StoreError> {
        store::query(
            "INSERT INTO distribution_events (event_id, owner_id, job, period_end_at, received_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(event.event_id.clone())
        .bind(event.owner_id.clone())
        .bind(event.job.clone())
        .bind(event.period_end_at)
        .bind(event.received_at)
        .execute(&mut *tx)
        .await?;
        let mut created = 0;
        for d in deliveries {
            created += store::query(
                "INSERT INTO distribution_deliveries (event_id, channel, owner_id, state, next_attempt_at, \
                 provider_name, provider_kind, provider_model, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT (event_id, channel) DO NOTHING",
            )
            .bind(d.event_id.clone())
            .bind(d.channel.as_str())
            .bind(d.owner_id.clone())
            .bind(d.state.as_str())
            .bind(d.next_attempt_at)
            .bind(d.provider.name.clone())
            .bind(d.provider.kind.as_str())
            .bind(d.provider.model.clone())
            .bind(d.created_at)
            .execute(&mut *tx)
            .await?;
        }
        Ok(created)
    }

    /// The event `event_id` of `owner_id` (`None` also for another owner's event).
    pub async fn event(&self, event_id: &str, owner_id: &str) -> Result<Option<EventRow>, StoreError> {
        let row = store::query(
            "SELECT event_id, owner_id, job, period_end_at, received_at FROM distribution_events \
             WHERE event_id = $1 AND owner_id = $2",
        )
        .bind(event_id.to_owned())
        .bind(owner_id.to_owned())
        .fetch_optional(self.store.primary())
        .await?;
        row.map(|r| event_row(&r)).transpose()
    }

    /// The event `event_id` whoever owns it (workers).
    pub async fn event_by_id(&self, event_id: &str) -> Result<Option<EventRow>, StoreError> {
        let row = store::query(
            "SELECT event_id, owner_id, job, period_end_at, received_at FROM distribution_events WHERE event_id = $1",
        )
        .bind(event_id.to_owned())
        .fetch_optional(self.store.primary())
        .await?;
        row.map(|r| event_row(&r)).transpose()
    }

    /// The deliveries of `owner_id`'s event `event_id`, in channel order (empty for another
    /// owner's event). Read from the primary: an owner expects to see a retry they just asked for.
    pub async fn deliveries(&self, event_id: &str, owner_id: &str) -> Result<Vec<Delivery>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM distribution_deliveries WHERE event_id = $1 AND owner_id = $2");
        let rows = store::query(store::AssertSqlSafe(sql))
            .bind(event_id.to_owned())
            .bind(owner_id.to_owned())
            .fetch_all(self.store.primary())
            .await?;
        let mut deliveries = rows.iter().map(delivery).collect::<Result<Vec<_>, _>>()?;
        deliveries.sort_by_key(|d| d.channel);
        Ok(deliveries)
    }

    /// Takes up to `limit` deliveries of `channel` whose attempt or poll is due at `now`, holding
    /// each with `token` until `lease_until` (after which another worker may recover it). A
    /// PENDING or QUEUED_RATE_LIMITED delivery becomes SENDING and its attempt is counted.
    pub async fn claim_due(
        &self,
        channel: Channel,
        limit: usize,
        now: i64,
        lease_until: i64,
        token: &str,
    ) -> Result<Vec<Claimed>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let candidates = store::query(
            "SELECT event_id, state FROM distribution_deliveries \
             WHERE channel = $1 AND next_attempt_at IS NOT NULL AND next_attempt_at <= $2 \
               AND state IN ('PENDING', 'QUEUED_RATE_LIMITED', 'SENDING') \
               AND (lease_until IS NULL OR lease_until <= $2) \
             ORDER BY next_attempt_at LIMIT $3",
        )
        .bind(channel.as_str())
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.store.primary())
        .await?;
        let mut claimed = Vec::with_capacity(candidates.len());
        for candidate in candidates {
            let event_id: String = candidate.get("event_id")?;
            let state: String = candidate.get("state")?;
            let started = state != DeliveryState::Sending.as_str();
            // Guarded by the state read above and the due/lease conditions: of two workers racing
            // for a row, only one sees it still free.
            let sql = format!(
                "UPDATE distribution_deliveries SET lease_token = $1, lease_until = $2, next_attempt_at = $2, \
                   updated_at = $3, state = $4, attempts = attempts + $5 \
                 WHERE event_id = $6 AND channel = $7 AND state = $8 \
                   AND next_attempt_at IS NOT NULL AND next_attempt_at <= $3 \
                   AND (lease_until IS NULL OR lease_until <= $3) \
                 RETURNING {COLUMNS}"
            );
            let row = store::query(store::AssertSqlSafe(sql))
                .bind(token.to_owned())
                .bind(lease_until)
                .bind(now)
                .bind(DeliveryState::Sending.as_str())
                .bind(i32::from(started))
                .bind(event_id)
                .bind(channel.as_str())
                .bind(state)
                .fetch_optional(self.store.primary())
                .await?;
            if let Some(row) = row {
                claimed.push(Claimed { delivery: delivery(&row)?, started });
            }
        }
        Ok(claimed)
    }

    /// Records the provider-side handle of the attempt in progress (e.g. the Instagram container
    /// created before publishing), so a worker that dies before the attempt ends leaves enough for
    /// the next one to continue instead of starting over; an empty `work_ref` clears it. `false`
    /// when the hold was lost.
    pub async fn save_work_ref(
        &self,
        event_id: &str,
        channel: Channel,
        token: &str,
        work_ref: &str,
        external_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let changed = store::query(
            "UPDATE distribution_deliveries SET work_ref = NULLIF($1, ''), \
               external_id = CASE WHEN $2 = '' THEN external_id ELSE $2 END, updated_at = $3 \
             WHERE event_id = $4 AND channel = $5 AND lease_token = $6",
        )
        .bind(work_ref.to_owned())
        .bind(external_id.to_owned())
        .bind(now)
        .bind(event_id.to_owned())
        .bind(channel.as_str())
        .bind(token.to_owned())
        .execute(self.store.primary())
        .await?;
        Ok(changed == 1)
    }

    /// Writes the delivery after a step and releases the hold, with `outcome` (the analytics
    /// message of a PUBLISHED or FAILED delivery) in the same transaction: the state change and
    /// its report commit together, once. `false` (nothing written) when the hold was lost.
    pub async fn finish(
        &self,
        d: &Delivery,
        token: &str,
        outcome: Option<OutgoingMessage>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.store.begin().await?;
        let error = d.last_error.as_ref();
        let manual_post = d
            .manual_post
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Invalid(format!("manual post of {}/{}: {e}", d.event_id, d.channel)))?;
        let changed = store::query(
            "UPDATE distribution_deliveries SET state = $1, attempts = $2, outcome_seq = $3, poll_errors = $4, \
               next_attempt_at = $5, lease_token = NULL, lease_until = NULL, work_ref = $6, external_id = $7, \
               permalink = $8, provider_status = $9, error_reason = $10, error_message = $11, \
               error_retryable = $12, error_code = $13, error_at = $14, manual_post = $15, reach = $16, \
               views = $17, published_at = $18, updated_at = $19, provider_name = $20, provider_kind = $21, \
               provider_model = $22 \
             WHERE event_id = $23 AND channel = $24 AND lease_token = $25",
        )
        .bind(d.state.as_str())
        .bind(d.attempts)
        .bind(d.outcome_seq)
        .bind(d.poll_errors)
        .bind(d.next_attempt_at)
        .bind(d.work_ref.clone())
        .bind(d.external_id.clone())
        .bind(d.permalink.clone())
        .bind(d.provider_status.clone())
        .bind(error.map(|e| e.failure.reason.as_str()))
        .bind(error.map(|e| e.failure.message.clone()))
        .bind(error.map(|e| e.failure.retryable))
        .bind(error.map(|e| e.failure.provider_code.clone()))
        .bind(error.map(|e| e.at_ms))
        .bind(manual_post)
        .bind(d.reach)
        .bind(d.views)
        .bind(d.published_at)
        .bind(d.updated_at)
        .bind(d.provider.name.clone())
        .bind(d.provider.kind.as_str())
        .bind(d.provider.model.clone())
        .bind(d.event_id.clone())
        .bind(d.channel.as_str())
        .bind(token.to_owned())
        .execute(&mut tx)
        .await?;
        if changed != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some(message) = outcome {
            Outbox::enqueue(&mut tx, message).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Re-queues FAILED deliveries of `owner_id`'s event for an attempt at `now`: attempts and
    /// backoff reset, a new generation (so providers see a new request). With no `channels`,
    /// every FAILED delivery; otherwise exactly those, all or none — the channels that were not
    /// FAILED any more when the change was made are returned and nothing is changed.
    pub async fn requeue_failed(
        &self,
        event_id: &str,
        owner_id: &str,
        channels: &[Channel],
        now: i64,
    ) -> Result<Vec<Channel>, StoreError> {
        const REQUEUE: &str = "UPDATE distribution_deliveries SET state = 'PENDING', attempts = 0, poll_errors = 0, \
              generation = generation + 1, next_attempt_at = $1, lease_token = NULL, lease_until = NULL, \
              work_ref = NULL, external_id = '', permalink = '', provider_status = '', updated_at = $1 \
            WHERE event_id = $2 AND owner_id = $3 AND state = 'FAILED'";
        let mut tx = self.store.begin().await?;
        if channels.is_empty() {
            store::query(REQUEUE)
                .bind(now)
                .bind(event_id.to_owned())
                .bind(owner_id.to_owned())
                .execute(&mut tx)
                .await?;
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let mut not_failed = Vec::new();
        for channel in channels {
            let changed = store::query(store::AssertSqlSafe(format!("{REQUEUE} AND channel = $4")))
                .bind(now)
                .bind(event_id.to_owned())
                .bind(owner_id.to_owned())
                .bind(channel.as_str())
                .execute(&mut tx)
                .await?;
            if changed == 0 {
                not_failed.push(*channel);
            }
        }
        if not_failed.is_empty() {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(not_failed)
    }
}

fn event_row(row: &Row) -> Result<EventRow, StoreError> {
    Ok(EventRow {
        event_id: row.get("event_id")?,
        owner_id: row.get("owner_id")?,
        job: row.get("job")?,
        period_end_at: row.get("period_end_at")?,
        received_at: row.get("received_at")?,
    })
}

fn mapping(column: &str, reason: String) -> StoreError {
    StoreError::Mapping { action: "decode", column: column.to_owned(), reason }
}

/// Reads a delivery row.
fn delivery(row: &Row) -> Result<Delivery, StoreError> {
    let channel: String = row.get("channel")?;
    let state: String = row.get("state")?;
    let error_reason: Option<String> = row.get("error_reason")?;
    let last_error = match error_reason {
        Some(reason) => Some(DeliveryError {
            failure: Failure {
                reason: ErrorReason::parse(&reason),
                message: row.get::<Option<String>>("error_message")?.unwrap_or_default(),
                retryable: row.get::<Option<bool>>("error_retryable")?.unwrap_or(false),
                provider_code: row.get::<Option<String>>("error_code")?.unwrap_or_default(),
            },
            at_ms: row.get::<Option<i64>>("error_at")?.unwrap_or(0),
        }),
        None => None,
    };
    let manual_post = row
        .get::<Option<String>>("manual_post")?
        .map(|json| serde_json::from_str::<ManualPost>(&json))
        .transpose()
        .map_err(|e| mapping("manual_post", e.to_string()))?;
    Ok(Delivery {
        event_id: row.get("event_id")?,
        channel: Channel::parse(&channel).ok_or_else(|| mapping("channel", format!("unknown channel {channel:?}")))?,
        owner_id: row.get("owner_id")?,
        state: DeliveryState::parse(&state).ok_or_else(|| mapping("state", format!("unknown state {state:?}")))?,
        attempts: row.get("attempts")?,
        generation: row.get("generation")?,
        outcome_seq: row.get("outcome_seq")?,
        poll_errors: row.get("poll_errors")?,
        next_attempt_at: row.get("next_attempt_at")?,
        lease_until: row.get("lease_until")?,
        work_ref: row.get("work_ref")?,
        external_id: row.get("external_id")?,
        permalink: row.get("permalink")?,
        provider_status: row.get("provider_status")?,
        provider: ProviderLabel {
            name: row.get("provider_name")?,
            kind: SourceKind::parse(&row.get::<String>("provider_kind")?),
            model: row.get("provider_model")?,
        },
        last_error,
        manual_post,
        reach: row.get("reach")?,
        views: row.get("views")?,
        published_at: row.get("published_at")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

/// A published post whose numbers are due to be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostDue {
    /// The event.
    pub event_id: String,
    /// The channel it was published to.
    pub channel: Channel,
    /// Its owner (whose connection's token reads the numbers).
    pub owner_id: String,
    /// The platform's id of the post: the Instagram media id, the partner's job id.
    pub media_id: String,
}

impl Repository {
    /// Claims up to `limit` posts on `channels` published since `published_since` whose numbers
    /// were last read at or before `read_before` (or never), marking them read `now`. The claim
    /// is a guarded update, so of several replicas running the insights job only one reads a
    /// post in a round; a read that then fails waits for the next interval.
    pub async fn claim_insights_due(
        &self,
        now: i64,
        read_before: i64,
        published_since: i64,
        limit: usize,
        channels: &[Channel],
    ) -> Result<Vec<PostDue>, StoreError> {
        if limit == 0 || channels.is_empty() {
            return Ok(Vec::new());
        }
        // Four slots cover every channel with numbers to read (Instagram and the three KT
        // channels); unused slots repeat the first name.
        let names: Vec<&str> = channels.iter().map(|c| c.as_str()).collect();
        let slot = |i: usize| names.get(i).or(names.first()).copied().unwrap_or_default().to_owned();
        let candidates = store::query(
            "SELECT event_id, channel, owner_id, external_id FROM distribution_deliveries \
             WHERE channel IN ($4, $5, $6, $7) AND state = 'PUBLISHED' AND external_id <> '' \
               AND published_at >= $1 AND (insights_read_at IS NULL OR insights_read_at <= $2) \
             ORDER BY insights_read_at NULLS FIRST, published_at LIMIT $3",
        )
        .bind(published_since)
        .bind(read_before)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(slot(0))
        .bind(slot(1))
        .bind(slot(2))
        .bind(slot(3))
        .fetch_all(self.store.primary())
        .await?;
        let mut claimed = Vec::with_capacity(candidates.len());
        for row in candidates {
            let name: String = row.get("channel")?;
            let Some(channel) = Channel::parse(&name) else { continue };
            let post = PostDue {
                event_id: row.get("event_id")?,
                channel,
                owner_id: row.get("owner_id")?,
                media_id: row.get("external_id")?,
            };
            let taken = store::query(
                "UPDATE distribution_deliveries SET insights_read_at = $1 \
                 WHERE event_id = $2 AND channel = $3 \
                   AND (insights_read_at IS NULL OR insights_read_at <= $4)",
            )
            .bind(now)
            .bind(post.event_id.clone())
            .bind(name)
            .bind(read_before)
            .execute(self.store.primary())
            .await?;
            if taken == 1 {
                claimed.push(post);
            }
        }
        Ok(claimed)
    }
}
