//! The store-backed queue on both backends: peek-lock semantics, duplicate detection, delays,
//! lock expiry and loss, dead-lettering.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kem_kit::clock::{Clock as _, ManualClock};
use kem_kit::queue::store::{QueueDepth, StoreQueue, StoreQueueOptions};
use kem_kit::queue::{OutgoingMessage, Queue, QueueError};

use crate::store::{Fixture, on_both_backends};

const Q: &str = "distribution-jobs";
const NO_WAIT: Duration = Duration::ZERO;
const LOCK: Duration = Duration::from_secs(30);

/// A JSON message for `queue` with id `id`.
pub fn message(queue: &str, id: &str) -> OutgoingMessage {
    OutgoingMessage {
        queue: queue.to_owned(),
        id: id.to_owned(),
        body: format!("{{\"id\":\"{id}\"}}").into_bytes(),
        content_type: "application/json".to_owned(),
        traceparent: None,
        delay: None,
        properties: BTreeMap::new(),
    }
}

fn queue(f: &Fixture) -> StoreQueue {
    StoreQueue::new(f.store.clone())
}

fn queue_with(f: &Fixture, tune: impl FnOnce(&mut StoreQueueOptions)) -> StoreQueue {
    let mut options = StoreQueueOptions::default();
    tune(&mut options);
    StoreQueue::with_options(f.store.clone(), options)
}

on_both_backends!(
    send_receive_complete_round_trips_every_field,
    a_duplicate_id_is_enqueued_once,
    a_delayed_message_stays_hidden_until_due,
    abandon_redelivers_after_the_backoff,
    an_expired_lock_redelivers_and_the_old_lock_is_lost,
    renewing_keeps_the_lock,
    explicit_dead_letter_keeps_the_message_for_inspection,
    max_deliveries_dead_letters_instead_of_delivering,
    a_waiting_receive_wakes_on_send,
    concurrent_receivers_never_share_a_message,
    queues_are_isolated_and_requests_validated,
);

async fn send_receive_complete_round_trips_every_field(f: &Fixture) {
    let q = queue(f);
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for i in 0..3 {
        let mut m = message(Q, &format!("m{i}"));
        m.traceparent = Some(traceparent.to_owned());
        m.properties.insert("event".into(), format!("e{i}"));
        m.body = vec![0, 159, 146, 150, i]; // not UTF-8: bodies are bytes
        q.send(m).await.expect("send");
    }
    let before = std::time::SystemTime::now();
    let got = q.receive(Q, 10, LOCK, NO_WAIT).await.expect("receive");
    assert_eq!(got.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["m0", "m1", "m2"], "oldest first");
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m.queue, Q);
        assert_eq!(m.body, vec![0, 159, 146, 150, i as u8]);
        assert_eq!(m.content_type, "application/json");
        assert_eq!(m.traceparent.as_deref(), Some(traceparent));
        assert_eq!(m.properties.get("event"), Some(&format!("e{i}")));
        assert_eq!(m.delivery_count, 1);
        assert!(m.locked_until > before + Duration::from_secs(25), "locked for lock_for");
        assert!(m.enqueued_at <= std::time::SystemTime::now());
    }
    let tokens: HashSet<_> = got.iter().map(|m| m.lock_token.clone()).collect();
    assert_eq!(tokens.len(), 3, "one lock token per delivery");
    assert_eq!(q.depth(Q).await.expect("depth"), QueueDepth { locked: 3, ..QueueDepth::default() });
    assert!(q.receive(Q, 10, LOCK, NO_WAIT).await.expect("receive").is_empty(), "locked messages are invisible");
    for m in &got {
        q.complete(m).await.expect("complete");
    }
    assert!(matches!(q.complete(&got[0]).await, Err(QueueError::LockLost { .. })), "completing twice");
    assert_eq!(q.depth(Q).await.expect("depth"), QueueDepth::default());
    assert!(q.receive(Q, 10, LOCK, NO_WAIT).await.expect("receive").is_empty());
}

