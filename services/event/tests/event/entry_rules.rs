//! Entry rules and claim days (#20): validated on CreateEvent and UpdateEvent (hostile values
//! refused naming the field), fixed once published, shown to the public, handed to participation
//! with the retention, the store name and the entry URL, stated in the terms; and the links every
//! distribution job carries per channel.

use kem_proto::kem::common::v1 as common;
use kem_proto::kem::event::v1 as proto;
use kem_proto::kem::event::v1::event_service_server::EventService;
use kem_proto::kem::messaging::v1 as msg;
use prost::Message;
use tonic::Code;

use crate::support::*;

fn rules(verify_phone: bool, max_entries_per_address: i32) -> Option<proto::EntryRules> {
    Some(proto::EntryRules { verify_phone, max_entries_per_address })
}

async fn create(h: &Harness, event: proto::Event) -> Result<proto::Event, tonic::Status> {
    let request = proto::CreateEventRequest { event: Some(event), request_id: String::new() };
    Ok(h.api.create_event(req(OWNER, request)).await?.into_inner().event.unwrap_or_default())
}

#[tokio::test]
async fn hostile_entry_rules_and_claim_days_are_refused_naming_the_field() {
    let h = Harness::new().await;

    // Defaults: no verification, no address limit, 7 claim days.
    let plain = h.create(OWNER, sample_event("기본 규칙")).await;
    assert_eq!((plain.entry_rules, plain.claim_days), (rules(false, 0), 7));

    // Valid choices are stored and returned.
    let chosen = proto::Event {
        entry_rules: rules(true, 100_000),
        claim_days: 90,
        retention_days: 90,
        ..sample_event("본인 확인")
    };
    let event = h.create(OWNER, chosen).await;
    assert_eq!((event.entry_rules, event.claim_days, event.retention_days), (rules(true, 100_000), 90, 90));
    let stored = h.get(OWNER, &event.event_id).await.expect("get");
    assert_eq!((stored.entry_rules, stored.claim_days), (rules(true, 100_000), 90), "stored");

    // Negative, huge and past-the-retention values: INVALID_ARGUMENT naming each field, nothing
    // created.
    let cases = [
        (proto::Event { claim_days: -1, ..sample_event("x") }, vec!["event.claimDays"]),
        (proto::Event { claim_days: 91, retention_days: 365, ..sample_event("x") }, vec!["event.claimDays"]),
        (proto::Event { claim_days: i32::MAX, ..sample_event("x") }, vec!["event.claimDays"]),
        (proto::Event { claim_days: i32::MIN, ..sample_event("x") }, vec!["event.claimDays"]),
        (proto::Event { claim_days: 31, ..sample_event("x") }, vec!["event.claimDays"]),
        (proto::Event { claim_days: 11, retention_days: 10, ..sample_event("x") }, vec!["event.claimDays"]),
        (
            proto::Event { entry_rules: rules(true, -1), ..sample_event("x") },
            vec!["event.entryRules.maxEntriesPerAddress"],
        ),
        (
            proto::Event { entry_rules: rules(false, 100_001), ..sample_event("x") },
            vec!["event.entryRules.maxEntriesPerAddress"],
        ),
        (
            proto::Event { entry_rules: rules(false, i32::MAX), ..sample_event("x") },
            vec!["event.entryRules.maxEntriesPerAddress"],
        ),
        (
            proto::Event { entry_rules: rules(false, i32::MIN), claim_days: -7, ..sample_event("x") },
            vec!["event.claimDays", "event.entryRules.maxEntriesPerAddress"],
        ),
    ];
    for (event, fields) in cases {
        let described = format!("{:?} {}", event.entry_rules, event.claim_days);
        let status = expect_code(create(&h, event).await, Code::InvalidArgument);
        assert_eq!(violations(&status), fields, "{described}");
    }
    let listed = h
        .api
        .list_events(req(OWNER, proto::ListEventsRequest { page_size: 100, ..Default::default() }))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.events.len(), 2, "no invalid event was created");

    // A shorter retention caps the default claim days instead of refusing a value never sent.
    let short = h.create(OWNER, proto::Event { retention_days: 3, ..sample_event("짧은 보관") }).await;
    assert_eq!((short.retention_days, short.claim_days), (3, 3));

    // UpdateEvent: by field or by message, merged then validated as a whole.
    let id = plain.event_id.as_str();
    let patch = proto::Event { entry_rules: rules(false, 5), claim_days: 14, ..Default::default() };
    let updated =
        h.update(OWNER, id, patch, &["entryRules.maxEntriesPerAddress", "claim_days"]).await.expect("update by field");
    assert_eq!((updated.entry_rules, updated.claim_days), (rules(false, 5), 14));
    let patch = proto::Event { entry_rules: rules(true, 0), ..Default::default() };
    let updated = h.update(OWNER, id, patch, &["entry_rules"]).await.expect("update by message");
    assert_eq!(updated.entry_rules, rules(true, 0));
    let patch = proto::Event { retention_days: 10, ..Default::default() };
    let status = expect_code(h.update(OWNER, id, patch, &["retention_days"]).await, Code::InvalidArgument);
    assert_eq!(violations(&status), vec!["event.claimDays"], "14 claim days no longer fit a 10-day retention");
    let patch = proto::Event { entry_rules: rules(true, 200_000), ..Default::default() };
    let status = expect_code(h.update(OWNER, id, patch, &["entry_rules"]).await, Code::InvalidArgument);
    assert_eq!(violations(&status), vec!["event.entryRules.maxEntriesPerAddress"]);
    let status =
        expect_code(h.update(OWNER, id, proto::Event::default(), &["anonymize_time"]).await, Code::InvalidArgument);
    assert_eq!(violations(&status), vec!["updateMask"], "anonymize_time is output only");
    let after = h.get(OWNER, id).await.expect("get");
    assert_eq!((after.entry_rules, after.claim_days, after.retention_days), (rules(true, 0), 14, 30));
    h.cleanup().await;
}

