//! The fault suite, short versions: the whole platform as OS processes (two replicas of event and
//! participation) under load through the REST edge, with one thing going wrong mid-load. Every
//! run must lose no accepted entry and cause no duplicate effect; each run prints its figures
//! (the README's results table comes from the longer `kem load --fault …` runs).

use std::time::Duration;

use kem::load::LoadArgs;
use kem::load::faults::{Fault, FaultOptions, FaultReport};

fn postgres_admin_url() -> String {
    std::env::var("KEM_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

async fn run(fault: Fault, entries: usize, rate: u32) -> FaultReport {
    let options = FaultOptions {
        load: LoadArgs { owners: 2, entries, rate, duplicates: 0.1, max_secs: 150, ..LoadArgs::default() },
        fault,
        outage: Duration::from_secs(4),
        exe: env!("CARGO_BIN_EXE_kem").into(),
        postgres_admin_url: postgres_admin_url(),
    };
    let report = kem::load::faults::run(options).await.unwrap_or_else(|e| panic!("{fault:?} run failed: {e:#}"));
    println!("{}\n{}", report.line(), report.load.summary());
    report
}

/// What every fault run must hold.
fn assert_nothing_lost(report: &FaultReport) {
    let c = &report.load.consistency;
    let context = report.line();
    assert!(c.accepted > 0, "the load ran: {context}");
    assert_eq!(c.lost, 0, "accepted entries lost: {context}");
    assert_eq!(c.duplicate_effects, 0, "a phone stored twice: {context}");
    // A duplicate sent while a replica was down may go unanswered (counted in the error budget);
    // every one that got a verdict was refused.
    assert_eq!(c.duplicates_409 + c.duplicates_unanswered, c.duplicates_sent, "duplicates answered 409: {context}");
    assert_eq!(c.analytics_matching, c.events, "analytics totals equal stored entries: {context}");
    assert_eq!(c.channels_final, c.channels, "every published channel reached a final state: {context}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_a_replica_of_event_and_of_participation_loses_nothing() {
    let report = run(Fault::KillReplicas, 240, 40).await;
    assert!(report.restarts >= 2, "both replicas were restarted: {}", report.line());
    assert_nothing_lost(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_analytics_consumer_mid_batch_counts_every_entry_once() {
    let report = run(Fault::KillAnalytics, 240, 40).await;
    assert!(report.restarts >= 1, "analytics was restarted: {}", report.line());
    assert_nothing_lost(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_going_away_costs_cache_hits_not_requests() {
    let report = run(Fault::RedisOutage, 320, 40).await;
    assert_nothing_lost(&report);
    assert_eq!(report.load.budget.1, 0, "caches degrade to the databases: {}", report.line());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_restart_mid_load_loses_no_accepted_entry() {
    let report = run(Fault::PostgresRestart, 240, 40).await;
    assert_nothing_lost(&report);
    assert!(report.recovery < Duration::from_secs(30), "recovered: {}", report.line());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn certificates_rotating_every_few_seconds_cost_nothing() {
    let report = run(Fault::LeafRotation, 240, 40).await;
    assert_nothing_lost(&report);
    assert_eq!(report.load.budget.1, 0, "rotation drops no request: {}", report.line());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_partner_api_fails_only_its_channel() {
    let report = run(Fault::ProviderHang, 240, 40).await;
    assert_nothing_lost(&report);
    let c = &report.load.consistency;
    assert_eq!(c.channels_failed, c.events, "우리동네TV failed on its deadline, once per event: {}", report.line());
    assert_eq!(report.load.budget.1, 0, "entries and every other channel went on: {}", report.line());
}
