//! Transactional outbox, relay, idempotent inbox and the consumer runner, on both backends —
//! including the crash tests: relay killed mid-stream, consumer dying mid-message, poison message.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use kem_kit::clock::ManualClock;
use kem_kit::outbox::{
    Consumer, ConsumerOptions, ConsumerReport, HandlerError, Inbox, InboxError, Outbox, OutboxRelay, Processed,
    RelayOptions, TraceParent,
};
use kem_kit::queue::store::{StoreQueue, StoreQueueOptions};
use kem_kit::queue::{DeadLetter, OutgoingMessage, Queue, QueueError, ReceivedMessage};
use kem_kit::store::{self, Backend, Store, StoreError};
use kem_mesh::Shutdown;
use tokio::sync::{Mutex, Notify};

use kem_testkit::eventually;

use crate::queue::message;
use crate::store::{Fixture, ddl, on_both_backends};

const Q: &str = "analytics-aggregation";

/// A queue in front of another that counts what it publishes, can fail the first sends, and can
/// "crash": after `stall_after` successful sends every further send hangs forever (like a
/// process frozen mid-batch), until the test aborts the relay task.
struct TestQueue {
    inner: Arc<dyn Queue>,
    fail_first: AtomicU64,
    stall_after: AtomicI64,
    stalled: Notify,
    sends: Arc<AtomicU64>,
    published: Arc<Mutex<HashSet<String>>>,
}

impl TestQueue {
    fn new(inner: Arc<dyn Queue>) -> TestQueue {
        TestQueue {
            inner,
            fail_first: AtomicU64::new(0),
            stall_after: AtomicI64::new(-1),
            stalled: Notify::new(),
            sends: Arc::default(),
            published: Arc::default(),
        }
    }
}

#[async_trait::async_trait]
impl Queue for TestQueue {
    async fn send(&self, message: OutgoingMessage) -> Result<(), QueueError> {
        if self.fail_first.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(QueueError::Unavailable("injected failure".into()));
        }
        if self.stall_after.load(Ordering::SeqCst) >= 0 && self.stall_after.fetch_sub(1, Ordering::SeqCst) <= 0 {
            self.stalled.notify_one();
            std::future::pending::<()>().await;
        }
        let id = message.id.clone();
        self.inner.send(message).await?;
        self.sends.fetch_add(1, Ordering::SeqCst);
        self.published.lock().await.insert(id);
        Ok(())
    }
    async fn receive(
        &self,
        q: &str,
        max: usize,
        lock: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        self.inner.receive(q, max, lock, wait).await
    }
    async fn complete(&self, m: &ReceivedMessage) -> Result<(), QueueError> {
        self.inner.complete(m).await
    }
    async fn abandon(&self, m: &ReceivedMessage, retry_after: Duration) -> Result<(), QueueError> {
        self.inner.abandon(m, retry_after).await
    }
    async fn dead_letter(&self, m: &ReceivedMessage, reason: &str) -> Result<(), QueueError> {
        self.inner.dead_letter(m, reason).await
    }
    async fn renew_lock(&self, m: &ReceivedMessage, lock: Duration) -> Result<SystemTime, QueueError> {
        self.inner.renew_lock(m, lock).await
    }
    async fn dead_letters(&self, q: &str, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        self.inner.dead_letters(q, max).await
    }
}

