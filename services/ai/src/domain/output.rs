//! What the ai service produces: a trend analysis and exactly three recommendations, in the
//! shape the model is asked to write (serde with `deny_unknown_fields`, so an unexpected key is
//! an error, not silently dropped), plus the records kept in the cache and the job ledger.

use serde::{Deserialize, Serialize};

use super::channel::ChannelCopy;
use super::values::{Category, Channel, Method, Weekday};

/// How many recommendations a result holds: exactly three.
pub const RECOMMENDATIONS: usize = 3;

/// A range of money in KRW.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KrwRange {
    /// Lower bound, inclusive.
    pub min: i64,
    /// Upper bound, inclusive.
    pub max: i64,
}

/// Trend analysis for a category in an area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendAnalysis {
    /// Seasonal context for the coming weeks.
    pub seasonality: String,
    /// Popular event types, most popular first.
    pub popular_event_types: Vec<String>,
    /// Best days to run or promote events, best first.
    pub best_days: Vec<Weekday>,
    /// Best hours (0-23, Korea time), best first.
    pub best_hours: Vec<u8>,
    /// Typical prize value per winner.
    pub suggested_prize_range_krw: KrwRange,
    /// Short Korean summary.
    pub summary: String,
}

/// The prize a recommendation proposes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prize {
    /// Short name, e.g. `아메리카노 1잔`.
    pub name: String,
    /// How and where it is redeemed.
    pub description: String,
    /// Number of winners.
    pub winner_count: i32,
    /// Value of one prize in KRW.
    pub unit_value_krw: i64,
}

impl Prize {
    /// What all prizes cost together.
    pub fn total_krw(&self) -> i64 {
        i64::from(self.winner_count).saturating_mul(self.unit_value_krw)
    }
}

/// One recommendation, as the model writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recommendation {
    /// Event title.
    pub title: String,
    /// What the event is and why it fits.
    pub concept: String,
    /// Draw or first-come.
    pub participation_method: Method,
    /// How people take part, in words.
    pub participation_mechanic: String,
    /// The prize.
    pub prize: Prize,
    /// Expected entries over the period.
    pub expected_participants: i64,
    /// Channels, best first.
    pub recommended_channels: Vec<Channel>,
    /// One copy per recommended channel.
    pub channel_copies: Vec<ChannelCopy>,
}

/// The model's answer to a recommendations prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecommendationSet {
    /// Exactly three, best first.
    pub recommendations: Vec<Recommendation>,
}

/// Who produced a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderStamp {
    /// The built-in local stand-in (not the real model).
    pub local: bool,
    /// `claude` or `local:claude`.
    pub name: String,
    /// The model (e.g. `claude-haiku-4-5`), or the local generator's version.
    pub model: String,
    /// The provider's request id (Anthropic `request-id`), empty for local results.
    pub request_id: String,
}

/// A trend analysis with where and when it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrendRecord {
    /// Category analysed.
    pub category: Category,
    /// Area analysed.
    pub region: String,
    /// The analysis.
    pub analysis: TrendAnalysis,
    /// Who produced it.
    pub provider: ProviderStamp,
    /// When it was generated (ms since the Unix epoch).
    pub generated_at_ms: i64,
    /// Served from the cache rather than generated for this request (not stored).
    #[serde(skip)]
    pub cached: bool,
}

/// A recommendation with its id and the figures derived from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Unique within its result, stable for the same cached result.
    pub id: String,
    /// Expected cost per entry in KRW (see [`cost_per_entry`]).
    pub cost_per_entry_krw: i64,
    /// The recommendation.
    pub recommendation: Recommendation,
}

/// Three recommendations for one brief.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generated {
    /// Hex SHA-256 of the normalised brief.
    pub input_hash: String,
    /// The trend analysis the recommendations build on.
    pub trend: TrendRecord,
    /// Exactly three, best first.
    pub proposals: Vec<Proposal>,
    /// Who produced the recommendations.
    pub provider: ProviderStamp,
    /// When they were generated (ms since the Unix epoch).
    pub generated_at_ms: i64,
    /// Served from the cache (or the job ledger) rather than generated now (not stored).
    #[serde(skip)]
    pub cached: bool,
}

impl Generated {
    /// Ids the recommendations of `input_hash` get: `rec-<first 12 hex digits>-<1..3>`.
    pub fn proposal_id(input_hash: &str, index: usize) -> String {
        let short: String = input_hash.chars().take(12).collect();
        format!("rec-{short}-{}", index + 1)
    }

    /// Wraps three validated recommendations with ids and derived costs.
    pub fn proposals(input_hash: &str, budget_krw: Option<i64>, recommendations: Vec<Recommendation>) -> Vec<Proposal> {
        recommendations
            .into_iter()
            .enumerate()
            .map(|(i, recommendation)| Proposal {
                id: Generated::proposal_id(input_hash, i),
                cost_per_entry_krw: cost_per_entry(budget_krw, &recommendation),
                recommendation,
            })
            .collect()
    }
}

/// Expected cost per entry: the budget over the expected entries when a budget is given (the
/// contract's definition); otherwise what the prizes cost over the expected entries, since then
/// the prizes are the spend the recommendation proposes. Rounded to the nearest won.
pub fn cost_per_entry(budget_krw: Option<i64>, recommendation: &Recommendation) -> i64 {
    let spend = budget_krw.unwrap_or_else(|| recommendation.prize.total_krw()).max(0);
    let entries = recommendation.expected_participants.max(1);
    (spend + entries / 2) / entries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recommendation(participants: i64) -> Recommendation {
        Recommendation {
            title: "t".into(),
            concept: "c".into(),
            participation_method: Method::Draw,
            participation_mechanic: "m".into(),
            prize: Prize { name: "p".into(), description: String::new(), winner_count: 10, unit_value_krw: 4_500 },
            expected_participants: participants,
            recommended_channels: vec![Channel::Instagram],
            channel_copies: Vec::new(),
        }
    }

    #[test]
    fn cost_per_entry_uses_the_budget_or_the_prizes() {
        assert_eq!(cost_per_entry(Some(300_000), &recommendation(200)), 1_500);
        assert_eq!(cost_per_entry(Some(100_000), &recommendation(3)), 33_333);
        assert_eq!(cost_per_entry(None, &recommendation(90)), 500);
        assert_eq!(cost_per_entry(Some(1_000), &recommendation(0)), 1_000, "no division by zero");
    }

    #[test]
    fn ids_are_unique_and_stable() {
        let hash = "0123456789abcdef0123";
        let proposals = Generated::proposals(hash, None, vec![recommendation(1), recommendation(2), recommendation(3)]);
        let ids: Vec<&str> = proposals.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["rec-0123456789ab-1", "rec-0123456789ab-2", "rec-0123456789ab-3"]);
    }
}
