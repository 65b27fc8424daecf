//! What an entry must confirm and what is kept of it: the participant's age (14 or older), a
//! privacy consent naming the event's current terms, and the consent record — terms version and
//! hash, consent time, the consents granted — stored with the entry and returned.

use kem_proto::kem::event::v1::{EventStatus, GetEventForParticipationResponse};
use kem_proto::kem::participation::v1 as pb;
use tonic::Code;

use crate::support::*;

/// The consent record of the entries of `event_id`, straight from the table: (privacy granted,
/// privacy version, terms hash, consent time, created at, marketing granted, marketing version).
type Record = (bool, String, Option<String>, Option<i64>, i64, Option<bool>, Option<String>);

async fn records(h: &Harness, event_id: &str) -> Vec<Record> {
    let rows = kem_kit::store::query(
        "SELECT privacy_consent_granted, privacy_consent_version, terms_sha256, consented_at, created_at, \
         marketing_consent_granted, marketing_consent_version FROM entries WHERE event_id = $1 ORDER BY created_at",
    )
    .bind(event_id.to_owned())
    .fetch_all(h.store().primary())
    .await
    .expect("read the consent records");
    rows.iter()
        .map(|row| {
            (
                row.get("privacy_consent_granted").expect("privacy_consent_granted"),
                row.get("privacy_consent_version").expect("privacy_consent_version"),
                row.get("terms_sha256").expect("terms_sha256"),
                row.get("consented_at").expect("consented_at"),
                row.get("created_at").expect("created_at"),
                row.get("marketing_consent_granted").expect("marketing_consent_granted"),
                row.get("marketing_consent_version").expect("marketing_consent_version"),
            )
        })
        .collect()
}

fn ms(t: Option<&prost_types::Timestamp>) -> i64 {
    t.map(|t| t.seconds * 1000 + i64::from(t.nanos / 1_000_000)).unwrap_or_default()
}

#[tokio::test]
async fn an_entry_without_the_age_confirmation_is_refused_with_its_reason() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    let under_14 = pb::EnterRequest { age_14_or_older: false, ..entry(&id, "김민수", "010-1234-5678") };
    let refused = expect_code(h.enter(under_14.clone()).await, Code::InvalidArgument);
    assert_eq!(reason(&refused), "AGE_CONFIRMATION_REQUIRED");
    assert_eq!(kem_testkit::status::domain_reason(&refused), "kem.participation/AGE_CONFIRMATION_REQUIRED");
    assert_eq!(violations(&refused), ["age14OrOlder"]);
    // Refused before the event is even looked up, and whatever else is wrong is named too.
    let calls = h.events.calls();
    let mut also_bad = pb::EnterRequest { name: String::new(), ..under_14.clone() };
    also_bad.phone = "02-123-4567".into();
    let refused = expect_code(h.enter(also_bad).await, Code::InvalidArgument);
    assert_eq!(
        (reason(&refused), violations(&refused)),
        ("AGE_CONFIRMATION_REQUIRED".into(), vec!["name".to_owned(), "phone".to_owned(), "age14OrOlder".to_owned()])
    );
    assert_eq!(h.events.calls(), calls, "the event service was not asked");
    // A missing privacy consent is what the participant hears first.
    let no_consent = pb::EnterRequest { privacy_consent: None, ..under_14 };
    let refused = expect_code(h.enter(no_consent).await, Code::InvalidArgument);
    assert_eq!(
        (reason(&refused), violations(&refused)),
        ("CONSENT_REQUIRED".into(), vec!["privacyConsent".to_owned(), "age14OrOlder".to_owned()])
    );
    assert!(h.all_entries(&id).await.is_empty(), "nothing was stored");
    h.enter(entry(&id, "김민수", "010-1234-5678")).await.expect("confirmed, the same entry goes in");
    h.cleanup().await;
}

