//! The Azure Service Bus adapter over real HTTP against the local REST contract server
//! ([`contract`]): send, peek-lock receive, complete, abandon (now and later), lock renewal and
//! expiry, dead-lettering, and how failures surface. Lock durations are one second, so tests wait
//! at most a couple of seconds.

mod contract;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use kem_kit::queue::servicebus::{ServiceBusQueue, dead_letter_queue};
use kem_kit::queue::{OutgoingMessage, Queue, QueueError, names};

use contract::ContractServer;

const LOCK: Duration = Duration::from_secs(1);
const QUEUE: &str = names::DISTRIBUTION_JOBS;

async fn setup(max_deliveries: u32) -> (ContractServer, ServiceBusQueue) {
    let server = ContractServer::start(&[QUEUE], LOCK).await;
    let queue = ServiceBusQueue::new(server.config().with_max_deliveries(max_deliveries)).expect("adapter");
    (server, queue)
}

fn message(id: &str, body: &[u8]) -> OutgoingMessage {
    OutgoingMessage {
        queue: QUEUE.to_owned(),
        id: id.to_owned(),
        body: body.to_vec(),
        content_type: "application/json".to_owned(),
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()),
        delay: None,
        properties: BTreeMap::from([
            ("EventId".to_owned(), "evt-42".to_owned()),
            ("note".to_owned(), "café, \"quoted\"".to_owned()),
        ]),
    }
}

