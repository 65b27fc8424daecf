//! The event lifecycle DRAFT → RECOMMENDED → CONTENT_READY → PUBLISHED → ENDED, as one table.
//!
//! Every owner action on an event is checked here first: [`EventStatus::apply`] says whether the
//! action is allowed in the current status and which status follows. The store repeats the check
//! (`UPDATE … WHERE status = $expected AND version = $expected`) so two concurrent requests cannot
//! both win.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Lifecycle status of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventStatus {
    /// Created and editable; the only deletable status.
    #[serde(rename = "DRAFT")]
    Draft,
    /// A recommendation is selected; images can be generated.
    #[serde(rename = "RECOMMENDED")]
    Recommended,
    /// An image is selected; the event can be published.
    #[serde(rename = "CONTENT_READY")]
    ContentReady,
    /// Published; accepts entries during its period.
    #[serde(rename = "PUBLISHED")]
    Published,
    /// Ended; terminal.
    #[serde(rename = "ENDED")]
    Ended,
}

impl EventStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [EventStatus; 5] = [
        EventStatus::Draft,
        EventStatus::Recommended,
        EventStatus::ContentReady,
        EventStatus::Published,
        EventStatus::Ended,
    ];

    /// The stable name stored in the database and used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Draft => "DRAFT",
            EventStatus::Recommended => "RECOMMENDED",
            EventStatus::ContentReady => "CONTENT_READY",
            EventStatus::Published => "PUBLISHED",
            EventStatus::Ended => "ENDED",
        }
    }

    /// The status stored as `text`.
    pub fn parse(text: &str) -> Option<EventStatus> {
        EventStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// What `action` does to an event in this status.
    pub fn apply(self, action: Action) -> Result<Outcome, IllegalTransition> {
        use EventStatus::*;
        let outcome = match (action, self) {
            (Action::Update, Draft | Recommended | ContentReady) => Outcome::Stay,
            (Action::Delete, Draft) => Outcome::Delete,
            (Action::RequestRecommendations, Draft | Recommended) => Outcome::Stay,
            (Action::SelectRecommendation, Draft) => Outcome::Move(Recommended),
            (Action::SelectRecommendation, Recommended) => Outcome::Stay,
            (Action::RequestImages, Recommended | ContentReady) => Outcome::Stay,
            (Action::SelectImage, Recommended) => Outcome::Move(ContentReady),
            (Action::SelectImage, ContentReady) => Outcome::Stay,
            (Action::Publish, ContentReady) => Outcome::Move(Published),
            (Action::End, Published) => Outcome::Move(Ended),
            // Ending an ended event returns it unchanged (EndEvent is IDEMPOTENT).
            (Action::End, Ended) => Outcome::Stay,
            (action, current) => return Err(IllegalTransition { action, current }),
        };
        Ok(outcome)
    }

    /// The statuses in which `action` is allowed (for error messages).
    pub fn allowing(action: Action) -> Vec<EventStatus> {
        EventStatus::ALL.into_iter().filter(|s| s.apply(action).is_ok()).collect()
    }
}

impl fmt::Display for EventStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An owner action on an event, checked against the lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// UpdateEvent.
    Update,
    /// DeleteEvent.
    Delete,
    /// RequestRecommendations.
    RequestRecommendations,
    /// SelectRecommendation.
    SelectRecommendation,
    /// RequestImages.
    RequestImages,
    /// SelectImage.
    SelectImage,
    /// PublishEvent.
    Publish,
    /// EndEvent.
    End,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 8] = [
        Action::Update,
        Action::Delete,
        Action::RequestRecommendations,
        Action::SelectRecommendation,
        Action::RequestImages,
        Action::SelectImage,
        Action::Publish,
        Action::End,
    ];

    /// How the action is named in messages ("cannot publish an event that is DRAFT").
    pub fn verb(self) -> &'static str {
        match self {
            Action::Update => "update",
            Action::Delete => "delete",
            Action::RequestRecommendations => "request recommendations for",
            Action::SelectRecommendation => "select a recommendation for",
            Action::RequestImages => "generate images for",
            Action::SelectImage => "select an image for",
            Action::Publish => "publish",
            Action::End => "end",
        }
    }
}

/// What an allowed action does to the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The status does not change.
    Stay,
    /// The event moves to this status.
    Move(EventStatus),
    /// The event is removed.
    Delete,
}

