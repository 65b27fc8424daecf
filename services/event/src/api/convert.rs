//! Mapping between the domain and the published protobuf contracts (`kem.event.v1`,
//! `kem.common.v1`), shared by the gRPC adapter (`api`) and the queue-message encoder (`infra`).
//!
//! Domain → proto is total. Proto → domain keeps what a client sent as-is (unknown enum numbers,
//! malformed timestamps) so that validation can report it as a field violation.

use kem_kit::validate::{IdShape, Text, id};
use kem_proto::google::rpc::Status as RpcStatus;
use kem_proto::kem::common::v1 as common;
use kem_proto::kem::event::v1 as proto;
use prost_types::Timestamp;

use crate::app::PublicView;
use crate::domain::event::Event;
use crate::domain::job::{
    FailureDetail, ImagesResult, Job, JobFailure, JobKind, JobResult, JobState, RecommendationsResult, Report,
    StyleResult,
};
use crate::domain::lifecycle::EventStatus;
use crate::domain::public::PublicState;
use crate::domain::terms::Terms;
use crate::domain::validation::{EnumInput, EventInput, PeriodInput, PrizeInput, TimeInput, ValidationError};
use crate::domain::values::{
    BusinessCategory, Channel, ChannelCopy, EntryRules, ImageStyle, Money, Objective, ParticipationMethod, Period,
    Prize, ProviderInfo, ProviderKind, Recommendation,
};

// ---- enums --------------------------------------------------------------------------------------

/// Domain ↔ proto for one enum: `to_proto`, and `from_proto` (None for UNSPECIFIED).
macro_rules! enum_map {
    ($to:ident, $from:ident, $domain:ty, $proto:ty, { $($d:ident <=> $p:ident),+ $(,)? }) => {
        /// The proto value of a domain value.
        pub fn $to(value: $domain) -> $proto {
            match value {
                $(<$domain>::$d => <$proto>::$p),+
            }
        }

        /// The domain value of a proto number: unset for 0, unknown for numbers outside the enum.
        pub fn $from(number: i32) -> EnumInput<$domain> {
            match <$proto>::try_from(number) {
                $(Ok(<$proto>::$p) => EnumInput::Known(<$domain>::$d),)+
                Ok(_) => EnumInput::Unset,
                Err(_) => EnumInput::Unknown(number),
            }
        }
    };
}

enum_map!(objective_to_proto, objective_from_proto, Objective, common::EventObjective, {
    NewCustomers <=> NewCustomers, Revisits <=> Revisits, Sales <=> Sales, Awareness <=> Awareness,
});
enum_map!(method_to_proto, method_from_proto, ParticipationMethod, common::ParticipationMethod, {
    Draw <=> Draw, FirstCome <=> FirstCome,
});
enum_map!(style_to_proto, style_from_proto, ImageStyle, common::ImageStyle, {
    Simple <=> Simple, Fancy <=> Fancy, Trendy <=> Trendy,
});
enum_map!(category_to_proto, category_from_proto, BusinessCategory, common::BusinessCategory, {
    Restaurant <=> Restaurant, Cafe <=> Cafe, Bakery <=> Bakery, Bar <=> Bar, Beauty <=> Beauty, Retail <=> Retail,
    Fitness <=> Fitness, Education <=> Education, Healthcare <=> Healthcare, LocalService <=> LocalService,
    Other <=> Other,
});
enum_map!(status_to_proto, status_from_proto, EventStatus, proto::EventStatus, {
    Draft <=> Draft, Recommended <=> Recommended, ContentReady <=> ContentReady, Published <=> Published,
    Ended <=> Ended,
});

/// The proto value of a channel.
pub fn channel_to_proto(channel: Channel) -> common::Channel {
    channel.to_proto()
}

/// The channel of a proto number: unset for 0, unknown for numbers outside the enum.
pub fn channel_from_proto(number: i32) -> EnumInput<Channel> {
    match Channel::from_number(number) {
        Some(channel) => EnumInput::Known(channel),
        None if number == 0 => EnumInput::Unset,
        None => EnumInput::Unknown(number),
    }
}

fn provider_kind_to_proto(kind: ProviderKind) -> common::ProviderKind {
    match kind {
        ProviderKind::Unspecified => common::ProviderKind::Unspecified,
        ProviderKind::External => common::ProviderKind::External,
        ProviderKind::Local => common::ProviderKind::Local,
    }
}

