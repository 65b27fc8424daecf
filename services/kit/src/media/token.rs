//! The signed media token (see [the module](super) for its form).
//!
//! Two layouts, told apart by the first payload byte (which the tag covers, so one can never be
//! read as the other):
//!
//! - version 1, every variant but [`MediaVariant::PartnerQr`]: version ‖ variant ‖ expiry (u64,
//!   big-endian) ‖ image id (16 bytes) ‖ tag — always [`TOKEN_LEN`] (56) characters. Exactly the
//!   tokens issued before version 2 existed, so every link already handed out keeps working;
//! - version 2, [`MediaVariant::PartnerQr`] only: the same fields, then the QR text's UTF-8
//!   bytes (its length is what lies between the fixed fields and the tag) ‖ tag. The text is
//!   signed with the rest, so nobody can put another link on a post's image. Measured: a
//!   100-byte URL gives a 190-character token, the longest accepted text ([`MAX_QR_TEXT_LEN`],
//!   512 bytes) a 739-character one ([`MAX_TOKEN_LEN`]) — a whole link stays well under 1 KB.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;

use super::qr_text::{MAX_QR_TEXT_LEN, QrTextError, check_qr_text};

/// Shortest signing key accepted: HMAC-SHA256 gains nothing from more, and less is guessable.
pub const MIN_KEY_LEN: usize = 32;
/// Format version, first byte of every payload; a new layout gets a new number. Version 1: the
/// fixed fields alone.
const VERSION: u8 = 1;
/// Version 2: the fixed fields, then the QR text ([`MediaVariant::PartnerQr`] only).
const VERSION_QR: u8 = 2;
/// version ‖ variant ‖ expiry (u64, big-endian) ‖ image id (UUID bytes): all of version 1's
/// payload, the start of version 2's.
const PAYLOAD_LEN: usize = 1 + 1 + 8 + 16;
/// The tag is HMAC-SHA256 truncated to 128 bits: forging it takes 2^128 tries, and the URL stays
/// short enough for every platform's link field.
const TAG_LEN: usize = 16;
/// Length of every version-1 token: base64url of 42 bytes, a multiple of 3, so no padding
/// question arises.
pub const TOKEN_LEN: usize = (PAYLOAD_LEN + TAG_LEN) / 3 * 4;
const _: () = assert!((PAYLOAD_LEN + TAG_LEN).is_multiple_of(3));
/// Shortest version-2 token: one byte of text. Longer than [`TOKEN_LEN`], so the length alone
/// already tells the layouts apart.
const MIN_QR_TOKEN_LEN: usize = encoded_len(PAYLOAD_LEN + 1 + TAG_LEN);
const _: () = assert!(MIN_QR_TOKEN_LEN > TOKEN_LEN);
/// Longest token the edge even looks at (739): a version-2 token with the longest accepted QR
/// text. Anything longer is refused before decoding.
pub const MAX_TOKEN_LEN: usize = encoded_len(PAYLOAD_LEN + MAX_QR_TEXT_LEN + TAG_LEN);
const _: () = assert!(MAX_TOKEN_LEN < 768, "a whole link must stay well under 1 KB");
/// Domain separation: a tag made for something else with the same key never verifies here.
const CONTEXT: &[u8] = b"kem.media.v1\0";

/// The rendition a link grants. The numbers are those of `kem.content.v1.MediaVariant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaVariant {
    /// The stored image as it is (PNG).
    Original,
    /// JPEG of the same size (sRGB, no alpha).
    Jpeg,
    /// Instagram feed post: JPEG 1080 px wide, aspect within 4:5–1.91:1, ≤ 8 MB.
    InstagramFeed,
    /// KT partner channels (TV screens, signage): PNG of the stored image with a QR code of the
    /// token's QR text in the bottom-right corner. Only a version-2 token grants it.
    PartnerQr,
}

impl MediaVariant {
    /// Every variant.
    pub const ALL: [MediaVariant; 4] =
        [MediaVariant::Original, MediaVariant::Jpeg, MediaVariant::InstagramFeed, MediaVariant::PartnerQr];

    /// Its number in `kem.content.v1.MediaVariant` (and in the token).
    pub fn number(self) -> i32 {
        match self {
            MediaVariant::Original => 1,
            MediaVariant::Jpeg => 2,
            MediaVariant::InstagramFeed => 3,
            MediaVariant::PartnerQr => 4,
        }
    }

    /// The variant numbered `n`, `None` for UNSPECIFIED or an unknown number.
    pub fn from_number(n: i32) -> Option<MediaVariant> {
        MediaVariant::ALL.into_iter().find(|v| v.number() == n)
    }
}

/// What a valid token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaGrant {
    /// The image (lower-case hyphenated UUID).
    pub image_id: String,
    /// The rendition.
    pub variant: MediaVariant,
    /// When the grant ends (Unix seconds).
    pub expires_at: u64,
    /// The text the QR code encodes: `Some` for [`MediaVariant::PartnerQr`] (checked by
    /// [`check_qr_text`]), `None` for every other variant. Part of what was signed, so it is part
    /// of the rendition's identity: two texts on one image are two renditions.
    pub qr_text: Option<String>,
}