async fn a_duplicate_id_is_enqueued_once(f: &Fixture) {
    let q = queue(f);
    let mut first = message(Q, "dup");
    first.body = b"first".to_vec();
    let mut second = message(Q, "dup");
    second.body = b"second".to_vec();
    q.send(first).await.expect("send");
    q.send(second.clone()).await.expect("a duplicate send succeeds (and is dropped)");
    let got = q.receive(Q, 10, LOCK, NO_WAIT).await.expect("receive");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, b"first");
    // Still a duplicate while locked and after completion, within the dedupe window.
    q.send(second.clone()).await.expect("send");
    q.complete(&got[0]).await.expect("complete");
    q.send(second).await.expect("send");
    assert!(q.receive(Q, 10, LOCK, NO_WAIT).await.expect("receive").is_empty());

    // Past the window (zero here) and once purged, the id may be used again.
    let clock = ManualClock::starting_now();
    let forgetful = queue_with(f, |o| o.dedupe_window = Duration::ZERO).with_clock(Arc::new(clock.clone()));
    clock.advance(Duration::from_millis(5)); // completed strictly before the cutoff
    assert_eq!(forgetful.purge_completed().await.expect("purge"), 1);
    forgetful.send(message(Q, "dup")).await.expect("send");
    assert_eq!(forgetful.receive(Q, 10, LOCK, NO_WAIT).await.expect("receive").len(), 1);
}

async fn a_delayed_message_stays_hidden_until_due(f: &Fixture) {
    let q = queue(f);
    let mut m = message(Q, "later");
    m.delay = Some(Duration::from_millis(800));
    let sent = Instant::now();
    q.send(m).await.expect("send");
    q.send(message(Q, "now")).await.expect("send");
    let got = q.receive(Q, 10, LOCK, NO_WAIT).await.expect("receive");
    assert_eq!(got.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["now"]);
    assert_eq!(q.depth(Q).await.expect("depth").scheduled, 1);
    let got = q.receive(Q, 10, LOCK, Duration::from_secs(5)).await.expect("receive");
    assert_eq!(got.len(), 1, "delivered once due");
    assert_eq!(got[0].id, "later");
    assert!(sent.elapsed() >= Duration::from_millis(750), "not before its delay: {:?}", sent.elapsed());
    assert!(sent.elapsed() < Duration::from_secs(3));
}

async fn abandon_redelivers_after_the_backoff(f: &Fixture) {
    let q = queue(f);
    q.send(message(Q, "a")).await.expect("send");
    let first = q.receive(Q, 1, LOCK, NO_WAIT).await.expect("receive").remove(0);
    let abandoned = Instant::now();
    q.abandon(&first, Duration::from_millis(600)).await.expect("abandon");
    assert!(q.receive(Q, 1, LOCK, NO_WAIT).await.expect("receive").is_empty(), "hidden during the backoff");
    assert!(matches!(q.complete(&first).await, Err(QueueError::LockLost { .. })), "abandon released the lock");
    let second = q.receive(Q, 1, LOCK, Duration::from_secs(5)).await.expect("receive").remove(0);
    assert!(abandoned.elapsed() >= Duration::from_millis(550), "{:?}", abandoned.elapsed());
    assert_eq!(second.delivery_count, 2);
    assert_ne!(second.lock_token, first.lock_token);
    q.complete(&second).await.expect("complete");

    // A zero backoff makes it available at once.
    q.send(message(Q, "b")).await.expect("send");
    let m = q.receive(Q, 1, LOCK, NO_WAIT).await.expect("receive").remove(0);
    q.abandon(&m, Duration::ZERO).await.expect("abandon");
    assert_eq!(q.receive(Q, 1, LOCK, NO_WAIT).await.expect("receive").len(), 1);
}

async fn an_expired_lock_redelivers_and_the_old_lock_is_lost(f: &Fixture) {
    let clock = ManualClock::starting_now();
    let q = queue(f).with_clock(Arc::new(clock.clone()));
    q.send(message(Q, "slow")).await.expect("send");
    let first = q.receive(Q, 1, Duration::from_millis(400), NO_WAIT).await.expect("receive").remove(0);
    clock.advance(Duration::from_millis(600));
    // Expired but not yet taken: the lock is gone all the same.
    assert!(matches!(q.renew_lock(&first, LOCK).await, Err(QueueError::LockLost { .. })));
    assert!(matches!(q.complete(&first).await, Err(QueueError::LockLost { .. })));
    let second = q.receive(Q, 1, LOCK, NO_WAIT).await.expect("receive").remove(0);
    assert_eq!(second.id, "slow");
    assert_eq!(second.delivery_count, 2);
    for lost in [
        q.complete(&first).await,
        q.abandon(&first, Duration::ZERO).await,
        q.dead_letter(&first, "late").await,
        q.renew_lock(&first, LOCK).await.map(drop),
    ] {
        match lost {
            Err(QueueError::LockLost { queue, id }) => assert_eq!((queue.as_str(), id.as_str()), (Q, "slow")),
            other => panic!("the first consumer's lock must be lost, got {other:?}"),
        }
    }
    q.complete(&second).await.expect("the current holder completes");
}

