//! State machine tests on paused tokio time: every instant is exact.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::*;

const OPEN: Duration = Duration::from_secs(5);

fn breaker(threshold: f64, minimum_calls: u32) -> CircuitBreaker {
    let config = BreakerConfig {
        failure_rate_threshold: threshold,
        minimum_calls,
        window: Duration::from_secs(10),
        window_buckets: 10,
        open_duration: OPEN,
        half_open_probes: 2,
    };
    CircuitBreaker::new("test-dependency", config).expect("valid config")
}

fn succeed(b: &CircuitBreaker, n: usize) {
    for _ in 0..n {
        b.acquire().expect("closed breaker admits").success();
    }
}

fn fail(b: &CircuitBreaker, n: usize) {
    for _ in 0..n {
        b.acquire().expect("closed breaker admits").failure();
    }
}

/// Opens `b` (threshold 0.5, minimum 4) with four failures.
fn tripped() -> CircuitBreaker {
    let b = breaker(0.5, 4);
    fail(&b, 4);
    assert_eq!(b.state(), BreakerState::Open);
    b
}

#[tokio::test(start_paused = true)]
async fn opens_exactly_at_the_failure_rate_threshold() {
    let b = breaker(0.2, 10);
    succeed(&b, 8);
    fail(&b, 1);
    assert_eq!(b.state(), BreakerState::Closed, "1 failure in 9 calls is 11%, under 20%");
    fail(&b, 1);
    assert_eq!(b.state(), BreakerState::Open, "2 failures in 10 calls is 20%");
    assert_eq!(b.counters().opened.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn does_not_open_before_the_minimum_number_of_calls() {
    let b = breaker(0.5, 10);
    fail(&b, 9);
    assert_eq!(b.state(), BreakerState::Closed, "100% failures but only 9 calls");
    fail(&b, 1);
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn fails_fast_while_open_with_the_remaining_open_time() {
    let b = tripped();
    let refused = b.acquire().expect_err("open breaker refuses");
    assert_eq!((refused.state, refused.retry_after), (BreakerState::Open, OPEN));
    assert_eq!(&*refused.name, "test-dependency");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(b.acquire().expect_err("still open").retry_after, Duration::from_secs(3));
    assert_eq!(b.counters().rejected.load(Ordering::Relaxed), 2);
    assert!(refused.to_string().contains("test-dependency"), "{refused}");
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_only_the_configured_probes() {
    let b = tripped();
    tokio::time::advance(OPEN - Duration::from_millis(1)).await;
    assert_eq!(b.state(), BreakerState::Open);
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(b.state(), BreakerState::HalfOpen);
    let first = b.acquire().expect("probe 1");
    let second = b.acquire().expect("probe 2");
    assert!(first.is_probe() && second.is_probe());
    let refused = b.acquire().expect_err("only two probes");
    assert_eq!(refused.state, BreakerState::HalfOpen);
    assert_eq!(refused.retry_after, HALF_OPEN_RETRY_AFTER);
    first.success();
    assert_eq!(b.state(), BreakerState::HalfOpen, "one successful probe of two is not enough");
    assert!(b.acquire().is_err(), "a finished probe does not free a slot");
    second.success();
    assert_eq!(b.counters().half_opened.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn closes_after_successful_probes_with_a_fresh_window() {
    let b = tripped();
    tokio::time::advance(OPEN).await;
    let probes = [b.acquire().expect("probe 1"), b.acquire().expect("probe 2")];
    for probe in probes {
        probe.success();
    }
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.counters().closed.load(Ordering::Relaxed), 1);
    // The failures that opened it are forgotten: three new failures are under the minimum.
    fail(&b, 3);
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_for_a_full_open_duration() {
    let b = tripped();
    tokio::time::advance(OPEN).await;
    let first = b.acquire().expect("probe 1");
    let second = b.acquire().expect("probe 2");
    first.failure();
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(b.acquire().expect_err("re-opened").retry_after, OPEN);
    // The other probe finishing late belongs to the previous half-open period: ignored.
    second.success();
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(b.counters().opened.load(Ordering::Relaxed), 2);
    tokio::time::advance(OPEN).await;
    assert_eq!(b.state(), BreakerState::HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn old_failures_age_out_of_the_window() {
    let b = breaker(0.5, 4);
    fail(&b, 3);
    tokio::time::advance(Duration::from_secs(10)).await;
    // Counting the old failures this would be 4 of 8 (50%); within the window it is 1 of 5.
    succeed(&b, 4);
    fail(&b, 1);
    assert_eq!(b.state(), BreakerState::Closed);
    // Failures spread within the window still add up.
    tokio::time::advance(Duration::from_secs(5)).await;
    fail(&b, 3);
    assert_eq!(b.state(), BreakerState::Open, "4 failures in 8 calls of the last 10 s");
}

#[tokio::test(start_paused = true)]
async fn a_dropped_permit_counts_as_neither_and_returns_its_probe_slot() {
    let b = breaker(1.0, 1);
    drop(b.acquire().expect("closed"));
    assert_eq!(b.state(), BreakerState::Closed, "an abandoned call is not a failure");
    assert_eq!(b.counters().abandoned.load(Ordering::Relaxed), 1);

    let b = tripped();
    tokio::time::advance(OPEN).await;
    let kept = b.acquire().expect("probe 1");
    drop(b.acquire().expect("probe 2"));
    let again = b.acquire().expect("the abandoned probe's slot is free again");
    kept.success();
    again.success();
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_call_from_the_closed_period_finishing_late_is_not_a_probe() {
    let b = breaker(0.5, 4);
    let slow = b.acquire().expect("closed");
    fail(&b, 4);
    tokio::time::advance(OPEN).await;
    slow.success();
    assert_eq!(b.state(), BreakerState::HalfOpen, "only probes can close a half-open breaker");
}

#[test]
fn counts_every_outcome_under_concurrent_use() {
    let b = breaker(1.0, u32::MAX);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for i in 0..1_000 {
                    let permit = b.acquire().expect("never opens");
                    if i % 2 == 0 { permit.success() } else { permit.failure() }
                }
            });
        }
    });
    assert_eq!(b.counters().successes.load(Ordering::Relaxed), 2_000);
    assert_eq!(b.counters().failures.load(Ordering::Relaxed), 2_000);
    assert_eq!(b.state(), BreakerState::Closed);
}

#[test]
fn gauge_values_are_stable() {
    assert_eq!(
        [BreakerState::Closed, BreakerState::HalfOpen, BreakerState::Open].map(BreakerState::as_gauge),
        [0, 1, 2]
    );
    assert_eq!(BreakerState::HalfOpen.to_string(), "half_open");
}
