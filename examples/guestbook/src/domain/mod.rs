//! The guestbook's rules, free of I/O: what a valid signature, request id and page request are.
//! Character checks come from the kit ([`kem_kit::validate`]) so NUL, line breaks and bidi
//! controls are refused the same way in every service, before anything reaches the database.

use kem_kit::validate::{IdShape, Text, Violation, Violations};

/// Event ids are the event service's: checked for the shape every kem id shares, not as UUIDs.
pub const EVENT_ID: IdShape = IdShape::Key { max: 64 };
/// A signer's name: one line, at most 50 characters.
pub const NAME: Text = Text::line(50);
/// Page size when the caller gives none.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest page; bigger requests are coerced to it rather than refused.
pub const MAX_PAGE_SIZE: usize = 500;
/// Longest request id the edge forwards.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// What a visitor signs with, as the caller sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The event whose guestbook is signed.
    pub event_id: String,
    /// The signer's name.
    pub name: String,
    /// The message.
    pub message: String,
}

impl Signature {
    /// Every violation at once (field paths in the contract's camelCase), so a caller fixes its
    /// request in one go. `max_message_chars` is the configured limit.
    pub fn validate(&self, max_message_chars: usize) -> Result<(), Vec<Violation>> {
        let mut found = Violations::new().id("eventId", &self.event_id, EVENT_ID);
        // Required first: an empty value passes every character check.
        for (field, value) in [("name", &self.name), ("message", &self.message)] {
            if value.trim().is_empty() {
                found.push(Violation::new(field, "is required"));
            }
        }
        found
            .text("name", &self.name, NAME)
            .text("message", &self.message, Text::prose(max_message_chars))
            .into_result()
    }
}

/// A stored signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the guestbook (the page cursor); assigned by the database.
    pub seq: i64,
    /// Server-assigned id (UUID).
    pub id: String,
    /// The signature.
    pub signature: Signature,
    /// When it was stored, in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

/// The id of the call that signs, from its `x-request-id` metadata: what makes a retry answer
/// with the entry its first attempt stored instead of signing twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// A request id if `text` is one the edge could have sent (1-128 visible ASCII characters).
    /// Anything else makes the call not replayable rather than failing it: a retry cannot fix it.
    pub fn parse(text: &str) -> Option<RequestId> {
        let valid = (1..=MAX_REQUEST_ID_LEN).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic());
        valid.then(|| RequestId(text.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which page of a guestbook to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Entries after this position (0: from the start).
    pub after_seq: i64,
    /// How many entries, at most.
    pub size: usize,
}

impl PageRequest {
    /// From the contract's `page_size` and `page_token`. The token is the position of the last
    /// entry of the previous page, in decimal: opaque to callers, and since positions only grow,
    /// a page never repeats or skips an entry signed while a reader pages.
    pub fn parse(event_id: &str, page_size: i32, page_token: &str) -> Result<PageRequest, Vec<Violation>> {
        let mut found = Violations::new().id("eventId", event_id, EVENT_ID);
        let size = match usize::try_from(page_size) {
            Ok(0) => DEFAULT_PAGE_SIZE,
            Ok(size) => size.min(MAX_PAGE_SIZE),
            Err(_) => {
                found.push(Violation::new("pageSize", "must not be negative"));
                DEFAULT_PAGE_SIZE
            }
        };
        let after_seq = match page_token {
            "" => 0,
            token => token.parse::<i64>().ok().filter(|seq| *seq > 0).unwrap_or_else(|| {
                found.push(Violation::new("pageToken", "must be a next_page_token a previous response returned"));
                0
            }),
        };
        found.into_result().map(|()| PageRequest { after_seq, size })
    }

    /// The token of the page after one that ended with `last`.
    pub fn token_after(last: &Entry) -> String {
        last.seq.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(result: Result<(), Vec<Violation>>) -> Vec<String> {
        result.err().unwrap_or_default().into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn signatures_are_checked_field_by_field() {
        let ok = Signature {
            event_id: "evt-1".into(), name: "김민수".into(), message: "축하해요!\n또 올게요".into()
        };
        assert_eq!(ok.validate(20), Ok(()));
        let bad = Signature { event_id: String::new(), name: " ".into(), message: "a\u{0}".into() };
        assert_eq!(fields(bad.validate(20)), ["eventId", "name", "message"]);
        let long = Signature { message: "가".repeat(21), ..ok };
        assert_eq!(fields(long.validate(20)), ["message"]);
    }

    #[test]
    fn pages_default_coerce_and_refuse_nonsense() {
        assert_eq!(PageRequest::parse("e", 0, ""), Ok(PageRequest { after_seq: 0, size: DEFAULT_PAGE_SIZE }));
        assert_eq!(PageRequest::parse("e", 9_999, "7"), Ok(PageRequest { after_seq: 7, size: MAX_PAGE_SIZE }));
        let bad = PageRequest::parse("e", -1, "x").err().unwrap_or_default();
        assert_eq!(bad.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(), ["pageSize", "pageToken"]);
    }

    #[test]
    fn request_ids_are_visible_ascii() {
        assert!(RequestId::parse("req-1").is_some());
        for bad in [String::new(), "a b".into(), "요청".into(), "r".repeat(MAX_REQUEST_ID_LEN + 1)] {
            assert!(RequestId::parse(&bad).is_none(), "{bad:?}");
        }
    }
}