fn job_kind_to_proto(kind: JobKind) -> proto::JobKind {
    match kind {
        JobKind::Recommendations => proto::JobKind::Recommendations,
        JobKind::Images => proto::JobKind::Images,
    }
}

fn job_state_to_proto(state: JobState) -> proto::JobState {
    match state {
        JobState::Pending => proto::JobState::Pending,
        JobState::Running => proto::JobState::Running,
        JobState::Succeeded => proto::JobState::Succeeded,
        JobState::Failed => proto::JobState::Failed,
    }
}

/// Channel numbers of a list.
pub fn channels_to_proto(channels: &[Channel]) -> Vec<i32> {
    channels.iter().map(|c| channel_to_proto(*c) as i32).collect()
}

/// Channel list as received.
pub fn channels_from_proto(numbers: &[i32]) -> Vec<EnumInput<Channel>> {
    numbers.iter().copied().map(channel_from_proto).collect()
}

/// Style list as received.
pub fn styles_from_proto(numbers: &[i32]) -> Vec<EnumInput<ImageStyle>> {
    numbers.iter().copied().map(style_from_proto).collect()
}

// ---- time ---------------------------------------------------------------------------------------

/// `0001-01-01T00:00:00Z`, the earliest valid `google.protobuf.Timestamp`.
const MIN_SECONDS: i64 = -62_135_596_800;
/// `9999-12-31T23:59:59Z`, the latest.
const MAX_SECONDS: i64 = 253_402_300_799;

/// Milliseconds → Timestamp (the kit's one conversion).
pub use kem_kit::clock::timestamp_from_ms as timestamp;

/// Timestamp → milliseconds (sub-millisecond precision is dropped), or why it is invalid.
pub fn millis_of(ts: &Timestamp) -> TimeInput {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err("nanos must be between 0 and 999,999,999");
    }
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&ts.seconds) {
        return Err("must be between 0001-01-01 and 9999-12-31");
    }
    Ok(kem_kit::clock::ms_from_timestamp(ts))
}