async fn effects_table(store: &Store) {
    ddl(
        store,
        "CREATE TABLE effects (message_id TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        "CREATE TABLE effects (message_id TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await;
}

/// The consumer's effect: one row per application, deliberately without a unique key so that a
/// double application would show.
async fn apply(store: &Store, consumer: &str, id: &str) -> Result<Processed<()>, InboxError<StoreError>> {
    let id_owned = id.to_owned();
    Inbox::process(store, consumer, id, |tx| {
        Box::pin(async move {
            store::query("INSERT INTO effects (message_id, applied_at) VALUES ($1, $2)")
                .bind(id_owned)
                .bind(kem_kit::store::millis(SystemTime::now()))
                .execute(tx)
                .await
                .map(drop)
        })
    })
    .await
}

async fn count(store: &Store, sql: &'static str) -> i64 {
    store::query(sql).fetch_one(store).await.expect("count").get::<i64>("n").expect("n")
}

async fn effects(store: &Store) -> i64 {
    count(store, "SELECT COUNT(*) AS n FROM effects").await
}

fn fast_queue(store: &Store, tune: impl FnOnce(&mut StoreQueueOptions)) -> Arc<StoreQueue> {
    let mut options = StoreQueueOptions { poll_interval: Duration::from_millis(20), ..StoreQueueOptions::default() };
    tune(&mut options);
    Arc::new(StoreQueue::with_options(store.clone(), options))
}

fn consumer_options(lock_for: Duration) -> ConsumerOptions {
    ConsumerOptions {
        lock_for,
        receive_wait: Duration::from_millis(200),
        retry_delay: Duration::from_millis(50),
        drain_timeout: Duration::from_secs(10),
        ..ConsumerOptions::new(Q)
    }
}

/// A consumer applying [`apply`] for every message, recording how often each id was delivered.
fn spawn_applying_consumer(
    store: &Store,
    queue: Arc<dyn Queue>,
    options: ConsumerOptions,
    shutdown: &Shutdown,
    deliveries: &Arc<Mutex<HashMap<String, u32>>>,
) -> tokio::task::JoinHandle<ConsumerReport> {
    let (store, seen) = (store.clone(), deliveries.clone());
    let handler = move |m: ReceivedMessage| {
        let (store, seen) = (store.clone(), seen.clone());
        async move {
            *seen.lock().await.entry(m.id.clone()).or_default() += 1;
            apply(&store, "test-consumer", &m.id).await?;
            Ok(())
        }
    };
    tokio::spawn(Consumer::run(queue, handler, options, shutdown.clone()))
}

on_both_backends!(
    enqueue_commits_and_rolls_back_with_the_business_transaction,
    a_failed_publication_is_retried_with_backoff,
    concurrent_relays_publish_each_row_once,
    the_inbox_applies_an_effect_exactly_once,
    the_consumer_continues_the_producers_trace,
    long_handlers_keep_their_lock,
    rejected_and_panicking_handlers,
    shutdown_drains_in_flight_messages,
    consumer_crash_mid_message_is_redelivered_and_applied_once,
    a_poison_message_is_dead_lettered_while_others_flow,
    outbox_survives_relay_crashes,
);

async fn enqueue_commits_and_rolls_back_with_the_business_transaction(f: &Fixture) {
    ddl(&f.store, "CREATE TABLE orders (id TEXT PRIMARY KEY)", "CREATE TABLE orders (id TEXT PRIMARY KEY)").await;
    let queue = fast_queue(&f.store, |_| {});
    let relay = OutboxRelay::new(f.store.clone(), queue.clone(), RelayOptions::default());

    let mut tx = f.store.begin().await.expect("begin");
    store::query("INSERT INTO orders (id) VALUES ($1)").bind("o1").execute(&mut tx).await.expect("insert");
    Outbox::enqueue(&mut tx, message(Q, "o1")).await.expect("enqueue");
    tx.rollback().await.expect("rollback");
    assert_eq!(Outbox::pending(&f.store).await.expect("pending"), 0, "rolled back with the state change");

    let mut tx = f.store.begin().await.expect("begin");
    store::query("INSERT INTO orders (id) VALUES ($1)").bind("o2").execute(&mut tx).await.expect("insert");
    let mut m = message(Q, "o2");
    m.properties.insert("order".into(), "o2".into());
    Outbox::enqueue(&mut tx, m).await.expect("enqueue");
    let mut later = message(Q, "o2-reminder");
    later.delay = Some(Duration::from_millis(1500));
    Outbox::enqueue(&mut tx, later).await.expect("enqueue");
    // Invisible to everyone else until the commit. (Read-only check: on SQLite the open
    // transaction holds the single write lock, so a receive would wait for it.)
    assert_eq!(Outbox::pending(&f.store).await.expect("pending"), 0);
    tx.commit().await.expect("commit");
    assert_eq!(Outbox::pending(&f.store).await.expect("pending"), 2);

    let batch = relay.relay_once().await.expect("relay");
    assert_eq!((batch.claimed, batch.published, batch.failed), (2, 2, 0));
    assert_eq!(Outbox::pending(&f.store).await.expect("pending"), 0, "published rows are removed");
    let got = queue.receive(Q, 10, Duration::from_secs(5), Duration::ZERO).await.expect("receive");
    assert_eq!(got.len(), 1, "the delayed one is not visible yet");
    assert_eq!(got[0].id, "o2");
    assert_eq!(got[0].properties.get("order").map(String::as_str), Some("o2"));
    let traceparent = got[0].traceparent.as_deref().expect("the outbox stamps a traceparent");
    assert!(TraceParent::parse(traceparent).is_some(), "{traceparent}");
    let reminder = queue.receive(Q, 10, Duration::from_secs(5), Duration::from_secs(5)).await.expect("receive");
    assert_eq!(reminder.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["o2-reminder"]);
    assert!(relay.relay_once().await.expect("relay").claimed == 0);

    let invalid = Outbox::enqueue(&mut f.store.begin().await.expect("begin"), message(Q, "")).await;
    assert!(matches!(invalid, Err(StoreError::Invalid(_))), "{invalid:?}");
}

async fn a_failed_publication_is_retried_with_backoff(f: &Fixture) {
    let test_queue = Arc::new(TestQueue::new(fast_queue(&f.store, |_| {})));
    test_queue.fail_first.store(1, Ordering::SeqCst);
    let clock = ManualClock::starting_now();
    let relay = OutboxRelay::new(f.store.clone(), test_queue.clone(), RelayOptions::default())
        .with_clock(Arc::new(clock.clone()));
    let mut tx = f.store.begin().await.expect("begin");
    Outbox::enqueue(&mut tx, message(Q, "flaky")).await.expect("enqueue");
    tx.commit().await.expect("commit");

    let batch = relay.relay_once().await.expect("relay");
    assert_eq!((batch.published, batch.failed), (0, 1));
    assert_eq!(Outbox::pending(&f.store).await.expect("pending"), 1, "kept for a retry");
    assert_eq!(relay.relay_once().await.expect("relay").claimed, 0, "not before its backoff");
    let row = store::query("SELECT attempts, last_error FROM kem_outbox").fetch_one(&f.store).await.expect("row");
    assert_eq!(row.get::<i32>("attempts").expect("attempts"), 1);
    assert!(row.get::<String>("last_error").expect("last_error").contains("injected failure"));
    clock.advance(Duration::from_millis(1100));
    let batch = relay.relay_once().await.expect("relay");
    assert_eq!((batch.published, batch.failed), (1, 0));
    assert_eq!(Outbox::pending(&f.store).await.expect("pending"), 0);
}

async fn concurrent_relays_publish_each_row_once(f: &Fixture) {
    const N: usize = 600;
    for chunk in 0..(N / 100) {
        let mut tx = f.store.begin().await.expect("begin");
        for i in 0..100 {
            Outbox::enqueue(&mut tx, message(Q, &format!("r{chunk}-{i}"))).await.expect("enqueue");
        }
        tx.commit().await.expect("commit");
    }
    let test_queue = Arc::new(TestQueue::new(fast_queue(&f.store, |_| {})));
    let relays: Vec<_> = (0..3)
        .map(|_| {
            let options = RelayOptions { batch_size: 40, ..RelayOptions::default() };
            let relay = OutboxRelay::new(f.store.clone(), test_queue.clone(), options);
            tokio::spawn(async move {
                for _ in 0..200 {
                    if relay.relay_once().await.expect("relay").claimed == 0 {
                        break;
                    }
                }
            })
        })
        .collect();
    for relay in relays {
        relay.await.expect("relay task");
    }
    assert_eq!(Outbox::pending(&f.store).await.expect("pending"), 0);
    assert_eq!(test_queue.sends.load(Ordering::SeqCst), N as u64, "claims are exclusive: no row published twice");
    assert_eq!(test_queue.published.lock().await.len(), N);
}

async fn the_inbox_applies_an_effect_exactly_once(f: &Fixture) {
    effects_table(&f.store).await;
    assert_eq!(apply(&f.store, "c", "m1").await.expect("first"), Processed::Applied(()));
    assert_eq!(apply(&f.store, "c", "m1").await.expect("again"), Processed::Duplicate);
    assert!(apply(&f.store, "other-consumer", "m1").await.expect("other").applied(), "inboxes are per consumer");
    assert_eq!(effects(&f.store).await, 2);
    assert!(Inbox::seen(&f.store, "c", "m1").await.expect("seen"));

    // A failing effect records nothing: the retry applies it.
    let failed = Inbox::process(&f.store, "c", "m2", |tx| {
        Box::pin(async move {
            store::query("INSERT INTO effects (message_id, applied_at) VALUES ($1, 0)").bind("m2").execute(tx).await?;
            Err::<(), _>(StoreError::Invalid("downstream said no".into()))
        })
    })
    .await;
    assert!(matches!(failed, Err(InboxError::Effect(_))), "{failed:?}");
    assert!(!Inbox::seen(&f.store, "c", "m2").await.expect("seen"));
    assert_eq!(effects(&f.store).await, 2, "the effect's writes rolled back with it");
    assert!(apply(&f.store, "c", "m2").await.expect("retry").applied());

    // Racing deliveries of one message: exactly one applies.
    let racers: Vec<_> = (0..6)
        .map(|_| {
            let store = f.store.clone();
            tokio::spawn(async move {
                Inbox::process(&store, "c", "m3", |tx| {
                    Box::pin(async move {
                        store::query("INSERT INTO effects (message_id, applied_at) VALUES ($1, 0)")
                            .bind("m3")
                            .execute(&mut *tx)
                            .await?;
                        // Hold the transaction open, so that the six racers really overlap.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Ok::<_, StoreError>(())
                    })
                })
                .await
                .expect("process")
            })
        })
        .collect();
    let mut applied = 0;
    for racer in racers {
        applied += usize::from(racer.await.expect("racer").applied());
    }
    assert_eq!(applied, 1);
    assert_eq!(effects(&f.store).await, 4);

    // Purged as of a moment past the records' millisecond: nothing waits for the wall clock.
    let later = std::time::SystemTime::now() + Duration::from_millis(5);
    assert_eq!(
        Inbox::purge_at(&f.store, later, Duration::from_secs(3_600)).await.expect("purge"),
        0,
        "none is that old"
    );
    assert_eq!(Inbox::purge(&f.store, Duration::from_secs(3_600)).await.expect("purge"), 0, "nor by the system clock");
    assert_eq!(Inbox::purge_at(&f.store, later, Duration::ZERO).await.expect("purge"), 4);
    assert!(!Inbox::seen(&f.store, "c", "m1").await.expect("seen"));
}

async fn the_consumer_continues_the_producers_trace(f: &Fixture) {
    let queue = fast_queue(&f.store, |_| {});
    let producer = TraceParent::new_root();
    let store = f.store.clone();
    producer
        .scope(async move {
            let mut tx = store.begin().await.expect("begin");
            Outbox::enqueue(&mut tx, message(Q, "traced")).await.expect("enqueue");
            tx.commit().await.expect("commit");
        })
        .await;
    OutboxRelay::new(f.store.clone(), queue.clone(), RelayOptions::default()).relay_once().await.expect("relay");

    // (the message's traceparent, the handler's current context)
    type Seen = Option<(Option<String>, Option<TraceParent>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let shutdown = Shutdown::new();
    let record = seen.clone();
    let handler = move |m: ReceivedMessage| {
        let record = record.clone();
        async move {
            *record.lock().await = Some((m.traceparent.clone(), TraceParent::current()));
            Ok(())
        }
    };
    let consumer =
        tokio::spawn(Consumer::run(queue, handler, consumer_options(Duration::from_secs(10)), shutdown.clone()));
    eventually("the message to be handled", Duration::from_secs(10), || async { seen.lock().await.is_some() }).await;
    shutdown.trigger();
    assert_eq!(consumer.await.expect("consumer").completed, 1);
    let (carried, current) = seen.lock().await.clone().expect("handled");
    assert_eq!(carried.as_deref(), Some(producer.to_string().as_str()), "the message carries the producing span");
    let current = current.expect("the handler runs in a trace context");
    assert_eq!(current.trace_id(), producer.trace_id(), "same trace");
    assert_ne!(current.span_id(), producer.span_id(), "a child span");
}

async fn long_handlers_keep_their_lock(f: &Fixture) {
    let queue = fast_queue(&f.store, |_| {});
    queue.send(message(Q, "long")).await.expect("send");
    let deliveries: Arc<Mutex<Vec<u32>>> = Arc::default();
    let record = deliveries.clone();
    let handler = move |m: ReceivedMessage| {
        let record = record.clone();
        async move {
            record.lock().await.push(m.delivery_count);
            // Real work outlasting three 600 ms locks: the consumer's renewals are what is tested.
            tokio::time::sleep(Duration::from_millis(2000)).await;
            Ok(())
        }
    };
    let shutdown = Shutdown::new();
    let mut options = consumer_options(Duration::from_millis(600));
    options.concurrency = 2;
    let consumer = tokio::spawn(Consumer::run(queue.clone(), handler, options, shutdown.clone()));
    eventually("the long handler to finish", Duration::from_secs(10), || async {
        queue.depth(Q).await.expect("depth") == Default::default()
    })
    .await;
    shutdown.trigger();
    let report = consumer.await.expect("consumer");
    assert_eq!((report.completed, report.lock_lost), (1, 0), "{report:?}");
    assert_eq!(*deliveries.lock().await, vec![1], "renewals kept other receivers away");
}

async fn rejected_and_panicking_handlers(f: &Fixture) {
    let queue = fast_queue(&f.store, |_| {});
    for id in ["reject", "panic-once", "ok"] {
        queue.send(message(Q, id)).await.expect("send");
    }
    let handler = |m: ReceivedMessage| async move {
        match (m.id.as_str(), m.delivery_count) {
            ("reject", _) => Err(HandlerError::Reject("unknown event".into())),
            ("panic-once", 1) => panic!("handler bug on first delivery"),
            _ => Ok(()),
        }
    };
    let shutdown = Shutdown::new();
    let consumer = tokio::spawn(Consumer::run(
        queue.clone(),
        handler,
        consumer_options(Duration::from_secs(10)),
        shutdown.clone(),
    ));
    eventually("all three to settle", Duration::from_secs(10), || async {
        let depth = queue.depth(Q).await.expect("depth");
        depth.ready + depth.locked + depth.scheduled == 0
    })
    .await;
    shutdown.trigger();
    let report = consumer.await.expect("consumer");
    assert_eq!((report.completed, report.dead_lettered, report.panicked, report.abandoned), (2, 1, 1, 1), "{report:?}");
    let dead = queue.dead_letters(Q, 10).await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].message.id.as_str(), dead[0].reason.as_str()), ("reject", "unknown event"));
    assert_eq!(dead[0].message.delivery_count, 1, "rejected without retries");
}

