//! A process-wide shutdown signal.
//!
//! Roles, servers and background loops all hold a clone; SIGTERM (what Kubernetes sends before
//! killing a pod) or Ctrl-C triggers it once, and each holder drains on its own terms.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A cloneable shutdown signal. Triggering any clone triggers all of them.
///
/// Background loops started with [`Shutdown::spawn`] are tracked, so that whoever stops a
/// process (or a test its service) can wait until they have observed the signal and returned
/// ([`Shutdown::drained`]) instead of sleeping a guessed while before closing what they use.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tasks: TaskTracker,
}

impl Shutdown {
    /// A signal that has not fired yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires the signal (idempotent).
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Whether the signal has fired.
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once the signal fires.
    pub async fn wait(&self) {
        self.token.cancelled().await;
    }

    /// Spawns a background loop that ends when the signal fires (it must watch [`Shutdown::wait`]),
    /// tracked so that [`Shutdown::drained`] can wait for it.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tasks.spawn(task)
    }

    /// Fires the signal and waits, at most `within`, until every task started with
    /// [`Shutdown::spawn`] has returned. `false` if some were still running at the bound.
    pub async fn drained(&self, within: Duration) -> bool {
        self.trigger();
        self.tasks.close();
        tokio::time::timeout(within, self.tasks.wait()).await.is_ok()
    }

    /// Fires the signal on SIGTERM or Ctrl-C. Returns at once; the watcher runs in the background.
    pub fn trigger_on_os_signals(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            wait_for_os_signal().await;
            tracing::info!("shutdown requested; draining in-flight requests");
            this.trigger();
        });
    }
}

#[cfg(unix)]
async fn wait_for_os_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(error) => {
            tracing::warn!(%error, "cannot watch SIGTERM; only Ctrl-C will stop this process gracefully");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_os_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drained_waits_for_tracked_loops_to_return() {
        let shutdown = Shutdown::new();
        let returned = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen, watcher) = (returned.clone(), shutdown.clone());
        shutdown.clone().spawn(async move {
            watcher.wait().await;
            tokio::task::yield_now().await;
            seen.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        assert!(shutdown.drained(Duration::from_secs(5)).await);
        assert!(returned.load(std::sync::atomic::Ordering::SeqCst), "drained before the loop returned");
    }

    #[tokio::test]
    async fn trigger_reaches_every_clone() {
        let a = Shutdown::new();
        let b = a.clone();
        assert!(!b.is_triggered());
        a.trigger();
        b.wait().await;
        assert!(b.is_triggered());
    }
}
