//! The gRPC adapter (`kem.user.v1.UserService`): request messages in, use cases called, contract
//! messages and `google.rpc` statuses out. No business rule lives here.

mod convert;
mod status;

use std::sync::Arc;

use kem_kit::runtime::owner_id;
use kem_kit::validate::{IdShape, Text, Violations};
use kem_proto::kem::user::v1 as pb;
use kem_proto::kem::user::v1::user_service_server::{UserService, UserServiceServer};
use tonic::{Request, Response, Status};

pub use status::{DOMAIN, to_status};

use crate::app::{ProfileInput, Registration, UserCore, UserError};
use crate::domain::FieldViolation;

/// Characters only: the length of a sign-in email or a token is the use case's to judge (an
/// over-long one is a failed sign-in, answered without touching the database).
const CHARACTERS_ONLY: Text = Text::line(usize::MAX);

/// The user service's gRPC API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct UserApi {
    core: Arc<UserCore>,
}

impl UserApi {
    /// The API over `core`.
    pub fn new(core: Arc<UserCore>) -> UserApi {
        UserApi { core }
    }

    /// The use cases (key rotation, provider state for metrics and tests).
    pub fn core(&self) -> &Arc<UserCore> {
        &self.core
    }

    /// The tonic service to mount on the role server.
    pub fn into_service(self) -> UserServiceServer<UserApi> {
        UserServiceServer::new(self)
    }

    /// Rotates the access-token signing key now (operators, tests); returns the new `kid`. Tokens
    /// signed with the old key stay valid until they expire.
    pub async fn rotate_signing_key(&self) -> Result<String, Status> {
        self.core.keys().rotate().await.map_err(|e| to_status(UserError::from(e)))
    }
}

fn reply<T>(result: Result<T, UserError>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(to_status)
}

/// The boundary checks' findings as the service's INVALID_ARGUMENT, before any use case runs.
/// Fields the use cases validate themselves (registration, profile values) are checked there, by
/// the same kit rules.
fn checked(violations: Violations) -> Result<(), Status> {
    violations.into_result().map_err(|found| {
        to_status(UserError::invalid(found.into_iter().map(|v| FieldViolation::new(v.field, v.description)).collect()))
    })
}

#[tonic::async_trait]
impl UserService for UserApi {
    async fn register(&self, request: Request<pb::RegisterRequest>) -> Result<Response<pb::RegisterResponse>, Status> {
        let r = request.into_inner();
        let registration = Registration {
            email: r.email,
            password: r.password,
            name: r.name,
            phone: r.phone,
            store_name: r.store_name,
            business_category: r.business_category,
            region: r.region,
            region_code: r.region_code,
            business_number: r.business_number,
        };
        reply(self.core.register(registration).await.map(|o| pb::RegisterResponse { owner: Some(convert::owner(&o)) }))
    }

    async fn login(&self, request: Request<pb::LoginRequest>) -> Result<Response<pb::LoginResponse>, Status> {
        // The edge's view of the client; sign-in throttling counts failures per address.
        let client = kem_kit::runtime::client_ip(&request);
        let r = request.into_inner();
        checked(Violations::new().text("email", &r.email, CHARACTERS_ONLY).text(
            "password",
            &r.password,
            CHARACTERS_ONLY,
        ))?;
        let pair = self.core.login(&r.email, r.password, client).await;
        reply(pair.map(|p| pb::LoginResponse { token_pair: Some(convert::token_pair(p)) }))
    }

    async fn refresh(&self, request: Request<pb::RefreshRequest>) -> Result<Response<pb::RefreshResponse>, Status> {
        let token = &request.get_ref().refresh_token;
        checked(Violations::new().text("refreshToken", token, CHARACTERS_ONLY))?;
        let pair = self.core.refresh(token).await;
        reply(pair.map(|p| pb::RefreshResponse { token_pair: Some(convert::token_pair(p)) }))
    }

