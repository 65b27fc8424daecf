//! What the event service does on its own, tick by tick (the scheduler in `infra` calls
//! [`EventApp::run_schedule`]):
//!
//! 1. a PUBLISHED event whose period is over is ended through the EndEvent use case, as the
//!    system: participation closes its entries first, then ENDED is committed with its facts;
//! 2. an ENDED auto-draw event is drawn once `auto_draw_delay` has passed since it ended:
//!    participation's DrawWinnersOnSchedule, then the outcome is stored so it is attempted once
//!    (a draw, an existing draw, no entries, or a refusal); when participation is unavailable it is
//!    tried again at the next tick;
//! 3. the retention job: an ENDED event whose retention ran out — `retention_days` after its
//!    current draw (participation's `CountEntries.draw_time`), or after its end when nothing was
//!    drawn — has its participants' personal data anonymized by participation's AnonymizeEntries,
//!    then `anonymize_time` is recorded so it is done once. An auto-draw event waits for its draw
//!    to be settled. The candidates are found by end time + retention (a draw is never before the
//!    end); when participation reports a later draw, the event is put off until draw + retention
//!    (and checked again then, a redraw moving it once more). Any failing call (participation
//!    unreachable or refusing) is retried at the next tick: the data must go.
//!
//! Several replicas may run the scheduler on one database: each event is first claimed with a
//! lease (one conditional UPDATE on PostgreSQL and SQLite alike), so one replica works on it at a
//! time; a lease a crashed replica left behind expires after [`LEASE`]. The participation calls are
//! idempotent besides, so even a replica that lost its lease mid-call does no harm.

use std::time::Duration;

use crate::domain::values::Millis;

use super::EventApp;
use super::error::AppError;
use super::ports::{AutoDrawOutcome, Due, Lease, PeerError, ScheduledDraw};
use crate::infra::participation::RETENTION_TIMEOUT;

/// How long a claim on an event lasts unless released: well beyond the longest call made under
/// it (CloseEntries, DrawWinnersOnSchedule, or CountEntries then AnonymizeEntries, with their mesh
/// retries).
pub const LEASE: Duration = Duration::from_secs(120);
/// Most events of each kind handled in one tick (the rest wait for the next).
const BATCH: usize = 50;
/// One day in milliseconds (retention days are calendar-free 24 h days).
const DAY_MS: Millis = 24 * 60 * 60 * 1000;

