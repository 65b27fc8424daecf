//! Entries: what a participant submits, the rules it must satisfy, and what is kept.

use super::event::Millis;
use super::name::{mask_name, normalize_name};
use super::phone::{MobileNumber, mask_e164};
use super::receipt::ReceiptCode;
use super::violation::{FieldViolation, Violations};

/// Longest accepted consent text version (e.g. `privacy-2025-01`).
pub const MAX_CONSENT_VERSION_CHARS: usize = 64;

/// A consent as submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentInput {
    /// Whether the participant agreed.
    pub granted: bool,
    /// Version of the consent text shown.
    pub text_version: String,
}

/// An Enter request, before validation.
#[derive(Clone, PartialEq, Eq)]
pub struct EntryInput {
    /// The event.
    pub event_id: String,
    /// Name as typed.
    pub name: String,
    /// Phone as typed.
    pub phone: String,
    /// Privacy consent (required, must be granted).
    pub privacy: Option<ConsentInput>,
    /// Marketing consent (optional).
    pub marketing: Option<ConsentInput>,
    /// Source channel (proto number; 0 = direct or unknown).
    pub source_channel: i32,
    /// The participant confirmed being 14 or older (required: under 14, entering needs a
    /// guardian's consent, which kem does not collect).
    pub age_14_or_older: bool,
    /// The one-time code sent to the phone for ENTRY (checked when the event verifies phones).
    pub verification_code: String,
}

impl std::fmt::Debug for EntryInput {
    /// Personal data stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryInput")
            .field("event_id", &self.event_id)
            .field("source_channel", &self.source_channel)
            .finish_non_exhaustive()
    }
}

/// A validated entry, ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidEntry {
    /// The event.
    pub event_id: String,
    /// Normalized name.
    pub name: String,
    /// Normalized phone.
    pub phone: MobileNumber,
    /// Version of the granted privacy consent.
    pub privacy_version: String,
    /// Marketing consent, when asked.
    pub marketing: Option<ConsentInput>,
    /// Source channel.
    pub source_channel: i32,
}

impl ValidEntry {
    /// Whether `stored`, an entry of this submission's event, holds exactly this submission: the
    /// same phone, name, consents and source channel. A repeated request id is trusted as "the
    /// same request" only together with this, so an answer replayed to it contains nothing its
    /// caller did not send (see [`RequestId`]).
    pub fn is_stored_as(&self, stored: &Entry) -> bool {
        let marketing = match (&stored.marketing, &self.marketing) {
            (Some(stored), Some(sent)) => stored.granted == sent.granted && stored.text_version == sent.text_version,
            (None, None) => true,
            _ => false,
        };
        stored.phone_e164.as_deref() == Some(self.phone.e164().as_str())
            && stored.name.as_deref() == Some(self.name.as_str())
            && stored.privacy.granted
            && stored.privacy.text_version == self.privacy_version
            && marketing
            && stored.source_channel == self.source_channel
    }
}

/// Longest request id, in bytes: the edge's limit on `X-Request-Id`.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The id of the call that submits an entry: the `x-request-id` metadata the edge puts on every
/// call (the client's `X-Request-Id`, else 32 random hex digits), which the mesh re-sends
/// unchanged when it retries a call whose connection broke after the request was written.
///
/// It makes Enter idempotent: an entry stores the id of the request that created it, and a
/// later submission of the same phone to the same event answers with that entry instead of
/// DUPLICATE_ENTRY when it carries the same id **and** exactly the same data
/// ([`ValidEntry::is_stored_as`]). Why that is safe with ids anyone can choose:
///
/// - The key is (request id, event, phone): an id is never looked up on its own, so it cannot
///   reach another phone's or another event's entry.
/// - The replayed entry (masked name and phone, consents, source channel) is derived from what
///   the caller just sent, since anything else is refused; it adds only the entry id and receive
///   time, which the first call returned to the same request. A guessed id with someone else's
///   phone and the wrong name gets exactly the DUPLICATE_ENTRY anyone gets for that phone, so the
///   answer does not even tell that the id was right.
/// - Whether a phone entered an event is no secret from its submitter: DUPLICATE_ENTRY says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// An id of 1-128 visible ASCII characters, as the edge passes them on; anything else is no
    /// id (such a call is simply not replayable).
    pub fn parse(text: &str) -> Option<RequestId> {
        let valid = !text.is_empty() && text.len() <= MAX_REQUEST_ID_LEN && text.bytes().all(|b| b.is_ascii_graphic());
        valid.then(|| RequestId(text.to_owned()))
    }

    /// The id as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `channel` is a channel number of the contract (0-6).
