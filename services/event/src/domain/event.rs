//! The event entity and what owners do to it. Every behaviour checks the lifecycle first and
//! returns the next version of the event ([`Change`]) without touching any store.

use serde::{Deserialize, Serialize};

use super::job::{Job, JobKind};
use super::lifecycle::{Action, EventStatus, IllegalTransition, Outcome};
use super::terms::{self, Terms};
use super::validation::EventSpec;
use super::values::{Channel, ChannelCopy, Millis, Recommendation};

/// An owner's marketing event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Event id (UUID).
    pub id: String,
    /// Owner (the caller at creation).
    pub owner_id: String,
    /// The owner-editable fields.
    pub spec: EventSpec,
    /// Lifecycle status.
    pub status: EventStatus,
    /// Chosen with SelectRecommendation.
    pub selected_recommendation: Option<Recommendation>,
    /// Chosen with SelectImage.
    pub selected_image_id: Option<String>,
    /// Latest recommendations job.
    pub recommendations_job_id: Option<String>,
    /// Latest images job.
    pub images_job_id: Option<String>,
    /// Created.
    pub created_at: Millis,
    /// Last modified.
    pub updated_at: Millis,
    /// Published.
    pub published_at: Option<Millis>,
    /// Ended.
    pub ended_at: Option<Millis>,
    /// The terms participants consent to, fixed at publication.
    #[serde(default)]
    pub terms: Option<Terms>,
    /// When participation anonymized the participants' personal data (the scheduler's retention
    /// job); `None` before.
    #[serde(default)]
    pub anonymize_time: Option<Millis>,
    /// Optimistic-concurrency version, +1 on every modification (the etag).
    pub version: i64,
}

/// The etag sent does not match the event's current one (ABORTED).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the event was modified since etag {sent:?} was read (current etag {current:?}); read it again and retry")]
pub struct EtagMismatch {
    /// What the client sent.
    pub sent: String,
    /// The current etag.
    pub current: String,
}

/// A modification of an event, to be stored only if the event is still as it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modified {
    /// The status the store must still find.
    pub expected_status: EventStatus,
    /// The version the store must still find.
    pub expected_version: i64,
    /// The event after the change (version already incremented).
    pub event: Event,
}

impl Modified {
    /// `(from, to)` when the status changed.
    pub fn status_change(&self) -> Option<(EventStatus, EventStatus)> {
        (self.expected_status != self.event.status).then_some((self.expected_status, self.event.status))
    }
}

/// What a behaviour did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing to store (e.g. selecting the already-selected image).
    Unchanged,
    /// Store this.
    Modified(Box<Modified>),
}

/// Why a publication is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// Not CONTENT_READY.
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    /// The period is over: nobody could enter.
    #[error("the event's period ended at {end} (ms since the epoch); change the period before publishing")]
    PeriodOver {
        /// The period's end.
        end: Millis,
    },
}

impl Event {
    /// A new DRAFT event.
    pub fn create(id: String, owner_id: String, spec: EventSpec, now: Millis) -> Event {
        Event {
            id,
            owner_id,
            spec,
            status: EventStatus::Draft,
            selected_recommendation: None,
            selected_image_id: None,
            recommendations_job_id: None,
            images_job_id: None,
            created_at: now,
            updated_at: now,
            published_at: None,
            ended_at: None,
            terms: None,
            anonymize_time: None,
            version: 1,
        }
    }

    /// The opaque version tag clients send back to detect concurrent changes.
    pub fn etag(&self) -> String {
        format!("v{}", self.version)
    }

    /// Checks a client etag; an empty one means "no check". Quotes (HTTP style) are ignored.
    pub fn check_etag(&self, sent: &str) -> Result<(), EtagMismatch> {
        let sent = sent.trim();
        let bare = sent.strip_prefix("W/").unwrap_or(sent).trim_matches('"');
        if bare.is_empty() || bare == self.etag() {
            Ok(())
        } else {
            Err(EtagMismatch { sent: sent.to_owned(), current: self.etag() })
        }
    }

    /// Whether `action` is allowed now, and what it does to the status.
    pub fn allows(&self, action: Action) -> Result<Outcome, IllegalTransition> {
        self.status.apply(action)
    }

    fn modified(&self, now: Millis, change: impl FnOnce(&mut Event)) -> Change {
        let mut next = self.clone();
        change(&mut next);
        next.version = self.version + 1;
        next.updated_at = now.max(self.updated_at);
        Change::Modified(Box::new(Modified {
            expected_status: self.status,
            expected_version: self.version,
            event: next,
        }))
    }