/// Why a token was refused. The edge answers every one of them the same (404), so a prober
/// learns nothing; the distinction is for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token of this format: wrong length, not base64url, unknown version or variant, a
    /// variant its version cannot carry.
    #[error("not a media token")]
    Malformed,
    /// The tag matches no configured key (forged, tampered, or signed with a retired key).
    #[error("the media token's signature does not match")]
    BadSignature,
    /// Valid, but its time is over.
    #[error("the media token has expired")]
    Expired,
}

/// Why a token could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// Media tokens name images by UUID; this id is not one (a defect in the caller).
    #[error("image id {0:?} is not a UUID; media links are made for stored images only")]
    NotAnImageId(String),
    /// The expiry is before 1970 (a clock defect).
    #[error("the media link's expiry is before the Unix epoch")]
    BadExpiry,
    /// [`MediaVariant::PartnerQr`] without a QR text (use [`MediaSigner::sign_partner_qr`]).
    #[error("a partner QR link needs the text of its QR code; sign it with sign_partner_qr")]
    QrTextRequired,
    /// The QR text breaks a rule of [`check_qr_text`].
    #[error("the QR text {0}")]
    QrText(#[source] QrTextError),
}

/// Signs and verifies media tokens under a current HMAC key, verifying also under previous ones
/// (a rotated key keeps the links already handed out working until they expire).
///
/// `Debug` shows how many keys there are, never a key.
pub struct MediaSigner {
    current: hmac::Key,
    previous: Vec<hmac::Key>,
}

impl std::fmt::Debug for MediaSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSigner").field("previous_keys", &self.previous.len()).finish_non_exhaustive()
    }
}

/// A key shorter than [`MIN_KEY_LEN`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a media URL signing key must have at least {MIN_KEY_LEN} bytes")]
pub struct ShortKey;

impl MediaSigner {
    /// A signer with `current` (new tokens) and `previous` (still accepted) keys, each of at
    /// least [`MIN_KEY_LEN`] bytes.
    pub fn new(current: &[u8], previous: &[Vec<u8>]) -> Result<MediaSigner, ShortKey> {
        let key = |bytes: &[u8]| {
            if bytes.len() < MIN_KEY_LEN {
                return Err(ShortKey);
            }
            Ok(hmac::Key::new(hmac::HMAC_SHA256, bytes))
        };
        Ok(MediaSigner { current: key(current)?, previous: previous.iter().map(|k| key(k)).collect::<Result<_, _>>()? })
    }

    /// A token granting `variant` of `image_id` until `expires` (version 1, [`TOKEN_LEN`]
    /// characters). [`MediaVariant::PartnerQr`] needs its text: [`sign_partner_qr`](Self::sign_partner_qr).
    pub fn sign(&self, image_id: &str, variant: MediaVariant, expires: SystemTime) -> Result<String, SignError> {
        if variant == MediaVariant::PartnerQr {
            return Err(SignError::QrTextRequired);
        }
        self.sign_payload(VERSION, image_id, variant, expires, b"")
    }

    /// A token granting [`MediaVariant::PartnerQr`] of `image_id` with a QR code of `qr_text`
    /// until `expires` (version 2; 190 characters for a 100-byte URL, at most [`MAX_TOKEN_LEN`]).
    /// `qr_text` must pass [`check_qr_text`]: an absolute http(s) URL of at most
    /// [`MAX_QR_TEXT_LEN`] bytes with no control characters.
    pub fn sign_partner_qr(&self, image_id: &str, qr_text: &str, expires: SystemTime) -> Result<String, SignError> {
        check_qr_text(qr_text).map_err(|error| match error {
            QrTextError::Empty => SignError::QrTextRequired,
            other => SignError::QrText(other),
        })?;
        self.sign_payload(VERSION_QR, image_id, MediaVariant::PartnerQr, expires, qr_text.as_bytes())
    }

