//! The signed public media links distribution hands platforms (`<public base>/media/<token>`):
//! the key the tests give distribution and the image host alike, the image ids of test events,
//! and reading a link back to what it grants.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kem_distribution::domain::Channel;
use kem_distribution::infra::channels::{media_link_ttl, media_variant};
use kem_kit::Secret;
use kem_kit::media::{MediaGrant, MediaSigner, MediaVariant};

/// The media signing key of every test: distribution signs with it, the image host (the edge's
/// stand-in) verifies with it.
pub const MEDIA_KEY: [u8; 32] = *b"kem-distribution-tests-media-key";

/// [`MEDIA_KEY`] as distribution's configuration takes it (base64).
pub fn media_key_setting() -> Secret {
    Secret::new(STANDARD.encode(MEDIA_KEY))
}

/// A verifier of the links distribution makes with [`MEDIA_KEY`].
pub fn signer() -> MediaSigner {
    MediaSigner::new(&MEDIA_KEY, &[]).expect("a 32-byte key")
}

/// The image id of the test event `event_id`: a UUID (content's image ids are UUIDs; media links
/// are made for them only), the same for the same event, different for another.
pub fn image_id(event_id: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, event_id.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest.as_ref()[..16]);
    // Version 4 and the RFC 4122 variant, so it is a well-formed UUID.
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// What the media link `url` on `base` grants, read with [`MEDIA_KEY`]; fails the test when it
/// is not a link on `base` or does not verify now.
#[track_caller]
pub fn grant(url: &str, base: &str) -> MediaGrant {
    let prefix = format!("{}/media/", base.trim_end_matches('/'));
    let token = url.strip_prefix(&prefix).unwrap_or_else(|| panic!("{url} is not a media link on {base}"));
    signer().verify(token, SystemTime::now()).unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// Asserts that `url` is the media link of `event_id`'s image in the rendition `channel` takes
/// (`variant`, spelled out so the test says what it expects) — on the KT screens with the
/// channel's entry link as the QR code's text — valid for that channel's link lifetime from the
/// later of now and the end of the test jobs' 30-day period, rounded up to a whole UTC day.
#[track_caller]
pub fn assert_media_link(url: &str, base: &str, event_id: &str, channel: Channel, variant: MediaVariant) {
    let grant = grant(url, base);
    assert_eq!((grant.image_id.as_str(), grant.variant), (image_id(event_id).as_str(), variant), "{url}");
    assert_eq!(media_variant(channel), variant, "{channel} takes {variant:?}");
    if variant == MediaVariant::PartnerQr {
        let entry = format!("{}/e/{event_id}?ch={}", base.trim_end_matches('/'), channel.slug());
        assert_eq!(grant.qr_text.as_deref(), Some(entry.as_str()), "{channel}: the QR code is the entry link");
    } else {
        assert_eq!(grant.qr_text, None, "{channel}: no QR code");
    }
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("after 1970").as_secs();
    let ttl = media_link_ttl(channel).as_secs();
    let (day, period) = (86_400, 30 * 86_400);
    assert!(
        grant.expires_at.is_multiple_of(day)
            && grant.expires_at >= now + ttl
            && grant.expires_at <= now + period + ttl + day,
        "{channel} links last {ttl} s past the event's end, to a whole day: expires at {}, now {now}",
        grant.expires_at
    );
}
