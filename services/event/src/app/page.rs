//! ListEvents page tokens: opaque, validated cursors for keyset pagination.
//!
//! A token names the last event of the previous page by its sort key `(created_at, id)`, so the
//! next page is `WHERE (created_at, id) < (cursor)` in the order `created_at DESC, id DESC`:
//! events inserted while a client pages never shift it (no duplicates, no gaps among the events
//! that existed when paging started), unlike offsets.
//!
//! Layout (then base64url without padding): version byte, status-filter byte, `created_at` as 8
//! big-endian bytes, the id's UTF-8 bytes, then the first 8 bytes of
//! SHA-256(`kem.event.page.v1` ‖ owner ‖ all preceding bytes). The checksum binds the token to
//! the owner and the filter it was issued for and rejects edited or truncated tokens. It is not a
//! secret MAC: a token only ever positions a cursor within the caller's own events, so forging
//! one gains nothing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::domain::lifecycle::EventStatus;
use crate::domain::values::Millis;

const VERSION: u8 = 1;
const DOMAIN: &[u8] = b"kem.event.page.v1";
const CHECKSUM_LEN: usize = 8;
/// Ids are UUIDs; anything much longer is not ours.
const MAX_ID_LEN: usize = 64;

/// The position after which the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// `created_at` of the last event returned.
    pub created_at: Millis,
    /// Its id (tie-breaker among equal `created_at`).
    pub id: String,
}

/// Why a page token was refused (INVALID_ARGUMENT on `pageToken`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PageTokenError {
    /// Not a token this service issued (bad encoding, length, version or checksum), or issued to
    /// another owner.
    #[error("is not a page token returned by ListEvents")]
    Malformed,
    /// Issued for another status filter.
    #[error("was returned for a different status filter; keep the filter unchanged while paging")]
    FilterChanged,
}

fn filter_byte(filter: Option<EventStatus>) -> u8 {
    match filter {
        None => 0,
        Some(status) => EventStatus::ALL.iter().position(|s| *s == status).map_or(0, |i| i as u8 + 1),
    }
}

fn checksum(owner: &str, body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(DOMAIN);
    context.update(&(owner.len() as u64).to_be_bytes());
    context.update(owner.as_bytes());
    context.update(body);
    let digest = context.finish();
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&digest.as_ref()[..CHECKSUM_LEN]);
    out
}

/// Encodes the cursor for `owner` listing with `filter`.
pub fn encode(owner: &str, filter: Option<EventStatus>, cursor: &Cursor) -> String {
    let mut bytes = Vec::with_capacity(2 + 8 + cursor.id.len() + CHECKSUM_LEN);
    bytes.push(VERSION);
    bytes.push(filter_byte(filter));
    bytes.extend_from_slice(&cursor.created_at.to_be_bytes());
    bytes.extend_from_slice(cursor.id.as_bytes());
    let sum = checksum(owner, &bytes);
    bytes.extend_from_slice(&sum);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes a token issued to `owner` for `filter`.
pub fn decode(owner: &str, filter: Option<EventStatus>, token: &str) -> Result<Cursor, PageTokenError> {
    // base64 of a maximal token is well under 200 characters; refuse big inputs before decoding.
    if token.len() > 200 {
        return Err(PageTokenError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD.decode(token.trim()).map_err(|_| PageTokenError::Malformed)?;
    if bytes.len() < 2 + 8 + 1 + CHECKSUM_LEN {
        return Err(PageTokenError::Malformed);
    }
    let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    if checksum(owner, body) != sum || body[0] != VERSION {
        return Err(PageTokenError::Malformed);
    }
    if body[1] != filter_byte(filter) {
        return Err(PageTokenError::FilterChanged);
    }
    let mut created = [0u8; 8];
    created.copy_from_slice(&body[2..10]);
    let id = std::str::from_utf8(&body[10..]).map_err(|_| PageTokenError::Malformed)?;
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(PageTokenError::Malformed);
    }
    Ok(Cursor { created_at: i64::from_be_bytes(created), id: id.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor() -> Cursor {
        Cursor { created_at: 1_730_000_000_123, id: "0b6f3a52-7c1e-4d8e-9a4f-2f1d5c6b7a80".into() }
    }

    #[test]
    fn tokens_round_trip_for_every_filter() {
        let filters = std::iter::once(None).chain(EventStatus::ALL.into_iter().map(Some));
        for filter in filters {
            let token = encode("owner-1", filter, &cursor());
            assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{token}");
            assert_eq!(decode("owner-1", filter, &token), Ok(cursor()));
        }
    }

    #[test]
    fn tokens_are_opaque() {
        let token = encode("owner-1", None, &cursor());
        assert!(!token.contains("0b6f3a52"), "the id is not readable in the token");
    }

    #[test]
    fn a_changed_filter_is_reported_as_such() {
        let token = encode("owner-1", Some(EventStatus::Draft), &cursor());
        assert_eq!(decode("owner-1", None, &token), Err(PageTokenError::FilterChanged));
        assert_eq!(decode("owner-1", Some(EventStatus::Published), &token), Err(PageTokenError::FilterChanged));
    }

    #[test]
    fn garbage_edits_and_other_owners_are_rejected() {
        let token = encode("owner-1", None, &cursor());
        for bad in ["", "x", "!!!!", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &"A".repeat(500)] {
            assert_eq!(decode("owner-1", None, bad), Err(PageTokenError::Malformed), "{bad:?}");
        }
        assert_eq!(decode("owner-2", None, &token), Err(PageTokenError::Malformed), "bound to its owner");
        // Flip each byte in turn: every edit is caught.
        let bytes = URL_SAFE_NO_PAD.decode(&token).expect("decode");
        for i in 0..bytes.len() {
            let mut edited = bytes.clone();
            edited[i] ^= 0x01;
            let edited = URL_SAFE_NO_PAD.encode(edited);
            assert!(decode("owner-1", None, &edited).is_err(), "edit at byte {i} accepted");
        }
        let truncated = &token[..token.len() - 3];
        assert_eq!(decode("owner-1", None, truncated), Err(PageTokenError::Malformed));
    }

    proptest::proptest! {
        /// Any string a caller sends as a page token decodes or is refused, never a panic.
        #[test]
        fn any_token_decodes_or_is_refused(token in "\\PC{0,300}|[A-Za-z0-9_-]{0,120}") {
            let _ = decode("owner-1", None, &token);
        }
    }
}
