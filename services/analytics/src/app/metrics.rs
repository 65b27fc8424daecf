//! RecordChannelMetrics: channel reports (views, reach, deliveries) from distribution.

use super::{AnalyticsCore, AnalyticsError};
use crate::domain::{MetricsInput, Recorded};
use crate::infra::repository::Touched;

impl AnalyticsCore {
    /// RecordChannelMetrics: stores the report unless seen before or older than the stored one.
    pub async fn record_metrics(&self, input: MetricsInput) -> Result<Recorded, AnalyticsError> {
        let now = self.clock.now_ms();
        let report = input.check(now).map_err(AnalyticsError::Invalid)?;
        let (recorded, touched) = self.repo.record_metrics(&report, now).await?;
        if let Some(Touched::Changed { owner_id }) = touched {
            self.invalidate(&report.event_id, &owner_id).await;
        }
        tracing::debug!(
            report_id = %report.report_id, event_id = %report.event_id, channel = report.channel,
            duplicate = recorded.duplicate, stale = recorded.stale, "channel metrics recorded"
        );
        Ok(recorded)
    }
}
