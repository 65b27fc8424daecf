//! Hostile text and ids at the boundary: NUL and other control characters in the report id or
//! the provider name, and malformed or huge event ids, are INVALID_ARGUMENT naming the field
//! (PostgreSQL refused NUL with a 500 before), and no status quotes more than a short excerpt.

use tonic::{Code, Status};

use kem_testkit::status::{MESSAGE_MAX, expect_invalid_field};

use crate::support::*;

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Status>, field: &str) {
    expect_invalid_field(result, field);
}

#[tokio::test]
async fn hostile_ids_and_text_are_invalid_arguments_before_the_database() {
    let h = Harness::new().await;
    let now = SystemClock.now_ms();
    let event = EventSpec::new("v-event", OWNER, None, &[INSTAGRAM], now - DAY_MS, now + DAY_MS);
    for bad in ["x".repeat(16_000), "\u{0}".into(), "e\u{0}".into(), "%00".into(), "../../etc".into(), "이벤트".into()]
    {
        assert_invalid(h.analytics(OWNER, &bad).await, "eventId");
        let mut request = event.metrics("r-1", INSTAGRAM, 1, 1, now);
        request.event_id = bad;
        assert_invalid(h.record(request).await, "eventId");
    }
    for bad in ["\u{0}", "\u{1b}", "\n", "\u{2028}", "\u{202e}"] {
        assert_invalid(h.record(event.metrics(&format!("r{bad}1"), INSTAGRAM, 1, 1, now)).await, "reportId");
        let mut request = event.metrics("r-2", INSTAGRAM, 1, 1, now);
        request.provider.get_or_insert_default().name = format!("instagram{bad}");
        assert_invalid(h.record(request).await, "provider.name");
    }
    assert_invalid(h.record(event.metrics(&"r".repeat(16_000), INSTAGRAM, 1, 1, now)).await, "reportId");
    // A well-formed unknown event is NOT_FOUND, briefly; valid reports still go in.
    let missing = expect_code(h.analytics(OWNER, "3c5d2b1a-0000-4000-8000-000000000000").await, Code::NotFound);
    assert!(missing.message().len() <= MESSAGE_MAX);
    h.record(event.metrics("r-3", INSTAGRAM, 1, 1, now)).await.expect("a valid report");
    h.cleanup().await;
}