async fn shutdown_drains_in_flight_messages(f: &Fixture) {
    let queue = fast_queue(&f.store, |_| {});
    for i in 0..4 {
        queue.send(message(Q, &format!("s{i}"))).await.expect("send");
    }
    let started = Arc::new(AtomicU64::new(0));
    let counter = started.clone();
    let handler = move |_m: ReceivedMessage| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            // Real work still running when the shutdown comes: the drain must wait for it.
            tokio::time::sleep(Duration::from_millis(400)).await;
            Ok(())
        }
    };
    let shutdown = Shutdown::new();
    let consumer = tokio::spawn(Consumer::run(
        queue.clone(),
        handler,
        consumer_options(Duration::from_secs(10)),
        shutdown.clone(),
    ));
    eventually("4 handlers in flight", Duration::from_secs(10), || async { started.load(Ordering::SeqCst) == 4 }).await;
    let stopping = Instant::now();
    shutdown.trigger();
    let report = consumer.await.expect("consumer");
    assert_eq!(report.completed, 4, "in-flight messages finish: {report:?}");
    assert!(stopping.elapsed() < Duration::from_secs(3), "{:?}", stopping.elapsed());
    assert_eq!(queue.depth(Q).await.expect("depth"), Default::default());

    // A handler that outlives the drain timeout is cancelled; its message comes back later.
    queue.send(message(Q, "stuck")).await.expect("send");
    let handler = |_m: ReceivedMessage| async move {
        std::future::pending::<()>().await;
        Ok(())
    };
    let shutdown = Shutdown::new();
    let mut options = consumer_options(Duration::from_millis(500));
    options.drain_timeout = Duration::from_millis(300);
    let consumer = tokio::spawn(Consumer::run(queue.clone(), handler, options, shutdown.clone()));
    eventually("the stuck handler to start", Duration::from_secs(10), || async {
        queue.depth(Q).await.expect("depth").locked == 1
    })
    .await;
    shutdown.trigger();
    let report = consumer.await.expect("consumer");
    assert_eq!(report.cancelled, 1, "{report:?}");
    let back = queue.receive(Q, 1, Duration::from_secs(5), Duration::from_secs(5)).await.expect("receive");
    assert_eq!(back.iter().map(|m| (m.id.as_str(), m.delivery_count)).collect::<Vec<_>>(), [("stuck", 2)]);
}

