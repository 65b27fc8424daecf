//! Deterministic identifiers: provider idempotency keys, analytics message ids, local ids.

use ring::digest::{SHA256, digest};

use super::channel::Channel;

/// The idempotency key of a delivery attempt generation: a UUID (version 4 layout, as the
/// partner contract requires) derived from `(event, channel, generation)`. Automatic retries of
/// one generation send the same key, so a provider that dedupes never runs the request twice;
/// a manual `Retry` bumps the generation and so makes a new request.
pub fn idempotency_key(event_id: &str, channel: Channel, generation: i32) -> String {
    let hash = digest(&SHA256, format!("kem-distribution:{event_id}:{}:{generation}", channel.as_str()).as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&hash.as_ref()[..16]);
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// The message id of a delivery's `seq`-th outcome: `dist:<event_id>:<channel>:<seq>` (the
/// contract's format), unique per outcome so analytics counts each exactly once.
pub fn outcome_message_id(event_id: &str, channel: Channel, seq: i32) -> String {
    format!("dist:{event_id}:{}:{seq}", channel.slug())
}

/// A stable id for the built-in local providers: `<prefix>-` and 16 hex digits of a hash of
/// `(event, channel, generation)`.
pub fn local_id(prefix: &str, event_id: &str, channel: Channel, generation: i32) -> String {
    let hash = digest(&SHA256, format!("local:{event_id}:{}:{generation}", channel.as_str()).as_bytes());
    let hex: String = hash.as_ref()[..8].iter().map(|x| format!("{x:02x}")).collect();
    format!("{prefix}-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_stable_uuid_v4_and_change_with_the_generation() {
        let key = idempotency_key("e-1", Channel::GenieTv, 0);
        assert_eq!(key, idempotency_key("e-1", Channel::GenieTv, 0));
        assert_ne!(key, idempotency_key("e-1", Channel::GenieTv, 1));
        assert_ne!(key, idempotency_key("e-1", Channel::RingoBiz, 0));
        assert_eq!(key.len(), 36);
        let parts: Vec<&str> = key.split('-').collect();
        assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), vec![8, 4, 4, 4, 12]);
        assert!(parts[2].starts_with('4'), "{key}");
        assert!(matches!(parts[3].chars().next(), Some('8' | '9' | 'a' | 'b')), "{key}");
    }

    #[test]
    fn outcome_ids_follow_the_contract_and_fit_the_queue() {
        let id = outcome_message_id("0f8fad5b-d9cb-469f-a165-70867728950e", Channel::KakaoChannel, 2);
        assert_eq!(id, "dist:0f8fad5b-d9cb-469f-a165-70867728950e:kakao_channel:2");
        assert!(outcome_message_id(&"e".repeat(64), Channel::UridongneTv, i32::MAX).len() <= 128);
    }

    #[test]
    fn local_ids_are_deterministic() {
        let id = local_id("ig", "e", Channel::Instagram, 0);
        assert_eq!(id, local_id("ig", "e", Channel::Instagram, 0));
        assert!(id.starts_with("ig-") && id.len() == 19, "{id}");
    }
}
