//! Conversions between the wire (`kem.ai.v1`, `kem.event.v1`, `kem.messaging.v1`,
//! `kem.common.v1`) and the domain. The one place that knows proto enum numbers; the job reporter
//! and the queue consumer use it too.

use kem_proto::kem::ai::v1 as ai;
use kem_proto::kem::common::v1 as common;
use kem_proto::kem::event::v1 as event;
use kem_proto::kem::messaging::v1 as messaging;

use crate::domain::input::{BriefInput, EventBrief, InvalidInput, PrizeHint, Problems, TrendQuery};
use crate::domain::output::{Generated, Proposal, ProviderStamp, TrendRecord};
use crate::domain::values::{Category, Channel, Method, Objective, Weekday};

/// The domain category of a wire value (`None` for UNSPECIFIED or unknown numbers).
pub fn category(value: i32) -> Option<Category> {
    use common::BusinessCategory as C;
    Some(match C::try_from(value).ok()? {
        C::Unspecified => return None,
        C::Restaurant => Category::Restaurant,
        C::Cafe => Category::Cafe,
        C::Bakery => Category::Bakery,
        C::Bar => Category::Bar,
        C::Beauty => Category::Beauty,
        C::Retail => Category::Retail,
        C::Fitness => Category::Fitness,
        C::Education => Category::Education,
        C::Healthcare => Category::Healthcare,
        C::LocalService => Category::LocalService,
        C::Other => Category::Other,
    })
}

/// The wire value of a category.
pub fn category_value(category: Category) -> i32 {
    use common::BusinessCategory as C;
    (match category {
        Category::Restaurant => C::Restaurant,
        Category::Cafe => C::Cafe,
        Category::Bakery => C::Bakery,
        Category::Bar => C::Bar,
        Category::Beauty => C::Beauty,
        Category::Retail => C::Retail,
        Category::Fitness => C::Fitness,
        Category::Education => C::Education,
        Category::Healthcare => C::Healthcare,
        Category::LocalService => C::LocalService,
        Category::Other => C::Other,
    }) as i32
}

/// The domain objective of a wire value.
pub fn objective(value: i32) -> Option<Objective> {
    use common::EventObjective as O;
    Some(match O::try_from(value).ok()? {
        O::Unspecified => return None,
        O::NewCustomers => Objective::NewCustomers,
        O::Revisits => Objective::Revisits,
        O::Sales => Objective::Sales,
        O::Awareness => Objective::Awareness,
    })
}

/// The domain method of a wire value (`None` for UNSPECIFIED: no preference).
pub fn method(value: i32) -> Option<Method> {
    use common::ParticipationMethod as M;
    match M::try_from(value).ok()? {
        M::Unspecified => None,
        M::Draw => Some(Method::Draw),
        M::FirstCome => Some(Method::FirstCome),
    }
}

/// The wire value of a method.
pub fn method_value(method: Method) -> i32 {
    use common::ParticipationMethod as M;
    (match method {
        Method::Draw => M::Draw,
        Method::FirstCome => M::FirstCome,
    }) as i32
}

/// The domain channel of a wire value (`None` for UNSPECIFIED or unknown numbers): the kit's
/// vocabulary.
pub fn channel(value: i32) -> Option<Channel> {
    Channel::from_number(value)
}

/// The wire value of a channel.
pub fn channel_value(channel: Channel) -> i32 {
    channel.number()
}

fn weekday_value(day: Weekday) -> i32 {
    use ai::Weekday as W;
    (match day {
        Weekday::Monday => W::Monday,
        Weekday::Tuesday => W::Tuesday,
        Weekday::Wednesday => W::Wednesday,
        Weekday::Thursday => W::Thursday,
        Weekday::Friday => W::Friday,
        Weekday::Saturday => W::Saturday,
        Weekday::Sunday => W::Sunday,
    }) as i32
}

/// Epoch milliseconds ↔ protobuf timestamps: the kit's one conversion.
pub use kem_kit::clock::{ms_from_timestamp as millis, timestamp_from_ms as timestamp};

/// A GetTrends request as a trend query.
pub fn trend_query(request: &ai::GetTrendsRequest) -> Result<TrendQuery, InvalidInput> {
    let mut problems = Problems::default();
    let category = category(request.category);
    if category.is_none() {
        problems.add("category", "a business category is required (e.g. BUSINESS_CATEGORY_CAFE)");
    }
    problems.finish_with(TrendQuery::new(category.unwrap_or(Category::Other), &request.region))
}

