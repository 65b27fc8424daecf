//! What one step of a delivery can end in, and the rules that turn it into the delivery's next
//! state: retries with backoff, polling of provider-side jobs, quota deferrals, and the outcome
//! reported to analytics. Pure: the worker supplies the clock and the jitter.

use std::time::Duration;

use super::delivery::{Delivery, DeliveryError, DeliveryState, ErrorReason, Failure, ManualPost};

/// How a step ended, as a channel client reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// Live on the channel.
    Published {
        /// Provider id of the item (media id, article id, dealer request id, partner job id).
        external_id: String,
        /// Public URL, when the channel has one.
        permalink: String,
        /// The provider's status word, if it has one.
        provider_status: String,
        /// People reached, when the channel reports it.
        reach: Option<i64>,
        /// Views, when the channel reports them.
        views: Option<i64>,
    },
    /// The provider works on it (container processing, partner review): poll again later.
    InProgress {
        /// The provider-side handle to poll.
        work_ref: String,
        /// Provider id to show already (partner job id), or empty.
        external_id: String,
        /// The provider's status word.
        provider_status: String,
        /// When to look again (clamped by the policy).
        poll_after: Duration,
    },
    /// Prepared for the owner to post by hand.
    AwaitingOwner {
        /// The article.
        post: ManualPost,
    },
    /// A quota or rate-limit window: try again after `retry_after`; never a failure.
    Deferred {
        /// How long to wait.
        retry_after: Duration,
        /// Why (reason RATE_LIMITED or QUOTA_EXCEEDED).
        failure: Failure,
    },
    /// The attempt failed.
    Failed {
        /// Why.
        failure: Failure,
        /// Whether the service may try again by itself (false when a retry could publish twice,
        /// e.g. a message send whose outcome is unknown, or when retrying cannot help).
        auto_retry: bool,
    },
}

impl StepOutcome {
    /// Published, with no reach or views reported.
    pub fn published(
        external_id: impl Into<String>,
        permalink: impl Into<String>,
        provider_status: impl Into<String>,
    ) -> StepOutcome {
        StepOutcome::Published {
            external_id: external_id.into(),
            permalink: permalink.into(),
            provider_status: provider_status.into(),
            reach: None,
            views: None,
        }
    }

    /// A failure the service retries by itself while attempts remain.
    pub fn retry(failure: Failure) -> StepOutcome {
        StepOutcome::Failed { failure, auto_retry: true }
    }

    /// A failure that ends the delivery (a manual `Retry` may still re-queue it).
    pub fn fail(failure: Failure) -> StepOutcome {
        StepOutcome::Failed { failure, auto_retry: false }
    }
}

/// Retry and polling limits of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts before a retryable failure becomes FAILED (also the limit of consecutive failed
    /// polls of a provider-side job).
    pub max_attempts: u32,
    /// Delay before the second attempt; doubles per attempt.
    pub backoff_initial: Duration,
    /// Longest delay between attempts.
    pub backoff_max: Duration,
    /// Shortest interval between polls (or quota re-checks).
    pub min_poll: Duration,
    /// Longest interval between polls.
    pub max_poll: Duration,
}

impl RetryPolicy {
    /// The wait after failed attempt `n` (1-based): `initial × 2ⁿ⁻¹`, capped, scaled into
    /// `[d/2, d]` by `jitter ∈ [0, 1]` so failing deliveries do not retry in lockstep.
    pub fn backoff(&self, n: i32, jitter: f64) -> Duration {
        let exponent = u32::try_from(n.saturating_sub(1)).unwrap_or(0).min(20);
        let full = self.backoff_initial.saturating_mul(1 << exponent).min(self.backoff_max);
        let half = full / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }

    fn poll(&self, after: Duration) -> Duration {
        after.clamp(self.min_poll, self.max_poll.max(self.min_poll))
    }
}

/// An outcome to report to analytics (exactly once: it is written with the state change).
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeFact {
    /// PUBLISHED or FAILED.
    pub published: bool,
    /// Its sequence number among the delivery's outcomes (1, 2, …).
    pub seq: i32,
}

/// The delivery after a step, and the outcome to report if the step ended it.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The new row.
    pub delivery: Delivery,
    /// The analytics outcome, when the delivery reached PUBLISHED or FAILED.
    pub outcome: Option<OutcomeFact>,
}

