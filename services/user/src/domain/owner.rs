//! The owner account as the service works with it (the password hash never leaves the
//! repository's credential lookups).

use serde::{Deserialize, Serialize};

use super::{ProfileField, Verification};

/// An owner's profile (cacheable: no credentials in it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// UUID, lower-case hyphenated.
    pub id: String,
    /// Normalized email.
    pub email: String,
    /// 대표자명.
    pub name: String,
    /// E.164 phone.
    pub phone: String,
    /// 상호.
    pub store_name: String,
    /// `kem.common.v1.BusinessCategory` value.
    pub business_category: i32,
    /// Region text.
    pub region: String,
    /// 10-digit 법정동 code or empty.
    pub region_code: String,
    /// 10 digits.
    pub business_number: String,
    /// The NTS verification that admitted the owner.
    pub verification: Verification,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
    /// Last change, ms since the epoch.
    pub updated_at_ms: i64,
}

/// What registration stores (validated and normalized).
#[derive(Debug, Clone)]
pub struct NewOwner {
    /// The profile (id and times included).
    pub owner: Owner,
    /// argon2id PHC string.
    pub password_hash: String,
}

/// Validated new values of the fields an UpdateMe names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChanges {
    /// New name.
    pub name: Option<String>,
    /// New E.164 phone.
    pub phone: Option<String>,
    /// New store name.
    pub store_name: Option<String>,
    /// New category.
    pub business_category: Option<i32>,
    /// New region.
    pub region: Option<String>,
    /// New region code (empty clears it).
    pub region_code: Option<String>,
    /// New (normalized) email.
    pub email: Option<String>,
}

impl ProfileChanges {
    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == ProfileChanges::default()
    }

    /// `owner` with the changes applied (the `updated_at_ms` is the caller's to set).
    pub fn apply(&self, owner: &Owner) -> Owner {
        let mut next = owner.clone();
        if let Some(v) = &self.name {
            next.name = v.clone();
        }
        if let Some(v) = &self.email {
            next.email = v.clone();
        }
        if let Some(v) = &self.phone {
            next.phone = v.clone();
        }
        if let Some(v) = &self.store_name {
            next.store_name = v.clone();
        }
        if let Some(v) = self.business_category {
            next.business_category = v;
        }
        if let Some(v) = &self.region {
            next.region = v.clone();
        }
        if let Some(v) = &self.region_code {
            next.region_code = v.clone();
        }
        next
    }

    /// The fields set, for logs.
    pub fn fields(&self) -> Vec<ProfileField> {
        let mut fields = Vec::new();
        let mut add = |set: bool, field| {
            if set {
                fields.push(field)
            }
        };
        add(self.name.is_some(), ProfileField::Name);
        add(self.phone.is_some(), ProfileField::Phone);
        add(self.store_name.is_some(), ProfileField::StoreName);
        add(self.business_category.is_some(), ProfileField::BusinessCategory);
        add(self.region.is_some(), ProfileField::Region);
        add(self.region_code.is_some(), ProfileField::RegionCode);
        add(self.email.is_some(), ProfileField::Email);
        fields
    }
}
