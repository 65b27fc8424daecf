//! Participants (#20) on the event side: the public view of a published event in each state, the
//! terms fixed at publication (with the store name the user service knows), and the auto-draw and
//! retention settings an owner chooses before publishing.

use std::time::Duration;

use kem_kit::clock::ManualClock;
use kem_proto::google::rpc::RetryInfo;
use kem_proto::kem::common::v1 as common;
use kem_proto::kem::event::v1 as proto;
use kem_proto::kem::event::v1::event_service_server::EventService;
use kem_testkit::eventually;
use kem_testkit::status::detail;
use tonic::{Code, Status};

use crate::support::*;

const DAY: i64 = 24 * 60 * 60 * 1000;
const UNKNOWN: &str = "3c5d2b1a-0000-4000-8000-000000000000";

fn state(event: &proto::PublicEvent) -> proto::PublicEventState {
    proto::PublicEventState::try_from(event.state).unwrap_or(proto::PublicEventState::Unspecified)
}

/// The message of a NOT_FOUND with the id taken out (an unpublished event must read exactly like
/// an unknown one).
fn not_found_shape(status: &Status, id: &str) -> (String, String) {
    // Messages quote an excerpt of the id.
    (status.message().replace(&kem_kit::validate::excerpt(id), "<id>"), reason(status))
}

fn sha256_hex(text: &str) -> String {
    kem_kit::hex::encode(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref())
}

#[tokio::test]
async fn the_public_view_follows_the_event_through_its_states() {
    let clock = ManualClock::starting_now();
    let h = Harness::with_clock(test_config(), clock.clone()).await;

    // Never published: not there for the public, in exactly the words of an unknown id.
    let unknown = expect_code(h.public(UNKNOWN).await, Code::NotFound);
    let draft = h.create(OWNER, sample_event("초안")).await;
    let status = expect_code(h.public(&draft.event_id).await, Code::NotFound);
    assert_eq!(not_found_shape(&status, &draft.event_id), not_found_shape(&unknown, UNKNOWN));
    let ready = h.content_ready(OWNER, "공개 이벤트").await;
    let status = expect_code(h.public(&ready.event_id).await, Code::NotFound);
    assert_eq!(not_found_shape(&status, &ready.event_id), not_found_shape(&unknown, UNKNOWN));
    assert!(!status.message().contains(OWNER) && !status.message().contains("CONTENT_READY"), "{status:?}");

    // Garbage ids are refused before anything is looked up.
    for bad in ["", "not-an-id", "3c5d2b1a-0000-4000-8000-00000000000\u{0}", &"a".repeat(5_000)] {
        let status = expect_code(h.public(bad).await, Code::InvalidArgument);
        assert_eq!(violations(&status), vec!["eventId"], "{bad:?}");
    }

    // The prize value is the owner's business: set one to see it left out.
    let prize = common::Prize {
        name: "라떼".into(),
        description: "매장 수령".into(),
        winner_count: 3,
        unit_value: Some(common::Money { amount_krw: 5_000 }),
    };
    let patch = proto::Event { prize: Some(prize.clone()), ..Default::default() };
    h.update(OWNER, &ready.event_id, patch, &["prize"]).await.expect("set the prize");

    // Published (the NOT_FOUND read just before is not served from the cache): UPCOMING.
    let channels = [common::Channel::Instagram, common::Channel::KakaoChannel];
    let published = h.publish(OWNER, &ready.event_id, &channels).await.expect("publish");
    let public = h.public(&ready.event_id).await.expect("public view");
    assert_eq!(state(&public), proto::PublicEventState::Upcoming);
    assert_eq!(public.event_id, ready.event_id);
    assert_eq!(
        (public.title.as_str(), public.description.as_str()),
        (published.title.as_str(), published.description.as_str())
    );
    assert_eq!(public.copy, "rec-1: 점심 스탬프 적립 이벤트", "the selected recommendation's concept");
    assert_eq!(public.prize, Some(common::Prize { unit_value: None, ..prize }));
    assert_eq!(public.period, published.period);
    assert_eq!(public.participation_method, published.participation_method);
    let id = &ready.event_id;
    assert_eq!(public.image_url, format!("{PUBLIC_BASE}/api/v1/public/images/img-b"));
    assert_eq!(public.entry_url, format!("{PUBLIC_BASE}/e/{id}"));
    let links: Vec<(i32, String)> = public.channel_links.iter().map(|l| (l.channel, l.url.clone())).collect();
    assert_eq!(
        links,
        vec![
            (common::Channel::Instagram as i32, format!("{PUBLIC_BASE}/e/{id}?ch=instagram")),
            (common::Channel::KakaoChannel as i32, format!("{PUBLIC_BASE}/e/{id}?ch=kakao_channel")),
        ]
    );
    assert_eq!(public.store_name, STORE_NAME);
    assert_eq!(public.terms, published.terms, "the terms a participant consents to");
    assert!(!public.auto_draw);

    // The state is computed at every call, whatever is cached.
    // (The period starts a day after the event was made, a little after the clock was read.)
    clock.advance(Duration::from_millis((DAY + 60_000) as u64));
    assert_eq!(state(&h.public(id).await.expect("public")), proto::PublicEventState::Open);

    // `:end` shows at once, and no draw yet: CLOSED.
    h.end(OWNER, id).await.expect("end");
    assert_eq!(state(&h.public(id).await.expect("public")), proto::PublicEventState::Closed);

    // participation reports a draw: DRAWN once the briefly cached facts expire.
    h.participation.record_draw(id);
    eventually("the public view shows the draw", Duration::from_secs(15), || async {
        state(&h.public(id).await.expect("public")) == proto::PublicEventState::Drawn
    })
    .await;
    h.cleanup().await;
}