/// Channels of the wire, each UNSPECIFIED or unknown one a problem of `field`.
fn channels(values: &[i32], field: &str, problems: &mut Problems) -> Vec<Channel> {
    values
        .iter()
        .filter_map(|value| {
            let channel = channel(*value);
            if channel.is_none() {
                problems.add(field, format!("{value} is not a channel (CHANNEL_UNSPECIFIED is not allowed)"));
            }
            channel
        })
        .collect()
}

fn period(period: Option<&common::Period>) -> Option<(i64, i64)> {
    let period = period?;
    Some((millis(period.start_time.as_ref()?), millis(period.end_time.as_ref()?)))
}

/// A GenerateRecommendations request as a brief: objective, store.business_category and period
/// are required.
pub fn brief_from_request(request: &ai::GenerateRecommendationsRequest) -> Result<EventBrief, InvalidInput> {
    let mut problems = Problems::default();
    let store = request.store.clone().unwrap_or_default();
    let category = category(store.business_category);
    if category.is_none() {
        problems.add("store.business_category", "a business category is required");
    }
    let channels = channels(&request.available_channels, "available_channels", &mut problems);
    // Only for correlation and logs, but logged: it must look like an id the event service mints.
    if !request.event_id.is_empty()
        && let Err(v) =
            kem_kit::validate::id("event_id", &request.event_id, kem_kit::validate::IdShape::Key { max: 64 })
    {
        problems.add(&v.field, v.description);
    }
    let brief = EventBrief::new(BriefInput {
        objective: objective(request.objective),
        store_name: store.store_name,
        category,
        region: store.region,
        budget_krw: request.budget.as_ref().map(|m| m.amount_krw),
        period_ms: period(request.period.as_ref()),
        target_audience: request.target_audience.clone(),
        channels,
        additional_instructions: request.additional_instructions.clone(),
        ..BriefInput::default()
    });
    problems.finish_with(brief)
}

/// A queue message as a brief. The store may be unknown (nationwide, category OTHER); channels,
/// prize and method carry the owner's choices so far.
pub fn brief_from_message(message: &messaging::GenerateRecommendations) -> Result<EventBrief, InvalidInput> {
    let mut problems = Problems::default();
    let store = message.store.clone().unwrap_or_default();
    let channels = channels(&message.channels, "channels", &mut problems);
    let prize = message.prize.as_ref().map(|prize| PrizeHint {
        name: prize.name.clone(),
        description: prize.description.clone(),
        winner_count: prize.winner_count,
        unit_value_krw: prize.unit_value.as_ref().map(|m| m.amount_krw),
    });
    let brief = EventBrief::new(BriefInput {
        objective: objective(message.objective),
        store_name: store.store_name,
        category: category(store.business_category),
        region: store.region,
        budget_krw: message.budget.as_ref().map(|m| m.amount_krw),
        period_ms: period(message.period.as_ref()),
        target_audience: message.target_audience.clone(),
        channels,
        additional_instructions: message.additional_instructions.clone(),
        title: message.title.clone(),
        description: message.description.clone(),
        prize,
        method: method(message.participation_method),
    });
    problems.finish_with(brief)
}

/// The provider label of a result.
pub fn provider_info(stamp: &ProviderStamp, cached: bool) -> common::ProviderInfo {
    common::ProviderInfo {
        kind: if stamp.local { common::ProviderKind::Local } else { common::ProviderKind::External } as i32,
        name: stamp.name.clone(),
        model: stamp.model.clone(),
        request_id: stamp.request_id.clone(),
        cached,
    }
}

fn money(amount_krw: i64) -> common::Money {
    common::Money { amount_krw }
}

/// A trend record on the wire; it expires `ttl` after it was generated.
pub fn trend_analysis(record: &TrendRecord, ttl: std::time::Duration) -> ai::TrendAnalysis {
    let analysis = &record.analysis;
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    ai::TrendAnalysis {
        category: category_value(record.category),
        region: record.region.clone(),
        seasonality: analysis.seasonality.clone(),
        popular_event_types: analysis.popular_event_types.clone(),
        best_days: analysis.best_days.iter().map(|d| weekday_value(*d)).collect(),
        best_hours: analysis.best_hours.iter().map(|h| i32::from(*h)).collect(),
        suggested_prize_range: Some(ai::MoneyRange {
            min: Some(money(analysis.suggested_prize_range_krw.min)),
            max: Some(money(analysis.suggested_prize_range_krw.max)),
        }),
        summary: analysis.summary.clone(),
        generate_time: Some(timestamp(record.generated_at_ms)),
        expire_time: Some(timestamp(record.generated_at_ms.saturating_add(ttl_ms))),
        provider: Some(provider_info(&record.provider, record.cached)),
    }
}

fn prize(proposal: &Proposal) -> common::Prize {
    let prize = &proposal.recommendation.prize;
    common::Prize {
        name: prize.name.clone(),
        description: prize.description.clone(),
        winner_count: prize.winner_count,
        unit_value: Some(money(prize.unit_value_krw)),
    }
}

