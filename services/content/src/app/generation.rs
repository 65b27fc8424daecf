//! Working a `content-generation` request: one image per style × size, reported to the event
//! service, with exactly-once effects under redelivery.
//!
//! 1. A message already finished (inbox) is a duplicate: nothing runs.
//! 2. Past the job's deadline the event service has failed the job already: the work is dropped
//!    without a report.
//! 3. `started` is reported; NOT_FOUND means the event was deleted: the work is dropped.
//! 4. Each slot (style × size) is made once per job: its image is recorded under `(job, slot)`,
//!    so a redelivery after a crash continues where the first delivery stopped. A slot reuses an
//!    existing image of the event made from the same render (a re-request regenerates only what is
//!    missing), else a fresh render of the same request (24 h, content-addressed by the render key:
//!    no provider call), else asks the provider.
//! 5. The outcome is reported (first terminal report wins at the event service, so a repeat after
//!    a crash is harmless); then the message is marked finished together with the final style
//!    states, in one transaction.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream;

use super::metrics::bump;
use super::ports::{Claim, ReportError};
use super::{ContentApp, RenderRequest, WorkError};
use crate::domain::failure::{Failure, FailureKind};
use crate::domain::image::{GenerationState, Image, Render};
use crate::domain::outcome::{self, JobOutcome, SlotOutcome};
use crate::domain::prompt::{self, RenderInputs, sha256_hex};
use crate::domain::request::{GenerationRequest, Slot, Violations};
use crate::domain::sizes::closest_aspect_ratio;
use crate::domain::values::Provenance;

/// Time kept in hand before the job's deadline: work that would end later is not started.
const DEADLINE_MARGIN_MS: i64 = 500;

/// How a work message ended (the message is completed in every case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobDisposition {
    /// Worked and reported.
    Completed(JobOutcome),
    /// Already finished by an earlier delivery.
    Duplicate,
    /// The job's deadline passed: dropped without a report (the event service fails it).
    Expired,
    /// The job or its event no longer exists: dropped.
    Dropped,
    /// The request was invalid: reported FAILED.
    Invalid,
}

/// A work request that could not be validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRequest {
    /// The job to report to, when the message names one.
    pub job_id: Option<String>,
    /// The event, when named.
    pub event_id: Option<String>,
    /// What is wrong.
    pub violations: Violations,
}

/// Storage key of image bytes: content-addressed by their SHA-256.
pub fn blob_key(sha256: &str, content_type: &str) -> String {
    let extension = match content_type {
        "image/jpeg" => "jpg",
        "image/webp" => "webp",
        _ => "png",
    };
    let prefix = sha256.get(..2).unwrap_or("00");
    format!("images/{prefix}/{sha256}.{extension}")
}

fn storage_failure(error: impl std::fmt::Display, store: &str) -> Failure {
    Failure::new(FailureKind::Storage, format!("the image could not be stored: {error}")).with_provider(store)
}

impl ContentApp {
    /// Works one `content-generation` message (`message_id` keys the inbox).
    pub async fn run_job(
        &self,
        message_id: &str,
        request: Result<GenerationRequest, InvalidRequest>,
    ) -> Result<JobDisposition, WorkError> {
        let disposition = self.work(message_id, request).await?;
        let m = &self.metrics;
        match &disposition {
            JobDisposition::Completed(JobOutcome::Images { failed, .. }) if failed.is_empty() => {
                bump(&m.jobs_succeeded)
            }
            JobDisposition::Completed(JobOutcome::Images { .. }) => bump(&m.jobs_partial),
            JobDisposition::Completed(JobOutcome::Failed { .. }) | JobDisposition::Invalid => bump(&m.jobs_failed),
            JobDisposition::Expired | JobDisposition::Dropped => bump(&m.jobs_dropped),
            JobDisposition::Duplicate => bump(&m.jobs_duplicate),
        }
        Ok(disposition)
    }

