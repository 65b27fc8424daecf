//! Service values → contract messages.

use std::time::Duration;

use kem_proto::kem::common::v1::{ProviderInfo, ProviderKind};
use kem_proto::kem::user::v1 as pb;

use crate::app::{Revocation, TokenPair};
use crate::domain::{BusinessStatus, Owner, Verification};
use crate::infra::keyring::PublishedKey;

/// Epoch milliseconds or a wall-clock time as a protobuf timestamp: the kit's one conversion.
pub use kem_kit::clock::{timestamp_from_ms as timestamp_ms, timestamp_from_time as timestamp};

/// A protobuf duration.
pub fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// The contract's status value.
fn status(status: BusinessStatus) -> pb::BusinessStatus {
    match status {
        BusinessStatus::Active => pb::BusinessStatus::Active,
        BusinessStatus::Suspended => pb::BusinessStatus::Suspended,
        BusinessStatus::Closed => pb::BusinessStatus::Closed,
        BusinessStatus::Unregistered => pb::BusinessStatus::Unregistered,
    }
}

/// A verification as the contract shows it.
pub fn verification(v: &Verification) -> pb::BusinessVerification {
    pb::BusinessVerification {
        business_number: v.business_number.clone(),
        status: status(v.status) as i32,
        nts_status_code: v.nts_status_code.clone(),
        nts_status_text: v.nts_status_text.clone(),
        tax_type: v.tax_type.clone(),
        tax_type_code: v.tax_type_code.clone(),
        closed_date: v.closed_date(),
        unit_taxation_closure: v.unit_taxation_closure,
        verified_at: Some(timestamp_ms(v.verified_at_ms)),
        provider: Some(ProviderInfo {
            kind: if v.source.local { ProviderKind::Local } else { ProviderKind::External } as i32,
            name: v.source.name.clone(),
            model: v.source.model.clone(),
            request_id: String::new(),
            cached: v.cached,
        }),
    }
}

/// An owner as the contract shows it.
pub fn owner(o: &Owner) -> pb::Owner {
    pb::Owner {
        owner_id: o.id.clone(),
        email: o.email.clone(),
        name: o.name.clone(),
        phone: o.phone.clone(),
        store_name: o.store_name.clone(),
        business_category: o.business_category,
        region: o.region.clone(),
        region_code: o.region_code.clone(),
        business_number: o.business_number.clone(),
        business_verification: Some(verification(&o.verification)),
        create_time: Some(timestamp_ms(o.created_at_ms)),
        update_time: Some(timestamp_ms(o.updated_at_ms)),
    }
}

/// A token pair as the contract shows it.
pub fn token_pair(pair: TokenPair) -> pb::TokenPair {
    pb::TokenPair {
        access_token: pair.access_token,
        token_type: "Bearer".to_owned(),
        expires_in: Some(duration(pair.access_ttl)),
        refresh_token: pair.refresh_token,
        refresh_expires_in: Some(duration(pair.refresh_ttl)),
    }
}

/// A published key as a JWK message.
pub fn jwk(key: &PublishedKey) -> pb::JsonWebKey {
    pb::JsonWebKey {
        kid: key.jwk.kid.clone(),
        kty: key.jwk.kty.clone(),
        crv: key.jwk.crv.clone(),
        x: key.jwk.x.clone(),
        y: key.jwk.y.clone(),
        alg: key.jwk.alg.clone().unwrap_or_else(|| kem_kit::jwt::ALGORITHM.to_owned()),
        r#use: key.jwk.use_.clone().unwrap_or_else(|| "sig".to_owned()),
        not_after: key.not_after.map(timestamp),
    }
}

/// A revocation as the contract shows it.
pub fn revocation(r: &Revocation) -> pb::AccessRevocation {
    match r {
        Revocation::Owner { owner_id, issued_before, expires_at } => pb::AccessRevocation {
            owner_id: owner_id.clone(),
            session_id: String::new(),
            issued_before: Some(timestamp(*issued_before)),
            expire_time: Some(timestamp(*expires_at)),
        },
        Revocation::Session { owner_id, session_id, expires_at } => pb::AccessRevocation {
            owner_id: owner_id.clone(),
            session_id: session_id.clone(),
            issued_before: None,
            expire_time: Some(timestamp(*expires_at)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_split_milliseconds() {
        let ts = timestamp_ms(1_700_000_000_123);
        assert_eq!((ts.seconds, ts.nanos), (1_700_000_000, 123_000_000));
        let before_epoch = timestamp_ms(-1);
        assert_eq!((before_epoch.seconds, before_epoch.nanos), (-1, 999_000_000));
        assert_eq!(duration(Duration::from_secs(900)).seconds, 900);
    }
}