fn known_channel(channel: i32) -> bool {
    kem_proto::kem::common::v1::Channel::try_from(channel).is_ok()
}

fn consent_version(field: &str, version: &str, violations: &mut Violations) -> String {
    let version = version.trim();
    if version.is_empty() {
        violations.push(FieldViolation::new(field, "the version of the consent text shown is required"));
    } else if version.chars().count() > MAX_CONSENT_VERSION_CHARS || version.chars().any(char::is_control) {
        violations.push(FieldViolation::new(field, "must be at most 64 printable characters"));
    }
    version.to_owned()
}

impl EntryInput {
    /// Checks every field (all problems are reported at once). Whether the source channel is
    /// one the event was published to is checked later, against the event.
    pub fn validate(self) -> Result<ValidEntry, Violations> {
        let mut violations = Violations::default();
        let event_id = self.event_id.trim().to_owned();
        if event_id.is_empty() {
            violations.push(FieldViolation::new("eventId", "the event id is required"));
        }
        let name = normalize_name(&self.name).map_err(|e| violations.push(FieldViolation::new("name", e.to_string())));
        let phone =
            MobileNumber::parse(&self.phone).map_err(|e| violations.push(FieldViolation::new("phone", e.to_string())));
        let privacy_version = match &self.privacy {
            None => {
                violations.push(FieldViolation::consent(
                    "privacyConsent",
                    "consent to the collection and use of personal data is required to enter",
                ));
                String::new()
            }
            Some(consent) => {
                if !consent.granted {
                    violations.push(FieldViolation::consent(
                        "privacyConsent.granted",
                        "consent to the collection and use of personal data must be granted to enter",
                    ));
                }
                consent_version("privacyConsent.consentTextVersion", &consent.text_version, &mut violations)
            }
        };
        let marketing = self.marketing.map(|consent| ConsentInput {
            granted: consent.granted,
            text_version: consent_version(
                "marketingConsent.consentTextVersion",
                &consent.text_version,
                &mut violations,
            ),
        });
        if !known_channel(self.source_channel) {
            violations.push(FieldViolation::new("sourceChannel", "is not a channel of the contract"));
        }
        if !self.age_14_or_older {
            violations.push(FieldViolation::age(
                "age14OrOlder",
                "must be true: entrants confirm being 14 or older (under 14, entering needs a guardian's consent, \
                 which kem does not collect)",
            ));
        }
        match (name, phone) {
            (Ok(name), Ok(phone)) if violations.is_empty() => Ok(ValidEntry {
                event_id,
                name,
                phone,
                privacy_version,
                marketing,
                source_channel: self.source_channel,
            }),
            _ => Err(violations),
        }
    }
}

/// A recorded consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// Whether the participant agreed.
    pub granted: bool,
    /// Version of the consent text shown (for the privacy consent to an event with terms, the
    /// terms' version).
    pub text_version: String,
    /// When the server recorded it.
    pub recorded_at_ms: Millis,
    /// SHA-256 of the terms consented to (the event's terms when the privacy consent was
    /// recorded); `None` for other consents and for events published before terms existed.
    pub terms_sha256: Option<String>,
}

