//! Entries under concurrency: the unique (event, phone) constraint decides, never the
//! application; each stored entry is reported to analytics exactly once.

use std::collections::{HashMap, HashSet};

use futures_util::StreamExt as _;
use kem_proto::kem::event::v1::EventStatus;
use kem_proto::kem::messaging::v1 as msg;
use tonic::Code;

use crate::support::*;

#[tokio::test]
async fn a_thousand_concurrent_entries_with_ten_percent_duplicates() {
    let h = Harness::new().await;
    let event_id = h.add(event(EventStatus::Published));
    // 900 distinct phones; every tenth submission repeats an earlier phone in another spelling.
    let submissions: Vec<(usize, String)> =
        (0..1_000).map(|i| if i % 10 == 9 { (i, phone(i - 9).replace('-', "")) } else { (i, phone(i)) }).collect();
    let unique: HashSet<String> = submissions.iter().map(|(_, p)| p.replace('-', "")).collect();
    assert_eq!(unique.len(), 900);

    let results: Vec<(usize, Result<_, tonic::Status>)> = futures_util::stream::iter(submissions)
        .map(|(i, phone)| {
            let h = &h;
            let event_id = event_id.clone();
            async move { (i, h.enter(entry(&event_id, &format!("참가자{i}"), &phone)).await) }
        })
        .buffer_unordered(50)
        .collect()
        .await;

    let mut admitted = HashSet::new();
    let mut duplicates = 0;
    for (i, result) in &results {
        match result {
            Ok(e) => assert!(admitted.insert(e.entry_id.clone())),
            Err(status) => {
                assert_eq!(status.code(), Code::AlreadyExists, "submission {i}: {status:?}");
                assert_eq!(reason(status), "DUPLICATE_ENTRY");
                duplicates += 1;
            }
        }
    }
    assert_eq!((admitted.len(), duplicates), (900, 100), "exactly the unique phones are stored");

    let stored = kem_kit::store::query("SELECT COUNT(*) AS n FROM entries WHERE event_id = $1")
        .bind(event_id.clone())
        .fetch_one(h.store().primary())
        .await
        .expect("count");
    assert_eq!(stored.get::<i64>("n").expect("n"), 900);
    let listed: HashSet<String> = h.all_entries(&event_id).await.into_iter().map(|e| e.entry_id).collect();
    assert_eq!(listed, admitted);

    // Exactly one EntryRecorded per stored entry.
    let facts = h.analytics(&event_id).await;
    let mut per_entry: HashMap<String, usize> = HashMap::new();
    for (id, body) in &facts {
        let Some(msg::analytics_event::Fact::EntryRecorded(fact)) = &body.fact else { panic!("{body:?}") };
        assert_eq!(id, &format!("entry:{}", fact.entry_id));
        *per_entry.entry(fact.entry_id.clone()).or_default() += 1;
    }
    assert_eq!(per_entry.len(), 900);
    assert!(per_entry.values().all(|n| *n == 1));
    assert_eq!(per_entry.keys().cloned().collect::<HashSet<_>>(), admitted);
    h.cleanup().await;
}

#[tokio::test]
async fn simultaneous_submissions_of_one_phone_store_one_entry() {
    let h = Harness::new().await;
    let event_id = h.add(event(EventStatus::Published));
    let attempts = (0..30).map(|i| {
        let h = &h;
        let event_id = event_id.clone();
        async move { h.enter(entry(&event_id, &format!("동시{i}"), "010-5555-0000")).await }
    });
    let results = futures_util::future::join_all(attempts).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let dup = results.iter().filter(|r| r.as_ref().err().is_some_and(|s| s.code() == Code::AlreadyExists)).count();
    assert_eq!((ok, dup), (1, 29));
    assert_eq!(h.analytics(&event_id).await.len(), 1);
    h.cleanup().await;
}