async fn renewing_keeps_the_lock(f: &Fixture) {
    let clock = ManualClock::starting_now();
    let q = queue(f).with_clock(Arc::new(clock.clone()));
    q.send(message(Q, "long")).await.expect("send");
    let m = q.receive(Q, 1, Duration::from_millis(500), NO_WAIT).await.expect("receive").remove(0);
    for _ in 0..4 {
        clock.advance(Duration::from_millis(250));
        let until = q.renew_lock(&m, Duration::from_millis(500)).await.expect("renew");
        assert!(until > clock.now());
    }
    // A second after the first lock would have expired, nobody else got it.
    assert!(q.receive(Q, 1, LOCK, NO_WAIT).await.expect("receive").is_empty());
    q.complete(&m).await.expect("complete with the renewed lock");
}

async fn explicit_dead_letter_keeps_the_message_for_inspection(f: &Fixture) {
    let q = queue(f);
    let mut m = message(Q, "bad");
    m.properties.insert("k".into(), "v".into());
    q.send(m).await.expect("send");
    q.send(message(Q, "good")).await.expect("send");
    let got = q.receive(Q, 10, LOCK, NO_WAIT).await.expect("receive");
    let bad = got.iter().find(|m| m.id == "bad").expect("bad delivered");
    q.dead_letter(bad, "schema mismatch: missing eventId").await.expect("dead-letter");
    assert!(matches!(q.complete(bad).await, Err(QueueError::LockLost { .. })));
    let dead = q.dead_letters(Q, 10).await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, "schema mismatch: missing eventId");
    assert_eq!(dead[0].message.id, "bad");
    assert_eq!(dead[0].message.body, bad.body);
    assert_eq!(dead[0].message.properties.get("k").map(String::as_str), Some("v"));
    assert_eq!(dead[0].message.delivery_count, 1);
    assert_eq!(dead[0].message.lock_token, bad.lock_token);
    assert!(dead[0].dead_lettered_at <= std::time::SystemTime::now());
    assert_eq!(q.depth(Q).await.expect("depth").dead_lettered, 1);
    // The good one is unaffected; a dead-lettered id is not re-enqueued by a duplicate send.
    let good = got.iter().find(|m| m.id == "good").expect("good delivered");
    q.complete(good).await.expect("complete");
    q.send(message(Q, "bad")).await.expect("send");
    assert!(q.receive(Q, 10, LOCK, NO_WAIT).await.expect("receive").is_empty());
    assert!(q.dead_letters("content-generation", 10).await.expect("other queue").is_empty());
    assert_eq!(q.purge_dead_letters(Q).await.expect("purge"), 1);
    assert!(q.dead_letters(Q, 10).await.expect("dead letters").is_empty());
}

async fn max_deliveries_dead_letters_instead_of_delivering(f: &Fixture) {
    let clock = ManualClock::starting_now();
    let q = queue_with(f, |o| o.max_deliveries = 2).with_clock(Arc::new(clock.clone()));
    // Abandoned on its last allowed delivery: dead-lettered at once.
    q.send(message(Q, "poison")).await.expect("send");
    for delivery in 1..=2 {
        let m = q.receive(Q, 1, LOCK, NO_WAIT).await.expect("receive").remove(0);
        assert_eq!(m.delivery_count, delivery);
        q.abandon(&m, Duration::ZERO).await.expect("abandon");
    }
    assert!(q.receive(Q, 1, LOCK, NO_WAIT).await.expect("receive").is_empty());
    let dead = q.dead_letters(Q, 10).await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message.delivery_count, 2);
    assert!(dead[0].reason.contains("max_deliveries = 2"), "{}", dead[0].reason);

    // A consumer that keeps crashing (lock expiry) is caught at the next receive.
    q.send(message(Q, "crasher")).await.expect("send");
    for _ in 1..=2 {
        let m = q.receive(Q, 1, Duration::from_millis(200), NO_WAIT).await.expect("receive");
        assert_eq!(m.len(), 1);
        clock.advance(Duration::from_millis(300));
    }
    q.send(message(Q, "fine")).await.expect("send");
    let next = q.receive(Q, 10, LOCK, NO_WAIT).await.expect("receive");
    assert_eq!(
        next.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["fine"],
        "the crasher is not delivered a third time"
    );
    let dead = q.dead_letters(Q, 10).await.expect("dead letters");
    assert_eq!(dead.iter().map(|d| d.message.id.as_str()).collect::<Vec<_>>(), ["poison", "crasher"]);
    assert!(dead[1].reason.contains("without being completed"), "{}", dead[1].reason);
}

