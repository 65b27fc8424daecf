//! Reads: an owner's images of an event, an image's bytes, the public image of a published
//! event, and an image's metadata for the mesh.

use std::time::Duration;

use bytes::Bytes;

use super::{AppError, ContentApp, Resource};
use crate::domain::image::{Image, PublicFormat, StyleState};
use crate::domain::prompt::sha256_hex;
use crate::domain::values::ImageStyle;
use crate::infra::imaging::{JPEG_QUALITY, looks_like_jpeg};

/// An event's images and the state of each style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventImages {
    /// Images (filtered by style), newest first.
    pub images: Vec<Image>,
    /// State per style of the latest generation (every style, regardless of the filter).
    pub style_states: Vec<StyleState>,
}

/// An image's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageContent {
    /// MIME type.
    pub content_type: String,
    /// The bytes.
    pub data: Bytes,
    /// Their hex SHA-256.
    pub sha256: String,
}

/// How long "this image is public" is remembered, so a popular entry page does not ask the event
/// service on every fetch. Only that positive decision is cached: a published event's selected
/// image never changes, while a draft may be published (and its image become public) at any
/// moment. The price is that an image of an event deleted meanwhile stays visible this long.
const PUBLIC_DECISION_TTL: Duration = Duration::from_secs(300);

fn public_key(image_id: &str) -> String {
    format!("public-image:v1:{image_id}")
}

/// Blob key of the JPEG conversion of the stored image whose SHA-256 is `source_sha256`: derived
/// from the source and the quality, so a change of either never serves a stale conversion.
pub fn converted_key(source_sha256: &str) -> String {
    let prefix = source_sha256.get(..2).unwrap_or("00");
    format!("converted/jpeg-q{JPEG_QUALITY}/{prefix}/{source_sha256}.jpg")
}

fn required(field: &str, value: &str) -> Result<String, AppError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(AppError::Invalid(vec![(field.to_owned(), "is required".to_owned())]));
    }
    Ok(value.to_owned())
}

impl ContentApp {
    /// The images `owner` has for `event_id` (another owner's event is NOT_FOUND; an event content
    /// never heard of has none).
    pub async fn list_images(
        &self,
        owner: &str,
        event_id: &str,
        style: Option<ImageStyle>,
    ) -> Result<EventImages, AppError> {
        let event_id = required("eventId", event_id)?;
        match self.repository.event_owner(&event_id).await? {
            None => return Ok(EventImages { images: Vec::new(), style_states: Vec::new() }),
            Some(actual) if actual != owner => {
                return Err(AppError::NotFound { resource: Resource::Event, id: event_id });
            }
            Some(_) => {}
        }
        let images = self.repository.list_images(&event_id, style).await?;
        let style_states = self.repository.style_states(&event_id).await?;
        Ok(EventImages { images, style_states })
    }

    /// The bytes of one of `owner`'s images, checked against their recorded SHA-256.
    pub async fn image_content(&self, owner: &str, image_id: &str) -> Result<ImageContent, AppError> {
        let image = self.owned_image(owner, image_id).await?;
        self.bytes_of(image).await
    }

    /// The bytes of an image anyone may see: the selected image of a published or ended event,
    /// in `format`. Any other image — unknown, a draft's, generated but not selected — is
    /// NOT_FOUND exactly as an unknown id is, so nothing about unpublished events leaks (the
    /// decision comes before any conversion).
    pub async fn public_image_content(&self, image_id: &str, format: PublicFormat) -> Result<ImageContent, AppError> {
        let image = self.image(image_id).await?;
        if !self.is_public(&image).await? {
            return Err(AppError::NotFound { resource: Resource::Image, id: image_id.trim().to_owned() });
        }
        match format {
            PublicFormat::Stored => self.bytes_of(image).await,
            PublicFormat::Jpeg => self.jpeg_of(image).await,
        }
    }

    /// `image` as JPEG. A stored JPEG is sent as it is; a PNG is converted once and the result
    /// kept in the blob store under a key derived from the source's SHA-256 and the quality
    /// (conversion is deterministic, so racing first fetches store the same bytes), so a platform
    /// refetching it, or many, never costs a second encode. The ETag is the SHA-256 of the JPEG,
    /// different from the PNG's.
    pub(super) async fn jpeg_of(&self, image: Image) -> Result<ImageContent, AppError> {
        if image.content_type == "image/jpeg" {
            return self.bytes_of(image).await;
        }
        let key = converted_key(&image.sha256);
        if let Some(data) = self.blobs.get(&key).await? {
            if looks_like_jpeg(&data) {
                let sha256 = sha256_hex(&data);
                return Ok(ImageContent { content_type: "image/jpeg".to_owned(), data, sha256 });
            }
            tracing::warn!(image_id = %image.id, blob = %key, "cached JPEG conversion is damaged; converting again");
        }
        let image_id = image.id.clone();
        let source = self.bytes_of(image).await?;
        let data = self
            .imaging
            .to_jpeg(source.data)
            .await
            .map_err(|e| AppError::Unconvertible { image_id: image_id.clone(), problem: e.0 })?;
        // A failed store only costs the next fetch another conversion: serve the bytes anyway.
        if let Err(error) = self.blobs.put(&key, data.clone(), "image/jpeg").await {
            tracing::warn!(%image_id, blob = %key, %error, "could not keep the JPEG conversion");
        }
        super::metrics::bump(&self.metrics.jpeg_conversions);
        let sha256 = sha256_hex(&data);
        Ok(ImageContent { content_type: "image/jpeg".to_owned(), data, sha256 })
    }

    /// Whether the event service says `image` is public (a positive answer is cached).
    async fn is_public(&self, image: &Image) -> Result<bool, AppError> {
        let events = &self.events;
        let public = self
            .public_images
            .get_or_load_optional(&public_key(&image.id), PUBLIC_DECISION_TTL, None, || async move {
                let publication = events.publication(&image.event_id).await?;
                let shows = publication.is_some_and(|p| p.shows(&image.event_id, &image.id));
                Ok::<_, AppError>(shows.then_some(true))
            })
            .await?;
        Ok(public.is_some())
    }

    /// `image`'s bytes from the blob store, checked against their recorded SHA-256.
    pub(super) async fn bytes_of(&self, image: Image) -> Result<ImageContent, AppError> {
        let data = self.blobs.get(&image.blob_key).await?.ok_or_else(|| {
            tracing::error!(image_id = %image.id, blob = %image.blob_key, store = self.blobs.kind(),
                "image bytes are missing from the blob store");
            AppError::DataLoss { image_id: image.id.clone(), problem: "missing from the blob store" }
        })?;
        let sha256 = sha256_hex(&data);
        if sha256 != image.sha256 {
            tracing::error!(image_id = %image.id, blob = %image.blob_key, expected = %image.sha256, actual = %sha256,
                "image bytes do not match their checksum");
            return Err(AppError::DataLoss { image_id: image.id, problem: "corrupt" });
        }
        Ok(ImageContent { content_type: image.content_type, data, sha256 })
    }

    /// One image's metadata, for mesh callers (not owner-scoped).
    pub async fn image(&self, image_id: &str) -> Result<Image, AppError> {
        let image_id = required("imageId", image_id)?;
        self.repository
            .find_image(&image_id)
            .await?
            .ok_or(AppError::NotFound { resource: Resource::Image, id: image_id })
    }

    async fn owned_image(&self, owner: &str, image_id: &str) -> Result<Image, AppError> {
        let image = self.image(image_id).await?;
        if image.owner_id != owner {
            return Err(AppError::NotFound { resource: Resource::Image, id: image.id });
        }
        Ok(image)
    }
}
