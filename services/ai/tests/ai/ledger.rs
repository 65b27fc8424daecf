//! The job ledger runs the same SQL on PostgreSQL (production, tests) and SQLite (`kem up`).

use kem_ai::app::ports::{JobLedger, JobRef, JobState};
use kem_ai::domain::input::{BriefInput, EventBrief};
use kem_ai::domain::output::{Generated, ProviderStamp, TrendRecord};
use kem_ai::domain::values::{Category, Objective};
use kem_ai::infra::ledger::StoreJobLedger;
use kem_ai::infra::local;
use kem_kit::store::{Store, StoreConfig};
use kem_testkit::TempDir;
use kem_testkit::postgres::TestDatabase;

use crate::support::NOV_1_MS;

fn generated() -> Generated {
    let brief = EventBrief::new(BriefInput {
        objective: Some(Objective::Sales),
        category: Some(Category::Bakery),
        region: "부산 해운대구".into(),
        period_ms: Some((NOV_1_MS, NOV_1_MS + 7 * 86_400_000)),
        ..BriefInput::default()
    })
    .expect("valid brief");
    let analysis = local::trends(&brief.trend_query(), brief.period.first_day);
    let recommendations = local::recommendations(&brief, &analysis);
    let provider = ProviderStamp {
        local: true,
        name: "local:claude".into(),
        model: local::GENERATOR.into(),
        request_id: String::new(),
    };
    let input_hash = brief.input_hash();
    Generated {
        proposals: Generated::proposals(&input_hash, brief.budget_krw, recommendations),
        input_hash,
        trend: TrendRecord {
            category: brief.category,
            region: brief.trend_query().region,
            analysis,
            provider: provider.clone(),
            generated_at_ms: NOV_1_MS,
            cached: false,
        },
        provider,
        generated_at_ms: NOV_1_MS,
        cached: false,
    }
}

async fn exercise(store: Store) {
    store.migrate(kem_ai::migrations()).await.expect("migrations");
    let ledger = StoreJobLedger::new(store.clone(), std::sync::Arc::new(kem_kit::clock::SystemClock));
    let job = JobRef { job_id: "job-1".into(), event_id: "event-1".into(), input_hash: "abc".into() };
    assert!(ledger.get("job-1").await.expect("get").is_none());

    ledger.record_attempt(&job, "claude is overloaded").await.expect("attempt");
    ledger.record_attempt(&job, "claude is overloaded").await.expect("attempt");
    let result = generated();
    ledger.save_result(&job, &result).await.expect("save");
    let record = ledger.get("job-1").await.expect("get").expect("record");
    assert_eq!((record.state, record.attempts), (JobState::Working, 2));
    assert_eq!(record.result.as_ref(), Some(&result), "the stored result round-trips");

    assert!(!ledger.seen("job:job-1").await.expect("seen"));
    assert!(ledger.finish("job:job-1", &job, JobState::Succeeded, None).await.expect("finish"));
    assert!(ledger.seen("job:job-1").await.expect("seen"));
    assert!(!ledger.finish("job:job-1", &job, JobState::Failed, Some("x")).await.expect("again"), "inbox duplicate");
    // Another message for the same job is recorded, but a final state is never overwritten.
    assert!(ledger.finish("job:job-1:retry", &job, JobState::Failed, Some("x")).await.expect("other id"));
    let record = ledger.get("job-1").await.expect("get").expect("record");
    assert_eq!(record.state, JobState::Succeeded);

    // A job finished without ever working (dropped before any attempt).
    let gone = JobRef { job_id: "job-2".into(), event_id: "event-2".into(), input_hash: String::new() };
    assert!(ledger.finish("job:job-2", &gone, JobState::Dropped, None).await.expect("finish"));
    assert_eq!(ledger.get("job-2").await.expect("get").map(|r| r.state), Some(JobState::Dropped));
    store.close().await;
}

#[tokio::test]
async fn the_ledger_works_on_postgres() {
    let db = TestDatabase::create().await;
    exercise(Store::connect(&StoreConfig::new(db.url())).await.expect("connect")).await;
    db.drop_now().await;
}

#[tokio::test]
async fn the_ledger_works_on_sqlite() {
    let dir = TempDir::new("ai-ledger");
    exercise(Store::connect(&StoreConfig::embedded(&dir.0, "ai")).await.expect("connect")).await;
}
