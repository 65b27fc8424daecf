//! Request checks. Field names are the camelCase paths REST clients see.

use kem_kit::validate::{self, IdShape, Text};

use super::fact::{MetricsReport, is_real_channel, provider_kind};

/// Longest accepted event id (event ids are the event service's UUIDs; checked for the shape
/// every kem id shares, so garbage never reaches the database or a cache key).
pub const MAX_EVENT_ID_LEN: usize = 64;
/// Longest accepted report id (`<delivery id>:<observe time>` fits easily).
pub const MAX_REPORT_ID_LEN: usize = 256;
/// How far in the future an observation may claim to be (clock skew between services): a
/// snapshot from the future would win over every real one until then.
pub const MAX_CLOCK_SKEW_MS: i64 = 10 * 60 * 1000;

/// One invalid request field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// camelCase field path, e.g. `reportId`.
    pub field: String,
    /// What is wrong and what is expected.
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: &str, description: impl Into<String>) -> FieldViolation {
        FieldViolation { field: field.to_owned(), description: description.into() }
    }
}

/// Longest accepted provider name.
pub const MAX_SOURCE_NAME_CHARS: usize = 100;

/// The checks of an event id in a request.
pub fn check_event_id(event_id: &str) -> Result<(), FieldViolation> {
    validate::id("eventId", event_id, IdShape::Key { max: MAX_EVENT_ID_LEN })
        .map_err(|v| FieldViolation { field: v.field, description: v.description })
}

/// A text check of the platform's rules (`kem_kit::validate`) as a violation of `field`.
fn check_text(field: &str, value: &str, rule: Text, violations: &mut Vec<FieldViolation>) {
    if let Err(e) = validate::check_text(value, rule) {
        violations.push(FieldViolation::new(field, e.to_string()));
    }
}

/// A RecordChannelMetrics request as received.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetricsInput {
    /// Idempotency key.
    pub report_id: String,
    /// The event.
    pub event_id: String,
    /// Channel number.
    pub channel: i32,
    /// Cumulative views.
    pub views: i64,
    /// Cumulative reach.
    pub reach: i64,
    /// Cumulative published deliveries.
    pub deliveries_published: i64,
    /// Cumulative failed deliveries.
    pub deliveries_failed: i64,
    /// Observation time; `None` when the request left it unset.
    pub observed_ms: Option<i64>,
    /// Provider kind number.
    pub source_kind: i32,
    /// Provider name.
    pub source_name: String,
}

impl MetricsInput {
    /// The report, or every violation at once.
    pub fn check(self, now_ms: i64) -> Result<MetricsReport, Vec<FieldViolation>> {
        let mut violations = Vec::new();
        if self.report_id.trim().is_empty() {
            violations.push(FieldViolation::new("reportId", "reportId is required"));
        } else {
            // Idempotency keys come in several forms (UUIDs, `<delivery id>:<observe time>`):
            // bounded and free of control characters rather than of one shape.
            check_text("reportId", &self.report_id, Text::line(MAX_REPORT_ID_LEN), &mut violations);
        }
        if let Err(v) = check_event_id(&self.event_id) {
            violations.push(v);
        }
        if !is_real_channel(self.channel) {
            violations.push(FieldViolation::new(
                "channel",
                "channel must be one of the six channels (CHANNEL_URIDONGNE_TV ... CHANNEL_KAKAO_CHANNEL), not \
                 CHANNEL_UNSPECIFIED",
            ));
        }
        for (field, value) in [
            ("views", self.views),
            ("reach", self.reach),
            ("deliveriesPublished", self.deliveries_published),
            ("deliveriesFailed", self.deliveries_failed),
        ] {
            if value < 0 {
                violations.push(FieldViolation::new(field, format!("{field} must not be negative (got {value})")));
            }
        }
        check_text("provider.name", &self.source_name, Text::line(MAX_SOURCE_NAME_CHARS), &mut violations);
        match self.observed_ms {
            None => violations.push(FieldViolation::new("observeTime", "observeTime is required")),
            Some(at) if at > now_ms.saturating_add(MAX_CLOCK_SKEW_MS) => violations.push(FieldViolation::new(
                "observeTime",
                "observeTime is more than 10 minutes in the future; send the time the values were observed",
            )),
            Some(_) => {}
        }
        if !violations.is_empty() {
            return Err(violations);
        }
        Ok(MetricsReport {
            report_id: self.report_id,
            event_id: self.event_id,
            channel: self.channel,
            views: self.views,
            reach: self.reach,
            deliveries_published: self.deliveries_published,
            deliveries_failed: self.deliveries_failed,
            observed_ms: self.observed_ms.unwrap_or(now_ms),
            source_kind: provider_kind(self.source_kind),
            source_name: self.source_name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> MetricsInput {
        MetricsInput {
            report_id: "r-1".into(),
            event_id: "e-1".into(),
            channel: 4,
            views: 10,
            reach: 5,
            observed_ms: Some(1_000),
            ..MetricsInput::default()
        }
    }

    #[test]
    fn a_complete_report_passes() {
        let report = input().check(1_000).expect("valid");
        assert_eq!((report.channel, report.views, report.observed_ms), (4, 10, 1_000));
    }

    #[test]
    fn every_violation_is_reported_with_its_camel_case_field() {
        let bad = MetricsInput {
            report_id: " ".into(),
            event_id: String::new(),
            channel: 0,
            views: -1,
            reach: -1,
            deliveries_published: -1,
            deliveries_failed: -1,
            observed_ms: None,
            ..MetricsInput::default()
        };
        let fields: Vec<String> = bad.check(0).expect_err("invalid").into_iter().map(|v| v.field).collect();
        assert_eq!(
            fields,
            [
                "reportId",
                "eventId",
                "channel",
                "views",
                "reach",
                "deliveriesPublished",
                "deliveriesFailed",
                "observeTime"
            ]
        );
        let unknown_channel = MetricsInput { channel: 42, ..input() };
        assert_eq!(unknown_channel.check(1_000).expect_err("unknown channel")[0].field, "channel");
        let future = MetricsInput { observed_ms: Some(1_000 + MAX_CLOCK_SKEW_MS + 1), ..input() };
        assert_eq!(future.check(1_000).expect_err("future")[0].field, "observeTime");
    }
}