    /// Replaces the editable fields (UpdateEvent; the spec is already validated).
    /// Sending the current values again changes nothing (UpdateEvent is IDEMPOTENT).
    pub fn update(&self, spec: EventSpec, now: Millis) -> Result<Change, IllegalTransition> {
        self.allows(Action::Update)?;
        if spec == self.spec {
            return Ok(Change::Unchanged);
        }
        Ok(self.modified(now, |e| e.spec = spec))
    }

    /// Checks that the event can be deleted (DeleteEvent).
    pub fn delete(&self) -> Result<(), IllegalTransition> {
        self.allows(Action::Delete).map(drop)
    }

    /// Records a newly started job as the event's latest of its kind.
    pub fn attach_job(&self, job: &Job, now: Millis) -> Change {
        let id = job.id.clone();
        let kind = job.kind();
        self.modified(now, |e| match kind {
            JobKind::Recommendations => e.recommendations_job_id = Some(id),
            JobKind::Images => e.images_job_id = Some(id),
        })
    }

    /// Selects `recommendation` (from the latest succeeded recommendations job): its title,
    /// concept (as description), prize, participation method and channels are copied into the
    /// event, which becomes RECOMMENDED. The same recommendation again changes nothing.
    pub fn select_recommendation(
        &self,
        recommendation: &Recommendation,
        now: Millis,
    ) -> Result<Change, IllegalTransition> {
        let outcome = self.allows(Action::SelectRecommendation)?;
        if self.selected_recommendation.as_ref() == Some(recommendation) {
            return Ok(Change::Unchanged);
        }
        Ok(self.modified(now, |e| {
            e.spec.title = recommendation.title.trim().to_owned();
            e.spec.description = recommendation.concept.clone();
            if let Some(prize) = &recommendation.prize_suggestion {
                e.spec.prize = Some(prize.clone());
            }
            if let Some(method) = recommendation.participation_method {
                e.spec.participation_method = method;
            }
            let mut channels: Vec<Channel> = Vec::new();
            for channel in &recommendation.recommended_channels {
                if !channels.contains(channel) {
                    channels.push(*channel);
                }
            }
            if !channels.is_empty() {
                e.spec.channels = channels;
            }
            e.selected_recommendation = Some(recommendation.clone());
            if let Outcome::Move(to) = outcome {
                e.status = to;
            }
        }))
    }

    /// Selects the image to publish (an image of one of the event's succeeded images jobs): the
    /// event becomes CONTENT_READY. The same image again changes nothing.
    pub fn select_image(&self, image_id: &str, now: Millis) -> Result<Change, IllegalTransition> {
        let outcome = self.allows(Action::SelectImage)?;
        if self.selected_image_id.as_deref() == Some(image_id) {
            return Ok(Change::Unchanged);
        }
        Ok(self.modified(now, |e| {
            e.selected_image_id = Some(image_id.to_owned());
            if let Outcome::Move(to) = outcome {
                e.status = to;
            }
        }))
    }

    /// Whether the event can be published at `now` (checked before the store's name is looked
    /// up for the terms).
    pub fn check_publish(&self, now: Millis) -> Result<Outcome, PublishError> {
        let outcome = self.allows(Action::Publish)?;
        if self.spec.period.is_over(now) {
            return Err(PublishError::PeriodOver { end: self.spec.period.end });
        }
        Ok(outcome)
    }

    /// Publishes to `channels` (validated: 1-6, unique): PUBLISHED, channels replaced, and the
    /// terms generated from the event and `store_name` (the data controller) fixed — terms the
    /// event already has are kept.
    pub fn publish(&self, channels: Vec<Channel>, store_name: &str, now: Millis) -> Result<Change, PublishError> {
        let outcome = self.check_publish(now)?;
        Ok(self.modified(now, |e| {
            if e.terms.is_none() {
                e.terms =
                    Some(terms::generate(store_name, &e.spec.title, e.spec.retention_days, e.spec.claim_days, now));
            }
            e.spec.channels = channels;
            e.published_at = Some(now);
            if let Outcome::Move(to) = outcome {
                e.status = to;
            }
        }))
    }

    /// Ends a published event; ending an ended event changes nothing.
    pub fn end(&self, now: Millis) -> Result<Change, IllegalTransition> {
        match self.allows(Action::End)? {
            Outcome::Move(to) => Ok(self.modified(now, |e| {
                e.status = to;
                e.ended_at = Some(now);
            })),
            Outcome::Stay | Outcome::Delete => Ok(Change::Unchanged),
        }
    }

