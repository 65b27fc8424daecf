//! What owners read: GetEventAnalytics and GetDashboard, computed from the aggregates and served
//! through the answer cache.

use super::{AnalyticsCore, AnalyticsError, Freshness};
use crate::domain::validation::check_event_id;
use crate::domain::{DashboardView, EventAnalyticsView};
use crate::infra::cache::{event_scope, owner_scope};

impl AnalyticsCore {
    /// GetEventAnalytics: `event_id`'s analytics if `owner_id` owns it.
    pub async fn event_analytics(
        &self,
        owner_id: &str,
        event_id: &str,
    ) -> Result<(EventAnalyticsView, Freshness), AnalyticsError> {
        check_event_id(event_id).map_err(|v| AnalyticsError::Invalid(vec![v]))?;
        let cached = self.cache.get_or_load(&event_scope(event_id), || self.load_event(event_id)).await?;
        match cached.value {
            // Someone else's event is indistinguishable from an unknown one.
            Some(view) if view.owner_id == owner_id => Ok((view, self.freshness(cached.from_cache))),
            _ => Err(AnalyticsError::EventNotFound { event_id: event_id.to_owned() }),
        }
    }

    /// GetDashboard: totals and summaries over `owner_id`'s published events.
    pub async fn dashboard(&self, owner_id: &str) -> Result<(DashboardView, Freshness), AnalyticsError> {
        let cached = self.cache.get_or_load(&owner_scope(owner_id), || self.load_dashboard(owner_id)).await?;
        let freshness = self.freshness(cached.from_cache);
        match cached.value {
            Some(view) => Ok((view, freshness)),
            None => Err(AnalyticsError::Internal(format!("the dashboard of {owner_id} loaded as nothing"))),
        }
    }

    async fn load_event(&self, event_id: &str) -> Result<Option<EventAnalyticsView>, AnalyticsError> {
        let Some(event) = self.repo.event(event_id).await? else { return Ok(None) };
        let hourly = self.repo.hourly(event_id).await?;
        let outcomes = self.repo.outcomes(event_id).await?;
        let snapshots = self.repo.snapshots(event_id).await?;
        Ok(Some(EventAnalyticsView::build(
            &event,
            &hourly,
            &outcomes,
            &snapshots,
            &self.config.values,
            self.clock.now_ms(),
        )))
    }

    async fn load_dashboard(&self, owner_id: &str) -> Result<Option<DashboardView>, AnalyticsError> {
        let events = self.repo.owner_events(owner_id).await?;
        if events.is_empty() {
            return Ok(Some(DashboardView::build(
                owner_id,
                &[],
                &[],
                &[],
                &[],
                &self.config.values,
                self.clock.now_ms(),
            )));
        }
        let counts = self.repo.owner_channel_counts(owner_id).await?;
        let outcomes = self.repo.owner_outcomes(owner_id).await?;
        let snapshots = self.repo.owner_snapshots(owner_id).await?;
        let values = &self.config.values;
        Ok(Some(DashboardView::build(owner_id, &events, &counts, &outcomes, &snapshots, values, self.clock.now_ms())))
    }
}
