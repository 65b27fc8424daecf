//! Public media links: signed, expiring tokens that let anyone (a platform's crawler) fetch one
//! rendition of one image at the edge's `/media/{token}` without a login.
//!
//! - [`token`]: the token — `base64url(payload ‖ tag)`, the payload being the format version,
//!   the [`MediaVariant`], the expiry (Unix seconds), the image id (a UUID, as 16 bytes) and, for
//!   [`MediaVariant::PartnerQr`] only (format version 2), the text of its QR code; the tag
//!   HMAC-SHA256 of the payload truncated to 128 bits. [`MediaSigner`] signs (distribution)
//!   and verifies (the edge) with a constant-time comparison, under the current key or any
//!   previous one, against a time the caller passes in (its injected clock). Tokens are 56
//!   characters, a partner QR one 190 for a 100-byte URL and at most 739 ([`MAX_TOKEN_LEN`]);
//! - [`qr_text`]: what a partner QR code may encode ([`check_qr_text`]), the one rule the signer,
//!   the edge and the renderer share;
//! - [`keys`]: where the signing key comes from: `KEM_MEDIA_URL_KEY` / `KEM_MEDIA_URL_KEY_FILE`
//!   (base64 of at least 32 bytes), earlier keys in `KEM_MEDIA_URL_PREVIOUS_KEYS` while links
//!   signed with them are still out there, or, for `kem up`, a development key under the data dir
//!   (the gateway and distribution of one process share it).
//!
//! Why an HMAC rather than a signed content hash: the link is made when a post is published,
//! before any rendition exists, and the edge must be able to refuse a forged or expired link with
//! no backend call at all. The token carries no secret; it is an unguessable capability for one
//! rendition until its expiry.
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use kem_kit::media::{MediaSigner, MediaVariant};
//!
//! let signer = MediaSigner::new(&[7; 32], &[]).expect("a 32-byte key");
//! let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
//! let image = "3c5d2b1a-0000-4000-8000-000000000000";
//! let token = signer.sign(image, MediaVariant::Jpeg, now + Duration::from_secs(60)).expect("sign");
//! let grant = signer.verify(&token, now).expect("valid");
//! assert_eq!((grant.image_id.as_str(), grant.variant), (image, MediaVariant::Jpeg));
//! assert!(signer.verify(&token, now + Duration::from_secs(61)).is_err(), "expired");
//!
//! // A KT partner screen's image with the event's entry link as a QR code: the text is signed.
//! let entry = "https://kem.example/e/3c5d2b1a";
//! let token = signer.sign_partner_qr(image, entry, now + Duration::from_secs(60)).expect("sign");
//! let grant = signer.verify(&token, now).expect("valid");
//! assert_eq!((grant.variant, grant.qr_text.as_deref()), (MediaVariant::PartnerQr, Some(entry)));
//! ```

pub mod keys;
pub mod qr_text;
pub mod token;

pub use keys::{MediaKeyError, MediaKeySettings, load, names};
pub use qr_text::{MAX_QR_TEXT_LEN, QrTextError, check_qr_text};
pub use token::{MAX_TOKEN_LEN, MediaGrant, MediaLinks, MediaSigner, MediaVariant, SignError, TokenError};

#[cfg(test)]
mod tests;
