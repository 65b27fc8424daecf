//! Encodes the domain's outgoing facts as `kem.messaging.v1` queue messages.
//!
//! Bodies are protobuf binary (`application/protobuf`) with a `type` application property naming
//! the message and an `event_id` property. Message ids are deterministic, so re-running a
//! transaction can never enqueue a second copy and consumers' inboxes deduplicate redeliveries:
//! `job:<job_id>` for work requests, `dist:<event_id>` for the (single) publication of an event,
//! `evt:<event_id>:<fact>` for analytics facts (each lifecycle status is entered at most once).

use std::collections::BTreeMap;

use kem_kit::queue::OutgoingMessage;
use kem_kit::queue::names;
use kem_proto::kem::messaging::v1 as msg;
use prost::Message;

use crate::api::convert;
use crate::domain::event::Event;
use crate::domain::job::{Job, JobRequest};
use crate::domain::lifecycle::EventStatus;
use crate::domain::message::Outgoing;
use crate::domain::values::{Channel, StoreProfile};

/// Content type of every body.
pub const CONTENT_TYPE: &str = "application/protobuf";
/// Application property naming the body's message type.
pub const TYPE_PROPERTY: &str = "type";
/// Application property carrying the event id.
pub const EVENT_ID_PROPERTY: &str = "event_id";

/// A message body and its full protobuf name (the `type` property).
trait Body: Message {
    const TYPE: &'static str;
}

impl Body for msg::GenerateRecommendations {
    const TYPE: &'static str = "kem.messaging.v1.GenerateRecommendations";
}

impl Body for msg::GenerateImages {
    const TYPE: &'static str = "kem.messaging.v1.GenerateImages";
}

impl Body for msg::DistributionJob {
    const TYPE: &'static str = "kem.messaging.v1.DistributionJob";
}

impl Body for msg::AnalyticsEvent {
    const TYPE: &'static str = "kem.messaging.v1.AnalyticsEvent";
}

fn envelope<M: Body>(queue: &str, id: String, event_id: &str, body: &M) -> OutgoingMessage {
    let mut properties = BTreeMap::new();
    properties.insert(TYPE_PROPERTY.to_owned(), M::TYPE.to_owned());
    properties.insert(EVENT_ID_PROPERTY.to_owned(), event_id.to_owned());
    OutgoingMessage {
        queue: queue.to_owned(),
        id,
        body: body.encode_to_vec(),
        content_type: CONTENT_TYPE.to_owned(),
        // The outbox stamps the current trace context.
        traceparent: None,
        delay: None,
        properties,
    }
}

/// The queue message of `outgoing`.
pub fn encode(outgoing: &Outgoing) -> OutgoingMessage {
    match outgoing {
        Outgoing::GenerateRecommendations { job, event, store } => {
            let body = generate_recommendations(job, event, store.as_ref());
            envelope(names::AI_EVENT_GENERATION, job_message_id(job), &event.id, &body)
        }
        Outgoing::GenerateImages { job, event, store } => {
            let body = generate_images(job, event, store.as_ref());
            envelope(names::CONTENT_GENERATION, job_message_id(job), &event.id, &body)
        }
        Outgoing::Distribute { event, entry_links } => {
            let body = distribution_job(event, entry_links);
            envelope(names::DISTRIBUTION_JOBS, format!("dist:{}", event.id), &event.id, &body)
        }
        Outgoing::StateChanged { from, event } => {
            let fact = msg::analytics_event::Fact::StateChanged(msg::EventStateChanged {
                from_status: from.map_or(0, |s| convert::status_to_proto(s) as i32),
                to_status: convert::status_to_proto(event.status) as i32,
                budget: event.spec.budget.map(convert::money),
                channels: convert::channels_to_proto(&event.spec.channels),
                period: Some(convert::period(event.spec.period)),
                objective: convert::objective_to_proto(event.spec.objective) as i32,
                title: event.spec.title.clone(),
            });
            let name = if from.is_none() { "created".to_owned() } else { status_fact(event.status) };
            analytics(format!("evt:{}:{name}", event.id), event, event.updated_at, fact)
        }
        Outgoing::Deleted { event, at } => analytics(
            format!("evt:{}:deleted", event.id),
            event,
            *at,
            msg::analytics_event::Fact::Deleted(msg::EventDeleted {}),
        ),
    }
}

fn job_message_id(job: &Job) -> String {
    format!("job:{}", job.id)
}

fn status_fact(status: EventStatus) -> String {
    status.as_str().to_ascii_lowercase()
}

fn analytics(id: String, event: &Event, at: i64, fact: msg::analytics_event::Fact) -> OutgoingMessage {
    let body = msg::AnalyticsEvent {
        event_id: event.id.clone(),
        owner_id: event.owner_id.clone(),
        occur_time: Some(convert::timestamp(at)),
        fact: Some(fact),
    };
    envelope(names::ANALYTICS_AGGREGATION, id, &event.id, &body)
}

