//! Reads: an owner's images of an event, an image's bytes, and an image's metadata for the mesh.

use bytes::Bytes;

use super::{AppError, ContentApp, Resource};
use crate::domain::image::{Image, StyleState};
use crate::domain::prompt::sha256_hex;
use crate::domain::values::ImageStyle;

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