fn millis(d: Duration) -> Millis {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScheduleReport {
    /// Events ended because their period was over.
    pub ended: usize,
    /// Auto-draw events settled (drawn, found drawn, found empty, or refused).
    pub settled: usize,
    /// Events whose participants' data was anonymized at the end of the retention.
    pub anonymized: usize,
    /// Events whose work failed and is retried at a later tick.
    pub retried: usize,
}

impl EventApp {
    /// One scheduler tick for the replica `worker`: ends the events due to end, draws the
    /// auto-draw events due to be drawn, then anonymizes the entries of the events whose
    /// retention ran out. Per-event failures are logged and retried at a later tick; only a
    /// failing database fails the tick.
    pub async fn run_schedule(&self, worker: &str) -> Result<ScheduleReport, AppError> {
        let mut report = ScheduleReport::default();
        self.end_due_events(worker, &mut report).await?;
        self.draw_due_events(worker, &mut report).await?;
        self.anonymize_due_events(worker, &mut report).await?;
        Ok(report)
    }

    fn lease(&self, worker: &str) -> Lease {
        let now = self.clock.now_ms();
        Lease { worker: worker.to_owned(), now, until: now.saturating_add(millis(LEASE)) }
    }

    async fn end_due_events(&self, worker: &str, report: &mut ScheduleReport) -> Result<(), AppError> {
        let due = self.repository.due(Due::End, self.clock.now_ms(), BATCH).await?;
        for event_id in due {
            if !self.repository.claim(&event_id, Due::End, &self.lease(worker)).await? {
                continue; // another replica has it, or it ended meanwhile
            }
            let ended = self.end_event_on_schedule(&event_id).await;
            self.repository.release(&event_id, worker).await?;
            match ended {
                Ok(event) => {
                    tracing::info!(%event_id, ended_at = ?event.ended_at, "event ended at the end of its period");
                    report.ended += 1;
                }
                Err(error) => {
                    tracing::warn!(%event_id, %error, "event not ended at the end of its period; retrying at the next tick");
                    report.retried += 1;
                }
            }
        }
        Ok(())
    }

    async fn draw_due_events(&self, worker: &str, report: &mut ScheduleReport) -> Result<(), AppError> {
        let now = self.clock.now_ms();
        let draw = Due::Draw { ended_before: now.saturating_sub(millis(self.settings.auto_draw_delay)) };
        for event_id in self.repository.due(draw, now, BATCH).await? {
            if !self.repository.claim(&event_id, draw, &self.lease(worker)).await? {
                continue;
            }
            let outcome = match self.entries.draw_on_schedule(&event_id).await {
                Ok(ScheduledDraw::Drawn { drawn_now: true }) => AutoDrawOutcome::Drawn,
                Ok(ScheduledDraw::Drawn { drawn_now: false }) => AutoDrawOutcome::AlreadyDrawn,
                Ok(ScheduledDraw::NoEntries) => AutoDrawOutcome::NoEntries,
                Err(error @ PeerError::Unavailable { .. }) => {
                    tracing::warn!(%event_id, %error, "auto draw not made; retrying at the next tick");
                    self.repository.release(&event_id, worker).await?;
                    report.retried += 1;
                    continue;
                }
                Err(error @ PeerError::Refused { .. }) => {
                    tracing::error!(%event_id, %error, "auto draw refused by participation; not retried (the owner can draw)");
                    AutoDrawOutcome::Failed
                }
            };
            if self.repository.settle_auto_draw(&event_id, worker, outcome, self.clock.now_ms()).await? {
                tracing::info!(%event_id, outcome = outcome.as_str(), "auto draw settled");
            } else {
                tracing::warn!(%event_id, "auto draw settled after this replica's lease expired");
            }
            self.cache.invalidate_public(&event_id).await;
            report.settled += 1;
        }
        Ok(())
    }

    async fn anonymize_due_events(&self, worker: &str, report: &mut ScheduleReport) -> Result<(), AppError> {
        for event_id in self.repository.due(Due::Anonymize, self.clock.now_ms(), BATCH).await? {
            if !self.repository.claim(&event_id, Due::Anonymize, &self.lease(worker)).await? {
                continue; // another replica has it, or it was anonymized meanwhile
            }
            let done = self.anonymize_if_due(&event_id, worker).await;
            match done {
                Ok(Retention::Anonymized(count)) => {
                    tracing::info!(%event_id, count, "participants' data anonymized at the end of the retention");
                    report.anonymized += 1;
                }
                Ok(Retention::NotBefore(at)) => {
                    tracing::debug!(%event_id, not_before = at, "retention runs from a later draw; put off");
                }
                Err(error) => {
                    // Nothing recorded: the lease is given up and the next tick tries again.
                    self.repository.release(&event_id, worker).await?;
                    match &error {
                        RetentionError::Peer(PeerError::Refused { .. }) => tracing::error!(
                            %event_id, %error, "participants' data not anonymized: participation refused; retrying at the next tick"
                        ),
                        _ => tracing::warn!(
                            %event_id, %error, "participants' data not anonymized; retrying at the next tick"
                        ),
                    }
                    report.retried += 1;
                }
            }
        }
        Ok(())
    }

    /// The retention job for one claimed event: asks participation for the draw time, puts the
    /// event off when the retention runs from a draw later than now allows, else anonymizes and
    /// records it (releasing the lease either way). An error leaves the lease to the caller.
    async fn anonymize_if_due(&self, event_id: &str, worker: &str) -> Result<Retention, RetentionError> {
        let event = self.load(event_id).await?;
        // An ENDED event always has its end time; the due condition found it ended.
        let ended_at = event.ended_at.unwrap_or(event.spec.period.end);
        let draw_time = self.entries.draw_time_within(event_id, RETENTION_TIMEOUT).await?;
        let due_at = retention_end(draw_time, ended_at, event.spec.retention_days);
        if self.clock.now_ms() < due_at {
            self.repository.defer_anonymize(event_id, worker, due_at).await?;
            return Ok(Retention::NotBefore(due_at));
        }
        let count = self.entries.anonymize_entries(event_id).await?;
        if !self.repository.settle_anonymize(event_id, worker, self.clock.now_ms()).await? {
            // AnonymizeEntries is idempotent, so a replica that took over did no harm.
            tracing::warn!(%event_id, "anonymization recorded after this replica's lease expired, or already");
        }
        self.cache.invalidate(event_id).await;
        Ok(Retention::Anonymized(count))
    }
}

/// Why the retention job did not finish with an event (it is retried at the next tick).
#[derive(Debug, thiserror::Error)]
enum RetentionError {
    /// participation did not answer CountEntries or AnonymizeEntries.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// The event could not be read or recorded.
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<super::RepoError> for RetentionError {
    fn from(error: super::RepoError) -> Self {
        RetentionError::App(AppError::Storage(error))
    }
}

/// What the retention job did with a claimed event.
enum Retention {
    /// The entries were anonymized (this many by this call).
    Anonymized(i64),
    /// Not due before this time (a draw after the end).
    NotBefore(Millis),
}

/// When the retention of an event ends: `retention_days` after its current draw, or after its end
/// when nothing was drawn.
fn retention_end(draw_time: Option<Millis>, ended_at: Millis, retention_days: i32) -> Millis {
    draw_time.unwrap_or(ended_at).saturating_add(i64::from(retention_days).saturating_mul(DAY_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retention_runs_from_the_draw_else_from_the_end() {
        assert_eq!(retention_end(None, 1_000, 1), 1_000 + DAY_MS);
        assert_eq!(retention_end(Some(5_000), 1_000, 30), 5_000 + 30 * DAY_MS, "the draw wins");
        assert_eq!(retention_end(Some(5_000), i64::MAX - 1, 365), 5_000 + 365 * DAY_MS);
        assert_eq!(retention_end(None, i64::MAX - 1, 365), i64::MAX, "saturates, never wraps");
    }
}