#[tokio::test]
async fn send_receive_complete_round_trip() {
    let (server, queue) = setup(5).await;
    let sent = message("job-1", br#"{"channel":"kakao"}"#);
    let binary = OutgoingMessage { id: "job-2".to_owned(), body: vec![0xff, 0x00, 0xfe], ..message("job-2", b"") };
    queue.send(sent.clone()).await.expect("send");
    queue.send(binary.clone()).await.expect("send binary");

    let before = SystemTime::now();
    let got = queue.receive(QUEUE, 10, LOCK, Duration::from_secs(1)).await.expect("receive");
    assert_eq!(got.len(), 2, "both messages in one batch");
    let first = &got[0];
    assert_eq!(first.queue, QUEUE);
    assert_eq!(first.id, "job-1");
    assert_eq!(first.body, sent.body);
    assert_eq!(first.content_type, "application/json");
    assert_eq!(first.traceparent, sent.traceparent);
    assert_eq!(first.properties, sent.properties);
    assert_eq!(first.delivery_count, 1);
    assert!(!first.lock_token.is_empty());
    // RFC 1123 dates are whole seconds.
    assert!(first.locked_until + Duration::from_secs(1) > before, "locked into the future");
    assert!(first.enqueued_at <= SystemTime::now());
    assert_eq!(got[1].id, "job-2");
    assert_eq!(got[1].body, binary.body, "binary bodies survive the string-only REST client");

    for m in &got {
        queue.complete(m).await.expect("complete");
    }
    assert_eq!(server.message_count(QUEUE), 0);
    let again = queue.receive(QUEUE, 10, LOCK, Duration::ZERO).await.expect("receive");
    assert!(again.is_empty(), "completed messages are gone");
    assert_eq!(server.rejected(), 0, "every request was signed correctly");
}

#[tokio::test]
async fn receive_returns_at_most_max_and_waits_for_a_late_message() {
    let (_server, queue) = setup(5).await;
    for i in 0..3 {
        queue.send(message(&format!("m{i}"), b"x")).await.expect("send");
    }
    let batch = queue.receive(QUEUE, 2, LOCK, Duration::ZERO).await.expect("receive");
    assert_eq!(batch.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["m0", "m1"]);
    let rest = queue.receive(QUEUE, 2, LOCK, Duration::ZERO).await.expect("receive");
    assert_eq!(rest.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["m2"]);
    for m in batch.iter().chain(&rest) {
        queue.complete(m).await.expect("complete");
    }

    let late = OutgoingMessage { delay: Some(Duration::from_millis(300)), ..message("late", b"x") };
    queue.send(late).await.expect("send delayed");
    assert!(queue.receive(QUEUE, 1, LOCK, Duration::ZERO).await.expect("receive").is_empty(), "not due yet");
    let started = Instant::now();
    let got = queue.receive(QUEUE, 1, LOCK, Duration::from_secs(3)).await.expect("receive");
    assert_eq!(got.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["late"]);
    assert!(started.elapsed() < Duration::from_secs(3), "the wait ends when the message is due");
}

#[tokio::test]
async fn abandon_redelivers_with_a_higher_delivery_count() {
    let (_server, queue) = setup(5).await;
    queue.send(message("job-1", b"work")).await.expect("send");
    let first = queue.receive(QUEUE, 1, LOCK, Duration::from_secs(1)).await.expect("receive").remove(0);
    queue.abandon(&first, Duration::ZERO).await.expect("abandon");

    let second = queue.receive(QUEUE, 1, LOCK, Duration::ZERO).await.expect("receive").remove(0);
    assert_eq!(second.id, "job-1");
    assert_eq!(second.delivery_count, 2);
    assert_ne!(second.lock_token, first.lock_token, "a new delivery, a new lock");
    assert!(matches!(queue.complete(&first).await, Err(QueueError::LockLost { .. })), "the old lock is spent");
    queue.complete(&second).await.expect("complete");
}

#[tokio::test]
async fn abandon_with_backoff_redelivers_the_same_message_later() {
    let (server, queue) = setup(5).await;
    let sent = message("job-1", b"work");
    queue.send(sent.clone()).await.expect("send");
    let first = queue.receive(QUEUE, 1, LOCK, Duration::from_secs(1)).await.expect("receive").remove(0);
    let abandoned_at = Instant::now();
    queue.abandon(&first, Duration::from_millis(500)).await.expect("abandon with backoff");

    assert!(queue.receive(QUEUE, 1, LOCK, Duration::ZERO).await.expect("receive").is_empty(), "backing off");
    let again = queue.receive(QUEUE, 1, LOCK, Duration::from_secs(3)).await.expect("receive").remove(0);
    assert!(abandoned_at.elapsed() >= Duration::from_millis(500), "not before retry_after");
    assert_eq!(again.id, "job-1", "the producer's id, not the copy's broker id");
    assert_eq!(again.delivery_count, 2, "deliveries of the original count");
    assert_eq!(
        (again.body.as_slice(), &again.properties, &again.traceparent),
        (b"work".as_slice(), &sent.properties, &sent.traceparent)
    );
    queue.complete(&again).await.expect("complete");
    assert_eq!(server.message_count(QUEUE), 0, "the original was completed, not left behind");
}

#[tokio::test]
async fn renewed_lock_keeps_the_message_invisible_past_its_original_lock() {
    let (_server, queue) = setup(5).await;
    queue.send(message("long-job", b"work")).await.expect("send");
    let received_at = Instant::now();
    let m = queue.receive(QUEUE, 1, LOCK, Duration::from_secs(1)).await.expect("receive").remove(0);

    // Renew every 400 ms for 2 s (twice the lock) while another consumer keeps looking.
    for _ in 0..5 {
        // Real time passing is the point: the broker's lock would expire without the renewals.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let until =
            queue.renew_lock(&m, LOCK).await.unwrap_or_else(|e| panic!("renew at {:?}: {e}", received_at.elapsed()));
        assert!(until > SystemTime::now() + LOCK / 2, "the new expiry is ahead");
        let other = queue.receive(QUEUE, 1, LOCK, Duration::ZERO).await.expect("receive");
        assert!(other.is_empty(), "still locked at {:?}", received_at.elapsed());
    }
    assert!(received_at.elapsed() > 2 * LOCK);
    queue.complete(&m).await.expect("complete after long work");
}

#[tokio::test]
async fn expired_lock_redelivers_the_message() {
    let (_server, queue) = setup(5).await;
    queue.send(message("crashy", b"work")).await.expect("send");
    let first = queue.receive(QUEUE, 1, LOCK, Duration::from_secs(1)).await.expect("receive").remove(0);
    // The consumer "crashes": no complete, no abandon.
    let started = Instant::now();
    let again = queue.receive(QUEUE, 1, LOCK, Duration::from_secs(3)).await.expect("receive").remove(0);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(again.id, first.id);
    assert_eq!(again.delivery_count, 2);
    queue.complete(&again).await.expect("complete");
}

#[tokio::test]
async fn complete_after_lock_expiry_is_lock_lost() {
    let (server, queue) = setup(5).await;
    queue.send(message("slow", b"work")).await.expect("send");
    queue.send(message("slower", b"work")).await.expect("send");
    let got = queue.receive(QUEUE, 2, LOCK, Duration::from_secs(1)).await.expect("receive");
    assert_eq!(got.len(), 2);
    // The broker's real lock must expire (it is reached over HTTP; its clock cannot be moved).
    tokio::time::sleep(LOCK + Duration::from_millis(200)).await;

    match queue.complete(&got[0]).await {
        Err(QueueError::LockLost { queue: q, id }) => assert_eq!((q.as_str(), id.as_str()), (QUEUE, "slow")),
        other => panic!("expected LockLost, got {other:?}"),
    }
    // Dead-lettering and delayed abandon copy the message: an expired lock must fail before that.
    assert!(matches!(queue.dead_letter(&got[1], "too late").await, Err(QueueError::LockLost { .. })));
    assert_eq!(server.message_count(&dead_letter_queue(QUEUE)), 0, "no copy was made");
    assert_eq!(server.message_count(QUEUE), 2, "the messages stay for redelivery");

    let again = queue.receive(QUEUE, 2, LOCK, Duration::ZERO).await.expect("receive");
    assert_eq!(again.iter().map(|m| m.delivery_count).collect::<Vec<_>>(), [2, 2]);
    assert!(matches!(queue.renew_lock(&got[0], LOCK).await, Err(QueueError::LockLost { .. })));
    assert!(matches!(queue.abandon(&got[1], Duration::from_secs(1)).await, Err(QueueError::LockLost { .. })));
}

#[tokio::test]
async fn poison_message_is_dead_lettered_after_max_deliveries_and_others_keep_flowing() {
    const MAX: u32 = 3;
    let (server, queue) = setup(MAX).await;
    queue.send(message("poison", b"boom")).await.expect("send");
    queue.send(message("good", b"fine")).await.expect("send");

    let mut poison_deliveries = Vec::new();
    let mut completed = Vec::new();
    for _ in 0..10 {
        let batch = queue.receive(QUEUE, 10, LOCK, Duration::ZERO).await.expect("receive");
        if batch.is_empty() {
            break;
        }
        for m in batch {
            if m.id == "poison" {
                poison_deliveries.push(m.delivery_count);
                queue.abandon(&m, Duration::ZERO).await.expect("abandon");
            } else {
                queue.complete(&m).await.expect("complete");
                completed.push(m.id);
            }
        }
    }
    assert_eq!(poison_deliveries, [1, 2, 3], "handed out max_deliveries times, then no more");
    assert_eq!(completed, ["good"], "other messages kept flowing");
    assert_eq!(server.message_count(QUEUE), 0);
    assert_eq!(server.message_count(&dead_letter_queue(QUEUE)), 1);

    for _ in 0..2 {
        let letters = queue.dead_letters(QUEUE, 10).await.expect("dead letters");
        assert_eq!(letters.len(), 1, "inspection does not consume dead letters");
        let letter = &letters[0];
        assert_eq!(letter.message.id, "poison");
        assert_eq!(letter.message.queue, QUEUE);
        assert_eq!(letter.message.body, b"boom");
        assert_eq!(letter.message.properties, message("poison", b"").properties);
        assert_eq!(letter.message.delivery_count, MAX + 1);
        assert!(letter.reason.contains("max_deliveries"), "{}", letter.reason);
        assert!(letter.dead_lettered_at <= SystemTime::now());
        assert!(letter.dead_lettered_at + Duration::from_secs(60) > SystemTime::now());
    }
}

#[tokio::test]
async fn dead_letter_moves_the_message_with_its_reason() {
    let (server, queue) = setup(5).await;
    queue.send(message("bad-payload", b"{not json")).await.expect("send");
    let m = queue.receive(QUEUE, 1, LOCK, Duration::from_secs(1)).await.expect("receive").remove(0);
    queue.dead_letter(&m, "payload is not JSON").await.expect("dead-letter");

    assert_eq!(server.message_count(QUEUE), 0);
    let letters = queue.dead_letters(QUEUE, 10).await.expect("dead letters");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].reason, "payload is not JSON");
    assert_eq!(letters[0].message.lock_token, m.lock_token, "as last delivered");
    assert_eq!(letters[0].message.delivery_count, 1);
    assert!(queue.receive(QUEUE, 1, LOCK, Duration::ZERO).await.expect("receive").is_empty());
    assert!(matches!(queue.complete(&m).await, Err(QueueError::LockLost { .. })), "already settled");
}

