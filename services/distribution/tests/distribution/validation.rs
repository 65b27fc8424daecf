//! Hostile event ids at the boundary: NUL, punctuation or a 16,000 character id in GetStatus and
//! Retry is INVALID_ARGUMENT naming `eventId` before the database or the event service is asked,
//! and no status quotes more than a short excerpt of it.

use kem_distribution::domain::Channel;
use tonic::{Code, Status};

use kem_testkit::status::{MESSAGE_MAX, expect_invalid_field};

use crate::support::*;

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Status>) {
    assert_eq!(violations(&expect_invalid_field(result, "eventId")), vec!["eventId"]);
}

#[tokio::test]
async fn malformed_event_ids_are_invalid_arguments_before_any_lookup() {
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    let h = Harness::start(config).await;
    for bad in
        ["x".repeat(16_000), "\u{0}".into(), "evt\u{0}".into(), "%00".into(), "../../etc".into(), "이벤트".into()]
    {
        assert_invalid(h.status(OWNER, &bad).await);
        assert_invalid(h.retry(OWNER, &bad, &[Channel::Instagram.number()]).await);
    }
    // A well-formed id of an event never published is NOT_FOUND, briefly.
    let missing = expect_code(h.status(OWNER, "3c5d2b1a-0000-4000-8000-000000000000").await, Code::NotFound);
    assert!(missing.message().len() <= MESSAGE_MAX);
    h.cleanup().await;
}