/// Applies `outcome` to `held` (the row as the worker holds it, with any work reference the step
/// saved). `started` says whether this step began a new attempt (the claim counted it) rather
/// than polling a provider-side job.
pub fn apply(
    held: &Delivery,
    started: bool,
    outcome: StepOutcome,
    policy: &RetryPolicy,
    now_ms: i64,
    jitter: f64,
) -> Applied {
    let mut d = held.clone();
    d.lease_until = None;
    d.updated_at = now_ms;
    let at = |wait: Duration| now_ms.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
    let polling = !started && d.state == DeliveryState::Sending && d.work_ref.is_some();
    let mut outcome_fact = None;
    match outcome {
        StepOutcome::Published { external_id, permalink, provider_status, reach, views } => {
            d.state = DeliveryState::Published;
            if !external_id.is_empty() {
                d.external_id = external_id;
            }
            d.permalink = permalink;
            d.provider_status = provider_status;
            d.reach = reach;
            d.views = views;
            d.published_at = Some(now_ms);
            d.next_attempt_at = None;
            d.work_ref = None;
            d.poll_errors = 0;
            d.outcome_seq += 1;
            outcome_fact = Some(OutcomeFact { published: true, seq: d.outcome_seq });
        }
        StepOutcome::InProgress { work_ref, external_id, provider_status, poll_after } => {
            d.state = DeliveryState::Sending;
            d.work_ref = Some(work_ref);
            if !external_id.is_empty() {
                d.external_id = external_id;
            }
            d.provider_status = provider_status;
            d.poll_errors = 0;
            d.next_attempt_at = Some(at(policy.poll(poll_after)));
        }
        StepOutcome::AwaitingOwner { post } => {
            d.state = DeliveryState::AwaitingOwner;
            d.manual_post = Some(post);
            d.next_attempt_at = None;
            d.work_ref = None;
            d.provider_status = String::new();
        }
        StepOutcome::Deferred { retry_after, failure } => {
            let wait = retry_after.max(policy.min_poll);
            if polling {
                // A throttled poll: the provider-side job goes on; look again later.
                d.state = DeliveryState::Sending;
            } else {
                d.state = DeliveryState::QueuedRateLimited;
                if started {
                    // Waiting for a quota window is not an attempt.
                    d.attempts = (d.attempts - 1).max(0);
                }
            }
            d.next_attempt_at = Some(at(wait));
            d.last_error = Some(DeliveryError { failure, at_ms: now_ms });
        }
        StepOutcome::Failed { failure, auto_retry } => {
            let can_retry = auto_retry && failure.retryable;
            let limit = i32::try_from(policy.max_attempts).unwrap_or(i32::MAX);
            if polling && can_retry && d.poll_errors + 1 < limit {
                d.poll_errors += 1;
                d.next_attempt_at = Some(at(policy.backoff(d.poll_errors, jitter)));
            } else if !polling && can_retry && d.attempts < limit {
                d.state = DeliveryState::Pending;
                d.next_attempt_at = Some(at(policy.backoff(d.attempts, jitter)));
            } else {
                d.state = DeliveryState::Failed;
                d.next_attempt_at = None;
                d.work_ref = None;
                d.outcome_seq += 1;
                outcome_fact = Some(OutcomeFact { published: false, seq: d.outcome_seq });
            }
            d.last_error = Some(DeliveryError { failure, at_ms: now_ms });
        }
    }
    Applied { delivery: d, outcome: outcome_fact }
}

