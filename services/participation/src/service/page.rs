//! ListParticipants page tokens: opaque, authenticated keyset cursors.
//!
//! A token carries the receive position (`seq`) of the last entry of the previous page; the next
//! page is the entries after it in receive order, so entries arriving while an owner pages never
//! shift or repeat a page. Layout before base64url (no padding): version byte 1, `seq` as 8
//! big-endian bytes, then HMAC-SHA256 (the service's page-token key) over
//! `"kem.participation.page\0" ‖ event id ‖ 0 ‖` the preceding bytes. The MAC binds a token to its
//! event and rejects edited or foreign tokens.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;

const VERSION: u8 = 1;
const TAG_LEN: usize = 32;
const TOKEN_LEN: usize = 1 + 8 + TAG_LEN;

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

    /// The token continuing after `seq` in `event_id`.
    pub fn issue(&self, event_id: &str, seq: i64) -> String {
        let mut token = Vec::with_capacity(TOKEN_LEN);
        token.push(VERSION);
        token.extend_from_slice(&seq.to_be_bytes());
        let tag = hmac::sign(&self.key, &Self::signed(event_id, &token));
        token.extend_from_slice(tag.as_ref());
        URL_SAFE_NO_PAD.encode(token)
    }

    /// The position `token` continues after, if it is a token issued for `event_id`.
    pub fn open(&self, event_id: &str, token: &str) -> Option<i64> {
        // A genuine token is 55 characters; do not decode anything much larger.
        if token.len() > 80 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
        if bytes.len() != TOKEN_LEN || bytes[0] != VERSION {
            return None;
        }
        let (body, tag) = bytes.split_at(1 + 8);
        // Constant-time verification.
        hmac::verify(&self.key, &Self::signed(event_id, body), tag).ok()?;
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&body[1..]);
        Some(i64::from_be_bytes(seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(key: u8) -> PageTokens {
        PageTokens::new(hmac::Key::new(hmac::HMAC_SHA256, &[key; 32]))
    }

    #[test]
    fn tokens_round_trip_for_their_event_only() {
        let t = tokens(1);
        let token = t.issue("event-1", 1_234);
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{token}");
        assert_eq!(t.open("event-1", &token), Some(1_234));
        assert_eq!(t.open("event-2", &token), None, "bound to the event");
        assert_eq!(tokens(2).open("event-1", &token), None, "bound to the key");
    }

    #[test]
    fn edited_truncated_and_garbage_tokens_are_refused() {
        let t = tokens(1);
        let token = t.issue("event-1", 7);
        let bytes = URL_SAFE_NO_PAD.decode(&token).expect("base64");
        for i in 0..bytes.len() {
            let mut edited = bytes.clone();
            edited[i] ^= 0x40;
            assert_eq!(t.open("event-1", &URL_SAFE_NO_PAD.encode(edited)), None, "edit at byte {i}");
        }
        for bad in ["", "x", "!!!", &token[..token.len() - 2], &"A".repeat(500)] {
            assert_eq!(t.open("event-1", bad), None, "{bad:?}");
        }
    }
}
