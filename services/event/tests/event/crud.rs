//! Create, get, list, update, delete: validation, owner scoping, dedupe, pagination, caching.

use std::collections::HashSet;

use kem_kit::store;
use kem_proto::kem::common::v1 as common;
use kem_proto::kem::event::v1 as proto;
use kem_proto::kem::event::v1::event_service_server::EventService;
use tonic::{Code, Request};

use kem_testkit::eventually;

use crate::support::*;

#[tokio::test]
async fn create_and_get_are_scoped_to_the_owner() {
    let h = Harness::new().await;
    let sent = sample_event("평일 점심 이벤트");
    let event = h.create(OWNER, sent.clone()).await;
    assert_eq!(event.owner_id, OWNER);
    assert_eq!(event.status, proto::EventStatus::Draft as i32);
    assert_eq!(event.event_id.len(), 36, "a UUID: {}", event.event_id);
    assert_eq!(
        (event.title.as_str(), event.budget, event.prize.clone()),
        (sent.title.as_str(), sent.budget, sent.prize)
    );
    assert_eq!(event.period, sent.period);
    assert_eq!(event.channels, sent.channels);
    assert!(!event.etag.is_empty() && event.create_time.is_some() && event.update_time.is_some());

    let fetched = h.get(OWNER, &event.event_id).await.expect("get");
    assert_eq!(fetched, event);

    // Another owner: NOT_FOUND, exactly like an id that does not exist.
    let other = expect_code(h.get(OTHER, &event.event_id).await, Code::NotFound);
    let missing = expect_code(h.get(OWNER, "3c5d2b1a-0000-4000-8000-000000000000").await, Code::NotFound);
    assert_eq!((reason(&other), reason(&missing)), ("EVENT_NOT_FOUND".into(), "EVENT_NOT_FOUND".into()));
    assert!(!other.message().contains(OWNER), "no hint of the real owner: {}", other.message());

    // No signed-in owner.
    let anonymous = h.api.get_event(Request::new(proto::GetEventRequest { event_id: event.event_id.clone() })).await;
    expect_code(anonymous, Code::Unauthenticated);
    expect_code(h.get(OWNER, "").await, Code::InvalidArgument);
    h.cleanup().await;
}

#[tokio::test]
async fn create_validation_names_every_invalid_field() {
    let h = Harness::new().await;
    let mut event = sample_event(" ");
    event.objective = 0;
    event.budget = Some(common::Money { amount_krw: -1 });
    let start = SystemClock.now_ms() + 10_000;
    event.period = Some(common::Period { start_time: Some(ts(start)), end_time: Some(ts(start - 1)) });
    event.prize = Some(common::Prize { name: "커피".into(), winner_count: 0, ..Default::default() });
    event.channels = vec![common::Channel::Instagram as i32, 0, common::Channel::Instagram as i32];
    event.participation_method = 17;
    let request = proto::CreateEventRequest { event: Some(event), request_id: String::new() };
    let status = expect_code(h.api.create_event(req(OWNER, request)).await, Code::InvalidArgument);
    assert_eq!(
        violations(&status),
        vec![
            "event.title",
            "event.objective",
            "event.budget.amountKrw",
            "event.period.endTime",
            "event.prize.winnerCount",
            "event.participationMethod",
            "event.channels[1]",
            "event.channels[2]",
        ]
    );

    let request = proto::CreateEventRequest { event: None, request_id: String::new() };
    let status = expect_code(h.api.create_event(req(OWNER, request)).await, Code::InvalidArgument);
    assert_eq!(violations(&status), vec!["event.title", "event.objective", "event.period"]);

    // Nothing was stored, nothing was announced.
    let list = h.api.list_events(req(OWNER, proto::ListEventsRequest::default())).await.expect("list").into_inner();
    assert!(list.events.is_empty());
    assert!(h.messages("analytics-aggregation").await.is_empty());
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_is_deduplicated_by_owner_and_request_id() {
    let h = Harness::new().await;
    let key = "7f1e0c52-1111-4aaa-8bbb-0123456789ab";
    let create = |owner: &'static str| {
        let api = h.api.clone();
        async move {
            let request =
                proto::CreateEventRequest { event: Some(sample_event("중복 방지")), request_id: key.into() };
            created(api.create_event(req(owner, request)).await)
        }
    };
    let first = create(OWNER).await;
    let again = create(OWNER).await;
    assert_eq!(again, first, "the first event is returned, unchanged");

    // Concurrent retries with the same key: still one event.
    let racing: Vec<_> = (0..8).map(|_| tokio::spawn(create(OWNER))).collect();
    for handle in racing {
        assert_eq!(handle.await.expect("task").event_id, first.event_id);
    }
    // The same key from another owner is another event.
    let others = create(OTHER).await;
    assert_ne!(others.event_id, first.event_id);

    let rows = store::query("SELECT COUNT(*) AS n FROM events WHERE request_id = $1")
        .bind(key)
        .fetch_one(h.store().primary())
        .await
        .expect("count");
    assert_eq!(rows.get::<i64>("n").expect("n"), 2, "one row per owner");
    assert_eq!(h.analytics(&first.event_id).await.len(), 1, "one creation fact, not one per call");

    // Past its 24-hour window the key is released and creates a new event.
    store::query("UPDATE events SET created_at = created_at - 90000000 WHERE id = $1")
        .bind(first.event_id.as_str())
        .execute(h.store().primary())
        .await
        .expect("age the event");
    let later = create(OWNER).await;
    assert_ne!(later.event_id, first.event_id);
    h.cleanup().await;
}

