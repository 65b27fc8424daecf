//! Owner profiles from the user service (`kem.user.v1.UserService/GetOwner` over the mesh; the
//! method allows the distribution workload), cached briefly: partner campaigns need the store's
//! name, business number and phone.

use std::sync::Arc;
use std::time::Duration;

use kem_kit::cache::{Cache, CacheAside};
use kem_kit::runtime::Peers;
use kem_proto::kem::user::v1::GetOwnerRequest;
use kem_proto::kem::user::v1::user_service_client::UserServiceClient;
use tonic::Code;

use crate::domain::{ErrorReason, Failure};
use crate::infra::channels::OwnerProfile;

/// Owner profiles looked up over the mesh.
#[derive(Clone)]
pub struct MeshOwners {
    peers: Peers,
    cache: CacheAside,
    ttl: Duration,
    timeout: Duration,
}

impl std::fmt::Debug for MeshOwners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshOwners").field("ttl", &self.ttl).field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

/// Why a lookup failed (cloneable for the cache's single-flight).
#[derive(Debug, Clone)]
struct LookupError(Failure);

impl MeshOwners {
    /// Looks profiles up through the `user` peer, caching them for `ttl`; each lookup waits at
    /// most `timeout`.
    pub fn new(peers: Peers, cache: Arc<dyn Cache>, ttl: Duration, timeout: Duration) -> MeshOwners {
        MeshOwners { peers, cache: CacheAside::new(cache), ttl, timeout }
    }

    async fn fetch(&self, owner_id: &str) -> Result<OwnerProfile, LookupError> {
        let unavailable = |why: String| {
            LookupError(Failure::new(
                ErrorReason::ProviderUnavailable,
                format!("the store's profile cannot be read from the user service now: {why}"),
                true,
            ))
        };
        let channel = self.peers.channel("user").map_err(|e| unavailable(e.to_string()))?;
        let mut request = tonic::Request::new(GetOwnerRequest { owner_id: owner_id.to_owned() });
        request.set_timeout(self.timeout);
        let mut client = UserServiceClient::new(channel);
        match tokio::time::timeout(self.timeout, client.get_owner(request)).await {
            Ok(Ok(response)) => {
                let owner = response.into_inner().owner.unwrap_or_default();
                Ok(OwnerProfile {
                    name: owner.name,
                    store_name: owner.store_name,
                    phone: owner.phone,
                    business_number: owner.business_number,
                    region_code: owner.region_code,
                })
            }
            Ok(Err(status)) if status.code() == Code::NotFound => Err(LookupError(Failure::new(
                ErrorReason::NotConfigured,
                format!("owner {owner_id} no longer exists, so there is no store to advertise"),
                false,
            ))),
            Ok(Err(status)) => Err(unavailable(format!("{:?}: {}", status.code(), status.message()))),
            Err(_) => Err(unavailable(format!("no answer within {:?}", self.timeout))),
        }
    }

    /// The profile of `owner_id`; a failure says whether waiting may help.
    pub async fn owner(&self, owner_id: &str) -> Result<OwnerProfile, Failure> {
        let key = format!("owner-profile:v1:{owner_id}");
        self.cache.get_or_load(&key, self.ttl, || self.fetch(owner_id)).await.map_err(|LookupError(failure)| failure)
    }
}