    /// The copy to publish on `channel`: the selected recommendation's, or else the title and
    /// description as plain text.
    pub fn copy_for(&self, channel: Channel) -> ChannelCopy {
        if let Some(copy) = self.selected_recommendation.as_ref().and_then(|r| r.copy_for(channel)) {
            return copy.clone();
        }
        let text = if self.spec.description.is_empty() {
            self.spec.title.clone()
        } else {
            format!("{}\n\n{}", self.spec.title, self.spec.description)
        };
        ChannelCopy { channel, text, hashtags: Vec::new() }
    }

    /// Which required inputs for AI recommendations are missing (objective and period are
    /// required at creation, so this only guards against stored data older than that rule).
    pub fn missing_for_recommendations(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.spec.period.end <= self.spec.period.start {
            missing.push("period");
        }
        missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::job::JobRequest;
    use crate::domain::values::{Objective, ParticipationMethod, Period, Prize};

    pub(crate) fn spec() -> EventSpec {
        EventSpec {
            title: "점심 이벤트".into(),
            description: "설명".into(),
            objective: Objective::NewCustomers,
            target_audience: String::new(),
            budget: None,
            period: Period { start: 1_000, end: 10_000 },
            prize: None,
            participation_method: ParticipationMethod::Draw,
            channels: vec![Channel::Instagram],
            auto_draw: false,
            retention_days: 30,
            entry_rules: Default::default(),
            claim_days: 7,
        }
    }

    fn event(status: EventStatus) -> Event {
        let mut e = Event::create("e-1".into(), "o-1".into(), spec(), 100);
        e.status = status;
        e
    }

    fn rec() -> Recommendation {
        Recommendation {
            id: "r-1".into(),
            title: " 선착순 라떼 ".into(),
            concept: "라떼 선착순 100명".into(),
            participation_method: Some(ParticipationMethod::FirstCome),
            participation_mechanic: "QR 응모".into(),
            prize_suggestion: Some(Prize {
                name: "라떼".into(),
                description: String::new(),
                winner_count: 100,
                unit_value: None,
            }),
            expected_participants: 300,
            expected_cost_per_entry: None,
            recommended_channels: vec![Channel::KakaoChannel, Channel::Instagram, Channel::KakaoChannel],
            channel_copies: vec![ChannelCopy {
                channel: Channel::KakaoChannel,
                text: "카톡 문구".into(),
                hashtags: vec![],
            }],
        }
    }

    fn modified(change: Change) -> Modified {
        match change {
            Change::Modified(m) => *m,
            Change::Unchanged => panic!("expected a modification"),
        }
    }

    #[test]
    fn every_modification_bumps_the_version_and_keeps_the_guard() {
        let e = event(EventStatus::Draft);
        assert_eq!(e.update(spec(), 150), Ok(Change::Unchanged), "the same values change nothing");
        let mut changed = spec();
        changed.title = "새 제목".into();
        let m = modified(e.update(changed, 200).expect("update"));
        assert_eq!((m.expected_version, m.event.version, m.event.updated_at), (1, 2, 200));
        assert_eq!(m.expected_status, EventStatus::Draft);
        assert_eq!(m.status_change(), None);
        assert_eq!(m.event.etag(), "v2");
    }

    #[test]
    fn etags_are_checked_when_sent() {
        let e = event(EventStatus::Draft);
        assert!(e.check_etag("").is_ok());
        assert!(e.check_etag("v1").is_ok());
        assert!(e.check_etag("\"v1\"").is_ok());
        assert!(e.check_etag("W/\"v1\"").is_ok());
        assert_eq!(e.check_etag("v0"), Err(EtagMismatch { sent: "v0".into(), current: "v1".into() }));
    }

    #[test]
    fn selecting_a_recommendation_copies_it_and_moves_to_recommended() {
        let e = event(EventStatus::Draft);
        let m = modified(e.select_recommendation(&rec(), 300).expect("select"));
        assert_eq!(m.status_change(), Some((EventStatus::Draft, EventStatus::Recommended)));
        let s = &m.event.spec;
        assert_eq!(s.title, "선착순 라떼");
        assert_eq!(s.description, "라떼 선착순 100명");
        assert_eq!(s.participation_method, ParticipationMethod::FirstCome);
        assert_eq!(s.channels, vec![Channel::KakaoChannel, Channel::Instagram], "deduplicated, in order");
        assert_eq!(s.prize.as_ref().map(|p| p.winner_count), Some(100));
        // Again: nothing to do.
        assert_eq!(m.event.select_recommendation(&rec(), 400), Ok(Change::Unchanged));
        // Another one while RECOMMENDED: stays RECOMMENDED.
        let mut other = rec();
        other.id = "r-2".into();
        let again = modified(m.event.select_recommendation(&other, 500).expect("reselect"));
        assert_eq!(again.status_change(), None);
        assert!(event(EventStatus::ContentReady).select_recommendation(&rec(), 1).is_err());
    }

    #[test]
    fn selecting_an_image_moves_to_content_ready_once() {
        let e = event(EventStatus::Recommended);
        let m = modified(e.select_image("img-1", 10).expect("select"));
        assert_eq!(m.status_change(), Some((EventStatus::Recommended, EventStatus::ContentReady)));
        assert_eq!(m.event.select_image("img-1", 11), Ok(Change::Unchanged));
        assert_eq!(modified(m.event.select_image("img-2", 12).expect("other")).status_change(), None);
        assert!(event(EventStatus::Draft).select_image("img-1", 1).is_err());
    }

    #[test]
    fn publishing_needs_content_and_a_running_period() {
        let e = event(EventStatus::ContentReady);
        let m = modified(e.publish(vec![Channel::GenieTv], "카페 온도", 5_000).expect("publish"));
        assert_eq!(m.event.status, EventStatus::Published);
        assert_eq!((m.event.spec.channels.clone(), m.event.published_at), (vec![Channel::GenieTv], Some(5_000)));
        assert_eq!(
            e.publish(vec![Channel::GenieTv], "카페 온도", 10_000),
            Err(PublishError::PeriodOver { end: 10_000 })
        );
        assert!(matches!(event(EventStatus::Recommended).publish(vec![], "가게", 1), Err(PublishError::Illegal(_))));
        assert!(matches!(event(EventStatus::Published).check_publish(1), Err(PublishError::Illegal(_))));
    }

    #[test]
    fn publishing_fixes_the_terms_once() {
        let mut e = event(EventStatus::ContentReady);
        e.spec.retention_days = 60;
        let published = modified(e.publish(vec![Channel::GenieTv], "카페 온도", 5_000).expect("publish")).event;
        let terms = published.terms.clone().expect("terms generated at publication");
        assert_eq!((terms.controller.as_str(), terms.retention_days, terms.created_at), ("카페 온도", 60, 5_000));
        assert_eq!(terms, crate::domain::terms::generate("카페 온도", &e.spec.title, 60, 7, 5_000));
        // Terms already there (a publication retried after they were stored) are kept.
        let mut again = e.clone();
        again.terms = Some(terms.clone());
        let kept = modified(again.publish(vec![Channel::GenieTv], "다른 상호", 6_000).expect("publish")).event;
        assert_eq!(kept.terms, Some(terms));
    }

    #[test]
    fn ending_is_idempotent() {
        let m = modified(event(EventStatus::Published).end(7).expect("end"));
        assert_eq!((m.event.status, m.event.ended_at), (EventStatus::Ended, Some(7)));
        assert_eq!(m.event.end(8), Ok(Change::Unchanged));
        assert!(event(EventStatus::ContentReady).end(1).is_err());
    }

    #[test]
    fn jobs_are_attached_by_kind() {
        let e = event(EventStatus::Draft);
        let job = Job::new(
            "j-1".into(),
            e.id.clone(),
            e.owner_id.clone(),
            JobRequest::Recommendations { additional_instructions: String::new() },
            1,
            10,
        );
        let m = modified(e.attach_job(&job, 2));
        assert_eq!((m.event.recommendations_job_id.as_deref(), m.event.images_job_id.as_deref()), (Some("j-1"), None));
    }

    #[test]
    fn copy_falls_back_to_title_and_description() {
        let e = modified(event(EventStatus::Draft).select_recommendation(&rec(), 2).expect("select")).event;
        assert_eq!(e.copy_for(Channel::KakaoChannel).text, "카톡 문구");
        assert_eq!(e.copy_for(Channel::GenieTv).text, "선착순 라떼\n\n라떼 선착순 100명");
        assert!(event(EventStatus::Draft).missing_for_recommendations().is_empty());
    }

    #[test]
    fn only_drafts_can_be_deleted() {
        assert!(event(EventStatus::Draft).delete().is_ok());
        for status in [EventStatus::Recommended, EventStatus::ContentReady, EventStatus::Published, EventStatus::Ended]
        {
            assert_eq!(event(status).delete().map_err(|e| e.current), Err(status));
        }
    }
}