#[tokio::test]
async fn a_published_event_past_its_period_is_closed_and_an_unreachable_participation_means_closed() {
    let clock = ManualClock::starting_now();
    let h = Harness::with_clock(test_config(), clock.clone()).await;
    let open = {
        let mut event = sample_event("진행 중");
        let now = clock.now_ms();
        event.period = Some(common::Period { start_time: Some(ts(now - 1_000)), end_time: Some(ts(now + DAY)) });
        let ready = h.content_ready_from(OWNER, event).await;
        h.publish(OWNER, &ready.event_id, &[common::Channel::NaverBlog]).await.expect("publish")
    };
    let public = h.public(&open.event_id).await.expect("public");
    assert_eq!(state(&public), proto::PublicEventState::Open);
    assert_eq!(public.channel_links.len(), 1);
    assert!(public.channel_links[0].url.ends_with("?ch=naver_blog"), "{:?}", public.channel_links);

    // participation unreachable: an ENDED event shows CLOSED rather than failing.
    h.participation.counts_unavailable(true);
    h.participation.record_draw(&open.event_id);
    h.end(OWNER, &open.event_id).await.expect("end");
    let calls = h.participation.count_calls();
    assert_eq!(state(&h.public(&open.event_id).await.expect("public")), proto::PublicEventState::Closed);
    assert!(h.participation.count_calls() > calls, "participation was asked");

    // Reachable again: the draw shows once the briefly cached answer expires.
    h.participation.counts_unavailable(false);
    eventually("the draw shows", Duration::from_secs(15), || async {
        state(&h.public(&open.event_id).await.expect("public")) == proto::PublicEventState::Drawn
    })
    .await;

    // A PUBLISHED event past its end is CLOSED even before the scheduler ends it. (The scheduler
    // ends it within a tick; CLOSED either way.)
    let late = h.published(OWNER, "끝난 기간").await;
    clock.advance(Duration::from_millis(40 * DAY as u64));
    assert_eq!(state(&h.public(&late.event_id).await.expect("public")), proto::PublicEventState::Closed);
    h.cleanup().await;
}