async fn list(
    h: &Harness,
    owner: &str,
    status: proto::EventStatus,
    size: i32,
    token: &str,
) -> proto::ListEventsResponse {
    let request = proto::ListEventsRequest { status: status as i32, page_size: size, page_token: token.to_owned() };
    h.api.list_events(req(owner, request)).await.unwrap_or_else(|s| panic!("list: {s:?}")).into_inner()
}

#[tokio::test]
async fn list_pages_newest_first_stably_and_filters_by_status() {
    let h = Harness::new().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(h.create(OWNER, sample_event(&format!("이벤트 {i}"))).await.event_id);
    }
    let recommended = h.recommended(OWNER, "추천됨").await;
    ids.push(recommended.event_id.clone());
    h.create(OTHER, sample_event("남의 이벤트")).await;

    // Pages of 3, with an insert between pages: no duplicates, no gaps, newest first.
    let first = list(&h, OWNER, proto::EventStatus::Unspecified, 3, "").await;
    assert_eq!(first.events.len(), 3);
    assert!(!first.next_page_token.is_empty());
    let inserted = h.create(OWNER, sample_event("페이지 사이에 생성")).await;
    let mut seen: Vec<proto::Event> = first.events.clone();
    let mut token = first.next_page_token;
    while !token.is_empty() {
        let page = list(&h, OWNER, proto::EventStatus::Unspecified, 3, &token).await;
        assert!(page.events.len() <= 3);
        seen.extend(page.events);
        token = page.next_page_token;
    }
    let seen_ids: Vec<&str> = seen.iter().map(|e| e.event_id.as_str()).collect();
    let unique: HashSet<&str> = seen_ids.iter().copied().collect();
    assert_eq!(unique.len(), seen_ids.len(), "no duplicates: {seen_ids:?}");
    assert_eq!(unique, ids.iter().map(String::as_str).collect::<HashSet<_>>(), "exactly the events that existed");
    assert!(!unique.contains(inserted.event_id.as_str()), "a newer event does not shift later pages");
    let keys: Vec<(i64, &str)> = seen.iter().map(|e| (ts_ms(&e.create_time), e.event_id.as_str())).collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(keys, sorted, "newest first");

    // Status filter.
    let only = list(&h, OWNER, proto::EventStatus::Recommended, 0, "").await;
    assert_eq!(
        only.events.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(),
        vec![recommended.event_id.as_str()]
    );
    assert!(only.next_page_token.is_empty());
    let drafts = list(&h, OWNER, proto::EventStatus::Draft, 100, "").await;
    assert_eq!(drafts.events.len(), 8, "7 drafts + the one created between pages");

    // Other owners see only their own; page sizes above the maximum are coerced.
    let theirs = list(&h, OTHER, proto::EventStatus::Unspecified, 1_000, "").await;
    assert_eq!(theirs.events.len(), 1);
    assert!(theirs.events.iter().all(|e| e.owner_id == OTHER));

    h.cleanup().await;
}

