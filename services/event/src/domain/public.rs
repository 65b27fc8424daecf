//! What the public sees of an event: only PUBLISHED and ENDED events exist for it, in a
//! participant-facing state computed at the time of the call, with absolute links under the
//! platform's public base URL.

use serde::{Deserialize, Serialize};

use super::event::Event;
use super::lifecycle::EventStatus;
use super::values::{Channel, Millis};

/// Where a participant stands with a published event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PublicState {
    /// Published; the period has not started.
    Upcoming,
    /// Published and inside its period: entries are accepted.
    Open,
    /// Ended, or published and past its period; winners not drawn (or not known to be).
    Closed,
    /// Ended and winners drawn.
    Drawn,
}

/// What the public view is computed from at the time of a call: the event and whether
/// participation reported a draw of it (asked only for ENDED events; `false` when participation
/// could not tell).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicFacts {
    /// The event (PUBLISHED or ENDED).
    pub event: Event,
    /// Winners were drawn.
    pub drawn: bool,
}

/// Whether an event in `status` exists for the public (it was published).
pub fn is_public(status: EventStatus) -> bool {
    matches!(status, EventStatus::Published | EventStatus::Ended)
}

/// The state of a public event at `now`; `drawn` says whether participation reports a draw (only
/// asked for ENDED events). `None` for an event that was never published.
pub fn state(event: &Event, drawn: bool, now: Millis) -> Option<PublicState> {
    let period = event.spec.period;
    match event.status {
        EventStatus::Published if now < period.start => Some(PublicState::Upcoming),
        EventStatus::Published if period.is_over(now) => Some(PublicState::Closed),
        EventStatus::Published => Some(PublicState::Open),
        EventStatus::Ended if drawn => Some(PublicState::Drawn),
        EventStatus::Ended => Some(PublicState::Closed),
        EventStatus::Draft | EventStatus::Recommended | EventStatus::ContentReady => None,
    }
}

/// The canonical entry page: `<base>/e/<event_id>`.
pub fn entry_url(base: &str, event_id: &str) -> String {
    format!("{base}/e/{event_id}")
}

/// A channel's link to the entry page: `<base>/e/<event_id>?ch=<channel slug>`.
pub fn channel_url(base: &str, event_id: &str, channel: Channel) -> String {
    format!("{}?ch={}", entry_url(base, event_id), channel.slug())
}

/// The public URL of a content image: `<base>/api/v1/public/images/<image_id>` (content's
/// GetPublicImageContent route).
pub fn image_url(base: &str, image_id: &str) -> String {
    format!("{base}/api/v1/public/images/{image_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::validation::EventSpec;
    use crate::domain::values::{Objective, ParticipationMethod, Period};

    fn event(status: EventStatus) -> Event {
        let spec = EventSpec {
            title: "t".into(),
            description: String::new(),
            objective: Objective::Sales,
            target_audience: String::new(),
            budget: None,
            period: Period { start: 100, end: 200 },
            prize: None,
            participation_method: ParticipationMethod::Draw,
            channels: vec![],
            auto_draw: false,
            retention_days: 30,
            entry_rules: Default::default(),
            claim_days: 7,
        };
        let mut e = Event::create("e-1".into(), "o-1".into(), spec, 0);
        e.status = status;
        e
    }

    #[test]
    fn the_state_follows_the_status_and_the_period() {
        let published = event(EventStatus::Published);
        assert_eq!(state(&published, false, 99), Some(PublicState::Upcoming));
        assert_eq!(state(&published, false, 100), Some(PublicState::Open), "the start is inclusive");
        assert_eq!(state(&published, false, 199), Some(PublicState::Open));
        assert_eq!(state(&published, false, 200), Some(PublicState::Closed), "the end is exclusive");
        assert_eq!(state(&published, true, 150), Some(PublicState::Open), "draws only count once ENDED");
        let ended = event(EventStatus::Ended);
        assert_eq!(state(&ended, false, 50), Some(PublicState::Closed), "ended early, before the start");
        assert_eq!(state(&ended, true, 500), Some(PublicState::Drawn));
        for status in [EventStatus::Draft, EventStatus::Recommended, EventStatus::ContentReady] {
            assert_eq!(state(&event(status), true, 150), None);
            assert!(!is_public(status));
        }
    }

    #[test]
    fn links_hang_off_the_public_base() {
        let base = "https://kem.example";
        assert_eq!(entry_url(base, "e-1"), "https://kem.example/e/e-1");
        assert_eq!(channel_url(base, "e-1", Channel::Instagram), "https://kem.example/e/e-1?ch=instagram");
        assert_eq!(channel_url(base, "e-1", Channel::KakaoChannel), "https://kem.example/e/e-1?ch=kakao_channel");
        assert_eq!(image_url(base, "img-9"), "https://kem.example/api/v1/public/images/img-9");
    }
}