#[tokio::test]
async fn terms_are_generated_at_publication_and_never_change() {
    let h = Harness::new().await;
    let ready = h.content_ready(OWNER, "약관 이벤트").await;
    assert!(ready.terms.is_none(), "no terms before publication");
    let patch = proto::Event { retention_days: 90, ..Default::default() };
    h.update(OWNER, &ready.event_id, patch, &["retention_days"]).await.expect("retention");
    let published = h.publish(OWNER, &ready.event_id, &[common::Channel::Instagram]).await.expect("publish");
    let terms = published.terms.clone().expect("terms fixed at publication");
    assert_eq!(terms.controller, STORE_NAME);
    assert_eq!(terms.items, vec!["이름", "휴대전화번호"]);
    assert_eq!(terms.purpose, "이벤트 참여 확인, 당첨자 선정 및 경품 안내");
    assert_eq!(terms.retention_days, 90);
    assert!(terms.text.contains("추첨 후 90일") && terms.text.contains("파기"), "{}", terms.text);
    assert!(terms.text.contains("동의를 거부할 권리가 있으며, 거부 시 이벤트 참여가 제한됩니다"));
    assert!(terms.text.contains("만 14세 미만") && terms.text.contains("마케팅"));
    assert!(terms.text_en.contains("90 days after the draw") && terms.text_en.contains("under 14"));
    assert_eq!(terms.sha256, sha256_hex(&format!("{}\n{}", terms.text, terms.text_en)));
    assert_eq!(terms.version, format!("terms-{}", &terms.sha256[..16]));
    assert_eq!(terms.create_time, published.publish_time);

    // participation reads the same terms (Enter checks the version, records the hash).
    let facts = h.for_participation(&ready.event_id).await.expect("facts");
    assert_eq!(facts.terms.as_ref(), Some(&terms));

    // Publishing again is refused (without asking the user service) and changes nothing; a new
    // store name changes nothing either.
    let lookups = h.users.lookups();
    let status =
        expect_code(h.publish(OWNER, &ready.event_id, &[common::Channel::Instagram]).await, Code::FailedPrecondition);
    assert_eq!(metadata(&status, "status"), "EVENT_STATUS_PUBLISHED");
    assert_eq!(h.users.lookups(), lookups);
    h.users.put(OWNER, "카페 온도 리뉴얼");
    assert_eq!(h.get(OWNER, &ready.event_id).await.expect("get").terms.as_ref(), Some(&terms));
    let ended = h.end(OWNER, &ready.event_id).await.expect("end");
    assert_eq!(ended.terms.as_ref(), Some(&terms), "kept through the end");
    assert_eq!(h.public(&ready.event_id).await.expect("public").terms.as_ref(), Some(&terms));

    // The next event of the renamed store names the new name: another hash and version.
    let other = h.published(OWNER, "약관 이벤트").await;
    let other_terms = other.terms.expect("terms");
    assert_eq!(other_terms.controller, "카페 온도 리뉴얼");
    assert_ne!(
        (other_terms.sha256.as_str(), other_terms.version.as_str()),
        (terms.sha256.as_str(), terms.version.as_str())
    );

    // A store without a registered name is named as such.
    h.users.put(OTHER, "");
    let unnamed = h.published(OTHER, "상호 없음").await;
    assert_eq!(unnamed.terms.map(|t| t.controller).as_deref(), Some("(상호 미등록)"));
    h.cleanup().await;
}

#[tokio::test]
async fn nothing_is_published_while_the_user_service_cannot_name_the_store() {
    let h = Harness::new().await;
    let ready = h.content_ready(OWNER, "사용자 서비스 장애").await;
    // GetOwner is NO_SIDE_EFFECTS: the mesh tries it three times.
    h.users.fail_with(vec![Status::unavailable("user database down"); 3]);
    let lookups = h.users.lookups();
    let status = expect_code(h.publish(OWNER, &ready.event_id, &[common::Channel::Instagram]).await, Code::Unavailable);
    assert_eq!(reason(&status), "USER_UNAVAILABLE");
    assert!(h.users.lookups() > lookups, "asked fresh, not from a cache");
    let retry = detail::<RetryInfo>(&status, "google.rpc.RetryInfo").expect("RetryInfo");
    assert!(retry.retry_delay.is_some());
    let current = h.get(OWNER, &ready.event_id).await.expect("get");
    assert_eq!(current.status, proto::EventStatus::ContentReady as i32, "not published");
    assert!(current.terms.is_none());
    assert!(h.messages("distribution-jobs").await.is_empty(), "no delivery enqueued");
    expect_code(h.public(&ready.event_id).await, Code::NotFound);

    // The owner retries once it is back.
    h.users.fail_with(Vec::new());
    let published = h.publish(OWNER, &ready.event_id, &[common::Channel::Instagram]).await.expect("retry");
    assert_eq!(published.terms.map(|t| t.controller).as_deref(), Some(STORE_NAME));
    h.cleanup().await;
}

