//! The gRPC adapter: `kem.content.v1.ContentService` over the use cases. Owner methods take the
//! gateway-verified end user; the public `GetPublicImageContent` and the media renditions of
//! `GetMediaContent` (the edge's `/media/{token}`, the token checked by the edge) take no user
//! (the policy admits the gateway alone); the internal `GetImage` is reached only by mesh peers the
//! policy admits (the event service). [`convert`] maps protobuf ↔ domain (shared with the consumer and the event
//! client in `infra`), [`status`] maps errors to statuses. No business rule lives here.

pub mod convert;
pub mod status;

use std::sync::Arc;

use kem_kit::media::{MediaVariant, check_qr_text};
use kem_kit::runtime::owner_id;
use kem_kit::validate::{IdShape, Violation, Violations};
use kem_proto::kem::content::v1 as proto;
use kem_proto::kem::content::v1::content_service_server::ContentService;
use tonic::{Request, Response, Status};

use crate::app::{AppError, ContentApp};
use crate::domain::image::PublicFormat;
use crate::domain::request::EnumInput;

/// The gRPC service of the content service (mount it with `ContentServiceServer::new`).
#[derive(Clone, Debug)]
pub struct ContentApi {
    app: Arc<ContentApp>,
}

impl ContentApi {
    /// The adapter over `app`.
    pub fn new(app: Arc<ContentApp>) -> ContentApi {
        ContentApi { app }
    }

    /// The use cases behind it.
    pub fn app(&self) -> &Arc<ContentApp> {
        &self.app
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// Image ids are minted here as UUIDs (`app::generation::new_id`).
const IMAGE_ID: IdShape = IdShape::Uuid;
/// Event ids are the event service's: checked for the shape every kem id shares.
const EVENT_ID: IdShape = IdShape::Key { max: 64 };

/// The boundary checks' findings as INVALID_ARGUMENT, before the database or the blob store.
fn checked(violations: Violations) -> Result<(), Status> {
    violations.into_result().map_err(|found| {
        status::to_status(AppError::Invalid(found.into_iter().map(|v| (v.field, v.description)).collect()))
    })
}

#[tonic::async_trait]
impl ContentService for ContentApi {
    async fn list_images(&self, request: Request<proto::ListImagesRequest>) -> Reply<proto::ListImagesResponse> {
        let owner = owner_id(&request)?;
        let r = request.into_inner();
        checked(Violations::new().id("eventId", &r.event_id, EVENT_ID))?;
        let style = match convert::style_from_proto(r.style) {
            EnumInput::Known(style) => Some(style),
            EnumInput::Unset => None,
            EnumInput::Unknown(n) => {
                return Err(kem_proto::status::bad_request(
                    "unknown image style",
                    &[("style", &format!("{n} is not a known image style"))],
                ));
            }
        };
        let listed = self.app.list_images(&owner, &r.event_id, style).await.map_err(status::to_status)?;
        Ok(Response::new(proto::ListImagesResponse {
            images: listed.images.iter().map(convert::image).collect(),
            style_states: listed.style_states.iter().map(convert::style_state).collect(),
        }))
    }

    async fn get_image_content(
        &self,
        request: Request<proto::GetImageContentRequest>,
    ) -> Reply<proto::GetImageContentResponse> {
        let owner = owner_id(&request)?;
        checked(Violations::new().id("imageId", &request.get_ref().image_id, IMAGE_ID))?;
        let content = self.app.image_content(&owner, &request.get_ref().image_id).await.map_err(status::to_status)?;
        Ok(Response::new(proto::GetImageContentResponse {
            content_type: content.content_type,
            data: content.data.to_vec(),
            sha256: content.sha256,
        }))
    }

    async fn get_public_image_content(
        &self,
        request: Request<proto::GetPublicImageContentRequest>,
    ) -> Reply<proto::GetPublicImageContentResponse> {
        checked(Violations::new().id("imageId", &request.get_ref().image_id, IMAGE_ID))?;
        let format = match proto::ImageFormat::try_from(request.get_ref().format) {
            Ok(proto::ImageFormat::Unspecified) => PublicFormat::Stored,
            Ok(proto::ImageFormat::Jpeg) => PublicFormat::Jpeg,
            Err(_) => {
                let n = request.get_ref().format;
                return Err(kem_proto::status::bad_request(
                    "unknown image format",
                    &[("format", &format!("{n} is not a known image format"))],
                ));
            }
        };
        let content =
            self.app.public_image_content(&request.get_ref().image_id, format).await.map_err(status::to_status)?;
        Ok(Response::new(proto::GetPublicImageContentResponse {
            content_type: content.content_type,
            data: content.data.to_vec(),
            sha256: content.sha256,
        }))
    }

    async fn get_image(&self, request: Request<proto::GetImageRequest>) -> Reply<proto::GetImageResponse> {
        checked(Violations::new().id("imageId", &request.get_ref().image_id, IMAGE_ID))?;
        let image = self.app.image(&request.get_ref().image_id).await.map_err(status::to_status)?;
        Ok(Response::new(proto::GetImageResponse {
            owner_id: image.owner_id.clone(),
            image: Some(convert::image(&image)),
        }))
    }

    async fn get_media_content(
        &self,
        request: Request<proto::GetMediaContentRequest>,
    ) -> Reply<proto::GetMediaContentResponse> {
        let r = request.get_ref();
        let mut violations = Violations::new().id("imageId", &r.image_id, IMAGE_ID);
        let variant = MediaVariant::from_number(r.variant);
        if variant.is_none() {
            let problem = match r.variant {
                0 => "is required".to_owned(),
                n => format!("{n} is not a known media variant"),
            };
            violations.push(Violation::new("variant", problem));
        }
        // The text of the partner rendition's QR code (ignored by the others, as the contract says).
        let qr_text = (variant == Some(MediaVariant::PartnerQr)).then_some(r.qr_text.as_str());
        if let Some(Err(problem)) = qr_text.map(check_qr_text) {
            violations.push(Violation::new("qrText", problem.to_string()));
        }
        checked(violations)?;
        let Some(variant) = variant else { return Err(Status::internal("variant checked above")) };
        let media = self.app.media_content(&r.image_id, variant, qr_text).await.map_err(status::to_status)?;
        Ok(Response::new(proto::GetMediaContentResponse {
            content_type: media.content.content_type,
            data: media.content.data.to_vec(),
            sha256: media.content.sha256,
            width: i32::try_from(media.width).unwrap_or(i32::MAX),
            height: i32::try_from(media.height).unwrap_or(i32::MAX),
        }))
    }
}