#[tokio::test]
async fn page_tokens_are_validated() {
    let h = Harness::new().await;
    for i in 0..3 {
        h.create(OWNER, sample_event(&format!("e{i}"))).await;
    }
    let page = list(&h, OWNER, proto::EventStatus::Draft, 1, "").await;
    let token = page.next_page_token;
    assert!(!token.is_empty());
    let bad = |owner: &'static str, status: proto::EventStatus, size: i32, token: String| {
        let api = h.api.clone();
        async move {
            let request = proto::ListEventsRequest { status: status as i32, page_size: size, page_token: token };
            api.list_events(req(owner, request)).await
        }
    };
    for (owner, status, size, token, field) in [
        (OWNER, proto::EventStatus::Draft, 1, "garbage!".to_owned(), "pageToken"),
        (OWNER, proto::EventStatus::Draft, 1, format!("{token}A"), "pageToken"),
        (OWNER, proto::EventStatus::Unspecified, 1, token.clone(), "pageToken"),
        (OTHER, proto::EventStatus::Draft, 1, token.clone(), "pageToken"),
        (OWNER, proto::EventStatus::Draft, -1, String::new(), "pageSize"),
    ] {
        let status = expect_code(bad(owner, status, size, token).await, Code::InvalidArgument);
        assert_eq!(violations(&status), vec![field]);
    }
    let request = proto::ListEventsRequest { status: 42, ..Default::default() };
    let status = expect_code(h.api.list_events(req(OWNER, request)).await, Code::InvalidArgument);
    assert_eq!(violations(&status), vec!["status"]);
    h.cleanup().await;
}

#[tokio::test]
async fn update_applies_the_field_mask_only() {
    let h = Harness::new().await;
    let event = h.create(OWNER, sample_event("원래 제목")).await;
    // Populate the cache, so the update must invalidate it.
    assert_eq!(h.get(OWNER, &event.event_id).await.expect("get").title, "원래 제목");

    let mut patch = proto::Event {
        title: "새 제목".into(),
        description: "mask 밖: 무시됨".into(),
        prize: Some(common::Prize { winner_count: 25, name: "무시됨".into(), ..Default::default() }),
        ..Default::default()
    };
    let updated =
        h.update(OWNER, &event.event_id, patch.clone(), &["title", "prize.winner_count"]).await.expect("update");
    assert_eq!(updated.title, "새 제목");
    assert_eq!(updated.description, event.description, "not in the mask");
    let prize = updated.prize.clone().expect("prize");
    assert_eq!((prize.name.as_str(), prize.winner_count), ("아메리카노 1잔", 25));
    assert_ne!(updated.etag, event.etag);
    assert!(ts_ms(&updated.update_time) >= ts_ms(&event.update_time));
    assert_eq!(h.get(OWNER, &event.event_id).await.expect("get"), updated, "the cache was invalidated");

    // JSON-spelled paths, and clearing a message.
    let cleared = h.update(OWNER, &event.event_id, proto::Event::default(), &["budget", "targetAudience"]).await;
    let cleared = cleared.expect("clear");
    assert_eq!((cleared.budget, cleared.target_audience.as_str()), (None, ""));

    // Bad requests.
    let status = expect_code(h.update(OWNER, &event.event_id, patch.clone(), &[]).await, Code::InvalidArgument);
    assert_eq!(violations(&status), vec!["updateMask"]);
    let status = expect_code(
        h.update(OWNER, &event.event_id, patch.clone(), &["title", "nope", "status"]).await,
        Code::InvalidArgument,
    );
    assert_eq!(violations(&status), vec!["updateMask", "updateMask"]);
    let late =
        proto::Event { period: Some(common::Period { start_time: None, end_time: Some(ts(0)) }), ..Default::default() };
    let status = expect_code(h.update(OWNER, &event.event_id, late, &["period.end_time"]).await, Code::InvalidArgument);
    assert_eq!(violations(&status), vec!["event.period.endTime"]);
    patch.event_id = "someone-else".into();
    let status = expect_code(h.update(OWNER, &event.event_id, patch.clone(), &["title"]).await, Code::InvalidArgument);
    assert_eq!(violations(&status), vec!["event.eventId"]);

    // Stale etag → ABORTED; current etag → fine.
    let stale = proto::Event { title: "x".into(), etag: event.etag.clone(), ..Default::default() };
    let status = expect_code(h.update(OWNER, &event.event_id, stale, &["title"]).await, Code::Aborted);
    assert_eq!(reason(&status), "ETAG_MISMATCH");
    let fresh = proto::Event { title: "etag 확인".into(), etag: cleared.etag.clone(), ..Default::default() };
    assert_eq!(h.update(OWNER, &event.event_id, fresh, &["title"]).await.expect("fresh etag").title, "etag 확인");

    // Another owner's event does not exist.
    let status =
        expect_code(h.update(OTHER, &event.event_id, proto::Event::default(), &["title"]).await, Code::NotFound);
    assert_eq!(reason(&status), "EVENT_NOT_FOUND");
    h.cleanup().await;
}