/// The outcome of a delivery whose event has ended before it could be delivered.
pub fn event_ended() -> StepOutcome {
    StepOutcome::fail(Failure::new(
        ErrorReason::EventEnded,
        "the event's period is over, so it is no longer delivered to this channel",
        false,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::channel::Channel;
    use crate::domain::delivery::ProviderLabel;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            backoff_initial: Duration::from_secs(10),
            backoff_max: Duration::from_secs(60),
            min_poll: Duration::from_secs(1),
            max_poll: Duration::from_secs(300),
        }
    }

    /// A delivery as the claim of a new attempt leaves it.
    fn claimed(attempts: i32) -> Delivery {
        let mut d = Delivery::new("e-1", Channel::Instagram, "o-1", ProviderLabel::external("instagram-graph", ""), 0);
        d.state = DeliveryState::Sending;
        d.attempts = attempts;
        d.lease_until = Some(5_000);
        d
    }

    fn unavailable() -> Failure {
        Failure::new(ErrorReason::ProviderUnavailable, "503", true)
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
        let p = policy();
        assert_eq!(p.backoff(1, 1.0), Duration::from_secs(10));
        assert_eq!(p.backoff(1, 0.0), Duration::from_secs(5));
        assert_eq!(p.backoff(2, 1.0), Duration::from_secs(20));
        assert_eq!(p.backoff(9, 1.0), Duration::from_secs(60));
        assert_eq!(p.backoff(0, 1.0), Duration::from_secs(10));
    }

    #[test]
    fn publishing_is_terminal_and_reported_once() {
        let outcome = StepOutcome::Published {
            external_id: "m-1".into(),
            permalink: "https://instagram.com/p/x".into(),
            provider_status: String::new(),
            reach: Some(3),
            views: None,
        };
        let applied = apply(&claimed(1), true, outcome, &policy(), 1_000, 0.5);
        let d = &applied.delivery;
        assert_eq!((d.state, d.external_id.as_str(), d.published_at), (DeliveryState::Published, "m-1", Some(1_000)));
        assert_eq!((d.next_attempt_at, d.lease_until, d.reach), (None, None, Some(3)));
        assert_eq!(applied.outcome, Some(OutcomeFact { published: true, seq: 1 }));
    }

    #[test]
    fn retryable_failures_are_retried_with_backoff_until_the_attempts_run_out() {
        let applied = apply(&claimed(1), true, StepOutcome::retry(unavailable()), &policy(), 1_000, 1.0);
        assert_eq!(applied.delivery.state, DeliveryState::Pending);
        assert_eq!(applied.delivery.next_attempt_at, Some(11_000));
        assert!(applied.outcome.is_none());
        assert_eq!(
            applied.delivery.last_error.as_ref().map(|e| e.failure.reason),
            Some(ErrorReason::ProviderUnavailable)
        );

        let last = apply(&claimed(3), true, StepOutcome::retry(unavailable()), &policy(), 1_000, 1.0);
        assert_eq!(last.delivery.state, DeliveryState::Failed);
        assert_eq!(last.delivery.next_attempt_at, None);
        assert_eq!(last.outcome, Some(OutcomeFact { published: false, seq: 1 }));
    }

    #[test]
    fn unsafe_or_permanent_failures_end_the_delivery_at_once() {
        let unknown = apply(&claimed(1), true, StepOutcome::fail(unavailable()), &policy(), 1_000, 1.0);
        assert_eq!(unknown.delivery.state, DeliveryState::Failed);
        let rejected = Failure::new(ErrorReason::ContentRejected, "no", false);
        let applied = apply(&claimed(1), true, StepOutcome::retry(rejected), &policy(), 1_000, 1.0);
        assert_eq!(applied.delivery.state, DeliveryState::Failed);
        assert!(applied.outcome.is_some_and(|o| !o.published));
    }

    #[test]
    fn provider_side_jobs_are_polled_within_the_policy_bounds() {
        let outcome = StepOutcome::InProgress {
            work_ref: "job-1".into(),
            external_id: "job-1".into(),
            provider_status: "IN_REVIEW".into(),
            poll_after: Duration::from_secs(3_600),
        };
        let applied = apply(&claimed(1), true, outcome, &policy(), 1_000, 0.0);
        let d = applied.delivery;
        assert_eq!(
            (d.state, d.work_ref.as_deref(), d.provider_status.as_str()),
            (DeliveryState::Sending, Some("job-1"), "IN_REVIEW")
        );
        assert_eq!(d.next_attempt_at, Some(301_000), "clamped to max_poll");
        assert!(applied.outcome.is_none());

        // A failed poll keeps the job and counts consecutive poll errors up to the limit.
        let mut polled = d.clone();
        polled.lease_until = Some(9_999);
        let once = apply(&polled, false, StepOutcome::retry(unavailable()), &policy(), 2_000, 1.0);
        assert_eq!((once.delivery.state, once.delivery.poll_errors), (DeliveryState::Sending, 1));
        assert_eq!(once.delivery.work_ref.as_deref(), Some("job-1"));
        let twice = apply(&once.delivery, false, StepOutcome::retry(unavailable()), &policy(), 3_000, 1.0);
        assert_eq!(twice.delivery.poll_errors, 2);
        let gave_up = apply(&twice.delivery, false, StepOutcome::retry(unavailable()), &policy(), 4_000, 1.0);
        assert_eq!(gave_up.delivery.state, DeliveryState::Failed);
        assert_eq!(gave_up.delivery.work_ref, None);
    }

    #[test]
    fn quota_waits_queue_the_delivery_without_spending_an_attempt() {
        let failure = Failure::new(ErrorReason::QuotaExceeded, "25 of 25 used", true);
        let outcome = StepOutcome::Deferred { retry_after: Duration::from_secs(3_600), failure };
        let applied = apply(&claimed(2), true, outcome.clone(), &policy(), 1_000, 0.5);
        let d = &applied.delivery;
        assert_eq!((d.state, d.attempts, d.next_attempt_at), (DeliveryState::QueuedRateLimited, 1, Some(3_601_000)));
        assert!(applied.outcome.is_none(), "never a failure");
        assert_eq!(d.last_error.as_ref().map(|e| e.failure.reason), Some(ErrorReason::QuotaExceeded));

        // A throttled poll stays SENDING.
        let mut polling = claimed(1);
        polling.work_ref = Some("job".into());
        let applied = apply(&polling, false, outcome, &policy(), 1_000, 0.5);
        assert_eq!((applied.delivery.state, applied.delivery.attempts), (DeliveryState::Sending, 1));
    }

    #[test]
    fn awaiting_owner_keeps_the_article_and_reports_nothing() {
        let post = ManualPost { title: "t".into(), ..ManualPost::default() };
        let applied = apply(&claimed(1), true, StepOutcome::AwaitingOwner { post: post.clone() }, &policy(), 1, 0.0);
        assert_eq!(applied.delivery.state, DeliveryState::AwaitingOwner);
        assert_eq!(applied.delivery.manual_post, Some(post));
        assert!(applied.outcome.is_none());
    }

    #[test]
    fn outcome_sequence_grows_across_retries() {
        let mut d = claimed(3);
        d.outcome_seq = 1;
        let applied = apply(&d, true, StepOutcome::fail(unavailable()), &policy(), 1, 0.0);
        assert_eq!(applied.outcome.map(|o| o.seq), Some(2));
    }
}
