//! ListParticipants page tokens: opaque, authenticated keyset cursors.
//!
//! A token carries the arrival position — `(created_at, id)`, the order of ListParticipants, of
//! `create_time` and of first-come selection — of the last entry of the previous page; the next
//! page is the entries after it in that order, so entries arriving while an owner pages never
//! shift or repeat a page. Layout before base64url (no padding): version byte 2, `created_at` as 8
//! big-endian bytes, the id's length (1 byte) and UTF-8 bytes, then HMAC-SHA256 (the service's
//! page-token key) over `"kem.participation.page\0" ‖ event id ‖ 0 ‖` the preceding bytes. The MAC
//! binds a token to its event and rejects edited or foreign tokens. Version 1 tokens (a receive
//! sequence that no longer orders anything) are refused like foreign ones.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;

use crate::infra::repository::ArrivalCursor;

const VERSION: u8 = 2;
const TAG_LEN: usize = 32;
/// Longest id a token carries (entry ids are 36-character UUIDs; the length is one byte).
const MAX_ID_LEN: usize = u8::MAX as usize;
/// Longest token worth decoding: base64 of the largest layout.
const MAX_TOKEN_CHARS: usize = (1 + 8 + 1 + MAX_ID_LEN + TAG_LEN).div_ceil(3) * 4;

/// Signs and checks page tokens.
pub struct PageTokens {
    key: hmac::Key,
}

impl std::fmt::Debug for PageTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageTokens(***)")
    }
}

impl PageTokens {
    /// With the page-token key.
    pub fn new(key: hmac::Key) -> PageTokens {
        PageTokens { key }
    }

    /// What the MAC covers.
    fn signed(event_id: &str, body: &[u8]) -> Vec<u8> {
        let mut signed = Vec::with_capacity(32 + event_id.len() + body.len());
        signed.extend_from_slice(b"kem.participation.page\0");
        signed.extend_from_slice(event_id.as_bytes());
        signed.push(0);
        signed.extend_from_slice(body);
        signed
    }

    /// The token continuing after `after` in `event_id`. An id too long for a token (never a
    /// server-assigned one) yields a token that [`open`](Self::open) refuses, so the listing
    /// fails loudly instead of ending early.
    pub fn issue(&self, event_id: &str, after: &ArrivalCursor) -> String {
        let id = after.id.as_bytes();
        let id_len = u8::try_from(id.len()).unwrap_or(u8::MAX);
        let mut token = Vec::with_capacity(1 + 8 + 1 + id.len() + TAG_LEN);
        token.push(VERSION);
        token.extend_from_slice(&after.created_at_ms.to_be_bytes());
        token.push(id_len);
        token.extend_from_slice(id);
        let tag = hmac::sign(&self.key, &Self::signed(event_id, &token));
        token.extend_from_slice(tag.as_ref());
        URL_SAFE_NO_PAD.encode(token)
    }

    /// The position `token` continues after, if it is a token issued for `event_id`.
    pub fn open(&self, event_id: &str, token: &str) -> Option<ArrivalCursor> {
        let token = token.trim();
        if token.len() > MAX_TOKEN_CHARS {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() < 1 + 8 + 1 + TAG_LEN || bytes[0] != VERSION {
            return None;
        }
        let id_len = usize::from(bytes[9]);
        if id_len > MAX_ID_LEN || bytes.len() != 1 + 8 + 1 + id_len + TAG_LEN {
            return None;
        }
        let (body, tag) = bytes.split_at(1 + 8 + 1 + id_len);
        // Constant-time verification, before anything in the body is trusted.
        hmac::verify(&self.key, &Self::signed(event_id, body), tag).ok()?;
        let mut created_at = [0u8; 8];
        created_at.copy_from_slice(&body[1..9]);
        let id = std::str::from_utf8(&body[10..]).ok()?.to_owned();
        Some(ArrivalCursor { created_at_ms: i64::from_be_bytes(created_at), id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(key: u8) -> PageTokens {
        PageTokens::new(hmac::Key::new(hmac::HMAC_SHA256, &[key; 32]))
    }

    fn cursor(ms: i64) -> ArrivalCursor {
        ArrivalCursor { created_at_ms: ms, id: "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9".into() }
    }

    #[test]
    fn tokens_round_trip_for_their_event_only() {
        let t = tokens(1);
        let token = t.issue("event-1", &cursor(1_234));
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{token}");
        assert!(token.len() <= MAX_TOKEN_CHARS, "{}", token.len());
        assert_eq!(t.open("event-1", &token), Some(cursor(1_234)));
        assert_eq!(t.open("event-2", &token), None, "bound to the event");
        assert_eq!(tokens(2).open("event-1", &token), None, "bound to the key");
    }

    #[test]
    fn edited_truncated_old_and_garbage_tokens_are_refused() {
        let t = tokens(1);
        let token = t.issue("event-1", &cursor(7));
        let bytes = URL_SAFE_NO_PAD.decode(&token).expect("base64");
        for i in 0..bytes.len() {
            let mut edited = bytes.clone();
            edited[i] ^= 0x40;
            assert_eq!(t.open("event-1", &URL_SAFE_NO_PAD.encode(edited)), None, "edit at byte {i}");
        }
        // A version-1 token (receive sequence) is not a position any more.
        let mut v1 = vec![1u8];
        v1.extend_from_slice(&7i64.to_be_bytes());
        let tag = hmac::sign(&t.key, &PageTokens::signed("event-1", &v1));
        v1.extend_from_slice(tag.as_ref());
        assert_eq!(t.open("event-1", &URL_SAFE_NO_PAD.encode(v1)), None);
        for bad in ["", "x", "!!!", &token[..token.len() - 2], &"A".repeat(500)] {
            assert_eq!(t.open("event-1", bad), None, "{bad:?}");
        }
        let long = ArrivalCursor { created_at_ms: 1, id: "x".repeat(300) };
        assert_eq!(t.open("event-1", &t.issue("event-1", &long)), None, "an id that cannot be encoded fails loudly");
    }

    proptest::proptest! {
        /// Any string a caller sends as a page token opens to a cursor or to nothing, never a panic.
        #[test]
        fn any_token_opens_or_is_refused(token in "\\PC{0,300}|[A-Za-z0-9_-]{0,120}") {
            let _ = tokens(7).open("event-1", &token);
        }
    }
}
