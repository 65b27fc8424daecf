//! Register: validate everything locally, then NTS, then store.

use super::{UserCore, UserError};
use crate::app::ids::uuid_v4;
use crate::domain::{BusinessNumber, BusinessStatus, FieldViolation, NewOwner, Owner, email, password, phone, profile};

/// A registration as submitted (not yet validated).
#[derive(Clone)]
pub struct Registration {
    /// Email.
    pub email: String,
    /// Password in clear (never logged: `Debug` hides it).
    pub password: String,
    /// 대표자명.
    pub name: String,
    /// Phone in any accepted Korean format.
    pub phone: String,
    /// 상호.
    pub store_name: String,
    /// `BusinessCategory` value.
    pub business_category: i32,
    /// Region text.
    pub region: String,
    /// Optional 법정동 code.
    pub region_code: String,
    /// Business number, hyphens allowed.
    pub business_number: String,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration").field("email", &self.email).finish_non_exhaustive()
    }
}

/// A registration that passed every local rule.
struct Valid {
    email: String,
    password: String,
    name: String,
    phone: String,
    store_name: String,
    business_category: i32,
    region: String,
    region_code: String,
    business_number: BusinessNumber,
}

fn validate(r: Registration) -> Result<Valid, UserError> {
    let mut violations = Vec::new();
    let mut check = |field: &str, result: Result<String, String>| match result {
        Ok(value) => value,
        Err(description) => {
            violations.push(FieldViolation::new(field, description));
            String::new()
        }
    };
    let email = check("email", email::normalize(&r.email).map_err(str::to_owned));
    let password_check = password::check(&r.password, &email).map(|()| String::new()).map_err(str::to_owned);
    check("password", password_check);
    let name = check("name", profile::name(&r.name));
    let phone = check("phone", phone::normalize(&r.phone).map_err(str::to_owned));
    let store_name = check("storeName", profile::store_name(&r.store_name));
    let business_category = profile::business_category(r.business_category);
    let region = check("region", profile::region(&r.region));
    let region_code = check("regionCode", profile::region_code(&r.region_code));
    let business_number = BusinessNumber::parse(&r.business_number);
    if let Err(description) = &business_category {
        violations.push(FieldViolation::new("businessCategory", description.clone()));
    }
    if let Err(error) = &business_number {
        violations.push(FieldViolation::new("businessNumber", error.to_string()));
    }
    match (business_category, business_number) {
        (Ok(business_category), Ok(business_number)) if violations.is_empty() => Ok(Valid {
            email,
            password: r.password,
            name,
            phone,
            store_name,
            business_category,
            region,
            region_code,
            business_number,
        }),
        _ => Err(UserError::invalid(violations)),
    }
}

impl UserCore {
    /// Register: local validation (all fields at once, the business number checksum included),
    /// then the email (cheap, before spending an NTS call), then NTS (only 계속사업자 passes),
    /// then the password hash and the insert (the unique email decides concurrent attempts).
    /// Nothing is written unless every step passed.
    pub async fn register(&self, registration: Registration) -> Result<Owner, UserError> {
        let valid = validate(registration)?;
        if self.repo.email_registered(&valid.email).await? {
            return Err(UserError::EmailTaken);
        }
        let verification = self.verifier.verify(&valid.business_number).await.map_err(|error| {
            // Whatever kept NTS from answering (quota included), registration can only be retried.
            UserError::NtsUnavailable { retry_after: error.retry_after(), cause: error }
        })?;
        if verification.status != BusinessStatus::Active {
            return Err(UserError::BusinessNotActive { verification: Box::new(verification) });
        }
        let password_hash = self.hasher.hash(valid.password).await?;
        let now = self.now_ms();
        let owner = Owner {
            id: uuid_v4(),
            email: valid.email,
            name: valid.name,
            phone: valid.phone,
            store_name: valid.store_name,
            business_category: valid.business_category,
            region: valid.region,
            region_code: valid.region_code,
            business_number: valid.business_number.as_str().to_owned(),
            verification,
            created_at_ms: now,
            updated_at_ms: now,
        };
        let new = NewOwner { owner, password_hash };
        if !self.repo.insert_owner(&new).await? {
            return Err(UserError::EmailTaken);
        }
        tracing::info!(owner_id = %new.owner.id, source = %new.owner.verification.source.name, "owner registered");
        self.owners.put(&super::profile::owner_key(&new.owner.id), &new.owner, self.config.owner_cache_ttl).await;
        Ok(new.owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration() -> Registration {
        Registration {
            email: " Owner@Example.com ".into(),
            password: "correct-horse-1".into(),
            name: "김사장".into(),
            phone: "010-1234-5678".into(),
            store_name: "행복카페".into(),
            business_category: 2,
            region: "서울특별시 강남구 역삼동".into(),
            region_code: "1168010100".into(),
            business_number: "124-81-00998".into(),
        }
    }

    #[test]
    fn a_valid_registration_is_normalized() {
        let valid = validate(registration()).expect("valid");
        assert_eq!(valid.email, "owner@example.com");
        assert_eq!(valid.phone, "+821012345678");
        assert_eq!(valid.business_number.as_str(), "1248100998");
        assert!(!format!("{:?}", registration()).contains("correct-horse"), "Debug hides the password");
    }

    #[test]
    fn every_invalid_field_is_reported_at_once_in_camel_case() {
        let bad = Registration {
            email: "nope".into(),
            password: "short".into(),
            name: String::new(),
            phone: "02-123-4567".into(),
            store_name: String::new(),
            business_category: 0,
            region: String::new(),
            region_code: "12".into(),
            business_number: "124-81-00997".into(),
        };
        let Err(UserError::InvalidArgument { violations, reason }) = validate(bad) else { panic!("invalid") };
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "email",
                "password",
                "name",
                "phone",
                "storeName",
                "region",
                "regionCode",
                "businessCategory",
                "businessNumber"
            ]
        );
        assert_eq!(reason, super::super::REASON_BUSINESS_NUMBER);
    }

    #[test]
    fn a_bad_checksum_alone_is_a_business_number_violation() {
        let r = Registration { business_number: "1248100990".into(), ..registration() };
        let Err(UserError::InvalidArgument { violations, reason }) = validate(r) else { panic!("invalid") };
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "businessNumber");
        assert!(violations[0].description.contains("check digit"), "{}", violations[0].description);
        assert_eq!(reason, "BUSINESS_NUMBER_CHECKSUM");
    }
}