/// `kem.ai.v1.Recommendation` and `kem.event.v1.Recommendation` are the same message in two
/// packages (services never import each other's); one body fills either.
macro_rules! recommendation {
    ($package:ident, $proposal:expr) => {{
        let proposal: &Proposal = $proposal;
        let rec = &proposal.recommendation;
        $package::Recommendation {
            recommendation_id: proposal.id.clone(),
            title: rec.title.clone(),
            concept: rec.concept.clone(),
            participation_method: method_value(rec.participation_method),
            participation_mechanic: rec.participation_mechanic.clone(),
            prize_suggestion: Some(prize(proposal)),
            expected_participants: rec.expected_participants,
            expected_cost_per_entry: Some(money(proposal.cost_per_entry_krw)),
            recommended_channels: rec.recommended_channels.iter().map(|c| channel_value(*c)).collect(),
            channel_copies: rec
                .channel_copies
                .iter()
                .map(|c| $package::ChannelCopy {
                    channel: channel_value(c.channel),
                    text: c.text.clone(),
                    hashtags: c.hashtags.clone(),
                })
                .collect(),
        }
    }};
}

/// A recommendation as the ai contract shows it.
pub fn ai_recommendation(proposal: &Proposal) -> ai::Recommendation {
    recommendation!(ai, proposal)
}

/// A recommendation as the event service stores it.
pub fn event_recommendation(proposal: &Proposal) -> event::Recommendation {
    recommendation!(event, proposal)
}

/// The result of a recommendations job.
pub fn recommendations_result(result: &Generated) -> event::RecommendationsResult {
    event::RecommendationsResult {
        recommendations: result.proposals.iter().map(event_recommendation).collect(),
        trend_summary: result.trend.analysis.summary.clone(),
        provider: Some(provider_info(&result.provider, result.cached)),
    }
}

/// The GenerateRecommendations response.
pub fn generate_response(result: &Generated, ttl: std::time::Duration) -> ai::GenerateRecommendationsResponse {
    ai::GenerateRecommendationsResponse {
        recommendations: result.proposals.iter().map(ai_recommendation).collect(),
        trend_analysis: Some(trend_analysis(&result.trend, ttl)),
        input_hash: result.input_hash.clone(),
        provider: Some(provider_info(&result.provider, result.cached)),
        generate_time: Some(timestamp(result.generated_at_ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_enum_round_trips() {
        for c in Category::ALL {
            assert_eq!(category(category_value(*c)), Some(*c));
        }
        for c in Channel::ALL {
            assert_eq!(channel(channel_value(c)), Some(c));
        }
        for m in Method::ALL {
            assert_eq!(method(method_value(*m)), Some(*m));
        }
        assert_eq!((category(0), channel(0), method(0), objective(0)), (None, None, None, None));
        assert_eq!((category(99), channel(-1), objective(7)), (None, None, None));
    }

    #[test]
    fn timestamps_round_trip() {
        for ms in [0, 1_761_922_800_123, -1] {
            assert_eq!(millis(&timestamp(ms)), ms);
        }
    }

    #[test]
    fn requests_report_every_missing_field() {
        let invalid = brief_from_request(&ai::GenerateRecommendationsRequest {
            available_channels: vec![0],
            ..Default::default()
        })
        .expect_err("invalid");
        let fields: Vec<&str> = invalid.0.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["store.business_category", "available_channels", "objective", "period"]);
        let trends = trend_query(&ai::GetTrendsRequest { category: 0, region: String::new() }).expect_err("invalid");
        let fields: Vec<&str> = trends.0.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["category", "region"]);
        let no_category =
            trend_query(&ai::GetTrendsRequest { category: 0, region: "서울".into() }).expect_err("invalid");
        assert_eq!(no_category.0.len(), 1);
    }

    #[test]
    fn messages_without_a_store_are_nationwide() {
        let message = messaging::GenerateRecommendations {
            job_id: "j".into(),
            objective: common::EventObjective::Sales as i32,
            period: Some(common::Period { start_time: Some(timestamp(0)), end_time: Some(timestamp(86_400_000)) }),
            prize: Some(common::Prize { name: "쿠키".into(), winner_count: 3, ..Default::default() }),
            participation_method: common::ParticipationMethod::FirstCome as i32,
            ..Default::default()
        };
        let brief = brief_from_message(&message).expect("valid");
        assert_eq!((brief.category, brief.region.as_str()), (Category::Other, "전국"));
        assert_eq!(brief.method, Some(Method::FirstCome));
        assert_eq!(brief.prize.as_ref().map(|p| p.winner_count), Some(3));
    }
}