fn store_profile(store: &StoreProfile) -> msg::StoreProfile {
    msg::StoreProfile {
        store_name: store.store_name.clone(),
        business_category: store.business_category.map_or(0, |c| convert::category_to_proto(c) as i32),
        region: store.region.clone(),
    }
}

fn generate_recommendations(job: &Job, event: &Event, store: Option<&StoreProfile>) -> msg::GenerateRecommendations {
    let instructions = match &job.request {
        JobRequest::Recommendations { additional_instructions } => additional_instructions.clone(),
        JobRequest::Images { .. } => String::new(),
    };
    msg::GenerateRecommendations {
        job_id: job.id.clone(),
        event_id: event.id.clone(),
        owner_id: event.owner_id.clone(),
        objective: convert::objective_to_proto(event.spec.objective) as i32,
        store: store.map(store_profile),
        title: event.spec.title.clone(),
        description: event.spec.description.clone(),
        target_audience: event.spec.target_audience.clone(),
        budget: event.spec.budget.map(convert::money),
        period: Some(convert::period(event.spec.period)),
        prize: event.spec.prize.as_ref().map(convert::prize),
        participation_method: convert::method_to_proto(event.spec.participation_method) as i32,
        channels: convert::channels_to_proto(&event.spec.channels),
        additional_instructions: instructions,
        request_time: Some(convert::timestamp(job.created_at)),
        deadline: Some(convert::timestamp(job.deadline_at)),
    }
}

fn generate_images(job: &Job, event: &Event, store: Option<&StoreProfile>) -> msg::GenerateImages {
    let (channels, styles) = match &job.request {
        JobRequest::Images { channels, styles } => (channels.as_slice(), styles.as_slice()),
        JobRequest::Recommendations { .. } => (&[][..], &[][..]),
    };
    msg::GenerateImages {
        job_id: job.id.clone(),
        event_id: event.id.clone(),
        owner_id: event.owner_id.clone(),
        recommendation: event.selected_recommendation.as_ref().map(convert::recommendation),
        title: event.spec.title.clone(),
        description: event.spec.description.clone(),
        prize: event.spec.prize.as_ref().map(convert::prize),
        period: Some(convert::period(event.spec.period)),
        channels: convert::channels_to_proto(channels),
        sizes: Vec::new(),
        styles: styles.iter().map(|s| convert::style_to_proto(*s) as i32).collect(),
        store: store.map(store_profile),
        request_time: Some(convert::timestamp(job.created_at)),
        deadline: Some(convert::timestamp(job.deadline_at)),
    }
}

