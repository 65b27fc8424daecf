//! Ending is immediate: once CloseEntries (what the event service's EndEvent calls before it
//! answers) has returned, no replica accepts an entry, whatever it caches about the event, and a
//! draw considers exactly the entries that were accepted.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use kem_participation::ParticipationConfig;
use kem_participation::domain::draw::snapshot_sha256;
use kem_proto::kem::event::v1::EventStatus;
use kem_proto::kem::participation::v1 as pb;
use kem_proto::kem::participation::v1::participation_service_server::ParticipationService;
use kem_testkit::eventually;
use tokio::sync::Notify;
use tonic::{Code, Request, Status};

use crate::support::*;

/// How long the race's steps may take to be observed.
const PATIENCE: Duration = Duration::from_secs(20);

/// Participation as deployed by default: event facts cached for long (30 s here), so only the
/// entry gate can make an end immediate.
fn long_cache() -> ParticipationConfig {
    ParticipationConfig { event_cache_ttl: Duration::from_secs(30), ..ParticipationConfig::default() }
}

/// What an ended event answers an entry: the same as before the gate existed.
#[track_caller]
fn assert_refused_as_ended(result: Result<pb::Entry, Status>) {
    let refused = expect_code(result, Code::FailedPrecondition);
    assert_eq!(reason(&refused), "EVENT_NOT_OPEN");
    assert_eq!(metadata(&refused, "why"), "not_published");
    assert_eq!(metadata(&refused, "status"), "EVENT_STATUS_ENDED");
}

#[tokio::test]
async fn an_entry_right_after_the_end_is_refused_by_every_replica() {
    let h = Harness::with_config(long_cache()).await;
    let other = h.replica(long_cache()).await;
    let id = h.add(event(EventStatus::Published));
    // Both replicas cache the event as PUBLISHED.
    let first = h.enter(entry(&id, "김민수", &phone(0))).await.expect("enter on replica 1");
    let second = enter_via(&other, entry(&id, "이수", &phone(1))).await.expect("enter on replica 2");

    // EndEvent: the close answers; the event service's own answer still says PUBLISHED (its
    // commit comes after the close, and its read cache may lag on another replica).
    let closed_at = h.close(&id).await.expect("close entries");
    assert_refused_as_ended(h.enter(entry(&id, "박", &phone(2))).await);
    assert_refused_as_ended(enter_via(&other, entry(&id, "최지우", &phone(3))).await);
    // A duplicate after the end is refused for the end, not as a duplicate.
    assert_refused_as_ended(enter_via(&other, entry(&id, "김민수", &phone(0))).await);

    // Idempotent: the first close time stays.
    assert_eq!(close_via(&other, &id).await.expect("close again"), closed_at);

    // The draw runs on the gate's word even before the event service says ENDED, and its
    // candidates are exactly the two accepted entries.
    let drawn = h.draw(OWNER, draw_request(&id, 2)).await.expect("draw after the close");
    let audit = drawn.audit.expect("audit");
    assert_eq!(audit.entry_count, 2);
    assert_eq!(audit.entry_snapshot_sha256, snapshot_sha256(&[first.entry_id.as_str(), second.entry_id.as_str()]));
    h.events.set_status(&id, EventStatus::Ended);
    assert_refused_as_ended(enter_via(&other, entry(&id, "정하늘", &phone(4))).await);
    h.cleanup().await;
}

