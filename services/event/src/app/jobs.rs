//! Asynchronous jobs: the owner requests recommendations (ai) or images (content) and polls the
//! job; workers report over the mesh; jobs nobody finished in time are failed.

use std::time::Duration;

use kem_kit::validate::Text;

use crate::domain::event::Change;
use crate::domain::job::{INSTRUCTIONS_MAX, Job, JobChange, JobKind, JobRequest, Report, ReportError};
use crate::domain::lifecycle::Action;
use crate::domain::message::Outgoing;
use crate::domain::validation::{EnumInput, ValidationError, validate_channels};
use crate::domain::values::{Channel, ImageStyle};

use super::error::{AppError, Resource};
use super::ids::new_id;
use super::ports::Saved;
use super::{EventApp, MAX_ATTEMPTS, require_id};

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl EventApp {
    /// RequestRecommendations.
    pub async fn request_recommendations(
        &self,
        owner: &str,
        event_id: &str,
        instructions: &str,
    ) -> Result<Job, AppError> {
        let mut errors = ValidationError::default();
        errors.text("additionalInstructions", instructions, Text::prose(INSTRUCTIONS_MAX));
        errors.into_result(())?;
        let request = JobRequest::Recommendations { additional_instructions: instructions.trim().to_owned() };
        self.start_job(owner, event_id, Action::RequestRecommendations, request).await
    }

    /// RequestImages.
    pub async fn request_images(
        &self,
        owner: &str,
        event_id: &str,
        channels: &[EnumInput<Channel>],
        styles: &[EnumInput<ImageStyle>],
    ) -> Result<Job, AppError> {
        require_id("eventId", event_id)?;
        let mut errors = ValidationError::default();
        let channels = validate_channels(channels, "channels", false, &mut errors);
        let mut chosen_styles = Vec::new();
        for (i, style) in styles.iter().enumerate() {
            match style {
                EnumInput::Known(s) if !chosen_styles.contains(s) => chosen_styles.push(*s),
                EnumInput::Known(_) => {}
                EnumInput::Unset => errors.push(format!("styles[{i}]"), "IMAGE_STYLE_UNSPECIFIED is not a style"),
                EnumInput::Unknown(n) => errors.push(format!("styles[{i}]"), format!("{n} is not a known style")),
            }
        }
        errors.into_result(())?;
        if chosen_styles.is_empty() {
            chosen_styles = ImageStyle::ALL.to_vec();
        }
        let request = JobRequest::Images { channels, styles: chosen_styles };
        self.start_job(owner, event_id, Action::RequestImages, request).await
    }

    /// Creates a job (or returns the active one of its kind) with its queue message.
    async fn start_job(
        &self,
        owner: &str,
        event_id: &str,
        action: Action,
        request: JobRequest,
    ) -> Result<Job, AppError> {
        let kind = request.kind();
        // Looked up once, outside any transaction; absent when the user service cannot tell.
        let mut store = None;
        let mut looked_up = false;
        for _ in 0..MAX_ATTEMPTS {
            let event = self.load_owned(owner, event_id).await?;
            event.allows(action).map_err(|e| AppError::illegal(&event.id, e))?;
            if let Some(active) = self.repository.active_job(&event.id, kind).await? {
                return Ok(active);
            }
            let request = match (&request, kind) {
                (JobRequest::Images { channels, styles }, JobKind::Images) => {
                    let Some(recommendation) = &event.selected_recommendation else {
                        return Err(AppError::NoRecommendationSelected { event_id: event.id.clone() });
                    };
                    // Empty: the event's channels, else the recommendation's.
                    let channels = [channels, &event.spec.channels, &recommendation.recommended_channels]
                        .into_iter()
                        .find(|c| !c.is_empty())
                        .cloned()
                        .unwrap_or_default();
                    if channels.is_empty() {
                        return Err(ValidationError::one(
                            "channels",
                            "the event has no channels: name the channels to generate images for",
                        )
                        .into());
                    }
                    JobRequest::Images { channels, styles: styles.clone() }
                }
                (JobRequest::Recommendations { .. }, _) => {
                    let missing = event.missing_for_recommendations();
                    if !missing.is_empty() {
                        return Err(AppError::EventIncomplete { event_id: event.id.clone(), missing });
                    }
                    request.clone()
                }
                _ => request.clone(),
            };
            if !looked_up {
                store = self.stores.store_profile(owner).await;
                looked_up = true;
            }
            let now = self.clock.now_ms();
            let job = Job::new(
                new_id(),
                event.id.clone(),
                event.owner_id.clone(),
                request,
                now,
                millis(self.settings.job_timeout),
            );
            let Change::Modified(modified) = event.attach_job(&job, now) else { continue };
            let message = match kind {
                JobKind::Recommendations => {
                    Outgoing::GenerateRecommendations { job: job.clone(), event: event.clone(), store: store.clone() }
                }
                JobKind::Images => {
                    Outgoing::GenerateImages { job: job.clone(), event: event.clone(), store: store.clone() }
                }
            };
            if self.save(*modified, Some(&job), vec![message]).await?.is_some() {
                return Ok(job);
            }
        }
        Err(AppError::Contended { event_id: event_id.to_owned() })
    }

    /// GetJob (owner-scoped).
    pub async fn get_job(&self, owner: &str, job_id: &str) -> Result<Job, AppError> {
        require_id("jobId", job_id)?;
        match self.repository.find_job(job_id).await? {
            Some(job) if job.owner_id == owner => Ok(job),
            _ => Err(AppError::not_found(Resource::Job, job_id)),
        }
    }

    /// ReportJobResult (mesh-internal): idempotent; the first terminal report wins.
    pub async fn report_job_result(&self, job_id: &str, report: Report) -> Result<Job, AppError> {
        require_id("jobId", job_id)?;
        for _ in 0..MAX_ATTEMPTS {
            let Some(job) = self.repository.find_job(job_id).await? else {
                return Err(AppError::not_found(Resource::Job, job_id));
            };
            let change = job.apply(report.clone(), self.clock.now_ms()).map_err(|e| match e {
                ReportError::WrongKind { job_id, kind, reported } => AppError::WrongJobKind { job_id, kind, reported },
                ReportError::Invalid(invalid) => AppError::Invalid(invalid),
            })?;
            match change {
                JobChange::Unchanged => return Ok(job),
                JobChange::Updated { from, job } => match self.repository.save_job(from, &job).await? {
                    Saved::Done => {
                        tracing::info!(job_id = %job.id, event_id = %job.event_id, kind = %job.kind(), from = %from, to = %job.state, "job reported");
                        return Ok(*job);
                    }
                    Saved::Conflict => continue,
                },
            }
        }
        Err(AppError::Contended { event_id: job_id.to_owned() })
    }

    /// Fails jobs past their deadline (the background sweeper); returns how many.
    pub async fn fail_expired_jobs(&self) -> Result<u64, AppError> {
        Ok(self.repository.fail_expired_jobs(self.clock.now_ms()).await?)
    }
}
