//! A participation replica killed (`kill -9`) during an entry burst costs no entry: the calls
//! whose answers died with its connections are retried by the mesh client on the other replica
//! (Enter is IDEMPOTENT in the contract), and the retry of an entry the dead replica had already
//! stored answers with that entry (same `x-request-id`) instead of DUPLICATE_ENTRY.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use kem_proto::kem::event::v1::EventStatus;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use kem_testkit::eventually_holds;

use crate::support::*;

/// A TCP forwarder standing in for a replica's process (as in the mesh's `hostile` tests): `kill`
/// closes every socket at once and stops listening, as the kernel does when a process dies.
/// While `hold` is on, the replica's answers are read from it but not passed on, so the calls it
/// answers meanwhile are processed and committed but unanswered: the window in which a kill loses
/// answers, made wide enough to hit every time.
struct Replica {
    addr: SocketAddr,
    hold: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Replica {
    async fn start(backend: SocketAddr) -> Replica {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the replica's address");
        let addr = listener.local_addr().expect("addr");
        let (hold, held) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((inbound, _)) = listener.accept().await {
                connections.spawn(forward(inbound, backend, held.clone()));
            }
        });
        Replica { addr, hold, tasks }
    }

    fn hold_answers(&self, hold: bool) {
        self.hold.send_replace(hold);
    }

    /// Every socket closed at once (aborting the accept task drops its connections too).
    async fn kill(mut self) {
        self.tasks.shutdown().await;
    }
}

async fn forward(inbound: TcpStream, backend: SocketAddr, mut held: watch::Receiver<bool>) {
    let Ok(outbound) = TcpStream::connect(backend).await else { return };
    let (mut from_client, mut to_client) = inbound.into_split();
    let (mut from_server, mut to_server) = outbound.into_split();
    let requests = async {
        let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
        let _ = to_server.shutdown().await;
    };
    let answers = async {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let n = match from_server.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if held.wait_for(|hold| !*hold).await.is_err() || to_client.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = to_client.shutdown().await;
    };
    tokio::join!(requests, answers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_burst_fails_no_entry_and_stores_none_twice() {
    let h = Harness::new().await;
    let event_id = h.add(event(EventStatus::Published));
    let (backend_a, answered_a) = h.serve_replica().await;
    let (backend_b, answered_b) = h.serve_replica().await;
    let (a, b) = (Replica::start(backend_a).await, Replica::start(backend_b).await);
    // The gateway's upstream: balanced over both replicas, retrying what the contract allows.
    let (client, channel) = h.balanced_client("gateway", &[a.addr, b.addr]).await;

    // 100 entries a second, each a new phone with its own request id, as the edge sends them.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let burst = {
        let (stop, sent, event_id) = (stop.clone(), sent.clone(), event_id.clone());
        tokio::spawn(async move {
            let mut calls = JoinSet::new();
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            for i in 0..3_000 {
                tick.tick().await;
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let mut client = client.clone();
                let request = entry(&event_id, &format!("참가자{i}"), &phone(i));
                calls.spawn(async move {
                    let answer = client.enter(with_request_id(request, &format!("burst-{i:04}"))).await;
                    (i, answer.map(|r| r.into_inner().entry.unwrap_or_default()))
                });
                sent.fetch_add(1, Ordering::SeqCst);
            }
            calls.join_all().await
        })
    };

    let calls = |n: &AtomicU64| n.load(Ordering::SeqCst);
    eventually_holds("both replicas take entries", Duration::from_secs(10), || {
        calls(&answered_a) >= 3 && calls(&answered_b) >= 3
    })
    .await;

    // Both replicas keep working but their answers stop reaching the client, so unanswered
    // calls pile up on both (the balancer spreads them by calls in flight); once A has stored
    // entries it could not answer, it dies. Every answer counted from here on is held.
    a.hold_answers(true);
    b.hold_answers(true);
    let (before_a, before_b) = (calls(&answered_a), calls(&answered_b));
    eventually_holds("A stores entries whose answers it holds", Duration::from_secs(10), || {
        calls(&answered_a) >= before_a + 2
    })
    .await;
    let lost = calls(&answered_a) - before_a;
    a.kill().await;
    b.hold_answers(false);
    let killed_at = sent.load(Ordering::SeqCst);

    // The burst goes on against the survivor (new calls to the dead address are sent on).
    eventually_holds("the burst goes on", Duration::from_secs(10), || sent.load(Ordering::SeqCst) >= killed_at + 30)
        .await;
    stop.store(true, Ordering::SeqCst);
    let results = tokio::time::timeout(Duration::from_secs(30), burst).await.expect("the burst ends").expect("burst");

    let counters = channel.counters().snapshot();
    let failed: Vec<_> = results.iter().filter(|(_, r)| r.is_err()).collect();
    eprintln!(
        "kill -9 during an entry burst: {} entries, {} failed, {lost} answers lost with A, answered A={} B={} \
         (held on B: {}), {counters:?}",
        results.len(),
        failed.len(),
        calls(&answered_a),
        calls(&answered_b),
        calls(&answered_b) - before_b,
    );
    assert!(failed.is_empty(), "entries failed: {failed:?}");
    // The calls whose answers died with A were sent again, and answered again by B: from the
    // entries A had stored.
    assert!(counters.retries >= lost, "{lost} answers were lost but only {} calls retried", counters.retries);
    let answers = calls(&answered_a) + calls(&answered_b);
    assert!(answers >= results.len() as u64 + lost, "{answers} answers for {} entries and {lost} lost", results.len());

    // Exactly one row per phone, and every participant holds the entry id that row has.
    let stored: HashMap<String, Option<String>> = h.stored(&event_id).await.into_iter().collect();
    assert_eq!(stored.len(), results.len(), "one row per entry, none twice");
    let mut answered_ids = HashSet::new();
    for (i, result) in &results {
        let entry = result.as_ref().expect("checked above");
        assert_eq!(
            stored.get(&entry.entry_id),
            Some(&Some(format!("burst-{i:04}"))),
            "entry {i} was answered with a row its request did not store"
        );
        assert!(answered_ids.insert(entry.entry_id.clone()), "two participants got entry {}", entry.entry_id);
        assert_eq!(entry.masked_phone, masked(&phone(*i)));
    }
    assert_eq!(h.analytics(&event_id).await.len(), results.len(), "each entry reported once");
    h.cleanup().await;
}

/// `010-1000-0007` → `010-****-0007`, as Enter masks it.
fn masked(national: &str) -> String {
    format!("010-****-{}", &national[national.len() - 4..])
}