#[tokio::test]
async fn auto_draw_and_retention_are_validated_and_fixed_once_published() {
    let h = Harness::new().await;
    // Defaults: no auto draw, 30 days.
    let plain = h.create(OWNER, sample_event("기본값")).await;
    assert_eq!((plain.auto_draw, plain.retention_days), (false, 30));

    let mut chosen = sample_event("자동 추첨");
    chosen.auto_draw = true;
    chosen.retention_days = 7;
    let event = h.create(OWNER, chosen).await;
    assert_eq!((event.auto_draw, event.retention_days), (true, 7));
    assert_eq!(h.get(OWNER, &event.event_id).await.expect("get").retention_days, 7, "stored");

    for days in [-1, 366, i32::MAX, i32::MIN] {
        let mut invalid = sample_event("잘못된 보관");
        invalid.retention_days = days;
        let request = proto::CreateEventRequest { event: Some(invalid), request_id: String::new() };
        let status =
            expect_code(h.api.create_event(req(OWNER, request)).await.map(|r| r.into_inner()), Code::InvalidArgument);
        assert_eq!(violations(&status), vec!["event.retentionDays"], "{days}");
    }

    // Updatable by mask while not published; 0 means the default again.
    let patch = proto::Event { auto_draw: false, retention_days: 365, ..Default::default() };
    let updated = h.update(OWNER, &event.event_id, patch, &["auto_draw", "retentionDays"]).await.expect("update");
    assert_eq!((updated.auto_draw, updated.retention_days), (false, 365));
    let patch = proto::Event { retention_days: 0, ..Default::default() };
    assert_eq!(h.update(OWNER, &event.event_id, patch, &["retention_days"]).await.expect("default").retention_days, 30);
    let patch = proto::Event { retention_days: 400, title: "무시".into(), ..Default::default() };
    let status = expect_code(h.update(OWNER, &event.event_id, patch, &["retention_days"]).await, Code::InvalidArgument);
    assert_eq!(violations(&status), vec!["event.retentionDays"]);
    let status =
        expect_code(h.update(OWNER, &event.event_id, proto::Event::default(), &["terms"]).await, Code::InvalidArgument);
    assert_eq!(violations(&status), vec!["updateMask"], "terms are output only");

    // Once published, neither changes (the rule for every field after publication).
    let mut auto = sample_event("게시 후 고정");
    auto.auto_draw = true;
    let ready = h.content_ready_from(OWNER, auto).await;
    let published = h.publish(OWNER, &ready.event_id, &[common::Channel::Instagram]).await.expect("publish");
    assert_eq!((published.auto_draw, published.retention_days), (true, 30));
    for (patch, path) in [
        (proto::Event { auto_draw: false, ..Default::default() }, "auto_draw"),
        (proto::Event { retention_days: 10, ..Default::default() }, "retention_days"),
    ] {
        let status = expect_code(h.update(OWNER, &ready.event_id, patch, &[path]).await, Code::FailedPrecondition);
        assert_eq!(
            (reason(&status), metadata(&status, "status")),
            ("INVALID_TRANSITION".into(), "EVENT_STATUS_PUBLISHED".into())
        );
    }
    let after = h.get(OWNER, &ready.event_id).await.expect("get");
    assert_eq!((after.auto_draw, after.retention_days), (true, 30));
    assert!(h.public(&ready.event_id).await.expect("public").auto_draw);
    h.cleanup().await;
}