#[tokio::test]
async fn the_rules_are_fixed_once_published_and_reach_the_public_participation_and_the_terms() {
    let h = Harness::new().await;
    let event =
        proto::Event {
            entry_rules: rules(true, 3), claim_days: 10, retention_days: 60, ..sample_event("규칙 고정")
        };
    let ready = h.content_ready_from(OWNER, event).await;
    let id = ready.event_id.as_str();

    // Before publication participation learns the rules, but no terms and so no controller yet.
    let before = h.for_participation(id).await.expect("facts");
    assert_eq!((before.entry_rules, before.claim_days, before.retention_days), (rules(true, 3), 10, 60));
    assert_eq!((before.store_name.as_str(), before.terms.is_none()), ("", true));
    assert_eq!(before.entry_url, format!("{PUBLIC_BASE}/e/{id}"));

    let channels = [common::Channel::Instagram, common::Channel::NaverBlog];
    let published = h.publish(OWNER, id, &channels).await.expect("publish");
    assert_eq!((published.entry_rules, published.claim_days), (rules(true, 3), 10));
    assert_eq!(published.anonymize_time, None);

    // Fixed from now on, like every field after publication.
    for (patch, path) in [
        (proto::Event { entry_rules: rules(false, 0), ..Default::default() }, "entry_rules"),
        (proto::Event { entry_rules: rules(true, 50), ..Default::default() }, "entry_rules.max_entries_per_address"),
        (proto::Event { claim_days: 20, ..Default::default() }, "claim_days"),
    ] {
        let status = expect_code(h.update(OWNER, id, patch, &[path]).await, Code::FailedPrecondition);
        assert_eq!(reason(&status), "INVALID_TRANSITION", "{path}");
    }
    let after = h.get(OWNER, id).await.expect("get");
    assert_eq!((after.entry_rules, after.claim_days), (rules(true, 3), 10));

    // The public page and participation see the same.
    let public = h.public(id).await.expect("public");
    assert_eq!((public.entry_rules, public.claim_days), (rules(true, 3), 10));
    let facts = h.for_participation(id).await.expect("facts");
    assert_eq!((facts.entry_rules, facts.claim_days, facts.retention_days), (rules(true, 3), 10, 60));
    assert_eq!(facts.store_name, STORE_NAME, "the terms' data controller");
    assert_eq!(facts.entry_url, public.entry_url, "the canonical entry URL of the public view");
    assert_eq!(facts.entry_url, format!("{PUBLIC_BASE}/e/{id}"));
    assert_eq!(facts.terms.as_ref().map(|t| t.controller.as_str()), Some(STORE_NAME));

    // The terms state the claim period next to the purpose; the hash still covers both texts.
    let terms = published.terms.expect("terms");
    assert!(terms.text.contains("당첨자는 추첨 후 10일 이내에 경품을 받을 수 있습니다"), "{}", terms.text);
    assert!(terms.text.contains("추첨 후 60일"), "{}", terms.text);
    assert!(terms.text_en.contains("claim their prize within 10 days after the draw"), "{}", terms.text_en);
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("{}\n{}", terms.text, terms.text_en).as_bytes());
    assert_eq!(terms.sha256, kem_kit::hex::encode(digest.as_ref()));
    assert_eq!(terms.version, format!("terms-{}", &terms.sha256[..16]));
    h.cleanup().await;
}

#[tokio::test]
async fn every_distribution_delivery_carries_its_channels_entry_link() {
    let h = Harness::new().await;
    let ready = h.content_ready(OWNER, "채널 링크").await;
    let id = ready.event_id.as_str();
    let channels = [common::Channel::KakaoChannel, common::Channel::Instagram, common::Channel::GenieTv];
    h.publish(OWNER, id, &channels).await.expect("publish");

    let jobs: Vec<msg::DistributionJob> = h
        .messages("distribution-jobs")
        .await
        .into_iter()
        .filter(|m| m.properties.get("event_id").map(String::as_str) == Some(id))
        .map(|m| msg::DistributionJob::decode(m.body.as_slice()).expect("job decodes"))
        .collect();
    assert_eq!(jobs.len(), 1);
    let links: Vec<(i32, String)> = jobs[0].deliveries.iter().map(|d| (d.channel, d.entry_url.clone())).collect();
    assert_eq!(
        links,
        vec![
            (common::Channel::KakaoChannel as i32, format!("{PUBLIC_BASE}/e/{id}?ch=kakao_channel")),
            (common::Channel::Instagram as i32, format!("{PUBLIC_BASE}/e/{id}?ch=instagram")),
            (common::Channel::GenieTv as i32, format!("{PUBLIC_BASE}/e/{id}?ch=genie_tv")),
        ]
    );
    // The very links of the public view (one function builds both).
    let public = h.public(id).await.expect("public");
    let public_links: Vec<(i32, String)> = public.channel_links.iter().map(|l| (l.channel, l.url.clone())).collect();
    assert_eq!(links, public_links);
    h.cleanup().await;
}