    async fn logout(&self, request: Request<pb::LogoutRequest>) -> Result<Response<pb::LogoutResponse>, Status> {
        let owner = owner_id(&request)?;
        let r = request.into_inner();
        checked(Violations::new().text("refreshToken", &r.refresh_token, CHARACTERS_ONLY))?;
        reply(self.core.logout(&owner, &r.refresh_token, r.all_sessions).await.map(|()| pb::LogoutResponse {}))
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        let owner = owner_id(&request)?;
        let client = kem_kit::runtime::client_ip(&request);
        let r = request.into_inner();
        checked(Violations::new().text("currentPassword", &r.current_password, CHARACTERS_ONLY).text(
            "newPassword",
            &r.new_password,
            CHARACTERS_ONLY,
        ))?;
        let pair = self.core.change_password(&owner, r.current_password, r.new_password, client).await;
        reply(pair.map(|p| pb::ChangePasswordResponse { token_pair: Some(convert::token_pair(p)) }))
    }

    async fn get_me(&self, request: Request<pb::GetMeRequest>) -> Result<Response<pb::GetMeResponse>, Status> {
        let owner = owner_id(&request)?;
        reply(self.core.owner(&owner).await.map(|o| pb::GetMeResponse { owner: Some(convert::owner(&o)) }))
    }

    async fn update_me(&self, request: Request<pb::UpdateMeRequest>) -> Result<Response<pb::UpdateMeResponse>, Status> {
        let owner = owner_id(&request)?;
        let r = request.into_inner();
        let Some(o) = r.owner else {
            return Err(to_status(UserError::field("owner", "owner is required: the new values of the masked fields")));
        };
        checked(Violations::new().optional_id("owner.ownerId", &o.owner_id, IdShape::Uuid))?;
        let mask = r.update_mask.map(|m| m.paths).unwrap_or_default();
        let input = ProfileInput {
            owner_id: o.owner_id,
            name: o.name,
            phone: o.phone,
            store_name: o.store_name,
            business_category: o.business_category,
            region: o.region,
            region_code: o.region_code,
            email: o.email,
        };
        let updated = self.core.update_me(&owner, input, &mask).await;
        reply(updated.map(|o| pb::UpdateMeResponse { owner: Some(convert::owner(&o)) }))
    }

    async fn verify_business_number(
        &self,
        request: Request<pb::VerifyBusinessNumberRequest>,
    ) -> Result<Response<pb::VerifyBusinessNumberResponse>, Status> {
        let verified = self.core.verify_business_number(&request.get_ref().business_number).await;
        reply(
            verified
                .map(|v| pb::VerifyBusinessNumberResponse { business_verification: Some(convert::verification(&v)) }),
        )
    }

    async fn get_signing_keys(
        &self,
        _request: Request<pb::GetSigningKeysRequest>,
    ) -> Result<Response<pb::GetSigningKeysResponse>, Status> {
        let keys = self.core.signing_keys().await;
        let tokens = &self.core.config().tokens;
        Ok(Response::new(pb::GetSigningKeysResponse {
            keys: keys.iter().map(convert::jwk).collect(),
            issuer: tokens.issuer.clone(),
            audience: tokens.audience.clone(),
            cache_ttl: Some(convert::duration(tokens.jwks_cache_ttl)),
        }))
    }

    async fn get_owner(&self, request: Request<pb::GetOwnerRequest>) -> Result<Response<pb::GetOwnerResponse>, Status> {
        let owner_id = &request.get_ref().owner_id;
        checked(Violations::new().id("ownerId", owner_id, IdShape::Uuid))?;
        let owner = self.core.get_owner(owner_id).await;
        reply(owner.map(|o| pb::GetOwnerResponse { owner: Some(convert::owner(&o)) }))
    }

    async fn list_revocations(
        &self,
        request: Request<pb::ListRevocationsRequest>,
    ) -> Result<Response<pb::ListRevocationsResponse>, Status> {
        let page = self.core.list_revocations(&request.get_ref().cursor).await;
        reply(page.map(|p| pb::ListRevocationsResponse {
            revocations: p.revocations.iter().map(convert::revocation).collect(),
            next_cursor: p.next_cursor,
            more: p.more,
        }))
    }
}
