//! The arithmetic of the contract: hour buckets, cost per entry, estimated value and ROI, and
//! whether an event is running. Pure functions over whole won and epoch milliseconds.

use std::collections::BTreeMap;

use kem_proto::kem::event::v1::EventStatus;

/// One hour in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;

/// The start of the UTC hour holding `at_ms` (also a whole hour in Korea time, UTC+9).
pub fn hour_start(at_ms: i64) -> i64 {
    at_ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// `budget / participants` rounded down to whole won; `None` without participants.
pub fn cost_per_entry(budget_krw: i64, participants: i64) -> Option<i64> {
    (participants > 0).then(|| budget_krw.max(0) / participants)
}

/// `participants x value_per_participant`, saturating.
pub fn estimated_value(participants: i64, value_per_participant_krw: i64) -> i64 {
    participants.max(0).saturating_mul(value_per_participant_krw.max(0))
}

/// `(estimated_value - budget) / budget`; `None` when the budget is 0.
pub fn roi(estimated_value_krw: i64, budget_krw: i64) -> Option<f64> {
    (budget_krw > 0).then(|| (estimated_value_krw as f64 - budget_krw as f64) / budget_krw as f64)
}

/// When an event runs: `[start, end)` in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Period {
    /// Inclusive start.
    pub start_ms: i64,
    /// Exclusive end.
    pub end_ms: i64,
}

impl Period {
    /// Whether `now_ms` is inside the period.
    pub fn contains(&self, now_ms: i64) -> bool {
        self.start_ms <= now_ms && now_ms < self.end_ms
    }
}

/// "Published and inside its period" (the contract's `active`).
pub fn is_active(status: i32, period: Option<Period>, now_ms: i64) -> bool {
    status == EventStatus::Published as i32 && period.is_some_and(|p| p.contains(now_ms))
}

/// Whether a status means the event has been published (PUBLISHED or ENDED).
pub fn is_published_status(status: i32) -> bool {
    status == EventStatus::Published as i32 || status == EventStatus::Ended as i32
}

/// The estimated value of one entry, per business category (`kem.common.v1.BusinessCategory`
/// numbers), with a default for categories without their own figure and for events whose
/// category is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueTable {
    /// Value of an entry when the category has no figure of its own, in KRW.
    pub default_krw: i64,
    /// Figures per category number.
    pub per_category: BTreeMap<i32, i64>,
}

impl ValueTable {
    /// The value of one entry for `category`.
    pub fn value_for(&self, category: i32) -> i64 {
        self.per_category.get(&category).copied().unwrap_or(self.default_krw).max(0)
    }
}

impl Default for ValueTable {
    /// ₩10,000 per entry for every category.
    fn default() -> Self {
        ValueTable { default_krw: 10_000, per_category: BTreeMap::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_are_aligned_even_before_the_epoch() {
        assert_eq!(hour_start(0), 0);
        assert_eq!(hour_start(HOUR_MS - 1), 0);
        assert_eq!(hour_start(HOUR_MS), HOUR_MS);
        assert_eq!(hour_start(1_700_000_123_456), 1_699_999_200_000);
        assert_eq!(hour_start(-1), -HOUR_MS);
    }

    #[test]
    fn cost_per_entry_rounds_down_and_needs_entries() {
        assert_eq!(cost_per_entry(1_000_000, 30), Some(33_333));
        assert_eq!(cost_per_entry(1_000_000, 0), None);
        assert_eq!(cost_per_entry(0, 5), Some(0));
        assert_eq!(cost_per_entry(10, 3), Some(3));
    }

    #[test]
    fn roi_follows_the_contract() {
        assert_eq!(roi(1_500_000, 1_000_000), Some(0.5));
        assert_eq!(roi(0, 1_000_000), Some(-1.0));
        assert_eq!(roi(500, 0), None);
        assert_eq!(estimated_value(30, 50_000), 1_500_000);
        assert_eq!(estimated_value(i64::MAX, 2), i64::MAX);
    }

    #[test]
    fn active_means_published_and_inside_the_period() {
        let period = Some(Period { start_ms: 100, end_ms: 200 });
        let published = EventStatus::Published as i32;
        assert!(is_active(published, period, 100));
        assert!(!is_active(published, period, 200), "the end is exclusive");
        assert!(!is_active(published, period, 99));
        assert!(!is_active(EventStatus::Ended as i32, period, 150));
        assert!(!is_active(published, None, 150));
    }

    #[test]
    fn categories_fall_back_to_the_default() {
        let table = ValueTable { default_krw: 10_000, per_category: BTreeMap::from([(2, 7_000)]) };
        assert_eq!(table.value_for(2), 7_000);
        assert_eq!(table.value_for(0), 10_000);
        assert_eq!(table.value_for(9), 10_000);
    }
}
