//! The queue messages of the service: the `DistributionJob` it consumes and the analytics
//! `AnalyticsEvent { ChannelOutcome }` it produces (protobuf binary, `application/protobuf`,
//! `type` and `event_id` application properties, deterministic message ids).

use std::collections::BTreeMap;

use kem_kit::queue::{OutgoingMessage, names};
use kem_proto::kem::common::v1 as common;
use kem_proto::kem::messaging::v1 as msg;
use prost::Message;

use crate::domain::{
    Channel, Copy, Delivery, JobError, JobSpec, OutcomeFact, PrizeSpec, ProviderLabel, SourceKind, checked_entry_url,
    job, keys,
};

/// Content type of every body.
pub const CONTENT_TYPE: &str = "application/protobuf";
/// Application property naming the body's message type.
pub const TYPE_PROPERTY: &str = "type";
/// Application property carrying the event id.
pub const EVENT_ID_PROPERTY: &str = "event_id";
/// Full name of the consumed message.
pub const DISTRIBUTION_JOB: &str = "kem.messaging.v1.DistributionJob";
/// Full name of the produced message.
pub const ANALYTICS_EVENT: &str = "kem.messaging.v1.AnalyticsEvent";

fn ms(t: Option<&prost_types::Timestamp>) -> i64 {
    t.map_or(0, |t| t.seconds.saturating_mul(1000).saturating_add(i64::from(t.nanos / 1_000_000)))
}

/// Reads a `DistributionJob` body and checks it.
pub fn decode_job(body: &[u8]) -> Result<JobSpec, JobError> {
    let m = msg::DistributionJob::decode(body).map_err(|e| JobError::Invalid(format!("undecodable body: {e}")))?;
    let numbers: Vec<i32> = m.deliveries.iter().map(|d| d.channel).collect();
    let channels = job::check(&m.event_id, &m.owner_id, &numbers)?;
    let deliveries = channels
        .into_iter()
        .zip(m.deliveries)
        .map(|(channel, d)| {
            // A link that is not a plain absolute web URL is dropped, and then built like a
            // missing one from distribution's own public base URL (see `infra::channels`).
            let entry_url = checked_entry_url(&d.entry_url).map(str::to_owned).unwrap_or_default();
            let copy = d.copy.map(|c| Copy { text: c.text, hashtags: c.hashtags, entry_url: String::new() });
            let copy = Copy { entry_url, ..copy.unwrap_or_default() };
            let copy = if copy.text.trim().is_empty() {
                Copy { text: format!("{}\n\n{}", m.title, m.description).trim().to_owned(), ..copy }
            } else {
                copy
            };
            (channel, copy)
        })
        .collect();
    let period = m.period.as_ref();
    Ok(JobSpec {
        event_id: m.event_id,
        owner_id: m.owner_id,
        deliveries,
        image_id: m.image_id,
        title: m.title,
        description: m.description,
        period_start_ms: ms(period.and_then(|p| p.start_time.as_ref())),
        period_end_ms: ms(period.and_then(|p| p.end_time.as_ref())),
        prize: m.prize.map(|p| PrizeSpec { name: p.name, winner_count: p.winner_count }),
        first_come: m.participation_method == common::ParticipationMethod::FirstCome as i32,
    })
}

/// `ProviderInfo` of a delivery's provider.
pub fn provider_info(d: &Delivery) -> common::ProviderInfo {
    label_info(&d.provider)
}

/// The contract's form of a provider label.
pub fn label_info(label: &ProviderLabel) -> common::ProviderInfo {
    let kind = match label.kind {
        SourceKind::External => common::ProviderKind::External,
        SourceKind::Local => common::ProviderKind::Local,
        SourceKind::None => common::ProviderKind::Unspecified,
    };
    common::ProviderInfo {
        kind: kind as i32,
        name: label.name.clone(),
        model: label.model.clone(),
        request_id: String::new(),
        cached: false,
    }
}

/// A timestamp of ms since the epoch.
pub fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

/// The analytics message of a delivery's outcome (`dist:<event>:<channel>:<seq>`).
pub fn outcome_message(d: &Delivery, fact: &OutcomeFact, now_ms: i64) -> OutgoingMessage {
    let failure = (!fact.published).then(|| d.last_error.as_ref().map(|e| &e.failure)).flatten();
    let outcome = msg::ChannelOutcome {
        channel: d.channel.number(),
        result: if fact.published { msg::DeliveryResult::Published } else { msg::DeliveryResult::Failed } as i32,
        attempts: d.attempts,
        failure_reason: failure.map(|f| f.message.clone()).unwrap_or_default(),
        reach: d.reach.filter(|_| fact.published),
        views: d.views.filter(|_| fact.published),
        cost: None,
        provider: Some(provider_info(d)),
        failure_code: failure.map(|f| f.reason.as_str().to_owned()).unwrap_or_default(),
    };
    let body = msg::AnalyticsEvent {
        event_id: d.event_id.clone(),
        owner_id: d.owner_id.clone(),
        occur_time: Some(timestamp(now_ms)),
        fact: Some(msg::analytics_event::Fact::ChannelOutcome(outcome)),
    };
    let mut properties = BTreeMap::new();
    properties.insert(TYPE_PROPERTY.to_owned(), ANALYTICS_EVENT.to_owned());
    properties.insert(EVENT_ID_PROPERTY.to_owned(), d.event_id.clone());
    OutgoingMessage {
        queue: names::ANALYTICS_AGGREGATION.to_owned(),
        id: keys::outcome_message_id(&d.event_id, d.channel, fact.seq),
        body: body.encode_to_vec(),
        content_type: CONTENT_TYPE.to_owned(),
        // The outbox stamps the current trace context.
        traceparent: None,
        delay: None,
        properties,
    }
}

