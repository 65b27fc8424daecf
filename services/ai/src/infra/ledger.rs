//! The job ledger in the service's database (`ai_jobs`, see `migrations/`), with the kit's
//! idempotent inbox: a job's final state and the message id commit in one transaction.

use std::sync::Arc;
use std::time::Duration;

use kem_kit::clock::Clock;
use kem_kit::outbox::{Inbox, InboxError};
use kem_kit::runtime::periodic::{InFlight, MissedTickBehavior, Periodic, Spacing};
use kem_kit::store::{self, Store, StoreError, millis};
use kem_mesh::Shutdown;

use crate::app::ports::{JobLedger, JobRecord, JobRef, JobState, LedgerError};
use crate::domain::output::Generated;

/// The inbox consumer name of the job consumer.
pub const INBOX_CONSUMER: &str = "ai:ai-event-generation";
/// Longest error text kept.
const MAX_ERROR_CHARS: usize = 2_000;

/// The ledger over `ai_jobs` and `kem_inbox`.
#[derive(Debug, Clone)]
pub struct StoreJobLedger {
    store: Store,
    clock: Arc<dyn Clock>,
}

impl StoreJobLedger {
    /// A ledger in `store` (migrated), stamping rows and inbox records with `clock`.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> StoreJobLedger {
        StoreJobLedger { store, clock }
    }
}

fn ledger_error(error: StoreError) -> LedgerError {
    LedgerError::Store(Arc::new(error))
}

fn clip(text: &str) -> String {
    text.chars().take(MAX_ERROR_CHARS).collect()
}

/// `INSERT … ON CONFLICT (job_id) DO UPDATE …`: the same statement on PostgreSQL and SQLite.
macro_rules! upsert {
    ($rest:literal) => {
        concat!(
            "INSERT INTO ai_jobs (job_id, event_id, input_hash, state, result, error, attempts, created_at, updated_at) ",
            $rest
        )
    };
}

#[async_trait::async_trait]
impl JobLedger for StoreJobLedger {
    async fn seen(&self, message_id: &str) -> Result<bool, LedgerError> {
        Inbox::seen(&self.store, INBOX_CONSUMER, message_id).await.map_err(ledger_error)
    }

    async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, LedgerError> {
        let row = store::query("SELECT state, result, attempts FROM ai_jobs WHERE job_id = $1")
            .bind(job_id.to_owned())
            .fetch_optional(self.store.primary())
            .await
            .map_err(ledger_error)?;
        let Some(row) = row else { return Ok(None) };
        let state_text: String = row.get("state").map_err(ledger_error)?;
        let state = JobState::parse(&state_text)
            .ok_or_else(|| LedgerError::Corrupt(format!("job {job_id} has the unknown state {state_text:?}")))?;
        let result = match row.get::<Option<String>>("result").map_err(ledger_error)? {
            // A stored result that no longer decodes (an older format) is regenerated.
            Some(json) => serde_json::from_str::<Generated>(&json)
                .inspect_err(|e| tracing::warn!(job_id, error = %e, "stored job result does not decode; ignoring it"))
                .ok(),
            None => None,
        };
        let attempts: i64 = row.get("attempts").map_err(ledger_error)?;
        Ok(Some(JobRecord { state, result, attempts: u32::try_from(attempts).unwrap_or(u32::MAX) }))
    }

    async fn record_attempt(&self, job: &JobRef, error: &str) -> Result<(), LedgerError> {
        let now = self.clock.now_ms();
        store::query(upsert!(
            "VALUES ($1, $2, $3, $4, NULL, $5, 1, $6, $6) \
             ON CONFLICT (job_id) DO UPDATE SET attempts = ai_jobs.attempts + 1, error = excluded.error, \
             updated_at = excluded.updated_at"
        ))
        .bind(job.job_id.clone())
        .bind(job.event_id.clone())
        .bind(job.input_hash.clone())
        .bind(JobState::Working.as_str())
        .bind(clip(error))
        .bind(now)
        .execute(self.store.primary())
        .await
        .map_err(ledger_error)?;
        Ok(())
    }

    async fn save_result(&self, job: &JobRef, result: &Generated) -> Result<(), LedgerError> {
        let json =
            serde_json::to_string(result).map_err(|e| LedgerError::Corrupt(format!("encoding the result: {e}")))?;
        let now = self.clock.now_ms();
        store::query(upsert!(
            "VALUES ($1, $2, $3, $4, $5, NULL, 0, $6, $6) \
             ON CONFLICT (job_id) DO UPDATE SET result = excluded.result, input_hash = excluded.input_hash, \
             updated_at = excluded.updated_at"
        ))
        .bind(job.job_id.clone())
        .bind(job.event_id.clone())
        .bind(job.input_hash.clone())
        .bind(JobState::Working.as_str())
        .bind(json)
        .bind(now)
        .execute(self.store.primary())
        .await
        .map_err(ledger_error)?;
        Ok(())
    }

    async fn finish(
        &self,
        message_id: &str,
        job: &JobRef,
        state: JobState,
        error: Option<&str>,
    ) -> Result<bool, LedgerError> {
        let job = job.clone();
        let error = error.map(clip);
        let now = self.clock.now();
        let processed = Inbox::process_at(&self.store, now, INBOX_CONSUMER, message_id, move |tx| {
            Box::pin(async move {
                let now = millis(now);
                // A final state is never overwritten by another (a redelivery of another message
                // id for the same job finds it final and only records its own id).
                store::query(upsert!(
                    "VALUES ($1, $2, $3, $4, NULL, $5, 0, $6, $6) \
                     ON CONFLICT (job_id) DO UPDATE SET state = excluded.state, \
                     error = COALESCE(excluded.error, ai_jobs.error), updated_at = excluded.updated_at \
                     WHERE ai_jobs.state = 'WORKING'"
                ))
                .bind(job.job_id)
                .bind(job.event_id)
                .bind(job.input_hash)
                .bind(state.as_str())
                .bind(error)
                .bind(now)
                .execute(tx)
                .await
            })
        })
        .await;
        match processed {
            Ok(done) => Ok(done.applied()),
            Err(InboxError::Store(e) | InboxError::Effect(e)) => Err(ledger_error(e)),
        }
    }
}

/// Deletes ledger rows and inbox records older than `retention` (by `clock`) every hour until
/// `shutdown`. `retention` must exceed how long a message can still be redelivered (the queue's
/// dedupe window and a job's deadline), so a purged record is never needed again.
pub fn spawn_purge(
    store: Store,
    clock: Arc<dyn Clock>,
    retention: Duration,
    shutdown: Shutdown,
) -> tokio::task::JoinHandle<()> {
    shutdown.clone().spawn(async move {
        let task = Periodic::new("ai job ledger purge", Duration::from_secs(3_600))
            .spacing(Spacing::Rate(MissedTickBehavior::Burst))
            .in_flight(InFlight::Finish);
        task.run(shutdown.clone(), || async {
            let now = clock.now();
            let cutoff = millis(now).saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
            let jobs =
                store::query("DELETE FROM ai_jobs WHERE updated_at < $1").bind(cutoff).execute(store.primary()).await;
            let inbox = Inbox::purge_at(&store, now, retention).await;
            match (jobs, inbox) {
                (Ok(jobs), Ok(inbox)) if jobs + inbox > 0 => tracing::info!(jobs, inbox, "purged old job records"),
                (Ok(_), Ok(_)) => {}
                (Err(error), _) | (_, Err(error)) => {
                    tracing::warn!(%error, "purging old job records failed; retrying in an hour")
                }
            }
        })
        .await;
    })
}