#[tokio::test]
async fn update_is_allowed_until_publication() {
    let h = Harness::new().await;
    let recommended = h.recommended(OWNER, "추천").await;
    let patch = proto::Event { title: "추천 후 수정".into(), ..Default::default() };
    h.update(OWNER, &recommended.event_id, patch.clone(), &["title"]).await.expect("RECOMMENDED is editable");
    let ready = h.content_ready(OWNER, "콘텐츠").await;
    h.update(OWNER, &ready.event_id, patch.clone(), &["title"]).await.expect("CONTENT_READY is editable");
    h.publish(OWNER, &ready.event_id, &[common::Channel::Instagram]).await.expect("publish");
    let status = expect_code(h.update(OWNER, &ready.event_id, patch, &["title"]).await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "INVALID_TRANSITION");
    assert_eq!(metadata(&status, "status"), "EVENT_STATUS_PUBLISHED");
    assert!(status.message().contains("PUBLISHED"), "{}", status.message());
    h.cleanup().await;
}

async fn delete(h: &Harness, owner: &str, id: &str, allow_missing: bool) -> Result<(), tonic::Status> {
    let request = proto::DeleteEventRequest { event_id: id.to_owned(), etag: String::new(), allow_missing };
    h.api.delete_event(req(owner, request)).await.map(drop)
}

#[tokio::test]
async fn only_drafts_can_be_deleted() {
    let h = Harness::new().await;
    let draft = h.create(OWNER, sample_event("삭제할 초안")).await;
    let job = h.request_recommendations(OWNER, &draft.event_id).await.expect("a job of the draft");
    h.get(OWNER, &draft.event_id).await.expect("cached");

    expect_code(delete(&h, OTHER, &draft.event_id, false).await, Code::NotFound);
    let stale = proto::DeleteEventRequest { event_id: draft.event_id.clone(), etag: "v0".into(), allow_missing: false };
    expect_code(h.api.delete_event(req(OWNER, stale)).await, Code::Aborted);
    delete(&h, OWNER, &draft.event_id, false).await.expect("delete the draft");
    expect_code(h.get(OWNER, &draft.event_id).await, Code::NotFound);
    expect_code(h.get_job(OWNER, &job.job_id).await, Code::NotFound);
    expect_code(delete(&h, OWNER, &draft.event_id, false).await, Code::NotFound);
    delete(&h, OWNER, &draft.event_id, true).await.expect("allow_missing makes a retry succeed");
    let facts: Vec<String> = h.analytics(&draft.event_id).await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(facts, vec![format!("evt:{}:created", draft.event_id), format!("evt:{}:deleted", draft.event_id)]);

    let recommended = h.recommended(OWNER, "추천됨").await;
    let status = expect_code(delete(&h, OWNER, &recommended.event_id, false).await, Code::FailedPrecondition);
    assert_eq!(metadata(&status, "status"), "EVENT_STATUS_RECOMMENDED");
    h.get(OWNER, &recommended.event_id).await.expect("still there");
    h.cleanup().await;
}

#[tokio::test]
async fn reads_are_cached_and_changes_invalidate_the_cache() {
    let h = Harness::new().await;
    // The Redis client connects in the background (commands fail fast, and the service degrades
    // to the database, until it is up): wait for it so the first read does fill the cache.
    let cache = h.ctx.cache.clone();
    eventually("Redis to connect", std::time::Duration::from_secs(10), || {
        let cache = cache.clone();
        async move { cache.get("probe").await.is_ok() }
    })
    .await;
    let event = h.create(OWNER, sample_event("캐시")).await;
    h.get(OWNER, &event.event_id).await.expect("first read fills the cache");
    let key = format!("event:v2:{}", event.event_id);
    assert!(h.ctx.cache.get(&key).await.expect("redis").is_some(), "cached under {key}");

    // A write behind the service's back is not seen: reads come from the cache …
    store::query("UPDATE events SET title = 'changed behind the cache' WHERE id = $1")
        .bind(event.event_id.as_str())
        .execute(h.store().primary())
        .await
        .expect("direct write");
    assert_eq!(h.get(OWNER, &event.event_id).await.expect("get").title, "캐시");
    // … and a change through the service invalidates it.
    let patch = proto::Event { description: "새 설명".into(), ..Default::default() };
    h.update(OWNER, &event.event_id, patch, &["description"]).await.expect("update");
    let fresh = h.get(OWNER, &event.event_id).await.expect("get");
    assert_eq!((fresh.title.as_str(), fresh.description.as_str()), ("changed behind the cache", "새 설명"));
    h.cleanup().await;
}