/// A stored entry with its personal data decrypted (absent once anonymized).
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// Entry id (UUID).
    pub id: String,
    /// The event.
    pub event_id: String,
    /// Name; `None` after anonymization.
    pub name: Option<String>,
    /// Phone in E.164; `None` after anonymization.
    pub phone_e164: Option<String>,
    /// The privacy consent.
    pub privacy: Consent,
    /// The marketing consent, when asked.
    pub marketing: Option<Consent>,
    /// Source channel.
    pub source_channel: i32,
    /// When the entry was received; with the id, its arrival position.
    pub created_at_ms: Millis,
    /// When its personal data was erased.
    pub anonymized_at_ms: Option<Millis>,
    /// The participant's receipt (`None` for entries stored before receipts existed). Shown to
    /// the participant only, never to the owner.
    pub receipt_code: Option<ReceiptCode>,
    /// Whether its phone is on the event's block list (it takes part in no later draw).
    pub blocked: bool,
    /// When the participant withdrew it (it takes part in no draw; name and phone are erased).
    pub withdrawn_at_ms: Option<Millis>,
}

impl Entry {
    /// `김*수`, or empty after anonymization.
    pub fn masked_name(&self) -> String {
        self.name.as_deref().map(mask_name).unwrap_or_default()
    }

    /// `010-****-1234`, or empty after anonymization.
    pub fn masked_phone(&self) -> String {
        self.phone_e164.as_deref().map(mask_e164).unwrap_or_default()
    }
}

impl std::fmt::Debug for Entry {
    /// Personal data appears masked only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("id", &self.id)
            .field("event_id", &self.event_id)
            .field("name", &self.masked_name())
            .field("phone", &self.masked_phone())
            .field("source_channel", &self.source_channel)
            .field("created_at_ms", &self.created_at_ms)
            .field("anonymized_at_ms", &self.anonymized_at_ms)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::violation::Concern;

    fn input() -> EntryInput {
        EntryInput {
            event_id: "e-1".into(),
            name: " 김민수 ".into(),
            phone: "010-1234-5678".into(),
            privacy: Some(ConsentInput { granted: true, text_version: "privacy-2025-01".into() }),
            marketing: None,
            source_channel: 4,
            age_14_or_older: true,
            verification_code: String::new(),
        }
    }

    #[test]
    fn a_valid_entry_is_normalized() {
        let valid = input().validate().expect("valid");
        assert_eq!(valid.name, "김민수");
        assert_eq!(valid.phone.e164(), "+821012345678");
        assert_eq!(valid.privacy_version, "privacy-2025-01");
        assert!(!format!("{:?}", input()).contains("김민수"), "no personal data in Debug");
    }

