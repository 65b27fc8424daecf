//! The same service on embedded SQLite (`kem up`): the migrations, every upsert and read, the
//! inbox and the consumer run there too.

use kem_proto::kem::event::v1::EventStatus;
use tonic::Code;

use crate::support::*;

#[tokio::test]
async fn the_scripted_scenario_adds_up_exactly_on_sqlite() {
    let h = Harness::sqlite().await;
    crate::scenario::run(&h).await;

    // Deletion, the tombstone and the purge of old idempotency records run there as well.
    let now = SystemClock.now_ms();
    let draft = EventSpec::new("e-draft", OWNER, Some(50_000), &[], now, now + DAY_MS);
    h.deliver(&[draft.deleted(now)]).await;
    expect_code(h.analytics(OWNER, "e-draft").await, Code::NotFound);
    h.deliver(&[draft.state(EventStatus::Draft, EventStatus::Recommended, now + 1)]).await;
    expect_code(h.analytics(OWNER, "e-draft").await, Code::NotFound);
    h.api.core().maintain().await;
    assert_eq!(h.dashboard(OWNER).await.expect("dashboard").total_events, 2);
    h.cleanup().await;
}