/// The channels of a decoded job, in the order received.
pub fn channels(job: &JobSpec) -> Vec<Channel> {
    job.deliveries.iter().map(|(c, _)| *c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DeliveryError, ErrorReason, Failure, ProviderLabel};

    #[test]
    fn type_names_are_the_published_messages() {
        let pool = kem_proto::descriptor_pool();
        assert!(pool.get_message_by_name(DISTRIBUTION_JOB).is_some());
        assert!(pool.get_message_by_name(ANALYTICS_EVENT).is_some());
    }

    #[test]
    fn jobs_decode_with_copy_fallbacks_and_periods() {
        let job = msg::DistributionJob {
            event_id: "e-1".into(),
            owner_id: "o-1".into(),
            deliveries: vec![
                msg::ChannelDelivery {
                    channel: common::Channel::Instagram as i32,
                    copy: Some(kem_proto::kem::event::v1::ChannelCopy {
                        channel: common::Channel::Instagram as i32,
                        text: "인스타".into(),
                        hashtags: vec!["점심".into()],
                    }),
                    entry_url: "https://kem.example/e/e-1?ch=instagram".into(),
                },
                msg::ChannelDelivery {
                    channel: common::Channel::GenieTv as i32,
                    copy: None,
                    entry_url: "javascript:alert(1)".into(),
                },
            ],
            title: "제목".into(),
            description: "설명".into(),
            period: Some(common::Period { start_time: Some(timestamp(1_000)), end_time: Some(timestamp(5_500)) }),
            ..Default::default()
        };
        let spec = decode_job(&job.encode_to_vec()).expect("valid");
        assert_eq!(channels(&spec), vec![Channel::Instagram, Channel::GenieTv]);
        assert_eq!(spec.copy_for(Channel::Instagram).map(|c| c.hashtags.clone()), Some(vec!["점심".to_owned()]));
        assert_eq!(spec.copy_for(Channel::GenieTv).map(|c| c.text.as_str()), Some("제목\n\n설명"));
        assert_eq!((spec.period_start_ms, spec.period_end_ms), (1_000, 5_500));
        assert_eq!(
            spec.copy_for(Channel::Instagram).map(|c| c.entry_url.as_str()),
            Some("https://kem.example/e/e-1?ch=instagram")
        );
        assert_eq!(spec.copy_for(Channel::GenieTv).map(|c| c.entry_url.as_str()), Some(""), "not a web link: dropped");
        assert!(decode_job(b"\xff\xff").is_err());
        let empty = msg::DistributionJob { event_id: "e".into(), owner_id: "o".into(), ..Default::default() };
        assert!(decode_job(&empty.encode_to_vec()).is_err());
    }

    #[test]
    fn outcomes_carry_the_fact_and_the_envelope() {
        let mut d = Delivery::new("e-1", Channel::KakaoChannel, "o-1", ProviderLabel::local("kakao-sens"), 0);
        d.attempts = 2;
        d.last_error =
            Some(DeliveryError { failure: Failure::new(ErrorReason::ProviderUnavailable, "SENS 503", true), at_ms: 1 });
        let m = outcome_message(&d, &OutcomeFact { published: false, seq: 3 }, 2_000);
        assert_eq!((m.queue.as_str(), m.id.as_str()), ("analytics-aggregation", "dist:e-1:kakao_channel:3"));
        assert_eq!(m.properties.get("type").map(String::as_str), Some(ANALYTICS_EVENT));
        assert_eq!(m.properties.get("event_id").map(String::as_str), Some("e-1"));
        let body = msg::AnalyticsEvent::decode(m.body.as_slice()).expect("decodes");
        let Some(msg::analytics_event::Fact::ChannelOutcome(o)) = body.fact else { panic!("not an outcome") };
        assert_eq!(
            (o.result, o.attempts, o.failure_code.as_str()),
            (msg::DeliveryResult::Failed as i32, 2, "PROVIDER_UNAVAILABLE")
        );
        assert_eq!(o.provider.map(|p| p.kind), Some(common::ProviderKind::Local as i32));
        assert_eq!(body.occur_time.map(|t| t.seconds), Some(2));
    }
}
