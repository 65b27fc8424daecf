//! The renditions behind the edge's public media route (`/media/{token}`): the stored image, its
//! JPEG, and the Instagram feed JPEG. The edge has already checked the signed token that names
//! the image and the variant, so nothing here asks who may see the image.
//!
//! Conversions are deterministic, so each is made once and kept in the blob store under a key
//! derived from the source's SHA-256 and the conversion's settings: a platform refetching a link,
//! or many crawlers at once, never costs a second encode (racing first fetches store the same
//! bytes), and a change of either settings or source never serves a stale rendition.

use bytes::Bytes;
use kem_kit::media::MediaVariant;

use super::queries::ImageContent;
use super::{AppError, ContentApp};
use crate::domain::image::Image;
use crate::domain::prompt::sha256_hex;
use crate::infra::imaging::{FEED_MAX_BYTES, JPEG_QUALITY, jpeg_dimensions, looks_like_jpeg, png_dimensions};

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

impl ContentApp {
    /// `variant` of the image `image_id`: NOT_FOUND when there is no such image, FAILED_PRECONDITION
    /// when it cannot be converted.
    pub async fn media_content(&self, image_id: &str, variant: MediaVariant) -> Result<MediaContent, AppError> {
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
        }
    }

    /// The Instagram feed rendition of `image`, from the blob store when made before.
    async fn feed_of(&self, image: Image) -> Result<MediaContent, AppError> {
        let key = feed_key(&image.sha256);
        if let Some(data) = self.blobs.get(&key).await? {
            match jpeg_dimensions(&data) {
                Some((width, height)) if looks_like_jpeg(&data) && data.len() <= FEED_MAX_BYTES => {
                    return Ok(MediaContent { content: jpeg(data), width, height });
                }
                _ => tracing::warn!(image_id = %image.id, blob = %key,
                    "cached Instagram rendition is damaged; converting again"),
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
        let (data, width, height) = self
            .imaging
            .to_feed_jpeg(source.data)
            .await
            .map_err(|e| AppError::Unconvertible { image_id: image_id.clone(), problem: e.0 })?;
        // A failed store only costs the next fetch another conversion: serve the bytes anyway.
        if let Err(error) = self.blobs.put(&key, data.clone(), "image/jpeg").await {
            tracing::warn!(%image_id, blob = %key, %error, "could not keep the Instagram rendition");
        }
        super::metrics::bump(&self.metrics.jpeg_conversions);
        Ok(MediaContent { content: jpeg(data), width, height })
    }
}

fn jpeg(data: Bytes) -> ImageContent {
    let sha256 = sha256_hex(&data);
    ImageContent { content_type: "image/jpeg".to_owned(), data, sha256 }
}

fn dimensions(data: &[u8]) -> Option<(u32, u32)> {
    png_dimensions(data).or_else(|| jpeg_dimensions(data))
}
