//! Enter: validation, when an event is open, duplicates, first-come capacity, the event-facts
//! cache, and the analytics fact of each entry.

use kem_proto::kem::common::v1 as common;
use kem_proto::kem::event::v1::EventStatus;
use kem_proto::kem::messaging::v1 as msg;
use kem_proto::kem::participation::v1 as pb;
use tonic::Code;

use crate::support::*;

#[tokio::test]
async fn an_entry_is_recorded_masked_with_its_consents_and_reported_once() {
    let h = Harness::new().await;
    let event_id = h.add(event(EventStatus::Published));
    let mut request = entry(&event_id, " 김민수 ", "+82 10-1234-5678");
    request.marketing_consent = Some(marketing_consent());
    request.source_channel = common::Channel::KakaoChannel as i32;
    let before = SystemClock.now_ms();
    let e = h.enter(request).await.expect("enter");
    assert_eq!(
        (e.event_id.as_str(), e.masked_name.as_str(), e.masked_phone.as_str()),
        (event_id.as_str(), "김*수", "010-****-5678")
    );
    assert_eq!(e.entry_id.len(), 36);
    assert!(!e.anonymized);
    let privacy = e.privacy_consent.clone().expect("privacy consent");
    assert!(privacy.granted);
    assert_eq!((privacy.consent_text_version.as_str(), privacy.terms_sha256.as_str()), (TERMS_VERSION, TERMS_SHA256));
    assert!(privacy.consent_time.is_some_and(|t| t.seconds * 1000 >= before - 1000));
    let marketing = e.marketing_consent.clone().expect("marketing consent");
    assert_eq!((marketing.granted, marketing.consent_text_version.as_str()), (true, "marketing-2025-01"));
    assert_eq!(e.source_channel, common::Channel::KakaoChannel as i32);

    let listed = h.all_entries(&event_id).await;
    assert_eq!(listed, vec![e.clone()], "the listing shows the same entry");

    let facts = h.analytics(&event_id).await;
    assert_eq!(facts.len(), 1);
    let (id, body) = &facts[0];
    assert_eq!(id, &format!("entry:{}", e.entry_id));
    assert_eq!(body.owner_id, OWNER);
    let Some(msg::analytics_event::Fact::EntryRecorded(fact)) = &body.fact else { panic!("EntryRecorded: {body:?}") };
    assert_eq!(
        (fact.entry_id.as_str(), fact.source_channel, fact.marketing_consent),
        (e.entry_id.as_str(), common::Channel::KakaoChannel as i32, true)
    );
    h.cleanup().await;
}

#[tokio::test]
async fn invalid_submissions_name_every_field_and_store_nothing() {
    let h = Harness::new().await;
    let event_id = h.add(event(EventStatus::Published));
    let mut bad = entry(&event_id, "", "02-123-4567");
    bad.privacy_consent = Some(pb::Consent {
        granted: false,
        consent_text_version: String::new(),
        consent_time: None,
        terms_sha256: String::new(),
    });
    bad.source_channel = 42;
    let status = expect_code(h.enter(bad).await, Code::InvalidArgument);
    assert_eq!(reason(&status), "CONSENT_REQUIRED");
    assert_eq!(
        violations(&status),
        ["name", "phone", "privacyConsent.granted", "privacyConsent.consentTextVersion", "sourceChannel"]
    );

    let mut no_consent = entry(&event_id, "김민수", "010-1234-5678");
    no_consent.privacy_consent = None;
    let status = expect_code(h.enter(no_consent).await, Code::InvalidArgument);
    assert_eq!((reason(&status), violations(&status)), ("CONSENT_REQUIRED".into(), vec!["privacyConsent".to_owned()]));

    let status = expect_code(h.enter(entry(&event_id, "김민수", "010-12-5678")).await, Code::InvalidArgument);
    assert_eq!((reason(&status), violations(&status)), ("INVALID_ARGUMENT".into(), vec!["phone".to_owned()]));

    let mut not_published_there = entry(&event_id, "김민수", "010-1234-5678");
    not_published_there.source_channel = common::Channel::GenieTv as i32;
    let status = expect_code(h.enter(not_published_there).await, Code::InvalidArgument);
    assert_eq!(violations(&status), ["sourceChannel"]);

    let mut direct = entry(&event_id, "김민수", "010-1234-5678");
    direct.source_channel = common::Channel::Unspecified as i32;
    h.enter(direct).await.expect("a direct entry (no channel) is fine");
    assert_eq!(h.all_entries(&event_id).await.len(), 1);
    h.cleanup().await;
}