#[tokio::test]
async fn a_close_races_entries_on_two_replicas_and_the_draw_takes_exactly_the_accepted() {
    let h = Harness::with_config(long_cache()).await;
    let other = h.replica(long_cache()).await;
    let id = h.add(event(EventStatus::Published));
    h.enter(entry(&id, "워밍업", &phone(10_000))).await.expect("warm replica 1");
    enter_via(&other, entry(&id, "워밍업", &phone(10_001))).await.expect("warm replica 2");

    const SUBMISSIONS: usize = 400;
    const CLOSE_AFTER: usize = 120;
    let accepted_so_far = Arc::new(AtomicUsize::new(0));
    let start_closing = Arc::new(Notify::new());
    let close_returned = Arc::new(AtomicBool::new(false));

    // The close starts once CLOSE_AFTER entries were accepted, while the others are in flight.
    let closer = {
        let (api, id, start, returned) = (h.api.clone(), id.clone(), start_closing.clone(), close_returned.clone());
        tokio::spawn(async move {
            start.notified().await;
            let closed = close_via(&api, &id).await;
            returned.store(true, Ordering::SeqCst);
            closed
        })
    };
    let replicas = [h.api.clone(), other.clone()];
    let outcomes: Vec<(String, bool, Result<pb::Entry, Status>)> = futures_util::stream::iter(0..SUBMISSIONS)
        .map(|i| {
            let api = replicas[i % 2].clone();
            let (id, accepted_so_far, start, returned) =
                (id.clone(), accepted_so_far.clone(), start_closing.clone(), close_returned.clone());
            async move {
                let after_close = returned.load(Ordering::SeqCst);
                let result = enter_via(&api, entry(&id, &format!("참가자{i}"), &phone(i))).await;
                if result.is_ok() && accepted_so_far.fetch_add(1, Ordering::SeqCst) + 1 == CLOSE_AFTER {
                    start.notify_one();
                }
                (phone(i), after_close, result)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    closer.await.expect("closer task").expect("close entries");

    let mut accepted: HashSet<String> = HashSet::new();
    let mut refused = 0;
    for (phone, after_close, result) in outcomes {
        match result {
            Ok(e) => {
                assert!(!after_close, "{phone} was submitted after the close returned, yet accepted");
                accepted.insert(e.entry_id);
            }
            Err(status) => {
                assert_refused_as_ended(Err(status));
                refused += 1;
            }
        }
    }
    assert!(
        accepted.len() >= CLOSE_AFTER && refused > 0,
        "the close raced: {} accepted, {refused} refused",
        accepted.len()
    );

    // Every acceptance is listed and nothing else, on either replica.
    let listed = h.all_entries(&id).await;
    let listed: HashSet<String> = listed.into_iter().map(|e| e.entry_id).collect();
    assert_eq!(listed.len(), accepted.len() + 2, "the two warm-up entries and every accepted one");
    assert!(accepted.is_subset(&listed));

    // The draw's candidates are exactly the listed entries: nothing accepted is excluded and no
    // refused submission is in.
    let request = pb::DrawWinnersRequest { event_id: id.clone(), count: 5, ..Default::default() };
    let audit = other.draw_winners(as_owner(OWNER, request)).await.expect("draw").into_inner().audit.expect("audit");
    let candidates: Vec<&str> = listed.iter().map(String::as_str).collect();
    assert_eq!(audit.entry_count, i64::try_from(candidates.len()).expect("count"));
    assert_eq!(audit.entry_snapshot_sha256, snapshot_sha256(&candidates));
    h.cleanup().await;
}

#[tokio::test]
async fn only_the_event_service_may_close_entries() {
    let mut h = Harness::new().await;
    h.serve().await;
    let id = h.add(event(EventStatus::Published));
    let mut gateway = h.client("gateway").await;
    let mut analytics = h.client("analytics").await;
    let mut event_service = h.client("event").await;
    let close = || pb::CloseEntriesRequest { event_id: id.clone(), close_time: Some(ts(SystemClock.now_ms())) };

    expect_code(gateway.close_entries(Request::new(close())).await, Code::PermissionDenied);
    expect_code(analytics.close_entries(Request::new(close())).await, Code::PermissionDenied);
    h.enter(entry(&id, "김민수", &phone(0))).await.expect("still open");
    let closed = event_service.close_entries(Request::new(close())).await.expect("event closes").into_inner();
    assert!(closed.close_time.is_some());
    assert_refused_as_ended(h.enter(entry(&id, "이수", &phone(1))).await);
    let empty = pb::CloseEntriesRequest { event_id: String::new(), close_time: None };
    expect_code(event_service.close_entries(Request::new(empty)).await, Code::InvalidArgument);
    h.cleanup().await;
}

#[tokio::test]
async fn the_event_services_client_errors_are_not_unavailability() {
    let h = Harness::new().await;
    let broken = uuid::Uuid::new_v4().to_string();
    let malformed = uuid::Uuid::new_v4().to_string();
    h.events.refuse(&broken, Status::internal("invalid byte sequence for encoding \"UTF8\": 0x00"));
    h.events.refuse(&malformed, Status::invalid_argument("eventId: is not a valid id"));

    let internal = expect_code(h.enter(entry(&broken, "김민수", &phone(0))).await, Code::Internal);
    assert_eq!(reason(&internal), "INTERNAL");
    let invalid = expect_code(h.enter(entry(&malformed, "김민수", &phone(0))).await, Code::InvalidArgument);
    assert_eq!(violations(&invalid), ["eventId"]);
    let missing = uuid::Uuid::new_v4().to_string();
    expect_code(h.enter(entry(&missing, "김민수", &phone(0))).await, Code::NotFound);
    expect_code(h.list(OWNER, &malformed, 10, "").await, Code::InvalidArgument);
    expect_code(h.draw(OWNER, draw_request(&broken, 1)).await, Code::Internal);
    // Real unavailability stays UNAVAILABLE.
    let fresh = h.add(event(EventStatus::Published));
    h.events.fail_next(3);
    expect_code(h.enter(entry(&fresh, "김민수", &phone(0))).await, Code::Unavailable);
    h.cleanup().await;
}

/// Sessions of the participation database currently waiting for a lock while running a
/// statement that starts with `statement`.
async fn waiting(pool: &sqlx::PgPool, statement: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' \
         AND query LIKE $1",
    )
    .bind(format!("{statement}%"))
    .fetch_one(pool)
    .await
    .expect("read pg_stat_activity")
}

/// The READ COMMITTED race, made deterministic: an entry has passed the gate check (its insert's
/// snapshot predates the close) and is held before its commit; the close must wait for it, so the
/// entry is committed before the close returns, never accepted after it.
#[tokio::test]
async fn a_close_waits_for_an_entry_already_past_the_gate() {
    let h = Harness::with_config(long_cache()).await;
    let id = h.add(event(EventStatus::Published));
    h.enter(entry(&id, "워밍업", &phone(0))).await.expect("warm the cache");
    let kem_kit::store::Pool::Postgres(pool) = h.store().primary().clone() else { panic!("PostgreSQL") };

    // Hold every entry after its INSERT INTO entries, at its outbox insert.
    let mut blocker = pool.begin().await.expect("begin");
    sqlx::query("LOCK TABLE kem_outbox IN SHARE MODE").execute(&mut *blocker).await.expect("lock the outbox");
    let held = {
        let (api, id) = (h.api.clone(), id.clone());
        tokio::spawn(async move { enter_via(&api, entry(&id, "경계", &phone(1))).await })
    };
    eventually("the entry is held after its gate check", PATIENCE, || async {
        waiting(&pool, "INSERT INTO kem_outbox").await > 0
    })
    .await;

    let close_returned = Arc::new(AtomicBool::new(false));
    let closer = {
        let (api, id, returned) = (h.api.clone(), id.clone(), close_returned.clone());
        tokio::spawn(async move {
            let closed = close_via(&api, &id).await;
            returned.store(true, Ordering::SeqCst);
            closed
        })
    };
    // The close either waits for the held entry or (if entries did not hold the gate) is done.
    eventually("the close waits or finishes", PATIENCE, || async {
        close_returned.load(Ordering::SeqCst) || waiting(&pool, "SELECT pg_advisory_xact_lock(").await > 0
    })
    .await;
    assert!(!close_returned.load(Ordering::SeqCst), "the close returned while an entry past the gate was uncommitted");

    blocker.rollback().await.expect("release the outbox");
    let accepted = held.await.expect("entry task").expect("the held entry was accepted before the close");
    closer.await.expect("close task").expect("close entries");
    assert_refused_as_ended(h.enter(entry(&id, "늦은이", &phone(2))).await);
    let listed: Vec<String> = h.all_entries(&id).await.into_iter().map(|e| e.entry_id).collect();
    assert!(listed.contains(&accepted.entry_id), "the accepted entry is the event's");
    h.cleanup().await;
}