async fn consumer_crash_mid_message_is_redelivered_and_applied_once(f: &Fixture) {
    effects_table(&f.store).await;
    let queue = fast_queue(&f.store, |_| {});
    queue.send(message(Q, "before-effect")).await.expect("send");
    queue.send(message(Q, "after-effect")).await.expect("send");

    // Consumer A takes both and "dies": one before applying its effect, one after applying it
    // but before completing. Its task is aborted: no renewal, no complete, no abandon.
    let started = Arc::new(AtomicU64::new(0));
    let (store, counter) = (f.store.clone(), started.clone());
    let doomed = move |m: ReceivedMessage| {
        let (store, counter) = (store.clone(), counter.clone());
        async move {
            if m.id == "after-effect" {
                apply(&store, "test-consumer", &m.id).await.expect("apply");
            }
            counter.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>().await;
            Ok(())
        }
    };
    let lock_for = Duration::from_millis(1000);
    let a = tokio::spawn(Consumer::run(queue.clone(), doomed, consumer_options(lock_for), Shutdown::new()));
    eventually("consumer A to hold both", Duration::from_secs(10), || async { started.load(Ordering::SeqCst) == 2 })
        .await;
    a.abort();
    assert!(a.await.expect_err("aborted").is_cancelled());
    let crashed = Instant::now();
    assert_eq!(queue.depth(Q).await.expect("depth").locked, 2, "still locked by the dead consumer");

    let shutdown = Shutdown::new();
    let deliveries = Arc::default();
    let b = spawn_applying_consumer(&f.store, queue.clone(), consumer_options(lock_for), &shutdown, &deliveries);
    eventually("both messages to be settled by B", Duration::from_secs(10), || async {
        deliveries.lock().await.len() == 2 && queue.depth(Q).await.expect("depth") == Default::default()
    })
    .await;
    assert!(crashed.elapsed() >= Duration::from_millis(300), "redelivered only after the lock expired");
    // A quiet period, as what must not happen cannot be awaited: nothing else trickles in.
    tokio::time::sleep(Duration::from_millis(300)).await;
    shutdown.trigger();
    let report = b.await.expect("consumer B");
    assert_eq!(report.completed, 2, "{report:?}");
    assert_eq!(effects(&f.store).await, 2, "each effect exactly once");
    assert_eq!(count(&f.store, "SELECT COUNT(DISTINCT message_id) AS n FROM effects").await, 2);
    assert_eq!(deliveries.lock().await.values().copied().collect::<Vec<_>>(), [1, 1], "B saw each once");
}

