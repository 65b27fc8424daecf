//! Certificate and trust-anchor rotation under continuous load: no RPC may fail.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use kem_mesh::Shutdown;
use kem_mesh::client::MeshChannel;
use kem_mesh::testing::{TestCa, echo};
use tokio::sync::Mutex;

use crate::support::{channel, echo_policy, echo_server, eventually, eventually_holds};

struct Load {
    ok: Arc<AtomicU64>,
    failed: Arc<Mutex<Vec<String>>>,
    serials: Arc<Mutex<HashSet<String>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(channels: Vec<MeshChannel>) -> Load {
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(Mutex::new(Vec::new()));
        let serials = Arc::new(Mutex::new(HashSet::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = channels
            .into_iter()
            .map(|ch| {
                let (ok, failed, serials, stop) = (ok.clone(), failed.clone(), serials.clone(), stop.clone());
                tokio::spawn(async move {
                    // Bounded: at most 20,000 calls per client, and the test stops it after seconds.
                    for i in 0..20_000u32 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        match echo::call_reporting_peer(ch.clone(), &format!("{i}")).await {
                            Ok(echoed) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                                serials.lock().await.insert(echoed.serial);
                            }
                            Err(status) => {
                                failed.lock().await.push(format!("{:?}: {}", status.code(), status.message()))
                            }
                        }
                        // Real time by design: paces the load (~500 calls/s per client) across wall-clock renewals.
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                })
            })
            .collect();
        Load { ok, failed, serials, stop, tasks }
    }

    async fn finish(self) -> (u64, Vec<String>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
        let failed = self.failed.lock().await.clone();
        let serials = self.serials.lock().await.len();
        (self.ok.load(Ordering::Relaxed), failed, serials)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaf_rotation_under_load_drops_nothing() {
    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let lifetime = Duration::from_secs(3);
    let server_id = ca.identity("event", lifetime).await;
    let server = echo_server(&server_id, echo_policy(), &shutdown).await;
    let mut channels = Vec::new();
    let mut workloads = vec![server_id.clone()];
    for _ in 0..4 {
        let client = ca.identity("participation", lifetime).await;
        channels.push(channel(&client, &server, &TestCa::id("event")));
        workloads.push(client);
    }
    let load = Load::start(channels);
    // Renewal happens at ~70% of 3 s: at least three rotations of every identity take ~6.5 s.
    eventually_holds("every identity has rotated three times", Duration::from_secs(15), || {
        workloads.iter().all(|w| *w.generations().borrow() >= 3)
    })
    .await;
    let (ok, failed, serials) = load.finish().await;
    assert!(
        failed.is_empty(),
        "{} of {} RPCs failed during rotation: {:?}",
        failed.len(),
        ok + failed.len() as u64,
        &failed[..failed.len().min(5)]
    );
    assert!(ok > 500, "the load ran ({ok} RPCs)");
    assert!(serials >= 3 * 4, "the server saw {serials} distinct client certificates; want >= 3 rotations x 4 clients");
    shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_anchor_rotation_under_load_drops_nothing() {
    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let lifetime = Duration::from_secs(2);
    let server_id = ca.identity("event", lifetime).await;
    let server = echo_server(&server_id, echo_policy(), &shutdown).await;
    let mut channels = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..3 {
        let client = ca.identity("participation", lifetime).await;
        channels.push(channel(&client, &server, &TestCa::id("event")));
        clients.push(client);
    }
    let workloads: Vec<_> = clients.iter().chain([&server_id]).collect();
    let load = Load::start(channels);
    // Each step waits for every workload to renew (lifetime 2 s, renewal at ~1.4 s) into the state
    // the step brings, and for every client to have made a call with its renewed certificate.
    let step = Duration::from_secs(10);
    let serials = load.serials.clone();
    let all_clients_seen = async || {
        let seen = serials.lock().await;
        clients.iter().all(|c| seen.contains(&kem_mesh::hex::encode(c.serial())))
    };
    eventually("every client calls with its first certificate", step, &all_clients_seen).await;
    let next = ca.add_anchor();
    eventually("every workload trusts the new anchor", step, async || {
        workloads.iter().all(|w| w.trust_anchors_der().contains(&next.cert)) && all_clients_seen().await
    })
    .await;
    ca.switch_issuer(&next);
    let issuer = ca.ca.load().issuer_cert().clone();
    eventually("every workload holds a certificate from the re-signed issuer", step, async || {
        workloads.iter().all(|w| w.certified_key().cert.contains(&issuer)) && all_clients_seen().await
    })
    .await;
    ca.remove_other_anchors(&next);
    eventually("every workload trusts only the new anchor", step, async || {
        workloads.iter().all(|w| w.trust_anchors_der() == [next.cert.clone()]) && all_clients_seen().await
    })
    .await;
    let (ok, failed, _) = load.finish().await;
    assert!(
        failed.is_empty(),
        "{} RPCs failed during anchor rotation: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(ok > 300, "the load ran ({ok} RPCs)");
    // The old anchor is gone from everyone's bundle now.
    assert_eq!(server_id.trust_anchors_der(), vec![next.cert.clone()]);
    shutdown.trigger();
}