async fn a_waiting_receive_wakes_on_send(f: &Fixture) {
    let q = queue_with(f, |o| o.poll_interval = Duration::from_secs(10));
    // Nothing arrives: an empty batch after about `wait`.
    let started = Instant::now();
    assert!(q.receive(Q, 1, LOCK, Duration::from_millis(300)).await.expect("receive").is_empty());
    assert!(started.elapsed() >= Duration::from_millis(290) && started.elapsed() < Duration::from_secs(3));

    // A send through a clone wakes the receiver well before its (10 s) poll.
    let receiver = {
        let q = q.clone();
        tokio::spawn(async move { q.receive(Q, 1, LOCK, Duration::from_secs(8)).await })
    };
    // Time for the receiver's first, empty look (no hook shows it); if not yet made, it finds the send.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = Instant::now();
    q.send(message(Q, "wake")).await.expect("send");
    let got = receiver.await.expect("join").expect("receive");
    assert_eq!(got.len(), 1);
    assert!(sent.elapsed() < Duration::from_secs(2), "woken by the send, not the poll: {:?}", sent.elapsed());

    // Another process (another StoreQueue) is seen at the next poll.
    let poller = queue_with(f, |o| o.poll_interval = Duration::from_millis(100));
    let receiver = tokio::spawn(async move { poller.receive(Q, 1, LOCK, Duration::from_secs(8)).await });
    // As above: time for the poller's first, empty look, so that the next poll finds the message.
    tokio::time::sleep(Duration::from_millis(150)).await;
    q.send(message(Q, "polled")).await.expect("send");
    let got = receiver.await.expect("join").expect("receive");
    assert_eq!(got.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["polled"]);
}

async fn concurrent_receivers_never_share_a_message(f: &Fixture) {
    let q = Arc::new(queue(f));
    const N: usize = 300;
    for i in 0..N {
        q.send(message(Q, &format!("c{i:04}"))).await.expect("send");
    }
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let q = q.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for _ in 0..200 {
                    let batch = q.receive(Q, 7, LOCK, Duration::from_millis(50)).await.expect("receive");
                    if batch.is_empty() {
                        break;
                    }
                    for m in batch {
                        q.complete(&m).await.expect("complete: nobody else holds it");
                        mine.push(m.id);
                    }
                }
                mine
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.expect("worker"));
    }
    let unique: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), N, "each message delivered exactly once across receivers");
    assert_eq!(unique.len(), N);
}

async fn queues_are_isolated_and_requests_validated(f: &Fixture) {
    let q = queue_with(f, |o| o.max_body_bytes = 16);
    q.send(message("ai-event-generation", "x")).await.expect("send");
    assert!(q.receive("content-generation", 10, LOCK, NO_WAIT).await.expect("receive").is_empty());
    assert_eq!(q.receive("ai-event-generation", 10, LOCK, NO_WAIT).await.expect("receive").len(), 1);
    // The same id on two queues is two messages.
    q.send(message("content-generation", "x")).await.expect("send");
    assert_eq!(q.receive("content-generation", 10, LOCK, NO_WAIT).await.expect("receive").len(), 1);

    let invalid = |r: Result<(), QueueError>| matches!(r, Err(QueueError::Invalid(_)));
    assert!(invalid(q.send(message(Q, "")).await), "empty id");
    assert!(invalid(q.send(message(Q, &"x".repeat(129))).await), "id too long");
    assert!(invalid(q.send(message("", "x")).await), "no queue");
    let mut big = message(Q, "big");
    big.body = vec![b'x'; 17];
    assert!(invalid(q.send(big).await), "body over the limit");
    assert!(matches!(q.receive(Q, 0, LOCK, NO_WAIT).await, Err(QueueError::Invalid(_))));
    assert!(matches!(q.receive(Q, 1, Duration::ZERO, NO_WAIT).await, Err(QueueError::Invalid(_))));
}

#[tokio::test]
async fn a_closed_database_reports_unavailable() {
    let f = Fixture::sqlite().await;
    let q = queue(&f);
    f.store.close().await;
    let error = q.send(message(Q, "x")).await.expect_err("closed pool");
    assert!(matches!(error, QueueError::Unavailable(_)), "{error:?}");
    f.finish().await;
}