/// An action that the current status does not allow (FAILED_PRECONDITION naming the status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} an event that is {current}; allowed only while {}", action.verb(), allowed_list(*action))]
pub struct IllegalTransition {
    /// What was attempted.
    pub action: Action,
    /// The status the event is in.
    pub current: EventStatus,
}

fn allowed_list(action: Action) -> String {
    let allowed: Vec<&str> = EventStatus::allowing(action).into_iter().map(EventStatus::as_str).collect();
    match allowed.as_slice() {
        [] => "never".to_owned(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventStatus::*;

    /// The whole table: for every (action, status) pair, the expected outcome (`None` = illegal).
    fn expected(action: Action, status: EventStatus) -> Option<Outcome> {
        let table: &[(Action, [Option<Outcome>; 5])] = &[
            // DRAFT, RECOMMENDED, CONTENT_READY, PUBLISHED, ENDED
            (Action::Update, [Some(Outcome::Stay), Some(Outcome::Stay), Some(Outcome::Stay), None, None]),
            (Action::Delete, [Some(Outcome::Delete), None, None, None, None]),
            (Action::RequestRecommendations, [Some(Outcome::Stay), Some(Outcome::Stay), None, None, None]),
            (Action::SelectRecommendation, [Some(Outcome::Move(Recommended)), Some(Outcome::Stay), None, None, None]),
            (Action::RequestImages, [None, Some(Outcome::Stay), Some(Outcome::Stay), None, None]),
            (Action::SelectImage, [None, Some(Outcome::Move(ContentReady)), Some(Outcome::Stay), None, None]),
            (Action::Publish, [None, None, Some(Outcome::Move(Published)), None, None]),
            (Action::End, [None, None, None, Some(Outcome::Move(Ended)), Some(Outcome::Stay)]),
        ];
        let row = table.iter().find(|(a, _)| *a == action).map(|(_, row)| row);
        let index = EventStatus::ALL.iter().position(|s| *s == status);
        match (row, index) {
            (Some(row), Some(i)) => row[i],
            _ => panic!("table is missing {action:?} / {status:?}"),
        }
    }

    #[test]
    fn every_action_in_every_status_follows_the_table() {
        let mut checked = 0;
        for action in Action::ALL {
            for status in EventStatus::ALL {
                let got = status.apply(action);
                match expected(action, status) {
                    Some(outcome) => assert_eq!(got, Ok(outcome), "{action:?} in {status}"),
                    None => {
                        assert_eq!(got, Err(IllegalTransition { action, current: status }), "{action:?} in {status}")
                    }
                }
                checked += 1;
            }
        }
        assert_eq!(checked, Action::ALL.len() * EventStatus::ALL.len());
    }

    #[test]
    fn the_lifecycle_only_moves_forward() {
        for action in Action::ALL {
            for status in EventStatus::ALL {
                if let Ok(Outcome::Move(to)) = status.apply(action) {
                    assert!(to > status, "{action:?} moves {status} back to {to}");
                }
            }
        }
    }

    #[test]
    fn the_happy_path_reaches_ended() {
        let mut status = Draft;
        for action in [Action::SelectRecommendation, Action::SelectImage, Action::Publish, Action::End] {
            match status.apply(action) {
                Ok(Outcome::Move(next)) => status = next,
                other => panic!("{action:?} in {status}: {other:?}"),
            }
        }
        assert_eq!(status, Ended);
    }

    #[test]
    fn illegal_transitions_name_the_current_status_and_what_is_allowed() {
        let error = Published.apply(Action::Update).expect_err("illegal");
        assert_eq!(
            error.to_string(),
            "cannot update an event that is PUBLISHED; allowed only while DRAFT, RECOMMENDED or CONTENT_READY"
        );
        let error = Draft.apply(Action::Publish).expect_err("illegal");
        assert_eq!(error.to_string(), "cannot publish an event that is DRAFT; allowed only while CONTENT_READY");
        let error = Recommended.apply(Action::End).expect_err("illegal");
        assert!(error.to_string().contains("allowed only while PUBLISHED or ENDED"), "{error}");
    }

    #[test]
    fn status_names_round_trip() {
        for status in EventStatus::ALL {
            assert_eq!(EventStatus::parse(status.as_str()), Some(status));
            assert_eq!(serde_json::to_string(&status).ok(), Some(format!("\"{}\"", status.as_str())));
        }
        assert_eq!(EventStatus::parse("draft"), None);
    }
}