    async fn work(
        &self,
        message_id: &str,
        request: Result<GenerationRequest, InvalidRequest>,
    ) -> Result<JobDisposition, WorkError> {
        let consumer = self.settings.consumer.clone();
        if self.repository.job_finished(&consumer, message_id).await? {
            tracing::debug!(message_id, "generation request already finished; duplicate delivery ignored");
            return Ok(JobDisposition::Duplicate);
        }
        let request = match request {
            Ok(request) => request,
            Err(invalid) => return self.refuse(message_id, invalid).await,
        };
        let job_id = request.job_id.clone();
        if self.expired(&request) {
            tracing::warn!(job_id, event_id = %request.event_id, "generation request arrived after its deadline; dropped");
            self.finish(message_id, &request, &[]).await?;
            return Ok(JobDisposition::Expired);
        }
        match self.events.started(&job_id, self.clock.now_ms()).await {
            Ok(()) => {}
            Err(ReportError::JobGone(why)) => {
                tracing::info!(job_id, event_id = %request.event_id, %why, "job is gone; generation dropped");
                self.finish(message_id, &request, &[]).await?;
                return Ok(JobDisposition::Dropped);
            }
            // Started is advisory (the job may already be RUNNING or terminal): carry on.
            Err(ReportError::Rejected(why)) => tracing::warn!(job_id, %why, "started report refused; continuing"),
            Err(error @ ReportError::Unavailable(_)) => return Err(WorkError::Retry(error.to_string())),
        }
        let now = self.clock.now_ms();
        if let Claim::OwnedByOther(owner) =
            self.repository.claim_event(&request.event_id, &request.owner_id, now).await?
        {
            tracing::error!(job_id, event_id = %request.event_id, claimed = %request.owner_id, %owner,
                "generation request names another owner than the event's images");
            let failure = Failure::new(
                FailureKind::Internal,
                "the event's images belong to another owner; the request was not worked",
            );
            self.report_failure(&job_id, &failure).await?;
            self.finish(message_id, &request, &[]).await?;
            return Ok(JobDisposition::Invalid);
        }
        let running = outcome::states(&job_id, &request.styles, GenerationState::Running, now);
        self.repository.save_style_states(&request.event_id, &running).await?;

        let done = self.repository.job_images(&job_id).await?;
        let slots = request.slots();
        let parallelism = self.settings.parallelism.max(1);
        let outcomes: Vec<(Slot, SlotOutcome)> = stream::iter(slots)
            .map(|slot| {
                let previous = done.iter().find(|(key, _)| *key == slot.key()).map(|(_, image)| image.clone());
                let request = &request;
                async move {
                    let outcome = match previous {
                        Some(image) => Ok(SlotOutcome::Made(Box::new(image))),
                        None => self.make(request, slot).await,
                    };
                    if let Ok(SlotOutcome::Failed(failure)) = &outcome {
                        self.metrics.failed(&failure.kind);
                    }
                    (slot, outcome)
                }
            })
            .buffered(parallelism)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .map(|(slot, outcome)| outcome.map(|o| (slot, o)))
            .collect::<Result<_, _>>()?;

        if self.expired(&request) {
            // The event service fails the job at its deadline; a late report would be ignored.
            tracing::warn!(job_id, event_id = %request.event_id, "job deadline passed during generation; not reporting");
            let states = outcome::failed_states(&job_id, &request.styles, &Failure::deadline(), self.clock.now_ms());
            self.finish(message_id, &request, &states).await?;
            return Ok(JobDisposition::Expired);
        }
        let outcome = outcome::summarize(&request.styles, &outcomes);
        // The final states land before the report, so whoever sees the job finished also sees
        // them in ListImages; a crash before the report recomputes the same states.
        let states = outcome::final_states(&job_id, &outcome, self.clock.now_ms());
        self.repository.save_style_states(&request.event_id, &states).await?;
        match self.events.finished(&job_id, &outcome).await {
            Ok(()) => {}
            Err(ReportError::JobGone(why)) => {
                tracing::info!(job_id, %why, "job is gone; its images are kept but not reported");
            }
            Err(ReportError::Rejected(why)) => {
                tracing::error!(job_id, %why, "the event service refused the job's outcome");
            }
            Err(error @ ReportError::Unavailable(_)) => return Err(WorkError::Retry(error.to_string())),
        }
        self.finish(message_id, &request, &[]).await?;
        match &outcome {
            JobOutcome::Images { image_ids, failed, provider, .. } => tracing::info!(
                job_id, event_id = %request.event_id, images = image_ids.len(), failed_styles = failed.len(),
                provider = %provider.name, cached = provider.cached, "images job finished"
            ),
            JobOutcome::Failed { failure, .. } => tracing::warn!(
                job_id, event_id = %request.event_id, kind = ?failure.kind, error = %failure, "images job failed"
            ),
        }
        Ok(JobDisposition::Completed(outcome))
    }