async fn a_poison_message_is_dead_lettered_while_others_flow(f: &Fixture) {
    effects_table(&f.store).await;
    let queue = fast_queue(&f.store, |o| o.max_deliveries = 3);
    for i in 0..40 {
        if i == 10 {
            queue.send(message(Q, "poison")).await.expect("send");
        }
        queue.send(message(Q, &format!("good-{i}"))).await.expect("send");
    }
    let attempts = Arc::new(AtomicU64::new(0));
    let (store, tries) = (f.store.clone(), attempts.clone());
    let handler = move |m: ReceivedMessage| {
        let (store, tries) = (store.clone(), tries.clone());
        async move {
            if m.id == "poison" {
                tries.fetch_add(1, Ordering::SeqCst);
                return Err(HandlerError::Retry("cannot parse payload".into()));
            }
            apply(&store, "test-consumer", &m.id).await?;
            Ok(())
        }
    };
    let shutdown = Shutdown::new();
    let mut options = consumer_options(Duration::from_secs(10));
    options.concurrency = 4;
    let consumer = tokio::spawn(Consumer::run(queue.clone(), handler, options, shutdown.clone()));
    eventually("good messages applied and the poison dead-lettered", Duration::from_secs(20), || async {
        effects(&f.store).await == 40 && !queue.dead_letters(Q, 10).await.expect("dead letters").is_empty()
    })
    .await;
    shutdown.trigger();
    let report = consumer.await.expect("consumer");
    let dead = queue.dead_letters(Q, 10).await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message.id, "poison");
    assert_eq!(dead[0].message.delivery_count, 3);
    assert!(dead[0].reason.contains("max_deliveries = 3"), "{}", dead[0].reason);
    assert_eq!(attempts.load(Ordering::SeqCst), 3, "tried exactly max_deliveries times");
    assert_eq!(report.completed, 40, "{report:?}");
    assert_eq!(queue.depth(Q).await.expect("depth").ready, 0);
}

