//! Queue facts applied exactly once through the kit's inbox.

use kem_kit::outbox::{Inbox, InboxError, Processed};

use super::AnalyticsCore;
use crate::domain::EventFact;
use crate::infra::repository::{RepositoryError, Touched};

/// What ingesting a fact did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// The aggregates changed.
    Applied,
    /// The message had been applied before (a redelivery): nothing changed.
    Duplicate,
    /// The event was deleted: the fact was recorded as processed and changed nothing.
    EventDeleted,
}

impl AnalyticsCore {
    /// Applies a queue fact exactly once: the inbox record of its message id and the aggregate
    /// change commit together, so a redelivery finds the record and changes nothing.
    pub async fn ingest(&self, fact: EventFact) -> Result<Ingested, InboxError<RepositoryError>> {
        let repo = self.repo.clone();
        let applying = fact.clone();
        let at = self.clock.now();
        let now = kem_kit::store::millis(at);
        let processed = Inbox::process_at(self.repo.store(), at, &self.consumer, &fact.message_id, move |tx| {
            Box::pin(async move { repo.apply_fact(tx, &applying, now).await })
        })
        .await?;
        let outcome = match processed {
            Processed::Applied(Touched::Changed { owner_id }) => {
                self.invalidate(&fact.event_id, &owner_id).await;
                Ingested::Applied
            }
            Processed::Applied(Touched::Deleted) => Ingested::EventDeleted,
            Processed::Duplicate => Ingested::Duplicate,
        };
        tracing::debug!(
            message_id = %fact.message_id, event_id = %fact.event_id, fact = fact.fact.kind(), ?outcome,
            "analytics fact ingested"
        );
        Ok(outcome)
    }
}