fn duration(d: std::time::Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

// ---- values -------------------------------------------------------------------------------------

/// Money → proto.
pub fn money(m: Money) -> common::Money {
    common::Money { amount_krw: m.amount_krw }
}

/// Period → proto.
pub fn period(p: Period) -> common::Period {
    common::Period { start_time: Some(timestamp(p.start)), end_time: Some(timestamp(p.end)) }
}

/// Prize → proto.
pub fn prize(p: &Prize) -> common::Prize {
    common::Prize {
        name: p.name.clone(),
        description: p.description.clone(),
        winner_count: p.winner_count,
        unit_value: p.unit_value.map(money),
    }
}

fn provider(p: &ProviderInfo) -> common::ProviderInfo {
    common::ProviderInfo {
        kind: provider_kind_to_proto(p.kind) as i32,
        name: p.name.clone(),
        model: p.model.clone(),
        request_id: p.request_id.clone(),
        cached: p.cached,
    }
}

/// Channel copy → proto.
pub fn channel_copy(c: &ChannelCopy) -> proto::ChannelCopy {
    proto::ChannelCopy {
        channel: channel_to_proto(c.channel) as i32,
        text: c.text.clone(),
        hashtags: c.hashtags.clone(),
    }
}

/// Recommendation → proto.
pub fn recommendation(r: &Recommendation) -> proto::Recommendation {
    proto::Recommendation {
        recommendation_id: r.id.clone(),
        title: r.title.clone(),
        concept: r.concept.clone(),
        participation_method: r.participation_method.map_or(0, |m| method_to_proto(m) as i32),
        participation_mechanic: r.participation_mechanic.clone(),
        prize_suggestion: r.prize_suggestion.as_ref().map(prize),
        expected_participants: r.expected_participants,
        expected_cost_per_entry: r.expected_cost_per_entry.map(money),
        recommended_channels: channels_to_proto(&r.recommended_channels),
        channel_copies: r.channel_copies.iter().map(channel_copy).collect(),
    }
}

// ---- event and job ------------------------------------------------------------------------------

/// Event → proto (what owners and peers see).
pub fn event(e: &Event) -> proto::Event {
    proto::Event {
        event_id: e.id.clone(),
        owner_id: e.owner_id.clone(),
        title: e.spec.title.clone(),
        description: e.spec.description.clone(),
        objective: objective_to_proto(e.spec.objective) as i32,
        target_audience: e.spec.target_audience.clone(),
        budget: e.spec.budget.map(money),
        period: Some(period(e.spec.period)),
        prize: e.spec.prize.as_ref().map(prize),
        participation_method: method_to_proto(e.spec.participation_method) as i32,
        channels: channels_to_proto(&e.spec.channels),
        status: status_to_proto(e.status) as i32,
        selected_recommendation: e.selected_recommendation.as_ref().map(recommendation),
        selected_image_id: e.selected_image_id.clone().unwrap_or_default(),
        create_time: Some(timestamp(e.created_at)),
        update_time: Some(timestamp(e.updated_at)),
        publish_time: e.published_at.map(timestamp),
        end_time: e.ended_at.map(timestamp),
        etag: e.etag(),
        recommendations_job_id: e.recommendations_job_id.clone().unwrap_or_default(),
        images_job_id: e.images_job_id.clone().unwrap_or_default(),
        auto_draw: e.spec.auto_draw,
        retention_days: e.spec.retention_days,
        terms: e.terms.as_ref().map(terms),
        entry_rules: Some(entry_rules(e.spec.entry_rules)),
        claim_days: e.spec.claim_days,
        anonymize_time: e.anonymize_time.map(timestamp),
    }
}

/// Entry rules → proto.
pub fn entry_rules(r: EntryRules) -> proto::EntryRules {
    proto::EntryRules { verify_phone: r.verify_phone, max_entries_per_address: r.max_entries_per_address }
}

/// Terms → proto.
pub fn terms(t: &Terms) -> proto::Terms {
    proto::Terms {
        version: t.version.clone(),
        sha256: t.sha256.clone(),
        controller: t.controller.clone(),
        items: t.items.clone(),
        purpose: t.purpose.clone(),
        retention_days: t.retention_days,
        text: t.text.clone(),
        text_en: t.text_en.clone(),
        create_time: Some(timestamp(t.created_at)),
    }
}

/// The public state → proto.
pub fn public_state(state: PublicState) -> proto::PublicEventState {
    match state {
        PublicState::Upcoming => proto::PublicEventState::Upcoming,
        PublicState::Open => proto::PublicEventState::Open,
        PublicState::Closed => proto::PublicEventState::Closed,
        PublicState::Drawn => proto::PublicEventState::Drawn,
    }
}

/// What the public sees of an event (see [`PublicView`]).
pub fn public_event(view: &PublicView) -> proto::PublicEvent {
    let e = &view.event;
    proto::PublicEvent {
        event_id: e.id.clone(),
        title: e.spec.title.clone(),
        description: e.spec.description.clone(),
        copy: e.selected_recommendation.as_ref().map(|r| r.concept.clone()).unwrap_or_default(),
        // The prize's value is the owner's business, not the public's.
        prize: e.spec.prize.as_ref().map(|p| common::Prize { unit_value: None, ..prize(p) }),
        period: Some(period(e.spec.period)),
        participation_method: method_to_proto(e.spec.participation_method) as i32,
        state: public_state(view.state) as i32,
        image_url: view.image_url.clone(),
        terms: e.terms.as_ref().map(terms),
        store_name: e.terms.as_ref().map(|t| t.controller.clone()).unwrap_or_default(),
        entry_url: view.entry_url.clone(),
        channel_links: view
            .channel_links
            .iter()
            .map(|(channel, url)| proto::ChannelLink { channel: channel_to_proto(*channel) as i32, url: url.clone() })
            .collect(),
        auto_draw: e.spec.auto_draw,
        entry_rules: Some(entry_rules(e.spec.entry_rules)),
        claim_days: e.spec.claim_days,
    }
}

/// Job → proto; `poll_interval` is suggested while the job is not terminal.
pub fn job(j: &Job, poll_interval: std::time::Duration) -> proto::Job {
    let result = match (&j.result, j.state) {
        (Some(JobResult::Recommendations(r)), JobState::Succeeded) => {
            Some(proto::job::Result::Recommendations(proto::RecommendationsResult {
                recommendations: r.recommendations.iter().map(recommendation).collect(),
                trend_summary: r.trend_summary.clone(),
                provider: r.provider.as_ref().map(provider),
            }))
        }
        (Some(JobResult::Images(r)), JobState::Succeeded) => Some(proto::job::Result::Images(proto::ImagesResult {
            image_ids: r.image_ids.clone(),
            provider: r.provider.as_ref().map(provider),
            style_results: r
                .style_results
                .iter()
                .map(|s| proto::ImageStyleResult {
                    style: s.style,
                    image_ids: s.image_ids.clone(),
                    error: s.error.as_ref().map(failure_status),
                })
                .collect(),
            failed_styles: r.failed_styles.clone(),
        })),
        _ => None,
    };
    let error = match (&j.failure, j.state) {
        (Some(f), JobState::Failed) => Some(RpcStatus {
            code: f.code,
            message: f.message.clone(),
            details: f
                .details
                .iter()
                .map(|d| prost_types::Any { type_url: d.type_url.clone(), value: d.value.clone() })
                .collect(),
        }),
        _ => None,
    };
    proto::Job {
        job_id: j.id.clone(),
        event_id: j.event_id.clone(),
        kind: job_kind_to_proto(j.kind()) as i32,
        state: job_state_to_proto(j.state) as i32,
        result,
        error,
        create_time: Some(timestamp(j.created_at)),
        update_time: Some(timestamp(j.updated_at)),
        poll_interval: (!j.state.is_terminal()).then(|| duration(poll_interval)),
    }
}

// ---- inputs -------------------------------------------------------------------------------------

/// The owner-editable fields of a proto event, as received.
pub fn event_input(e: &proto::Event) -> EventInput {
    EventInput {
        title: e.title.clone(),
        description: e.description.clone(),
        objective: objective_from_proto(e.objective),
        target_audience: e.target_audience.clone(),
        budget: e.budget.as_ref().map(|m| m.amount_krw),
        period: e.period.as_ref().map(|p| PeriodInput {
            start: p.start_time.as_ref().map(millis_of),
            end: p.end_time.as_ref().map(millis_of),
        }),
        prize: e.prize.as_ref().map(prize_input),
        participation_method: method_from_proto(e.participation_method),
        channels: channels_from_proto(&e.channels),
        auto_draw: e.auto_draw,
        retention_days: e.retention_days,
        // An absent message reads as the defaults (no verification, no limit).
        entry_rules: e
            .entry_rules
            .as_ref()
            .map(|r| EntryRules { verify_phone: r.verify_phone, max_entries_per_address: r.max_entries_per_address })
            .unwrap_or_default(),
        claim_days: e.claim_days,
    }
}

fn prize_input(p: &common::Prize) -> PrizeInput {
    PrizeInput {
        name: p.name.clone(),
        description: p.description.clone(),
        winner_count: p.winner_count,
        unit_value: p.unit_value.as_ref().map(|m| m.amount_krw),
    }
}

fn prize_from_proto(p: &common::Prize) -> Prize {
    Prize {
        name: p.name.trim().to_owned(),
        description: p.description.clone(),
        winner_count: p.winner_count,
        unit_value: p.unit_value.as_ref().map(|m| Money { amount_krw: m.amount_krw }),
    }
}

fn provider_from_proto(p: &common::ProviderInfo) -> ProviderInfo {
    let kind = match common::ProviderKind::try_from(p.kind) {
        Ok(common::ProviderKind::External) => ProviderKind::External,
        Ok(common::ProviderKind::Local) => ProviderKind::Local,
        _ => ProviderKind::Unspecified,
    };
    ProviderInfo {
        kind,
        name: p.name.clone(),
        model: p.model.clone(),
        request_id: p.request_id.clone(),
        cached: p.cached,
    }
}

fn known_channel(number: i32, field: String, errors: &mut ValidationError) -> Option<Channel> {
    match channel_from_proto(number) {
        EnumInput::Known(c) => Some(c),
        EnumInput::Unset => {
            errors.push(field, "CHANNEL_UNSPECIFIED is not a channel");
            None
        }
        EnumInput::Unknown(n) => {
            errors.push(field, format!("{n} is not a known channel"));
            None
        }
    }
}

fn recommendation_from_proto(r: &proto::Recommendation, at: &str, errors: &mut ValidationError) -> Recommendation {
    let participation_method = match method_from_proto(r.participation_method) {
        EnumInput::Known(m) => Some(m),
        EnumInput::Unset => None,
        EnumInput::Unknown(n) => {
            errors.push(format!("{at}.participationMethod"), format!("{n} is not a known participation method"));
            None
        }
    };
    let recommended_channels = r
        .recommended_channels
        .iter()
        .enumerate()
        .filter_map(|(i, c)| known_channel(*c, format!("{at}.recommendedChannels[{i}]"), errors))
        .collect();
    let channel_copies = r
        .channel_copies
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let channel = known_channel(c.channel, format!("{at}.channelCopies[{i}].channel"), errors)?;
            Some(ChannelCopy { channel, text: c.text.clone(), hashtags: c.hashtags.clone() })
        })
        .collect();
    Recommendation {
        id: r.recommendation_id.trim().to_owned(),
        title: r.title.clone(),
        concept: r.concept.clone(),
        participation_method,
        participation_mechanic: r.participation_mechanic.clone(),
        prize_suggestion: r.prize_suggestion.as_ref().map(prize_from_proto),
        expected_participants: r.expected_participants,
        expected_cost_per_entry: r.expected_cost_per_entry.as_ref().map(|m| Money { amount_krw: m.amount_krw }),
        recommended_channels,
        channel_copies,
    }
}