/// 10,000 state changes (PostgreSQL; 2,000 on SQLite, whose single writer makes each commit
/// serial), each committing a row and an outbox message together, while relays are killed mid
/// batch five times and restarted, and the consumer (applying every message through the inbox)
/// is killed and restarted once.
async fn outbox_survives_relay_crashes(f: &Fixture) {
    let n: usize = match f.backend() {
        Backend::Postgres => 10_000,
        Backend::Sqlite => 2_000,
    };
    const PRODUCERS: usize = 8;
    let started = Instant::now();
    ddl(&f.store, "CREATE TABLE changes (id TEXT PRIMARY KEY)", "CREATE TABLE changes (id TEXT PRIMARY KEY)").await;
    effects_table(&f.store).await;
    // No dedupe window: a republished message reaches the consumer even after the first copy
    // was completed, so the inbox — not the queue — must keep the effect single.
    let queue = fast_queue(&f.store, |o| o.dedupe_window = Duration::ZERO);

    let shutdown = Shutdown::new();
    let mut options = consumer_options(Duration::from_secs(2));
    options.concurrency = 8;
    options.max_batch = 32;
    let deliveries = Arc::default();
    let mut consumer_crashes =
        spawn_applying_consumer(&f.store, queue.clone(), options.clone(), &shutdown, &deliveries);

    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let store = f.store.clone();
            tokio::spawn(async move {
                for i in (p..n).step_by(PRODUCERS) {
                    let id = format!("change-{i:05}");
                    let mut tx = store.begin().await.expect("begin");
                    store::query("INSERT INTO changes (id) VALUES ($1)")
                        .bind(id.as_str())
                        .execute(&mut tx)
                        .await
                        .expect("state");
                    Outbox::enqueue(&mut tx, message(Q, &id)).await.expect("enqueue");
                    tx.commit().await.expect("commit");
                }
            })
        })
        .collect();

    let relay_options = RelayOptions {
        batch_size: 200,
        publish_concurrency: 8,
        poll_interval: Duration::from_millis(20),
        lease: Duration::from_secs(1),
        ..RelayOptions::default()
    };
    let (sends, published) = (Arc::new(AtomicU64::new(0)), Arc::new(Mutex::new(HashSet::new())));
    let make_queue = |stall_after: i64| {
        let mut q = TestQueue::new(queue.clone());
        q.stall_after = AtomicI64::new(stall_after);
        q.sends = sends.clone();
        q.published = published.clone();
        Arc::new(q)
    };
    let mut crashes = 0;
    for generation in 0..5 {
        // Not a multiple of the batch size, so every crash strands some published-but-unmarked rows.
        let stall_after = (n * (generation + 1) / 25 + 37) as i64;
        let crashing = make_queue(stall_after);
        let relay = OutboxRelay::new(f.store.clone(), crashing.clone(), relay_options.clone()).spawn(Shutdown::new());
        tokio::time::timeout(Duration::from_secs(30), crashing.stalled.notified())
            .await
            .unwrap_or_else(|_| panic!("relay generation {generation} never reached its crash point"));
        relay.abort();
        let _ = relay.await;
        crashes += 1;
        if generation == 2 {
            // The consumer dies too, mid-stream: messages whose effect committed but which were
            // not completed come back after their lock, and the inbox must absorb them.
            consumer_crashes.abort();
            let _ = consumer_crashes.await;
            consumer_crashes =
                spawn_applying_consumer(&f.store, queue.clone(), options.clone(), &shutdown, &deliveries);
        }
    }
    let consumer = consumer_crashes;
    let relay = OutboxRelay::new(f.store.clone(), make_queue(-1), relay_options).spawn(shutdown.clone());
    for producer in producers {
        producer.await.expect("producer");
    }
    let produced_in = started.elapsed();

    let deadline = Duration::from_secs(90);
    eventually("every effect to be applied", deadline, || async {
        effects(&f.store).await >= n as i64
            && Outbox::pending(&f.store).await.expect("pending") == 0
            && queue.depth(Q).await.expect("depth") == Default::default()
    })
    .await;
    shutdown.trigger();
    let report = consumer.await.expect("consumer");
    relay.await.expect("relay");

    let delivered = deliveries.lock().await;
    let duplicates_delivered: u32 = delivered.values().map(|c| c - 1).sum();
    eprintln!(
        "outbox crash test on {}: {n} changes, {crashes} relay crashes, {} sends for {} ids, {duplicates_delivered} \
         duplicate deliveries absorbed by the inbox; produced in {produced_in:?}, done in {:?}; {report:?}",
        f.backend(),
        sends.load(Ordering::SeqCst),
        published.lock().await.len(),
        started.elapsed()
    );
    assert_eq!(crashes, 5);
    assert_eq!(count(&f.store, "SELECT COUNT(*) AS n FROM changes").await, n as i64);
    assert_eq!(delivered.len(), n, "every message delivered at least once");
    assert_eq!(effects(&f.store).await, n as i64, "every effect applied exactly once");
    assert_eq!(count(&f.store, "SELECT COUNT(DISTINCT message_id) AS n FROM effects").await, n as i64);
    let lost = count(
        &f.store,
        "SELECT COUNT(*) AS n FROM changes c WHERE NOT EXISTS (SELECT 1 FROM effects e WHERE e.message_id = c.id)",
    )
    .await;
    assert_eq!(lost, 0, "no state change lost its message");
    assert!(
        sends.load(Ordering::SeqCst) > published.lock().await.len() as u64,
        "the crashes made the relay publish some rows twice (the case the inbox exists for)"
    );
    assert_eq!(report.dead_lettered, 0);
}
