//! GetPublicEvent: what anyone may see of a PUBLISHED or ENDED event. An event that was never
//! published does not exist for the public (NOT_FOUND, exactly like an unknown id).
//!
//! The facts (the event, and for an ENDED event whether participation reports a draw) are
//! cached briefly and invalidated by every change of the event; the state is computed from them
//! at the time of each call, so UPCOMING → OPEN → CLOSED follow the clock exactly.

use crate::domain::event::Event;
use crate::domain::lifecycle::EventStatus;
use crate::domain::public::{self, PublicFacts, PublicState};
use crate::domain::values::Channel;

use super::error::{AppError, Resource};
use super::{EventApp, RepoError, require_id};

/// The public view of an event at the time of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicView {
    /// The event (PUBLISHED or ENDED).
    pub event: Event,
    /// Where a participant stands now.
    pub state: PublicState,
    /// The selected image's public URL; empty when none was selected.
    pub image_url: String,
    /// The canonical entry page.
    pub entry_url: String,
    /// One entry link per channel the event was published to.
    pub channel_links: Vec<(Channel, String)>,
}

impl EventApp {
    /// GetPublicEvent.
    pub async fn public_event(&self, event_id: &str) -> Result<PublicView, AppError> {
        require_id("eventId", event_id)?;
        let facts = self.cache.public_facts(event_id, || self.load_public_facts(event_id)).await?;
        let Some(PublicFacts { event, drawn }) = facts else {
            return Err(AppError::not_found(Resource::Event, event_id));
        };
        let Some(state) = public::state(&event, drawn, self.clock.now_ms()) else {
            return Err(AppError::not_found(Resource::Event, event_id));
        };
        let base = self.settings.public_base_url.as_str();
        let image_url = event.selected_image_id.as_deref().map(|id| public::image_url(base, id)).unwrap_or_default();
        let channel_links = self.channel_links(&event);
        Ok(PublicView { entry_url: self.entry_url(&event.id), image_url, channel_links, state, event })
    }

    /// The canonical entry page of event `event_id` under the public base URL (the public view's
    /// `entry_url`, and GetEventForParticipation's).
    pub fn entry_url(&self, event_id: &str) -> String {
        public::entry_url(&self.settings.public_base_url, event_id)
    }

    /// One entry link per channel `event` is published to, in its channel order: the public
    /// view's `channel_links` and the distribution job's `entry_url`s, so a post and the page
    /// always agree on the link that attributes an entry to its channel.
    pub fn channel_links(&self, event: &Event) -> Vec<(Channel, String)> {
        let base = self.settings.public_base_url.as_str();
        event.spec.channels.iter().map(|c| (*c, public::channel_url(base, &event.id, *c))).collect()
    }

    /// The facts of the public view: the event if it was published, and for an ENDED event
    /// whether participation reports a draw — `false` when participation cannot tell right now
    /// (the page shows CLOSED rather than failing).
    async fn load_public_facts(&self, event_id: &str) -> Result<Option<PublicFacts>, RepoError> {
        let Some(event) = self.cache.event(&self.repository, event_id).await? else { return Ok(None) };
        if !public::is_public(event.status) {
            return Ok(None);
        }
        let drawn = match event.status {
            EventStatus::Ended => match self.entries.draw_time(event_id).await {
                Ok(draw_time) => draw_time.is_some(),
                Err(error) => {
                    tracing::warn!(event_id, %error, "public view: draw unknown; showing the event as closed");
                    false
                }
            },
            _ => false,
        };
        Ok(Some(PublicFacts { event, drawn }))
    }
}