/// Longest free text a worker may report (titles and concepts are bounded tighter by the job's
/// own rules); reports are stored and shown to owners, so they get the same character rules as
/// owner input.
const REPORT_TEXT: Text = Text::prose(10_000);
/// Provider labels and hashtags.
const REPORT_LABEL: Text = Text::line(1_000);
/// Recommendation ids (ai) and image ids (content), minted by the reporting peers.
const REPORTED_ID: IdShape = IdShape::Key { max: 64 };

/// A non-empty reported id of the shape peers mint (empty ones are the job rules' to report).
fn check_id(field: String, value: &str, errors: &mut ValidationError) {
    if value.is_empty() {
        return;
    }
    if let Err(v) = id(&field, value, REPORTED_ID) {
        errors.push(field, v.description);
    }
}

fn check_provider(p: Option<&common::ProviderInfo>, at: &str, errors: &mut ValidationError) {
    if let Some(p) = p {
        errors.text(format!("{at}.provider.name"), &p.name, REPORT_LABEL);
        errors.text(format!("{at}.provider.model"), &p.model, REPORT_LABEL);
        errors.text(format!("{at}.provider.requestId"), &p.request_id, REPORT_LABEL);
    }
}

/// The characters and ids of a reported recommendation (the job checks lengths and counts).
fn check_recommendation(r: &proto::Recommendation, at: &str, errors: &mut ValidationError) {
    check_id(format!("{at}.recommendationId"), r.recommendation_id.trim(), errors);
    errors.text(format!("{at}.title"), &r.title, REPORT_TEXT);
    errors.text(format!("{at}.concept"), &r.concept, REPORT_TEXT);
    errors.text(format!("{at}.participationMechanic"), &r.participation_mechanic, REPORT_TEXT);
    for (j, copy) in r.channel_copies.iter().enumerate() {
        errors.text(format!("{at}.channelCopies[{j}].text"), &copy.text, REPORT_TEXT);
        for (k, tag) in copy.hashtags.iter().enumerate() {
            errors.text(format!("{at}.channelCopies[{j}].hashtags[{k}]"), tag, REPORT_LABEL);
        }
    }
}

