//! The renditions behind the edge's public media route (`/media/{token}`): the stored image, its
//! JPEG, the Instagram feed JPEG, and the KT partner channels' PNG with a QR code of the event's
//! entry link. The edge has already checked the signed token that names the image, the variant
//! and the QR text, so nothing here asks who may see the image.
//!
//! Conversions are deterministic, so each is made once and kept in the blob store under a key
//! derived from the source's SHA-256, the conversion's settings and — for the partner rendition —
//! the QR text's SHA-256: a platform refetching a link, or many crawlers at once, never costs a
//! second encode (racing first fetches store the same bytes), a change of settings or source
//! never serves a stale rendition, and two QR texts on one image are never one blob.

use std::sync::atomic::AtomicU64;

use bytes::Bytes;
use kem_kit::media::{MediaVariant, check_qr_text};

use super::ports::ImagingError;
use super::queries::ImageContent;
use super::{AppError, ContentApp};
use crate::domain::image::Image;
use crate::domain::prompt::sha256_hex;
use crate::infra::imaging::{
    FEED_MAX_BYTES, JPEG_QUALITY, jpeg_dimensions, looks_like_jpeg, looks_like_png, png_dimensions,
};
use crate::infra::partner_qr::{MIN_MODULE_PX, QUIET_ZONE};

/// One rendition's bytes and pixel size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaContent {
    /// Bytes, MIME type and SHA-256.
    pub content: ImageContent,
    /// Pixel width.
    pub width: u32,
    /// Pixel height.
    pub height: u32,
}

/// Blob key of the Instagram feed rendition of the stored image whose SHA-256 is `source_sha256`
/// (`v1`: the sizing and quality steps of `imaging::png_to_feed_jpeg`; a change there takes a new
/// version).
pub fn feed_key(source_sha256: &str) -> String {
    let prefix = source_sha256.get(..2).unwrap_or("00");
    format!("converted/instagram-feed-v1-q{JPEG_QUALITY}/{prefix}/{source_sha256}.jpg")
}

/// Blob key of the partner QR rendition of the stored image whose SHA-256 is `source_sha256`
/// with a code of `qr_text` (`v1`: level M, the quiet zone and module sizes of
/// `infra::partner_qr`; a change there takes a new version). The text enters as its SHA-256, so
/// the key has a fixed shape whatever the text.
pub fn partner_qr_key(source_sha256: &str, qr_text: &str) -> String {
    let prefix = source_sha256.get(..2).unwrap_or("00");
    let text = sha256_hex(qr_text.as_bytes());
    format!("converted/partner-qr-v1-m-z{QUIET_ZONE}-p{MIN_MODULE_PX}/{prefix}/{source_sha256}-{text}.png")
}

impl ContentApp {
    /// `variant` of the image `image_id`; `qr_text` is the text of [`MediaVariant::PartnerQr`]'s
    /// code (required for it, ignored by the others). INVALID_ARGUMENT (field `qrText`) when the
    /// partner rendition has no valid text, NOT_FOUND when there is no such image,
    /// FAILED_PRECONDITION when it cannot be converted.
    pub async fn media_content(
        &self,
        image_id: &str,
        variant: MediaVariant,
        qr_text: Option<&str>,
    ) -> Result<MediaContent, AppError> {
        // The text first: a bad one costs no lookup.
        let qr_text = match variant {
            MediaVariant::PartnerQr => {
                let text = qr_text.unwrap_or_default();
                check_qr_text(text).map_err(|e| AppError::Invalid(vec![("qrText".to_owned(), e.to_string())]))?;
                Some(text)
            }
            _ => None,
        };
        let image = self.image(image_id).await?;
        let fallback = (image.size.width, image.size.height);
        match variant {
            MediaVariant::Original => {
                let content = self.bytes_of(image).await?;
                let (width, height) = dimensions(&content.data).unwrap_or(fallback);
                Ok(MediaContent { content, width, height })
            }
            MediaVariant::Jpeg => {
                let content = self.jpeg_of(image).await?;
                let (width, height) = jpeg_dimensions(&content.data).unwrap_or(fallback);
                Ok(MediaContent { content, width, height })
            }
            MediaVariant::InstagramFeed => self.feed_of(image).await,
            MediaVariant::PartnerQr => match qr_text {
                Some(text) => self.partner_qr_of(image, text).await,
                None => Err(AppError::Invalid(vec![("qrText".to_owned(), "is required".to_owned())])),
            },
        }
    }

