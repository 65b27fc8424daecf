//! Store profiles from the user service (`kem.user.v1.UserService/GetOwner` over the mesh).
//!
//! Two uses with opposite needs:
//! - [`MeshStoreDirectory::store_profile`] enriches AI and content work requests. Best effort by
//!   design: the lookup is bounded by a short timeout, cached, and any failure (no `user` peer
//!   configured, policy denial, timeout) yields `None`, so a work request is never delayed or
//!   refused because of it.
//! - [`MeshStoreDirectory::store_name`] names the data controller in the terms PublishEvent fixes.
//!   Required and current: asked fresh (never from the cache), and an unreachable user service
//!   is an error, so no event is published with a wrong or missing controller.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kem_kit::cache::{Cache, CacheAside};
use kem_kit::runtime::Peers;
use kem_proto::kem::user::v1::GetOwnerRequest;
use kem_proto::kem::user::v1::user_service_client::UserServiceClient;
use tonic::Code;

use crate::api::convert;
use crate::app::PeerError;
use crate::domain::validation::EnumInput;
use crate::domain::values::StoreProfile;

/// Longest wait for the user service.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a known profile is reused (profiles change rarely; a stale region only colours a
/// recommendation).
const PROFILE_TTL: Duration = Duration::from_secs(600);
/// How long "unknown" is reused, so an unreachable user service is not asked on every request.
const UNKNOWN_TTL: Duration = Duration::from_secs(30);
/// Longest wait for the user service when publishing (the owner is waiting, and retries).
const PUBLISH_LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);
/// The peer's name in the mesh.
const PEER: &str = "user";

/// Profiles looked up over the mesh, cached.
#[derive(Clone)]
pub struct MeshStoreDirectory {
    peers: Peers,
    cache: CacheAside,
    /// Set after the first failure is logged as a warning; cleared by a success.
    warned: Arc<AtomicBool>,
}

impl std::fmt::Debug for MeshStoreDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshStoreDirectory").finish_non_exhaustive()
    }
}

impl MeshStoreDirectory {
    /// Looks profiles up through `peers` (the `user` peer), caching them in `cache`.
    pub fn new(peers: Peers, cache: Arc<dyn Cache>) -> MeshStoreDirectory {
        MeshStoreDirectory { peers, cache: CacheAside::new(cache), warned: Arc::new(AtomicBool::new(false)) }
    }

    fn unknown(&self, owner_id: &str, why: &str) -> Result<Option<StoreProfile>, ()> {
        if self.warned.swap(true, Ordering::Relaxed) {
            tracing::debug!(owner_id, why, "store profile unknown; work requests go out without it");
        } else {
            tracing::warn!(owner_id, why, "store profile unknown; work requests go out without it");
        }
        Ok(None)
    }

    async fn fetch(&self, owner_id: &str) -> Result<Option<StoreProfile>, ()> {
        let channel = match self.peers.channel(PEER) {
            Ok(channel) => channel,
            Err(error) => return self.unknown(owner_id, &error.to_string()),
        };
        let mut request = tonic::Request::new(GetOwnerRequest { owner_id: owner_id.to_owned() });
        request.set_timeout(LOOKUP_TIMEOUT);
        let mut client = UserServiceClient::new(channel);
        match tokio::time::timeout(LOOKUP_TIMEOUT, client.get_owner(request)).await {
            Ok(Ok(response)) => {
                self.warned.store(false, Ordering::Relaxed);
                Ok(response.into_inner().owner.map(|owner| StoreProfile {
                    store_name: owner.store_name,
                    business_category: match convert::category_from_proto(owner.business_category) {
                        EnumInput::Known(category) => Some(category),
                        _ => None,
                    },
                    region: owner.region,
                }))
            }
            Ok(Err(status)) if status.code() == Code::NotFound => Ok(None),
            Ok(Err(status)) => self.unknown(owner_id, &format!("user GetOwner: {status}")),
            Err(_) => self.unknown(owner_id, "user GetOwner timed out"),
        }
    }

    /// The owner's store name as the user service has it now (empty when the owner has none or
    /// is unknown to it), asked fresh. Fails when the user service cannot answer.
    pub async fn store_name(&self, owner_id: &str) -> Result<String, PeerError> {
        let unavailable =
            |source: Box<dyn std::error::Error + Send + Sync>| PeerError::Unavailable { peer: PEER, source };
        let channel = self.peers.channel(PEER).map_err(|e| unavailable(Box::new(e)))?;
        let mut request = tonic::Request::new(GetOwnerRequest { owner_id: owner_id.to_owned() });
        request.set_timeout(PUBLISH_LOOKUP_TIMEOUT);
        let mut client = UserServiceClient::new(channel);
        match tokio::time::timeout(PUBLISH_LOOKUP_TIMEOUT, client.get_owner(request)).await {
            Ok(Ok(response)) => Ok(response.into_inner().owner.map(|owner| owner.store_name).unwrap_or_default()),
            Ok(Err(status)) if status.code() == Code::NotFound => Ok(String::new()),
            Ok(Err(status)) => Err(super::peer_error(PEER, status)),
            Err(elapsed) => Err(unavailable(Box::new(elapsed))),
        }
    }

    /// The owner's store, or `None` when it cannot be known right now. Never fails and never
    /// takes long: a work request is sent without the profile rather than delayed or refused.
    pub async fn store_profile(&self, owner_id: &str) -> Option<StoreProfile> {
        let key = format!("store-profile:v1:{owner_id}");
        self.cache
            .get_or_load_optional(&key, PROFILE_TTL, Some(UNKNOWN_TTL), || self.fetch(owner_id))
            .await
            .ok()
            .flatten()
    }
}