    #[test]
    fn every_problem_is_reported_with_its_rest_field_name() {
        let bad = EntryInput {
            event_id: " ".into(),
            name: String::new(),
            phone: "02-123-4567".into(),
            privacy: Some(ConsentInput { granted: false, text_version: String::new() }),
            marketing: Some(ConsentInput { granted: true, text_version: String::new() }),
            source_channel: 42,
            age_14_or_older: false,
            verification_code: String::new(),
        };
        let violations = bad.validate().expect_err("invalid");
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "eventId",
                "name",
                "phone",
                "privacyConsent.granted",
                "privacyConsent.consentTextVersion",
                "marketingConsent.consentTextVersion",
                "sourceChannel",
                "age14OrOlder"
            ]
        );
        assert_eq!(violations.concern(), Some(Concern::Consent), "the consent names the status first");
    }

    #[test]
    fn an_unconfirmed_age_is_an_age_problem() {
        let violations = EntryInput { age_14_or_older: false, ..input() }.validate().expect_err("invalid");
        assert_eq!(violations.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(), ["age14OrOlder"]);
        assert_eq!(violations.concern(), Some(Concern::Age));
    }

    #[test]
    fn a_missing_privacy_consent_is_a_consent_problem() {
        let violations = EntryInput { privacy: None, ..input() }.validate().expect_err("invalid");
        assert_eq!(violations.concern(), Some(Concern::Consent));
        assert_eq!(violations.iter().next().map(|v| v.field.as_str()), Some("privacyConsent"));
        let phone_only = EntryInput { phone: "x".into(), ..input() }.validate().expect_err("invalid");
        assert_eq!(phone_only.concern(), None);
    }

    fn stored(valid: &ValidEntry) -> Entry {
        let consent = |granted, text_version: &str| Consent {
            granted,
            text_version: text_version.into(),
            recorded_at_ms: 7,
            terms_sha256: None,
        };
        Entry {
            id: "x".into(),
            event_id: valid.event_id.clone(),
            name: Some(valid.name.clone()),
            phone_e164: Some(valid.phone.e164()),
            privacy: consent(true, &valid.privacy_version),
            marketing: valid.marketing.as_ref().map(|c| consent(c.granted, &c.text_version)),
            source_channel: valid.source_channel,
            created_at_ms: 7,
            anonymized_at_ms: None,
            receipt_code: None,
            blocked: false,
            withdrawn_at_ms: None,
        }
    }

    #[test]
    fn a_submission_matches_only_the_entry_storing_exactly_its_data() {
        let marketing = Some(ConsentInput { granted: false, text_version: "marketing-1".into() });
        let valid = EntryInput { marketing, ..input() }.validate().expect("valid");
        let entry = stored(&valid);
        assert!(valid.is_stored_as(&entry));
        // Another spelling of the same phone and name is the same submission once normalised.
        let respelled = EntryInput { name: "김민수".into(), phone: "+821012345678".into(), ..input() };
        let respelled = EntryInput { marketing: valid.marketing.clone(), ..respelled }.validate().expect("valid");
        assert!(respelled.is_stored_as(&entry));

        let differs: [fn(&mut Entry); 7] = [
            |e| e.name = Some("김민호".into()),
            |e| e.phone_e164 = Some("+821012345679".into()),
            |e| e.privacy.text_version = "privacy-2024-12".into(),
            |e| e.marketing = None,
            |e| e.source_channel = 0,
            |e| e.name = None,
            |e| e.phone_e164 = None,
        ];
        for (i, change) in differs.iter().enumerate() {
            let mut other = entry.clone();
            change(&mut other);
            assert!(!valid.is_stored_as(&other), "difference {i} went unnoticed");
        }
    }

    #[test]
    fn request_ids_are_visible_ascii_up_to_the_edge_limit() {
        assert_eq!(RequestId::parse("0123abcd").map(|id| id.as_str().to_owned()).as_deref(), Some("0123abcd"));
        assert!(RequestId::parse(&"r".repeat(MAX_REQUEST_ID_LEN)).is_some());
        for bad in [String::new(), "r".repeat(MAX_REQUEST_ID_LEN + 1), "a b".into(), "요청".into(), "a\u{7f}".into()]
        {
            assert_eq!(RequestId::parse(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn anonymized_entries_mask_to_empty() {
        let consent = Consent { granted: true, text_version: "v".into(), recorded_at_ms: 1, terms_sha256: None };
        let mut entry = Entry {
            id: "x".into(),
            event_id: "e".into(),
            name: Some("김민수".into()),
            phone_e164: Some("+821012345678".into()),
            privacy: consent,
            marketing: None,
            source_channel: 0,
            created_at_ms: 1,
            anonymized_at_ms: None,
            receipt_code: None,
            blocked: false,
            withdrawn_at_ms: None,
        };
        assert_eq!((entry.masked_name(), entry.masked_phone()), ("김*수".to_owned(), "010-****-5678".to_owned()));
        assert!(!format!("{entry:?}").contains("1234"));
        entry.name = None;
        entry.phone_e164 = None;
        assert_eq!((entry.masked_name(), entry.masked_phone()), (String::new(), String::new()));
    }
}
