//! The ai service's own counters (model calls, repairs, token usage, cache use, jobs), exported
//! by [`crate::infra::telemetry`].

use std::sync::atomic::{AtomicU64, Ordering};

use super::ports::TokenUsage;

/// Counters of one task (`trends` or `recommendations`).
#[derive(Debug, Default)]
pub struct TaskCounters {
    /// Model calls answered (repair calls included).
    pub calls: AtomicU64,
    /// Model calls that failed (no answer).
    pub call_failures: AtomicU64,
    /// Answers refused by the parser that led to a repair call.
    pub repairs: AtomicU64,
    /// Requests that failed because the output stayed malformed after the repair.
    pub bad_output: AtomicU64,
    /// Results served from the cache.
    pub cache_hits: AtomicU64,
    /// Results generated.
    pub generated: AtomicU64,
}

/// Tokens billed by the model.
#[derive(Debug, Default)]
pub struct TokenCounters {
    /// Input tokens.
    pub input: AtomicU64,
    /// Output tokens.
    pub output: AtomicU64,
    /// Input tokens read from the provider's prompt cache.
    pub cache_read: AtomicU64,
    /// Input tokens written to the provider's prompt cache.
    pub cache_write: AtomicU64,
}

/// Outcomes of `ai-event-generation` jobs.
#[derive(Debug, Default)]
pub struct JobCounters {
    /// Reported SUCCEEDED.
    pub succeeded: AtomicU64,
    /// Reported FAILED.
    pub failed: AtomicU64,
    /// Abandoned for a later retry (transient failure).
    pub retried: AtomicU64,
    /// Dropped because the job no longer exists.
    pub dropped: AtomicU64,
    /// Not reported because the job's deadline had passed.
    pub expired: AtomicU64,
    /// Redeliveries of jobs already finished (no work done).
    pub duplicates: AtomicU64,
    /// Messages dead-lettered (undecodable, or a report the event service refused).
    pub dead_lettered: AtomicU64,
}

/// Every counter of the service.
#[derive(Debug, Default)]
pub struct AiMetrics {
    /// The trends task.
    pub trends: TaskCounters,
    /// The recommendations task.
    pub recommendations: TaskCounters,
    /// Tokens.
    pub tokens: TokenCounters,
    /// Jobs.
    pub jobs: JobCounters,
}

impl AiMetrics {
    /// The counters of `task` (`trends` or anything else: recommendations).
    pub fn task(&self, task: &str) -> &TaskCounters {
        if task == "trends" { &self.trends } else { &self.recommendations }
    }

    /// Adds one call's usage.
    pub fn record_usage(&self, usage: TokenUsage) {
        self.tokens.input.fetch_add(usage.input, Ordering::Relaxed);
        self.tokens.output.fetch_add(usage.output, Ordering::Relaxed);
        self.tokens.cache_read.fetch_add(usage.cache_read, Ordering::Relaxed);
        self.tokens.cache_write.fetch_add(usage.cache_write, Ordering::Relaxed);
    }
}

/// `counter += 1`.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The value of `counter`.
pub fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}