#[tokio::test]
async fn wrong_key_is_unavailable_naming_credentials() {
    let server = ContractServer::start(&[QUEUE], LOCK).await;
    let queue = ServiceBusQueue::new(server.config_with_key("not-the-key")).expect("adapter");
    for result in [
        queue.send(message("m", b"x")).await.map(drop),
        queue.receive(QUEUE, 1, LOCK, Duration::ZERO).await.map(drop),
        queue.dead_letters(QUEUE, 1).await.map(drop),
    ] {
        match result {
            Err(QueueError::Unavailable(text)) => {
                assert!(text.contains("credentials") && text.contains("401"), "{text}");
                assert!(!text.contains("not-the-key"), "the key is never quoted: {text}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
    assert_eq!(server.rejected(), 3);
    assert_eq!(server.message_count(QUEUE), 0);
}

#[tokio::test]
async fn server_errors_and_timeouts_are_unavailable() {
    let (server, queue) = setup(5).await;
    queue.send(message("m", b"x")).await.expect("send");
    let m = queue.receive(QUEUE, 1, LOCK, Duration::from_secs(1)).await.expect("receive").remove(0);

    server.fail_with(Some(503));
    assert!(matches!(queue.send(message("n", b"x")).await, Err(QueueError::Unavailable(t)) if t.contains("503")));
    assert!(matches!(queue.receive(QUEUE, 1, LOCK, Duration::ZERO).await, Err(QueueError::Unavailable(_))));
    assert!(matches!(queue.complete(&m).await, Err(QueueError::Unavailable(_))), "not LockLost: the lock may hold");
    server.fail_with(None);
    queue.complete(&m).await.expect("the lock was kept for a retry");

    let impatient =
        ServiceBusQueue::new(server.config().with_request_timeout(Duration::from_millis(200))).expect("adapter");
    server.stall(Some(Duration::from_secs(2)));
    let started = Instant::now();
    assert!(matches!(impatient.send(message("o", b"x")).await, Err(QueueError::Unavailable(_))));
    assert!(started.elapsed() < Duration::from_secs(2), "the request timed out");
}

#[tokio::test]
async fn unknown_queues_and_bad_messages_are_invalid() {
    let (_server, queue) = setup(5).await;
    let elsewhere = OutgoingMessage { queue: "no-such-queue".to_owned(), ..message("m", b"x") };
    assert!(matches!(queue.send(elsewhere).await, Err(QueueError::Invalid(t)) if t.contains("does not exist")));
    assert!(matches!(queue.receive("no-such-queue", 1, LOCK, Duration::ZERO).await, Err(QueueError::Invalid(_))));
    assert!(matches!(queue.receive("bad?queue", 1, LOCK, Duration::ZERO).await, Err(QueueError::Invalid(_))));
    let mut reserved = message("m", b"x");
    reserved.properties.insert("Authorization".to_owned(), "x".to_owned());
    assert!(matches!(queue.send(reserved).await, Err(QueueError::Invalid(_))));
}