#[tokio::test]
async fn entries_are_accepted_only_while_published_and_inside_the_period() {
    let h = Harness::new().await;
    for status in [EventStatus::Draft, EventStatus::ContentReady, EventStatus::Ended] {
        let id = h.add(event(status));
        let refused = expect_code(h.enter(entry(&id, "김민수", "010-1234-5678")).await, Code::FailedPrecondition);
        assert_eq!(reason(&refused), "EVENT_NOT_OPEN", "{status:?}");
        assert_eq!(metadata(&refused, "why"), "not_published");
        assert_eq!(metadata(&refused, "status"), status.as_str_name());
    }
    let mut over = event(EventStatus::Published);
    over.period = Some(common::Period {
        start_time: Some(ts(SystemClock.now_ms() - 48 * HOUR_MS)),
        end_time: Some(ts(SystemClock.now_ms() - HOUR_MS)),
    });
    let over = h.add(over);
    let refused = expect_code(h.enter(entry(&over, "김민수", "010-1234-5678")).await, Code::FailedPrecondition);
    assert_eq!((reason(&refused), metadata(&refused, "why")), ("EVENT_NOT_OPEN".into(), "ended".into()));
    let mut later = event(EventStatus::Published);
    later.period = Some(common::Period {
        start_time: Some(ts(SystemClock.now_ms() + HOUR_MS)),
        end_time: Some(ts(SystemClock.now_ms() + 48 * HOUR_MS)),
    });
    let later = h.add(later);
    let refused = expect_code(h.enter(entry(&later, "김민수", "010-1234-5678")).await, Code::FailedPrecondition);
    assert_eq!(metadata(&refused, "why"), "not_started");

    let missing =
        expect_code(h.enter(entry(&uuid::Uuid::new_v4().to_string(), "김민수", "010-1234-5678")).await, Code::NotFound);
    assert_eq!(reason(&missing), "EVENT_NOT_FOUND");
    h.cleanup().await;
}

#[tokio::test]
async fn publishing_opens_entries_at_once_despite_the_cache() {
    let h = Harness::with_config(kem_participation::ParticipationConfig {
        event_cache_ttl: std::time::Duration::from_secs(30),
        ..test_config()
    })
    .await;
    let id = h.add(event(EventStatus::ContentReady));
    expect_code(h.enter(entry(&id, "김민수", "010-1234-5678")).await, Code::FailedPrecondition);
    h.events.set_status(&id, EventStatus::Published);
    h.enter(entry(&id, "김민수", "010-1234-5678")).await.expect("a cached 'not yet published' is re-checked");
    h.cleanup().await;
}

#[tokio::test]
async fn one_entry_per_phone_whatever_its_spelling() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    let other = h.add(event(EventStatus::Published));
    h.enter(entry(&id, "김민수", "010-1234-5678")).await.expect("first");
    for spelling in ["01012345678", "+821012345678", "+82 (0)10 1234 5678", "010.1234.5678"] {
        let dup = expect_code(h.enter(entry(&id, "다른이름", spelling)).await, Code::AlreadyExists);
        assert_eq!(reason(&dup), "DUPLICATE_ENTRY", "{spelling}");
    }
    h.enter(entry(&other, "김민수", "010-1234-5678")).await.expect("the same phone may enter another event");
    assert_eq!(h.all_entries(&id).await.len(), 1);
    assert_eq!(h.analytics(&id).await.len(), 1, "a refused duplicate reports nothing");
    h.cleanup().await;
}

#[tokio::test]
async fn a_first_come_event_closes_at_its_winner_count() {
    let h = Harness::new().await;
    let mut first_come = event(EventStatus::Published);
    first_come.participation_method = common::ParticipationMethod::FirstCome as i32;
    let id = h.add(first_come);
    h.enter_many(&id, 3).await;
    let full = expect_code(h.enter(entry(&id, "늦은이", &phone(99))).await, Code::FailedPrecondition);
    assert_eq!((reason(&full), metadata(&full, "capacity")), ("EVENT_FULL".into(), "3".into()));
    let dup = expect_code(h.enter(entry(&id, "참가자0", &phone(0))).await, Code::AlreadyExists);
    assert_eq!(reason(&dup), "DUPLICATE_ENTRY", "a duplicate is a duplicate even when full");
    assert_eq!(h.all_entries(&id).await.len(), 3);
    h.cleanup().await;
}

#[tokio::test]
async fn event_facts_are_cached_and_an_unreachable_event_service_is_unavailable() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    h.enter_many(&id, 5).await;
    assert_eq!(h.events.calls(), 1, "one lookup serves a burst of entries");

    let fresh = h.add(event(EventStatus::Published));
    // As many failures as the mesh client makes attempts (3), fewer than eject the endpoint (7).
    h.events.fail_next(3);
    let down = expect_code(h.enter(entry(&fresh, "김민수", "010-1234-5678")).await, Code::Unavailable);
    assert_eq!(reason(&down), "EVENT_SERVICE_UNAVAILABLE");
    h.events.fail_next(0);
    h.enter(entry(&fresh, "김민수", "010-1234-5678")).await.expect("recovers");
    h.cleanup().await;
}
