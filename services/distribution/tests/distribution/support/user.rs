//! The user service as distribution sees it: `GetOwner` over mesh mTLS, allowed for the
//! distribution workload by the contract's policy. Counts lookups.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use kem_proto::kem::common::v1 as common;
use kem_proto::kem::user::v1 as pb;
use kem_proto::kem::user::v1::user_service_server::UserService;
use tonic::{Request, Response, Status};

/// The owner every test uses.
pub const OWNER: &str = "owner-1";
/// Another owner (sees nothing of OWNER's).
pub const OTHER: &str = "owner-2";

/// The fake user service.
#[derive(Clone, Default)]
pub struct FakeUsers {
    owners: Arc<Mutex<HashMap<String, pb::Owner>>>,
    lookups: Arc<AtomicU64>,
}

impl FakeUsers {
    /// With OWNER registered (a cafe in Gangnam).
    pub fn new() -> FakeUsers {
        let users = FakeUsers::default();
        users.put(pb::Owner {
            owner_id: OWNER.into(),
            email: "owner@example.com".into(),
            name: "김사장".into(),
            phone: "+821012345678".into(),
            store_name: "카페 온도".into(),
            business_category: common::BusinessCategory::Cafe as i32,
            region: "서울특별시 강남구 역삼동".into(),
            region_code: "1168010100".into(),
            business_number: "1248100998".into(),
            ..Default::default()
        });
        users
    }

    /// Registers (or replaces) an owner.
    pub fn put(&self, owner: pb::Owner) {
        self.owners.lock().expect("owners").insert(owner.owner_id.clone(), owner);
    }

    /// GetOwner calls received.
    pub fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::SeqCst)
    }
}

#[tonic::async_trait]
impl UserService for FakeUsers {
    async fn get_owner(&self, request: Request<pb::GetOwnerRequest>) -> Result<Response<pb::GetOwnerResponse>, Status> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let id = &request.get_ref().owner_id;
        match self.owners.lock().expect("owners").get(id) {
            Some(owner) => Ok(Response::new(pb::GetOwnerResponse { owner: Some(owner.clone()) })),
            None => Err(Status::not_found("owner not found")),
        }
    }
}
