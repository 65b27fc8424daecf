//! Personal data: never readable at rest, erased irreversibly by AnonymizeEntries while counts
//! and draw audits stay verifiable.

use kem_participation::{record_from_audit, verify_draw};
use kem_proto::kem::event::v1::EventStatus;
use tonic::Code;

use crate::support::*;

/// Every stored value of the entries of `event_id` as text (bytes lossily), for searching.
async fn raw_rows(h: &Harness, event_id: &str) -> Vec<String> {
    let rows = kem_kit::store::query(
        "SELECT id, phone_hash, name_sealed, phone_sealed, privacy_consent_version FROM entries WHERE event_id = $1",
    )
    .bind(event_id.to_owned())
    .fetch_all(h.store().primary())
    .await
    .expect("read entries");
    rows.iter()
        .map(|row| {
            let bytes = |col: &str| row.get::<Option<Vec<u8>>>(col).expect(col).unwrap_or_default();
            format!(
                "{} {} {} {} {}",
                row.get::<String>("id").expect("id"),
                row.get::<String>("phone_hash").expect("phone_hash"),
                String::from_utf8_lossy(&bytes("name_sealed")),
                String::from_utf8_lossy(&bytes("phone_sealed")),
                row.get::<String>("privacy_consent_version").expect("version"),
            )
        })
        .collect()
}

#[tokio::test]
async fn names_and_phones_are_not_stored_readably() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    h.enter(entry(&id, "김민수", "010-9876-5432")).await.expect("enter");
    let rows = raw_rows(&h, &id).await;
    assert_eq!(rows.len(), 1);
    for needle in ["김민수", "민수", "98765432", "9876", "5432", "+821098765432"] {
        assert!(!rows[0].contains(needle), "{needle:?} readable at rest: {}", rows[0]);
    }
    let hash = kem_kit::store::query("SELECT phone_hash FROM entries WHERE event_id = $1")
        .bind(id.clone())
        .fetch_one(h.store().primary())
        .await
        .expect("hash")
        .get::<String>("phone_hash")
        .expect("hash");
    assert_eq!(hash.len(), 64, "HMAC-SHA256 hex");
    let unkeyed = ring::digest::digest(&ring::digest::SHA256, b"+821098765432");
    let unkeyed: String = unkeyed.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_ne!(hash, unkeyed, "the hash is keyed, not a plain SHA-256 anyone can brute-force");
    h.cleanup().await;
}

#[tokio::test]
async fn anonymization_erases_personal_data_but_keeps_counts_and_audits() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    let entries = h.enter_many(&id, 6).await;

    let active = expect_code(h.anonymize(&id, None).await, Code::FailedPrecondition);
    assert_eq!(reason(&active), "EVENT_ACTIVE");
    let empty = expect_code(h.anonymize("", None).await, Code::InvalidArgument);
    assert_eq!(violations(&empty), ["eventId"]);

    h.events.set_status(&id, EventStatus::Ended);
    let drawn = h.draw(OWNER, draw_request(&id, 2)).await.expect("draw");
    let audit = drawn.audit.expect("audit");

    // Entries received before a cutoff only: none before the first one.
    let first_ms =
        entries[0].create_time.as_ref().map(|t| t.seconds * 1000 + i64::from(t.nanos / 1_000_000)).unwrap_or(0);
    assert_eq!(h.anonymize(&id, Some(first_ms)).await.expect("nothing that old"), 0);
    assert_eq!(h.anonymize(&id, None).await.expect("anonymize"), 6);
    assert_eq!(h.anonymize(&id, None).await.expect("again"), 0, "idempotent");

    let listed = h.all_entries(&id).await;
    assert_eq!(listed.len(), 6, "counts stay");
    for e in &listed {
        assert!(e.anonymized);
        assert_eq!((e.masked_name.as_str(), e.masked_phone.as_str()), ("", ""));
        assert!(e.privacy_consent.as_ref().is_some_and(|c| c.granted), "the consent record stays");
    }
    let winners = h.winners(OWNER, &id).await.expect("winners");
    assert_eq!(winners.winners.len(), 2);
    assert!(winners.winners.iter().all(|w| w.name.is_empty() && w.phone.is_empty() && w.masked_phone.is_empty()));
    let ids: Vec<&str> = listed.iter().map(|e| e.entry_id.as_str()).collect();
    let rerun = verify_draw(&record_from_audit(&audit), &ids).expect("the audit still verifies");
    assert_eq!(rerun, winners.winners.iter().map(|w| w.entry_id.clone()).collect::<Vec<_>>());

    for row in raw_rows(&h, &id).await {
        assert!(!row.contains("참가자"), "{row}");
    }
    let sealed = kem_kit::store::query(
        "SELECT COUNT(*) AS n FROM entries WHERE event_id = $1 AND (name_sealed IS NOT NULL OR phone_sealed IS NOT NULL \
         OR phone_hash NOT LIKE 'anonymized:%')",
    )
    .bind(id.clone())
    .fetch_one(h.store().primary())
    .await
    .expect("count");
    assert_eq!(sealed.get::<i64>("n").expect("n"), 0, "nothing derived from the phone is left");

    // An event the event service no longer knows is not active.
    assert_eq!(h.anonymize(&uuid::Uuid::new_v4().to_string(), None).await.expect("unknown event"), 0);
    h.cleanup().await;
}
