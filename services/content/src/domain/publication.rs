//! Which images the public may see: the selected image of a published (or ended) event, the one
//! its entry page and channel posts show. Every other image — a draft's, one generated but not
//! selected, one of an event that no longer exists — stays private.

/// Where an event stands, as far as the public is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStage {
    /// Not published yet (a draft, or being prepared): nothing of it is public.
    Unpublished,
    /// Published to its channels.
    Published,
    /// Ended after publication (winners may be shown): still public.
    Ended,
}

/// What the event service says about an event's publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// The event.
    pub event_id: String,
    /// Where it stands.
    pub stage: EventStage,
    /// The selected image; empty when none was selected.
    pub selected_image_id: String,
}

impl Publication {
    /// Whether image `image_id` of event `event_id` is public under this publication: the event is
    /// the image's own, it was published (and may have ended since), and the image is the selected
    /// one.
    pub fn shows(&self, event_id: &str, image_id: &str) -> bool {
        matches!(self.stage, EventStage::Published | EventStage::Ended)
            && self.event_id == event_id
            && !self.selected_image_id.is_empty()
            && self.selected_image_id == image_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publication(stage: EventStage, selected: &str) -> Publication {
        Publication { event_id: "e-1".into(), stage, selected_image_id: selected.into() }
    }

    #[test]
    fn only_the_selected_image_of_a_published_or_ended_event_is_public() {
        assert!(publication(EventStage::Published, "i-1").shows("e-1", "i-1"));
        assert!(publication(EventStage::Ended, "i-1").shows("e-1", "i-1"));
        assert!(!publication(EventStage::Unpublished, "i-1").shows("e-1", "i-1"), "drafts stay private");
        assert!(!publication(EventStage::Published, "i-2").shows("e-1", "i-1"), "not the selected image");
        assert!(!publication(EventStage::Published, "").shows("e-1", ""), "no selection shows nothing");
        assert!(!publication(EventStage::Published, "i-1").shows("e-2", "i-1"), "another event's answer");
    }
}