    /// The partner QR rendition of `image` with a code of `qr_text` (already checked), from the
    /// blob store when made before.
    async fn partner_qr_of(&self, image: Image, qr_text: &str) -> Result<MediaContent, AppError> {
        let key = partner_qr_key(&image.sha256, qr_text);
        let made = &self.metrics.qr_renditions;
        self.kept_or_made(image, key, &PARTNER_QR, made, |source| {
            self.imaging.with_partner_qr(source, qr_text.to_owned())
        })
        .await
    }

    /// The Instagram feed rendition of `image`, from the blob store when made before.
    async fn feed_of(&self, image: Image) -> Result<MediaContent, AppError> {
        let key = feed_key(&image.sha256);
        let made = &self.metrics.jpeg_conversions;
        self.kept_or_made(image, key, &FEED, made, |source| self.imaging.to_feed_jpeg(source)).await
    }

    /// The rendition of `image` kept under `key`, or — when there is none, or a damaged one —
    /// made from the stored PNG by `make`, kept, and counted in `made`.
    async fn kept_or_made<F, Fut>(
        &self,
        image: Image,
        key: String,
        kind: &Kept,
        made: &AtomicU64,
        make: F,
    ) -> Result<MediaContent, AppError>
    where
        F: FnOnce(Bytes) -> Fut,
        Fut: Future<Output = Result<(Bytes, u32, u32), ImagingError>>,
    {
        if let Some(data) = self.blobs.get(&key).await? {
            match (kind.kept_size)(&data) {
                Some((width, height)) => {
                    return Ok(MediaContent { content: content(kind.content_type, data), width, height });
                }
                None => tracing::warn!(image_id = %image.id, blob = %key, rendition = kind.name,
                    "kept rendition is damaged; converting again"),
            }
        }
        let image_id = image.id.clone();
        if image.content_type != "image/png" {
            // Only PNGs are decoded here (every generated image is one).
            return Err(AppError::Unconvertible {
                image_id,
                problem: format!("{} is not decoded", image.content_type),
            });
        }
        let source = self.bytes_of(image).await?;
        let (data, width, height) = make(source.data)
            .await
            .map_err(|e| AppError::Unconvertible { image_id: image_id.clone(), problem: e.0 })?;
        // A failed store only costs the next fetch another conversion: serve the bytes anyway.
        if let Err(error) = self.blobs.put(&key, data.clone(), kind.content_type).await {
            tracing::warn!(%image_id, blob = %key, rendition = kind.name, %error, "could not keep the rendition");
        }
        super::metrics::bump(made);
        Ok(MediaContent { content: content(kind.content_type, data), width, height })
    }
}

/// A rendition kept in the blob store: what it is, and how a kept copy is checked.
struct Kept {
    /// For logs.
    name: &'static str,
    content_type: &'static str,
    /// The pixel size of a kept copy, `None` when it is damaged (made again).
    kept_size: fn(&[u8]) -> Option<(u32, u32)>,
}

const FEED: Kept = Kept {
    name: "instagram-feed",
    content_type: "image/jpeg",
    kept_size: |data| jpeg_dimensions(data).filter(|_| looks_like_jpeg(data) && data.len() <= FEED_MAX_BYTES),
};

const PARTNER_QR: Kept = Kept {
    name: "partner-qr",
    content_type: "image/png",
    kept_size: |data| png_dimensions(data).filter(|_| looks_like_png(data)),
};

fn content(content_type: &str, data: Bytes) -> ImageContent {
    let sha256 = sha256_hex(&data);
    ImageContent { content_type: content_type.to_owned(), data, sha256 }
}

fn dimensions(data: &[u8]) -> Option<(u32, u32)> {
    png_dimensions(data).or_else(|| jpeg_dimensions(data))
}
