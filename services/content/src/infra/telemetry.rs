//! The content service's metrics on the process registry (`/metrics`), read at scrape time:
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `kem_content_jobs_total` | `outcome` (`succeeded`, `partial`, `failed`, `dropped`, `duplicate`) | `content-generation` jobs |
//! | `kem_content_images_total` | `source` (`generated`, `cache`, `reused`) | images made |
//! | `kem_content_image_failures_total` | `kind` | images that could not be made |
//! | `kem_content_render_cache_operations_total` | `result` | the render cache |
//! | `kem_content_public_image_cache_operations_total` | `result` | the public-image decisions |
//! | `kem_content_provider_requests_total` | `provider`, `outcome` | Stability AI / Azure Blob requests |
//! | `kem_content_provider_breaker_state` | `provider` | 0 closed, 1 half-open, 2 open |

use std::sync::Arc;
use std::sync::atomic::Ordering;

use kem_kit::cache::CacheAside;
use kem_kit::external::ProviderClient;
use kem_mesh::telemetry::{MetricWriter, Registry};

use crate::app::metrics::{ContentMetrics, read};

/// Everything exported.
pub struct ContentTelemetry {
    /// The use cases' counters.
    pub metrics: Arc<ContentMetrics>,
    /// The render cache.
    pub renders: CacheAside,
    /// The cache of public-image decisions.
    pub public_images: CacheAside,
    /// The real provider clients in use (Stability AI, Azure Blob).
    pub providers: Vec<ProviderClient>,
}

/// Registers `telemetry` with `registry`.
pub fn register(registry: &Registry, telemetry: ContentTelemetry) {
    let telemetry = Arc::new(telemetry);
    registry.register_collector(Arc::new(move |out: &mut MetricWriter| telemetry.collect(out)));
}

impl ContentTelemetry {
    fn collect(&self, out: &mut MetricWriter) {
        let m = &self.metrics;
        for (outcome, counter) in [
            ("succeeded", &m.jobs_succeeded),
            ("partial", &m.jobs_partial),
            ("failed", &m.jobs_failed),
            ("dropped", &m.jobs_dropped),
            ("duplicate", &m.jobs_duplicate),
        ] {
            out.counter(
                "kem_content_jobs_total",
                "content-generation jobs by outcome",
                &[("outcome", outcome)],
                read(counter),
            );
        }
        for (source, counter) in
            [("generated", &m.images_generated), ("cache", &m.images_cached), ("reused", &m.images_reused)]
        {
            out.counter(
                "kem_content_images_total",
                "images made, by where they came from",
                &[("source", source)],
                read(counter),
            );
        }
        for (kind, count) in m.failures() {
            out.counter(
                "kem_content_image_failures_total",
                "images that could not be made, by cause",
                &[("kind", kind)],
                count,
            );
        }
        for (name, help, aside) in [
            ("kem_content_render_cache_operations_total", "render cache operations", &self.renders),
            (
                "kem_content_public_image_cache_operations_total",
                "cache operations of the decisions which images are public",
                &self.public_images,
            ),
        ] {
            let cache = aside.counters().snapshot();
            for (result, value) in [
                ("hit", cache.hits),
                ("miss", cache.misses),
                ("load", cache.loads),
                ("coalesced", cache.coalesced),
                ("error", cache.errors),
            ] {
                out.counter(name, help, &[("result", result)], value);
            }
        }
        for client in &self.providers {
            let provider = client.name();
            for (outcome, count) in client.counters().by_outcome() {
                out.counter(
                    "kem_content_provider_requests_total",
                    "requests to the image provider and the blob store, by final outcome",
                    &[("provider", provider), ("outcome", outcome)],
                    count,
                );
            }
            out.counter(
                "kem_content_provider_retries_total",
                "retried requests to the image provider and the blob store",
                &[("provider", provider)],
                client.counters().retries.load(Ordering::Relaxed),
            );
            out.gauge(
                "kem_content_provider_breaker_state",
                "circuit breaker state: 0 closed, 1 half-open, 2 open",
                &[("provider", provider)],
                f64::from(client.breaker().state().as_gauge()),
            );
        }
    }
}