/// A worker's report, as the domain sees it (enum values, ids and characters checked; the rest is
/// checked by the job).
pub fn report(outcome: Option<&proto::report_job_result_request::Outcome>) -> Result<Report, ValidationError> {
    use proto::report_job_result_request::Outcome;
    let Some(outcome) = outcome else {
        return Err(ValidationError::one("outcome", "set exactly one of started, recommendations, images or error"));
    };
    let mut errors = ValidationError::default();
    match outcome {
        Outcome::Started(_) => {}
        Outcome::Recommendations(r) => {
            for (i, rec) in r.recommendations.iter().enumerate() {
                check_recommendation(rec, &format!("recommendations.recommendations[{i}]"), &mut errors);
            }
            errors.text("recommendations.trendSummary", &r.trend_summary, REPORT_TEXT);
            check_provider(r.provider.as_ref(), "recommendations", &mut errors);
        }
        Outcome::Images(r) => {
            for (i, image_id) in r.image_ids.iter().enumerate() {
                check_id(format!("images.imageIds[{i}]"), image_id.trim(), &mut errors);
            }
            for (i, style) in r.style_results.iter().enumerate() {
                for (j, image_id) in style.image_ids.iter().enumerate() {
                    check_id(format!("images.styleResults[{i}].imageIds[{j}]"), image_id.trim(), &mut errors);
                }
                if let Some(error) = &style.error {
                    errors.text(format!("images.styleResults[{i}].error.message"), &error.message, REPORT_TEXT);
                }
            }
            check_provider(r.provider.as_ref(), "images", &mut errors);
        }
        Outcome::Error(status) => errors.text("error.message", &status.message, REPORT_TEXT),
    }
    let report = match outcome {
        Outcome::Started(_) => Report::Started,
        Outcome::Recommendations(r) => {
            let recommendations = r
                .recommendations
                .iter()
                .enumerate()
                .map(|(i, rec)| {
                    recommendation_from_proto(rec, &format!("recommendations.recommendations[{i}]"), &mut errors)
                })
                .collect();
            Report::Recommendations(RecommendationsResult {
                recommendations,
                trend_summary: r.trend_summary.clone(),
                provider: r.provider.as_ref().map(provider_from_proto),
            })
        }
        Outcome::Images(r) => Report::Images(ImagesResult {
            image_ids: r.image_ids.iter().map(|id| id.trim().to_owned()).collect(),
            provider: r.provider.as_ref().map(provider_from_proto),
            style_results: r
                .style_results
                .iter()
                .map(|s| StyleResult {
                    style: s.style,
                    image_ids: s.image_ids.iter().map(|id| id.trim().to_owned()).collect(),
                    error: s.error.as_ref().map(failure_from_status),
                })
                .collect(),
            failed_styles: r.failed_styles.clone(),
        }),
        Outcome::Error(status) => Report::Failed(JobFailure {
            code: status.code,
            message: status.message.clone(),
            details: status
                .details
                .iter()
                .map(|d| FailureDetail { type_url: d.type_url.clone(), value: d.value.clone() })
                .collect(),
        }),
    };
    errors.into_result(report)
}