/// The job of `event`, each delivery carrying its channel's link from `entry_links` (empty for a
/// channel without one, which distribution then builds itself).
fn distribution_job(event: &Event, entry_links: &[(Channel, String)]) -> msg::DistributionJob {
    msg::DistributionJob {
        event_id: event.id.clone(),
        owner_id: event.owner_id.clone(),
        deliveries: event
            .spec
            .channels
            .iter()
            .map(|channel| msg::ChannelDelivery {
                channel: convert::channel_to_proto(*channel) as i32,
                copy: Some(convert::channel_copy(&event.copy_for(*channel))),
                entry_url: entry_links
                    .iter()
                    .find(|(linked, _)| linked == channel)
                    .map(|(_, url)| url.clone())
                    .unwrap_or_default(),
            })
            .collect(),
        image_id: event.selected_image_id.clone().unwrap_or_default(),
        title: event.spec.title.clone(),
        description: event.spec.description.clone(),
        period: Some(convert::period(event.spec.period)),
        prize: event.spec.prize.as_ref().map(convert::prize),
        participation_method: convert::method_to_proto(event.spec.participation_method) as i32,
        recommendation_id: event.selected_recommendation.as_ref().map(|r| r.id.clone()).unwrap_or_default(),
        publish_time: event.published_at.map(convert::timestamp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::validation::EventSpec;
    use crate::domain::values::{Channel, ImageStyle, Objective, ParticipationMethod, Period};

    fn event() -> Event {
        let spec = EventSpec {
            title: "t".into(),
            description: "d".into(),
            objective: Objective::Sales,
            target_audience: String::new(),
            budget: None,
            period: Period { start: 0, end: 10 },
            prize: None,
            participation_method: ParticipationMethod::Draw,
            channels: vec![Channel::Instagram, Channel::GenieTv],
            auto_draw: false,
            retention_days: 30,
            entry_rules: Default::default(),
            claim_days: 7,
        };
        let mut e = Event::create("e-1".into(), "o-1".into(), spec, 5);
        e.status = EventStatus::Published;
        e.selected_image_id = Some("img".into());
        e
    }

    #[test]
    fn work_requests_carry_the_job_the_event_and_the_store() {
        use crate::domain::job::{Job, JobRequest};
        use crate::domain::values::{BusinessCategory, StoreProfile};
        let e = event();
        let request = JobRequest::Recommendations { additional_instructions: "주말 위주".into() };
        let job = Job::new("j-1".into(), e.id.clone(), e.owner_id.clone(), request, 1_000, 60_000);
        let store = StoreProfile {
            store_name: "카페 온도".into(),
            business_category: Some(BusinessCategory::Cafe),
            region: "서울 강남구".into(),
        };
        let m = encode(&Outgoing::GenerateRecommendations { job: job.clone(), event: e.clone(), store: Some(store) });
        assert_eq!((m.queue.as_str(), m.id.as_str()), ("ai-event-generation", "job:j-1"));
        let body = msg::GenerateRecommendations::decode(m.body.as_slice()).expect("decodes");
        assert_eq!((body.job_id.as_str(), body.event_id.as_str(), body.owner_id.as_str()), ("j-1", "e-1", "o-1"));
        assert_eq!(body.additional_instructions, "주말 위주");
        assert_eq!(body.deadline.map(|t| t.seconds), Some(61));
        let store = body.store.expect("store");
        assert_eq!(
            (store.store_name.as_str(), store.business_category, store.region.as_str()),
            ("카페 온도", kem_proto::kem::common::v1::BusinessCategory::Cafe as i32, "서울 강남구")
        );

        let images = JobRequest::Images { channels: vec![Channel::GenieTv], styles: vec![ImageStyle::Trendy] };
        let job = Job::new("j-2".into(), e.id.clone(), e.owner_id.clone(), images, 1_000, 60_000);
        let m = encode(&Outgoing::GenerateImages { job, event: e, store: None });
        assert_eq!((m.queue.as_str(), m.id.as_str()), ("content-generation", "job:j-2"));
        let body = msg::GenerateImages::decode(m.body.as_slice()).expect("decodes");
        assert_eq!(body.channels, vec![kem_proto::kem::common::v1::Channel::GenieTv as i32]);
        assert_eq!(body.styles, vec![kem_proto::kem::common::v1::ImageStyle::Trendy as i32]);
        assert!(body.store.is_none());
    }

    #[test]
    fn type_names_are_the_published_messages() {
        let pool = kem_proto::descriptor_pool();
        for name in [
            <msg::GenerateRecommendations as Body>::TYPE,
            <msg::GenerateImages as Body>::TYPE,
            <msg::DistributionJob as Body>::TYPE,
            <msg::AnalyticsEvent as Body>::TYPE,
        ] {
            assert!(pool.get_message_by_name(name).is_some(), "{name} is not in the contracts");
        }
    }

    #[test]
    fn every_message_names_its_type_and_event_and_decodes() {
        let e = event();
        let links = vec![(Channel::Instagram, "https://kem.example/e/e-1?ch=instagram".to_owned())];
        let m = encode(&Outgoing::Distribute { event: e.clone(), entry_links: links });
        assert_eq!(
            (m.queue.as_str(), m.id.as_str(), m.content_type.as_str()),
            ("distribution-jobs", "dist:e-1", CONTENT_TYPE)
        );
        assert_eq!(m.properties.get(TYPE_PROPERTY).map(String::as_str), Some("kem.messaging.v1.DistributionJob"));
        assert_eq!(m.properties.get(EVENT_ID_PROPERTY).map(String::as_str), Some("e-1"));
        let job = msg::DistributionJob::decode(m.body.as_slice()).expect("decodes");
        assert_eq!(job.deliveries.len(), 2);
        assert_eq!(job.deliveries[0].copy.as_ref().map(|c| c.text.as_str()), Some("t\n\nd"));
        assert_eq!(job.image_id, "img");
        assert_eq!(job.deliveries[0].entry_url, "https://kem.example/e/e-1?ch=instagram");
        assert_eq!(job.deliveries[1].entry_url, "", "a channel without a link leaves it to distribution");

        let m = encode(&Outgoing::StateChanged { from: Some(EventStatus::ContentReady), event: e.clone() });
        assert_eq!((m.queue.as_str(), m.id.as_str()), ("analytics-aggregation", "evt:e-1:published"));
        assert_eq!(m.properties.get(TYPE_PROPERTY).map(String::as_str), Some("kem.messaging.v1.AnalyticsEvent"));
        let m = encode(&Outgoing::StateChanged { from: None, event: e.clone() });
        assert_eq!(m.id, "evt:e-1:created");
        let m = encode(&Outgoing::Deleted { event: e, at: 9 });
        assert_eq!(m.id, "evt:e-1:deleted");
        let body = msg::AnalyticsEvent::decode(m.body.as_slice()).expect("decodes");
        assert!(matches!(body.fact, Some(msg::analytics_event::Fact::Deleted(_))));
    }
}
