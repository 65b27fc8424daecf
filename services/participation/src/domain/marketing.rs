//! Who may receive an owner's marketing messages (ListMarketingRecipients, for the distribution
//! service's Kakao 친구톡 deliveries): one decision per mobile number over all of the owner's
//! events.
//!
//! Why the decision is taken here, on decrypted numbers, and not in SQL: phone hashes are scoped
//! to their event ([`PhoneHasher`](crate::infra::pii::PhoneHasher)) precisely so that one person's
//! entries to different events cannot be linked through the database. The same person's entries
//! to two events of one owner therefore share no column; only the numbers themselves, opened with
//! the personal-data key, tell that they are one person.
//!
//! The rules, strictest reading first because a message sent without consent is a legal problem
//! and a message not sent is not:
//! - only entries that still hold a number take part: withdrawn and anonymized entries had their
//!   number erased (the caller leaves them out);
//! - a number blocked by the owner in any of the owner's events is left out entirely, whatever
//!   its consents: the owner told us not to deal with that participant;
//! - among the number's entries that answered the marketing question, the latest (receive time,
//!   then entry id) decides: granted keeps the number, declined removes it. An entry to an event
//!   that did not ask neither grants nor withdraws anything.

use std::collections::HashMap;

use super::event::Millis;

/// One of the owner's entries that still holds a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketingCandidate {
    /// The number, national digits only (e.g. `01012345678`).
    pub phone: String,
    /// The entry.
    pub entry_id: String,
    /// Its answer to the marketing question; `None` when the event did not ask.
    pub granted: Option<bool>,
    /// When its consents were recorded.
    pub consented_at_ms: Millis,
    /// When it was received.
    pub created_at_ms: Millis,
    /// Whether its phone is on its event's block list.
    pub blocked: bool,
}

/// A number that may receive the owner's marketing messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketingRecipient {
    /// National digits only, e.g. `01012345678`.
    pub phone: String,
    /// When the consent that keeps it on the list was given.
    pub consented_at_ms: Millis,
}

/// The recipients among `candidates`, one per number, in ascending order of the number's digits
/// (all Korean mobile numbers start with `01`, so this is also their numeric order within each
/// length).
pub fn marketing_recipients(candidates: impl IntoIterator<Item = MarketingCandidate>) -> Vec<MarketingRecipient> {
    struct Decision {
        blocked: bool,
        latest: Option<MarketingCandidate>,
    }
    let mut by_phone: HashMap<String, Decision> = HashMap::new();
    for candidate in candidates {
        let decision = by_phone.entry(candidate.phone.clone()).or_insert(Decision { blocked: false, latest: None });
        decision.blocked |= candidate.blocked;
        if candidate.granted.is_none() {
            continue;
        }
        let later = decision.latest.as_ref().is_none_or(|latest| {
            (candidate.created_at_ms, &candidate.entry_id) > (latest.created_at_ms, &latest.entry_id)
        });
        if later {
            decision.latest = Some(candidate);
        }
    }
    let mut recipients: Vec<MarketingRecipient> = by_phone
        .into_iter()
        .filter(|(_, d)| !d.blocked)
        .filter_map(|(phone, d)| {
            let latest = d.latest.filter(|latest| latest.granted == Some(true))?;
            Some(MarketingRecipient { phone, consented_at_ms: latest.consented_at_ms })
        })
        .collect();
    recipients.sort_unstable_by(|a, b| a.phone.cmp(&b.phone));
    recipients
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(phone: &str, id: &str, granted: Option<bool>, at: Millis) -> MarketingCandidate {
        MarketingCandidate {
            phone: phone.into(),
            entry_id: id.into(),
            granted,
            consented_at_ms: at,
            created_at_ms: at,
            blocked: false,
        }
    }

    fn phones(recipients: &[MarketingRecipient]) -> Vec<&str> {
        recipients.iter().map(|r| r.phone.as_str()).collect()
    }

    #[test]
    fn the_latest_answer_decides_and_unasked_entries_do_not_count() {
        let recipients = marketing_recipients([
            candidate("01000000002", "a", Some(true), 10),
            candidate("01000000002", "b", Some(false), 20),
            candidate("01000000001", "c", Some(false), 10),
            candidate("01000000001", "d", Some(true), 20),
            candidate("01000000001", "e", None, 30),
            candidate("01000000003", "f", None, 30),
        ]);
        assert_eq!(phones(&recipients), ["01000000001"]);
        assert_eq!(recipients[0].consented_at_ms, 20, "the consent that keeps it");
    }

    #[test]
    fn equal_receive_times_are_settled_by_entry_id_whatever_the_input_order() {
        let mut input =
            vec![candidate("01000000001", "b", Some(false), 10), candidate("01000000001", "a", Some(true), 10)];
        assert!(marketing_recipients(input.clone()).is_empty());
        input.reverse();
        assert!(marketing_recipients(input).is_empty());
    }

    #[test]
    fn a_block_in_any_event_removes_the_number() {
        let mut blocked = candidate("01000000001", "a", None, 5);
        blocked.blocked = true;
        let recipients = marketing_recipients([
            blocked,
            candidate("01000000001", "b", Some(true), 10),
            candidate("01000000002", "c", Some(true), 10),
        ]);
        assert_eq!(phones(&recipients), ["01000000002"]);
    }

    #[test]
    fn recipients_are_ordered_by_number() {
        let recipients = marketing_recipients([
            candidate("01099999999", "a", Some(true), 1),
            candidate("0111234567", "b", Some(true), 1),
            candidate("01000000000", "c", Some(true), 1),
        ]);
        assert_eq!(phones(&recipients), ["01000000000", "01099999999", "0111234567"]);
    }
}
