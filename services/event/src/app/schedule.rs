//! What the event service does on its own, tick by tick (the scheduler in `infra` calls
//! [`EventApp::run_schedule`]):
//!
//! 1. a PUBLISHED event whose period is over is ended through the EndEvent use case, as the
//!    system: participation closes its entries first, then ENDED is committed with its facts;
//! 2. an ENDED auto-draw event is drawn once `auto_draw_delay` has passed since it ended:
//!    participation's DrawWinnersOnSchedule, then the outcome is stored so it is attempted once
//!    (a draw, an existing draw, no entries, or a refusal); when participation is unavailable it is
//!    tried again at the next tick.
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

/// How long a claim on an event lasts unless released: well beyond the longest call made under
/// it (CloseEntries, or DrawWinnersOnSchedule and its mesh retries).
pub const LEASE: Duration = Duration::from_secs(120);
/// Most events of each kind handled in one tick (the rest wait for the next).
const BATCH: usize = 50;

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
    /// Events whose work failed and is retried at a later tick.
    pub retried: usize,
}

impl EventApp {
    /// One scheduler tick for the replica `worker`: ends the events due to end, then draws the
    /// auto-draw events due to be drawn. Per-event failures are logged and retried at a later
    /// tick; only a failing database fails the tick.
    pub async fn run_schedule(&self, worker: &str) -> Result<ScheduleReport, AppError> {
        let mut report = ScheduleReport::default();
        self.end_due_events(worker, &mut report).await?;
        self.draw_due_events(worker, &mut report).await?;
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
}
