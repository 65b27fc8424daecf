//! A process-wide shutdown signal.
//!
//! Roles, servers and background loops all hold a clone; SIGTERM (what Kubernetes sends before
//! killing a pod) or Ctrl-C triggers it once, and each holder drains on its own terms.

use tokio_util::sync::CancellationToken;

/// A cloneable shutdown signal. Triggering any clone triggers all of them.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    token: CancellationToken,
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
    async fn trigger_reaches_every_clone() {
        let a = Shutdown::new();
        let b = a.clone();
        assert!(!b.is_triggered());
        a.trigger();
        b.wait().await;
        assert!(b.is_triggered());
    }
}
