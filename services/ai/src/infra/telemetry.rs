//! The ai service's metrics on the process registry (`/metrics`), read at scrape time:
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `kem_ai_model_calls_total` | `provider`, `model`, `task` | model calls answered (repairs included) |
//! | `kem_ai_model_call_failures_total` | `provider`, `model`, `task` | model calls without an answer |
//! | `kem_ai_output_repairs_total` | `provider`, `task` | malformed answers that led to the repair call |
//! | `kem_ai_bad_output_total` | `provider`, `task` | requests failed: still malformed after the repair |
//! | `kem_ai_results_total` | `task`, `source` (`generated`, `cache`) | results served |
//! | `kem_ai_tokens_total` | `provider`, `model`, `kind` (`input`, `output`, `cache_read`, `cache_write`) | tokens billed (`usage`) |
//! | `kem_ai_jobs_total` | `outcome` (`succeeded`, `failed`, `retried`, `dropped`, `expired`, `duplicate`, `dead_lettered`) | `ai-event-generation` deliveries |
//! | `kem_ai_cache_operations_total` | `result` (`hit`, `miss`, `load`, `coalesced`, `error`) | the result cache |
//! | `kem_external_requests_total` | `provider`, `outcome` | Claude requests by final outcome (real provider only) |
//! | `kem_external_attempts_total`, `kem_external_retries_total` | `provider` | HTTP attempts and retries |
//! | `kem_external_request_duration_seconds_sum` / `_count` | `provider` | time per request, all attempts |
//! | `kem_external_breaker_state` | `provider` | 0 closed, 1 half-open, 2 open |
//! | `kem_external_breaker_transitions_total` | `provider`, `to` | breaker state changes |
//! | `kem_external_breaker_rejected_total` | `provider` | calls refused by the open breaker |

use std::sync::Arc;
use std::sync::atomic::Ordering;

use kem_kit::cache::CacheAside;
use kem_kit::external::ProviderClient;
use kem_mesh::telemetry::{MetricWriter, Registry};

use crate::app::metrics::{AiMetrics, TaskCounters, read};
use crate::domain::output::ProviderStamp;

/// Everything exported.
pub struct AiTelemetry {
    /// The service's counters.
    pub metrics: Arc<AiMetrics>,
    /// Who answers (labels).
    pub source: ProviderStamp,
    /// The real client, when Claude is configured.
    pub provider: Option<ProviderClient>,
    /// The result cache.
    pub cache: CacheAside,
}

/// Registers `telemetry` with `registry`.
pub fn register(registry: &Registry, telemetry: AiTelemetry) {
    let telemetry = Arc::new(telemetry);
    registry.register_collector(Arc::new(move |out: &mut MetricWriter| telemetry.collect(out)));
}

impl AiTelemetry {
    fn collect(&self, out: &mut MetricWriter) {
        let (provider, model) = (self.source.name.as_str(), self.source.model.as_str());
        let tasks: [(&str, &TaskCounters); 2] =
            [("trends", &self.metrics.trends), ("recommendations", &self.metrics.recommendations)];
        for (task, c) in tasks {
            let labels = [("provider", provider), ("model", model), ("task", task)];
            out.counter("kem_ai_model_calls_total", "model calls answered, repairs included", &labels, read(&c.calls));
            out.counter(
                "kem_ai_model_call_failures_total",
                "model calls that got no answer",
                &labels,
                read(&c.call_failures),
            );
            let labels = [("provider", provider), ("task", task)];
            out.counter(
                "kem_ai_output_repairs_total",
                "malformed model answers sent back for repair",
                &labels,
                read(&c.repairs),
            );
            out.counter(
                "kem_ai_bad_output_total",
                "requests failed because the model output stayed malformed after the repair",
                &labels,
                read(&c.bad_output),
            );
            let help = "results served, by where they came from";
            out.counter("kem_ai_results_total", help, &[("task", task), ("source", "generated")], read(&c.generated));
            out.counter("kem_ai_results_total", help, &[("task", task), ("source", "cache")], read(&c.cache_hits));
        }
        let tokens = &self.metrics.tokens;
        for (kind, counter) in [
            ("input", &tokens.input),
            ("output", &tokens.output),
            ("cache_read", &tokens.cache_read),
            ("cache_write", &tokens.cache_write),
        ] {
            out.counter(
                "kem_ai_tokens_total",
                "model tokens billed, from the responses' usage",
                &[("provider", provider), ("model", model), ("kind", kind)],
                read(counter),
            );
        }
        let jobs = &self.metrics.jobs;
        for (outcome, counter) in [
            ("succeeded", &jobs.succeeded),
            ("failed", &jobs.failed),
            ("retried", &jobs.retried),
            ("dropped", &jobs.dropped),
            ("expired", &jobs.expired),
            ("duplicate", &jobs.duplicates),
            ("dead_lettered", &jobs.dead_lettered),
        ] {
            out.counter(
                "kem_ai_jobs_total",
                "ai-event-generation deliveries by outcome",
                &[("outcome", outcome)],
                read(counter),
            );
        }
        let cache = self.cache.counters().snapshot();
        for (result, value) in [
            ("hit", cache.hits),
            ("miss", cache.misses),
            ("load", cache.loads),
            ("coalesced", cache.coalesced),
            ("error", cache.errors),
        ] {
            out.counter("kem_ai_cache_operations_total", "result cache operations", &[("result", result)], value);
        }
        if let Some(client) = &self.provider {
            collect_provider(out, client);
        }
    }
}

fn collect_provider(out: &mut MetricWriter, client: &ProviderClient) {
    let provider = client.name();
    let labels = [("provider", provider)];
    let counters = client.counters();
    for (outcome, count) in counters.by_outcome() {
        out.counter(
            "kem_external_requests_total",
            "external API requests by final outcome",
            &[("provider", provider), ("outcome", outcome)],
            count,
        );
    }
    out.counter(
        "kem_external_attempts_total",
        "external API HTTP attempts",
        &labels,
        counters.attempts.load(Ordering::Relaxed),
    );
    out.counter(
        "kem_external_retries_total",
        "external API retries",
        &labels,
        counters.retries.load(Ordering::Relaxed),
    );
    let micros = counters.latency_micros_sum.load(Ordering::Relaxed);
    out.gauge(
        "kem_external_request_duration_seconds_sum",
        "total time of external API requests, all attempts and waits",
        &labels,
        micros as f64 / 1e6,
    );
    out.counter(
        "kem_external_request_duration_seconds_count",
        "external API requests timed",
        &labels,
        counters.latency_count.load(Ordering::Relaxed),
    );
    let breaker = client.breaker();
    out.gauge(
        "kem_external_breaker_state",
        "circuit breaker state: 0 closed, 1 half-open, 2 open",
        &labels,
        f64::from(breaker.state().as_gauge()),
    );
    let b = breaker.counters();
    for (to, counter) in [("open", &b.opened), ("half_open", &b.half_opened), ("closed", &b.closed)] {
        out.counter(
            "kem_external_breaker_transitions_total",
            "circuit breaker state changes",
            &[("provider", provider), ("to", to)],
            counter.load(Ordering::Relaxed),
        );
    }
    out.counter(
        "kem_external_breaker_rejected_total",
        "calls refused by an open circuit breaker",
        &labels,
        b.rejected.load(Ordering::Relaxed),
    );
}
