//! Waiting for something that happens asynchronously (a queue drained, a replica taking
//! traffic), without sleeping a guessed time: poll a condition until it holds, fail loudly with
//! what was awaited once the bound passes.

use std::future::Future;
use std::time::Duration;

/// How often a condition is checked: often enough that a test waits at most this much longer
/// than it must, rarely enough not to load the machine.
const POLL: Duration = Duration::from_millis(10);

/// Waits until `check` answers true, for at most `within`; panics naming `what` otherwise.
/// With tokio's time paused the polls advance the paused clock.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out after {within:?} waiting until {what}");
        // The poll interval: the condition changes on other tasks and processes, which notify nobody.
        tokio::time::sleep(POLL).await;
    }
}

/// [`eventually`] for a condition that needs no `await`.
pub async fn eventually_holds(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    eventually(what, within, || std::future::ready(check())).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_until_the_condition_holds() {
        let started = tokio::time::Instant::now();
        eventually_holds("a second passes", Duration::from_secs(5), || started.elapsed() >= Duration::from_secs(1))
            .await;
        assert!(started.elapsed() < Duration::from_millis(1_100));
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "waiting until never")]
    async fn gives_up_naming_what_it_waited_for() {
        eventually("never", Duration::from_millis(100), || async { false }).await;
    }
}