    fn sign_payload(
        &self,
        version: u8,
        image_id: &str,
        variant: MediaVariant,
        expires: SystemTime,
        qr_text: &[u8],
    ) -> Result<String, SignError> {
        let id = uuid::Uuid::try_parse(image_id.trim()).map_err(|_| SignError::NotAnImageId(image_id.to_owned()))?;
        let expires_at = expires.duration_since(UNIX_EPOCH).map_err(|_| SignError::BadExpiry)?.as_secs();
        let mut bytes = Vec::with_capacity(PAYLOAD_LEN + qr_text.len() + TAG_LEN);
        bytes.push(version);
        // The number is 1..=4, so the cast is exact.
        bytes.push(variant.number() as u8);
        bytes.extend_from_slice(&expires_at.to_be_bytes());
        bytes.extend_from_slice(id.as_bytes());
        bytes.extend_from_slice(qr_text);
        let tag = tag(&self.current, &bytes);
        bytes.extend_from_slice(&tag);
        Ok(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// What `token` grants at `now`. Every refusal costs at most one base64 decode and one HMAC
    /// per configured key; the length is checked before anything else, so a huge "token" costs
    /// nothing.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<MediaGrant, TokenError> {
        let len = token.len();
        let plausible = len == TOKEN_LEN || (MIN_QR_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&len);
        if !plausible || !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(TokenError::Malformed);
        }
        // The decoder refuses non-canonical trailing bits, so one byte string has one token.
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| TokenError::Malformed)?;
        if bytes.len() < PAYLOAD_LEN + TAG_LEN {
            return Err(TokenError::Malformed);
        }
        let (payload, given) = bytes.split_at(bytes.len() - TAG_LEN);
        // Every key is tried (no early exit), so the time taken does not tell which one matched.
        let mut matched = false;
        for key in std::iter::once(&self.current).chain(&self.previous) {
            matched |= equal(&tag(key, payload), given);
        }
        if !matched {
            return Err(TokenError::BadSignature);
        }
        // Authentic from here: the fields are ours, checked all the same.
        let variant = MediaVariant::from_number(i32::from(payload[1])).ok_or(TokenError::Malformed)?;
        let (fixed, text) = payload.split_at(PAYLOAD_LEN);
        // Each variant in its own layout only: a version-1 PartnerQr would be a QR code with no
        // text, a version-2 JPEG a text nobody renders.
        let qr_text = match (fixed[0], variant) {
            (VERSION, variant) if variant != MediaVariant::PartnerQr && text.is_empty() => None,
            (VERSION_QR, MediaVariant::PartnerQr) => {
                let text = std::str::from_utf8(text).map_err(|_| TokenError::Malformed)?;
                check_qr_text(text).map_err(|_| TokenError::Malformed)?;
                Some(text.to_owned())
            }
            _ => return Err(TokenError::Malformed),
        };
        let mut expiry = [0u8; 8];
        expiry.copy_from_slice(&payload[2..10]);
        let expires_at = u64::from_be_bytes(expiry);
        let now = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
        if now >= expires_at {
            return Err(TokenError::Expired);
        }
        let image_id = uuid::Uuid::from_slice(&fixed[10..]).map_err(|_| TokenError::Malformed)?.to_string();
        Ok(MediaGrant { image_id, variant, expires_at, qr_text })
    }
}

/// Length of base64url (no padding) of `bytes` bytes.
const fn encoded_len(bytes: usize) -> usize {
    (bytes * 4).div_ceil(3)
}

fn tag(key: &hmac::Key, payload: &[u8]) -> [u8; TAG_LEN] {
    let mut context = hmac::Context::with_key(key);
    context.update(CONTEXT);
    context.update(payload);
    let full = context.sign();
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&full.as_ref()[..TAG_LEN]);
    tag
}

/// Constant-time equality of two tags: every byte is looked at whatever the first difference.
fn equal(a: &[u8; TAG_LEN], b: &[u8]) -> bool {
    if b.len() != TAG_LEN {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// Public media URLs on one base: `<base>/media/<token>`.
#[derive(Debug, Clone)]
pub struct MediaLinks {
    base: String,
    signer: Arc<MediaSigner>,
}

impl MediaLinks {
    /// Links on `public_base_url` (e.g. `https://kem.example`; a trailing `/` is dropped) signed
    /// by `signer`.
    pub fn new(public_base_url: &str, signer: Arc<MediaSigner>) -> MediaLinks {
        MediaLinks { base: public_base_url.trim().trim_end_matches('/').to_owned(), signer }
    }

    /// The base URL links are made on.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The URL of `variant` of `image_id`, valid for `ttl` from `now`; `None` when there is no
    /// base URL or the id is not an image id (a post then goes without the image link, and the
    /// channel refuses if it needs one). [`MediaVariant::PartnerQr`] needs its text:
    /// [`url_with_qr`](Self::url_with_qr).
    pub fn url(&self, image_id: &str, variant: MediaVariant, ttl: Duration, now: SystemTime) -> Option<String> {
        self.link(ttl, now, |expires| self.signer.sign(image_id, variant, expires))
    }

    /// The URL of the [`MediaVariant::PartnerQr`] rendition of `image_id` with a QR code of
    /// `qr_text` (e.g. the event's entry link), valid for `ttl` from `now`; `None` when there is
    /// no base URL, the id is not an image id or `qr_text` breaks a rule of [`check_qr_text`]
    /// (logged with the reason). The base and 197 characters for a 100-byte `qr_text`.
    pub fn url_with_qr(&self, image_id: &str, qr_text: &str, ttl: Duration, now: SystemTime) -> Option<String> {
        self.link(ttl, now, |expires| self.signer.sign_partner_qr(image_id, qr_text, expires))
    }

    fn link(
        &self,
        ttl: Duration,
        now: SystemTime,
        sign: impl FnOnce(SystemTime) -> Result<String, SignError>,
    ) -> Option<String> {
        if self.base.is_empty() {
            return None;
        }
        let expires = now.checked_add(ttl)?;
        match sign(expires) {
            Ok(token) => Some(format!("{}/media/{token}", self.base)),
            Err(error) => {
                tracing::warn!(%error, "no media link for this image");
                None
            }
        }
    }
}