/// A stored failure as a `google.rpc.Status`.
fn failure_status(f: &JobFailure) -> RpcStatus {
    RpcStatus {
        code: f.code,
        message: f.message.clone(),
        details: f
            .details
            .iter()
            .map(|d| prost_types::Any { type_url: d.type_url.clone(), value: d.value.clone() })
            .collect(),
    }
}

/// A reported `google.rpc.Status` as a stored failure.
fn failure_from_status(status: &RpcStatus) -> JobFailure {
    JobFailure {
        code: status.code,
        message: status.message.clone(),
        details: status
            .details
            .iter()
            .map(|d| FailureDetail { type_url: d.type_url.clone(), value: d.value.clone() })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_at_millisecond_precision() {
        for ms in [0, 1, 999, 1_730_000_000_123, -1, -1_001] {
            assert_eq!(millis_of(&timestamp(ms)), Ok(ms), "{ms}");
        }
        assert_eq!(millis_of(&Timestamp { seconds: 1, nanos: 2_999_999 }), Ok(1_002));
        assert!(millis_of(&Timestamp { seconds: 1, nanos: -1 }).is_err());
        assert!(millis_of(&Timestamp { seconds: 1, nanos: 1_000_000_000 }).is_err());
        assert!(millis_of(&Timestamp { seconds: MAX_SECONDS + 1, nanos: 0 }).is_err());
        assert!(millis_of(&Timestamp { seconds: i64::MIN, nanos: 0 }).is_err());
    }

    #[test]
    fn enums_map_both_ways_and_keep_unknown_numbers() {
        for c in &Channel::ALL {
            assert_eq!(channel_from_proto(channel_to_proto(*c) as i32), EnumInput::Known(*c));
        }
        for s in EventStatus::ALL {
            assert_eq!(status_from_proto(status_to_proto(s) as i32), EnumInput::Known(s));
        }
        for o in Objective::ALL {
            assert_eq!(objective_from_proto(objective_to_proto(*o) as i32), EnumInput::Known(*o));
        }
        assert_eq!(channel_from_proto(0), EnumInput::Unset);
        assert_eq!(channel_from_proto(99), EnumInput::Unknown(99));
        assert_eq!(style_from_proto(-4), EnumInput::Unknown(-4));
    }

    #[test]
    fn reports_reject_unknown_enums_with_their_paths() {
        use proto::report_job_result_request::Outcome;
        let rec = proto::Recommendation {
            recommendation_id: "r".into(),
            recommended_channels: vec![4, 0, 42],
            channel_copies: vec![proto::ChannelCopy { channel: 9, text: "t".into(), hashtags: vec![] }],
            ..Default::default()
        };
        let outcome =
            Outcome::Recommendations(proto::RecommendationsResult { recommendations: vec![rec], ..Default::default() });
        let error = report(Some(&outcome)).expect_err("invalid");
        let fields: Vec<&str> = error.violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "recommendations.recommendations[0].recommendedChannels[1]",
                "recommendations.recommendations[0].recommendedChannels[2]",
                "recommendations.recommendations[0].channelCopies[0].channel",
            ]
        );
        assert!(report(None).is_err());
        assert_eq!(report(Some(&Outcome::Started(proto::JobStarted::default()))), Ok(Report::Started));
    }
}