#[tokio::test]
async fn a_consent_to_outdated_terms_is_refused() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    for outdated in ["terms-0000000000000000", "privacy-2025-01", &TERMS_VERSION.to_uppercase(), &TERMS_VERSION[..21]] {
        let mut request = entry(&id, "김민수", "010-1234-5678");
        if let Some(consent) = request.privacy_consent.as_mut() {
            consent.consent_text_version = outdated.to_owned();
        }
        let refused = expect_code(h.enter(request).await, Code::InvalidArgument);
        assert_eq!(reason(&refused), "TERMS_OUTDATED", "{outdated}");
        assert_eq!(violations(&refused), ["privacyConsent.consentTextVersion"], "{outdated}");
    }
    assert!(h.all_entries(&id).await.is_empty(), "nothing was stored");
    // The terms' own version, with spaces around it as a form may send it, goes in.
    let mut request = entry(&id, "김민수", "010-1234-5678");
    if let Some(consent) = request.privacy_consent.as_mut() {
        consent.consent_text_version = format!(" {TERMS_VERSION} ");
    }
    let e = h.enter(request).await.expect("the current terms");
    assert_eq!(e.privacy_consent.map(|c| c.consent_text_version).as_deref(), Some(TERMS_VERSION));
    h.cleanup().await;
}

#[tokio::test]
async fn an_event_published_before_terms_existed_keeps_the_free_consent_version() {
    let h = Harness::new().await;
    let id = h.add(published_before_terms());
    let mut request = entry(&id, "김민수", "010-1234-5678");
    if let Some(consent) = request.privacy_consent.as_mut() {
        consent.consent_text_version = "privacy-2025-01".into();
    }
    let e = h.enter(request).await.expect("any consent text version, as before");
    let privacy = e.privacy_consent.expect("privacy consent");
    assert_eq!((privacy.consent_text_version.as_str(), privacy.terms_sha256.as_str()), ("privacy-2025-01", ""));
    let stored = records(&h, &id).await;
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0].1.as_str(), stored[0].2.as_deref()), ("privacy-2025-01", None), "no terms, no hash");
    // The age is confirmed all the same.
    let under_14 = pb::EnterRequest { age_14_or_older: false, ..entry(&id, "이영희", "010-2222-3333") };
    assert_eq!(reason(&expect_code(h.enter(under_14).await, Code::InvalidArgument)), "AGE_CONFIRMATION_REQUIRED");
    h.cleanup().await;
}

/// A published event without terms: published before terms existed.
fn published_before_terms() -> GetEventForParticipationResponse {
    GetEventForParticipationResponse { terms: None, ..event(EventStatus::Published) }
}

#[tokio::test]
async fn the_consent_record_is_stored_with_the_terms_hash_and_time_and_returned() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    let mut request = entry(&id, "김민수", "010-1234-5678");
    request.marketing_consent = Some(marketing_consent());
    let before = SystemClock.now_ms();
    let response = h.enter_response(None, request).await.expect("enter");
    let after = SystemClock.now_ms();
    let e = response.entry.expect("entry");

    let privacy = e.privacy_consent.clone().expect("privacy consent");
    assert!(privacy.granted);
    assert_eq!((privacy.consent_text_version.as_str(), privacy.terms_sha256.as_str()), (TERMS_VERSION, TERMS_SHA256));
    let consented = ms(privacy.consent_time.as_ref());
    assert!((before..=after).contains(&consented), "{before} <= {consented} <= {after}");
    assert_eq!(consented, ms(e.create_time.as_ref()), "consented as the entry was received");
    let marketing = e.marketing_consent.clone().expect("marketing consent");
    assert_eq!(
        (marketing.granted, marketing.consent_text_version.as_str(), marketing.terms_sha256.as_str()),
        (true, "marketing-2025-01", ""),
        "the terms hash belongs to the privacy consent"
    );
    assert_eq!(ms(marketing.consent_time.as_ref()), consented);

    // The table keeps the whole record.
    assert_eq!(
        records(&h, &id).await,
        vec![(
            true,
            TERMS_VERSION.to_owned(),
            Some(TERMS_SHA256.to_owned()),
            Some(consented),
            consented,
            Some(true),
            Some("marketing-2025-01".to_owned())
        )]
    );
    // The owner's listing shows the same consents.
    assert_eq!(h.all_entries(&id).await, vec![e]);
    h.cleanup().await;
}
