//! Reading a role's Prometheus endpoint (`GET /metrics` on its admin port), for `kem top` and for
//! `kem load`'s edge-side figures: one bounded HTTP client instead of one per caller.

use std::time::Duration;

use anyhow::Context as _;

/// How long a scrape may take: an admin port answers in milliseconds unless the role is stuck.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// The exposition text at `url` (e.g. `http://127.0.0.1:7208/metrics`).
pub async fn metrics_text(url: &str) -> anyhow::Result<String> {
    // reqwest is built without a default crypto provider (ring only in this tree); plain HTTP
    // needs none, but building the client must not depend on which code ran first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(SCRAPE_TIMEOUT)
        .no_proxy()
        .build()
        .context("cannot build the HTTP client for scraping /metrics")?;
    let response = client.get(url).send().await.with_context(|| format!("cannot scrape {url}"))?;
    let status = response.status();
    anyhow::ensure!(status.is_success(), "{url} answered {status}");
    response.text().await.with_context(|| format!("{url}: cannot read the exposition"))
}