    fn expired(&self, request: &GenerationRequest) -> bool {
        request.deadline.is_some_and(|deadline| self.clock.now_ms() + DEADLINE_MARGIN_MS >= deadline)
    }

    /// What is left of the job's time for one image.
    fn budget(&self, request: &GenerationRequest) -> Option<Duration> {
        let budget = self.settings.image_budget;
        match request.deadline {
            None => Some(budget),
            Some(deadline) => {
                let left = deadline - self.clock.now_ms() - DEADLINE_MARGIN_MS;
                (left > 0).then(|| budget.min(Duration::from_millis(u64::try_from(left).unwrap_or(0))))
            }
        }
    }

    async fn refuse(&self, message_id: &str, invalid: InvalidRequest) -> Result<JobDisposition, WorkError> {
        let Some(job_id) = invalid.job_id.filter(|j| !j.trim().is_empty()) else {
            return Err(WorkError::Reject(format!("no job to report to: {}", invalid.violations)));
        };
        tracing::warn!(job_id, violations = %invalid.violations, "invalid generation request; reporting it failed");
        let failure = Failure::new(
            FailureKind::InvalidRequest { violations: invalid.violations.0.clone() },
            format!("the image generation request is invalid: {}", invalid.violations),
        );
        self.report_failure(&job_id, &failure).await?;
        let event_id = invalid.event_id.unwrap_or_default();
        if !self.repository.finish_job(&self.settings.consumer, message_id, &event_id, &[]).await? {
            return Ok(JobDisposition::Duplicate);
        }
        Ok(JobDisposition::Invalid)
    }

    async fn report_failure(&self, job_id: &str, failure: &Failure) -> Result<(), WorkError> {
        match self.events.failed(job_id, failure).await {
            Ok(()) | Err(ReportError::JobGone(_)) => Ok(()),
            Err(ReportError::Rejected(why)) => {
                tracing::error!(job_id, %why, "the event service refused the failure report");
                Ok(())
            }
            Err(error @ ReportError::Unavailable(_)) => Err(WorkError::Retry(error.to_string())),
        }
    }

    async fn finish(
        &self,
        message_id: &str,
        request: &GenerationRequest,
        states: &[crate::domain::image::StyleState],
    ) -> Result<(), WorkError> {
        self.repository.finish_job(&self.settings.consumer, message_id, &request.event_id, states).await?;
        Ok(())
    }

