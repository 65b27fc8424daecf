//! Owner profiles: GetMe, GetOwner (mesh-internal) and UpdateMe, read through the cache.

use std::time::Duration;

use super::{UserCore, UserError};
use crate::app::ids::is_uuid;
use crate::domain::{FieldViolation, Owner, ProfileChanges, ProfileField, phone, profile};
use crate::infra::repository::ProfileUpdate;

/// How long "no such owner" is cached (protects the database from lookups of absent ids).
const NOT_FOUND_TTL: Duration = Duration::from_secs(30);

/// Cache key of an owner's profile.
pub(super) fn owner_key(owner_id: &str) -> String {
    format!("owner:v1:{owner_id}")
}

/// The new values an UpdateMe carries (the request's `owner`, not yet validated).
#[derive(Debug, Clone, Default)]
pub struct ProfileInput {
    /// `owner.owner_id` as sent (must be empty or the caller's).
    pub owner_id: String,
    /// New name.
    pub name: String,
    /// New phone.
    pub phone: String,
    /// New store name.
    pub store_name: String,
    /// New category.
    pub business_category: i32,
    /// New region.
    pub region: String,
    /// New region code.
    pub region_code: String,
    /// New email.
    pub email: String,
}

impl UserCore {
    /// The owner with `owner_id` (cache-aside, "not found" cached briefly).
    pub async fn owner(&self, owner_id: &str) -> Result<Owner, UserError> {
        // Ids are UUIDs: anything else cannot exist, and must not become a cache key.
        if !is_uuid(owner_id) {
            return Err(UserError::OwnerNotFound);
        }
        let found = self
            .owners
            .get_or_load_optional(&owner_key(owner_id), self.config.owner_cache_ttl, Some(NOT_FOUND_TTL), || async {
                self.repo.owner(owner_id).await.map_err(UserError::from)
            })
            .await?;
        found.ok_or(UserError::OwnerNotFound)
    }

    /// GetOwner (mesh-internal).
    pub async fn get_owner(&self, owner_id: &str) -> Result<Owner, UserError> {
        let owner_id = owner_id.trim();
        if owner_id.is_empty() {
            return Err(UserError::field("ownerId", "owner id is required"));
        }
        self.owner(owner_id).await
    }

    /// UpdateMe: validates the mask and the named values (all problems at once), writes only the
    /// named fields, refreshes the cache.
    pub async fn update_me(&self, owner_id: &str, input: ProfileInput, mask: &[String]) -> Result<Owner, UserError> {
        let fields = profile::parse_mask(mask).map_err(UserError::invalid)?;
        let mut violations = Vec::new();
        if !input.owner_id.is_empty() && input.owner_id != owner_id {
            violations.push(FieldViolation::new("owner.ownerId", "must be empty or your own owner id"));
        }
        let mut changes = ProfileChanges::default();
        for field in fields {
            let path = format!("owner.{}", field.json_name());
            let mut fail = |description: String| violations.push(FieldViolation::new(path.clone(), description));
            match field {
                ProfileField::Name => match profile::name(&input.name) {
                    Ok(v) => changes.name = Some(v),
                    Err(e) => fail(e),
                },
                ProfileField::Phone => match phone::normalize(&input.phone) {
                    Ok(v) => changes.phone = Some(v),
                    Err(e) => fail(e.to_owned()),
                },
                ProfileField::StoreName => match profile::store_name(&input.store_name) {
                    Ok(v) => changes.store_name = Some(v),
                    Err(e) => fail(e),
                },
                ProfileField::BusinessCategory => match profile::business_category(input.business_category) {
                    Ok(v) => changes.business_category = Some(v),
                    Err(e) => fail(e),
                },
                ProfileField::Region => match profile::region(&input.region) {
                    Ok(v) => changes.region = Some(v),
                    Err(e) => fail(e),
                },
                ProfileField::RegionCode => match profile::region_code(&input.region_code) {
                    Ok(v) => changes.region_code = Some(v),
                    Err(e) => fail(e),
                },
                ProfileField::Email => match crate::domain::email::normalize(&input.email) {
                    Ok(v) => changes.email = Some(v),
                    Err(e) => fail(e.to_string()),
                },
            }
        }
        if !violations.is_empty() {
            return Err(UserError::invalid(violations));
        }
        if !is_uuid(owner_id) {
            return Err(UserError::OwnerNotFound);
        }
        let key = owner_key(owner_id);
        match self.repo.update_profile(owner_id, &changes, self.now_ms()).await? {
            ProfileUpdate::Updated => {}
            ProfileUpdate::OwnerGone => return Err(UserError::OwnerNotFound),
            ProfileUpdate::EmailTaken => return Err(UserError::EmailTaken),
        }
        // Drop the old entry first: if the re-read below fails, readers load from the database.
        self.owners.invalidate(&key).await;
        let owner = self.repo.owner(owner_id).await?.ok_or(UserError::OwnerNotFound)?;
        self.owners.put(&key, &owner, self.config.owner_cache_ttl).await;
        tracing::info!(%owner_id, fields = ?changes.fields(), "owner profile updated");
        Ok(owner)
    }
}