    /// Makes (or finds) the image of one slot. Errors are only for the database (retry the
    /// message); everything about the image itself is a [`SlotOutcome::Failed`].
    async fn make(&self, request: &GenerationRequest, slot: Slot) -> Result<SlotOutcome, WorkError> {
        let label = self.generator.label();
        let prompt = prompt::build(&request.brief, slot.style);
        let caption = prompt::caption(&request.brief);
        let seed = prompt::seed(&prompt);
        let (width, height) = (slot.size.width, slot.size.height);
        let aspect_ratio = closest_aspect_ratio(width, height);
        let exact = self.generator.renders_exact_size();
        let render_key = prompt::render_key(&RenderInputs {
            provider: &label.name,
            model: &label.model,
            prompt: &prompt,
            caption: &caption,
            style: slot.style,
            aspect_ratio: &aspect_ratio,
            seed,
            exact_size: exact.then_some((width, height)),
        });
        let slot_key = slot.key();
        if let Some(existing) =
            self.repository.reusable_image(&request.event_id, slot.style, &slot.size, &render_key).await?
        {
            tracing::debug!(job_id = %request.job_id, slot = %slot_key, image_id = %existing.id, "reusing the event's image");
            let image = self.repository.record_image(&request.job_id, &slot_key, &existing, false).await?;
            bump(&self.metrics.images_reused);
            return Ok(SlotOutcome::Made(Box::new(image)));
        }

        // A fresh render of the same request (any event) saves the provider call.
        let now = self.clock.now_ms();
        let ttl_ms = i64::try_from(self.settings.render_ttl.as_millis()).unwrap_or(i64::MAX);
        let mut cached: Option<(Render, Bytes)> = None;
        if let Some(render) = self.renders.find(&render_key).await?.filter(|r| r.is_fresh(now, ttl_ms)) {
            match self.blobs.get(&render.blob_key).await {
                Ok(Some(bytes)) if sha256_hex(&bytes) == render.sha256 => cached = Some((render, bytes)),
                Ok(_) => {
                    tracing::warn!(render_key, blob = %render.blob_key, "cached render bytes missing or corrupt; generating again")
                }
                Err(error) => {
                    return Ok(SlotOutcome::Failed(storage_failure(error, self.blobs.kind())));
                }
            }
        }
        let from_cache = cached.is_some();
        let (render, raw) = match cached {
            Some(found) => found,
            None => {
                let Some(budget) = self.budget(request) else {
                    return Ok(SlotOutcome::Failed(Failure::deadline()));
                };
                let render_request = RenderRequest {
                    prompt: prompt.clone(),
                    caption,
                    style: slot.style,
                    width,
                    height,
                    aspect_ratio,
                    seed,
                };
                let generated = match self.generator.generate(&render_request, budget).await {
                    Ok(generated) => generated,
                    Err(failure) => {
                        tracing::info!(job_id = %request.job_id, slot = %slot_key, kind = ?failure.kind, error = %failure,
                            "image generation failed");
                        return Ok(SlotOutcome::Failed(failure));
                    }
                };
                let sha256 = sha256_hex(&generated.bytes);
                let key = blob_key(&sha256, &generated.content_type);
                if let Err(error) = self.blobs.put(&key, generated.bytes.clone(), &generated.content_type).await {
                    return Ok(SlotOutcome::Failed(storage_failure(error, self.blobs.kind())));
                }
                let render = Render {
                    render_key: render_key.clone(),
                    blob_key: key,
                    content_type: generated.content_type.clone(),
                    width: generated.width,
                    height: generated.height,
                    size_bytes: i64::try_from(generated.bytes.len()).unwrap_or(i64::MAX),
                    sha256,
                    seed: generated.seed,
                    provenance: Provenance {
                        kind: label.kind,
                        name: label.name.clone(),
                        model: label.model.clone(),
                        request_id: generated.request_id.clone(),
                    },
                    created_at: self.clock.now_ms(),
                };
                self.renders.save(&render).await?;
                (render, generated.bytes)
            }
        };

        // Fit the render to the slot's exact size (a no-op for exact-size renders).
        let (bytes, content_type) = if (render.width, render.height) == (width, height) {
            (raw, render.content_type.clone())
        } else {
            match self.imaging.fit(raw, width, height).await {
                Ok(fitted) => (fitted, "image/png".to_owned()),
                Err(error) => {
                    let failure = Failure::new(
                        FailureKind::ProviderContract,
                        format!("the provider's image cannot be resized to {width}x{height}: {error}"),
                    )
                    .with_provider(render.provenance.name.clone());
                    return Ok(SlotOutcome::Failed(failure));
                }
            }
        };
        let sha256 = sha256_hex(&bytes);
        let key = blob_key(&sha256, &content_type);
        if key != render.blob_key
            && let Err(error) = self.blobs.put(&key, bytes.clone(), &content_type).await
        {
            return Ok(SlotOutcome::Failed(storage_failure(error, self.blobs.kind())));
        }
        let image = Image {
            id: new_id(),
            event_id: request.event_id.clone(),
            owner_id: request.owner_id.clone(),
            job_id: request.job_id.clone(),
            style: slot.style,
            size: slot.size,
            content_type,
            blob_key: key,
            size_bytes: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
            sha256,
            prompt: prompt.text,
            render_key,
            seed: render.seed,
            provenance: render.provenance.clone(),
            cached: from_cache,
            created_at: self.clock.now_ms(),
        };
        let image = self.repository.record_image(&request.job_id, &slot_key, &image, true).await?;
        bump(if from_cache { &self.metrics.images_cached } else { &self.metrics.images_generated });
        Ok(SlotOutcome::Made(Box::new(image)))
    }
}

/// A new random (version 4) UUID in canonical text form.
pub fn new_id() -> String {
    kem_kit::ids::random_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_keys_are_content_addresses() {
        let sha = "ab".repeat(32);
        assert_eq!(blob_key(&sha, "image/png"), format!("images/ab/{sha}.png"));
        assert_eq!(blob_key(&sha, "image/jpeg"), format!("images/ab/{sha}.jpg"));
        let id = new_id();
        assert_eq!(id.len(), 36);
        assert_ne!(id, new_id());
    }
}
