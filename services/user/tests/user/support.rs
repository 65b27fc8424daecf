//! What every user-service test builds on: a started service over a fresh PostgreSQL database
//! and Redis prefix, request builders, and readers of `google.rpc` error details.

use std::sync::Arc;
use std::time::Duration;

use kem_kit::clock::ManualClock;
use kem_kit::jwt::{Jwk, Jwks, Verifier};
use kem_kit::runtime::with_owner;
use kem_kit::store::query;
use kem_proto::google::rpc::{BadRequest, ErrorInfo, RetryInfo};
use kem_proto::kem::common::v1::BusinessCategory;
use kem_proto::kem::user::v1 as pb;
use kem_proto::kem::user::v1::user_service_server::UserService;
use kem_testkit::eventually;
use kem_testkit::service::TestService;
use kem_testkit::status::detail;
use kem_user::{UserApi, UserConfig};
use tonic::Request;

/// A password the policy accepts.
pub const PASSWORD: &str = "correct-horse-7";
/// Checksum-valid numbers (PROVIDERS.md §1 worked examples).
pub const ACTIVE: &str = "124-81-00998";
/// Another checksum-valid number.
pub const OTHER: &str = "220-81-62517";

/// A checksum-valid number made from `first_nine` digits.
pub fn valid_number(first_nine: &str) -> String {
    let digits: Vec<u8> = first_nine.bytes().map(|b| b - b'0').collect();
    let mut nine = [0u8; 9];
    nine.copy_from_slice(&digits);
    format!("{first_nine}{}", kem_user::domain::business_number::check_digit(&nine))
}

/// A started user service.
pub struct Harness {
    /// Its platform context (database, Redis prefix).
    pub svc: TestService,
    /// The API, called directly.
    pub api: UserApi,
}

impl Harness {
    /// Starts the service with `config`.
    pub async fn start(config: UserConfig) -> Harness {
        Harness::start_with(config, None).await
    }

    /// Starts the service with `config`, reading "now" from `clock` (its replicas too): a test
    /// about time moves the clock instead of sleeping.
    pub async fn with_clock(config: UserConfig, clock: ManualClock) -> Harness {
        Harness::start_with(config, Some(clock)).await
    }

    async fn start_with(config: UserConfig, clock: Option<ManualClock>) -> Harness {
        let mut svc = TestService::new("user").await;
        if let Some(clock) = clock {
            svc.ctx.clock = Arc::new(clock);
        }
        wait_for_cache(&svc).await;
        let api = kem_user::start_api(svc.ctx.clone(), config).await.expect("the user service starts");
        Harness { svc, api }
    }

    /// A second replica over the same database and cache.
    pub async fn replica(&self, config: UserConfig) -> UserApi {
        kem_user::start_api(self.svc.ctx.clone(), config).await.expect("a second replica starts")
    }

    /// Rows in `owners`.
    pub async fn owner_rows(&self) -> i64 {
        count(&self.svc.ctx.store, "SELECT COUNT(*) AS n FROM owners").await
    }

    /// Drops the database and Redis keys.
    pub async fn cleanup(self) {
        self.svc.cleanup().await;
    }
}

/// The Redis cache connects in the background and fails fast until then (degrading to the
/// database); tests that look at Redis want it connected first.
async fn wait_for_cache(svc: &TestService) {
    let cache = &svc.ctx.cache;
    eventually("Redis connects", Duration::from_secs(10), || async {
        cache.set("probe", bytes::Bytes::from_static(b"1"), Duration::from_millis(1)).await.is_ok()
    })
    .await;
}

/// `SELECT COUNT(*) AS n …`.
pub async fn count(store: &kem_kit::store::Store, sql: &'static str) -> i64 {
    query(sql).fetch_one(store).await.expect("count").get::<i64>("n").expect("n")
}

/// Test settings (cheap password hashing) over the local NTS stand-in.
pub fn config() -> UserConfig {
    UserConfig::for_tests()
}

/// A complete, valid registration.
pub fn registration(email: &str, business_number: &str) -> pb::RegisterRequest {
    pb::RegisterRequest {
        email: email.to_owned(),
        password: PASSWORD.to_owned(),
        name: "김사장".to_owned(),
        phone: "010-1234-5678".to_owned(),
        store_name: "행복카페 역삼점".to_owned(),
        business_category: BusinessCategory::Cafe as i32,
        region: "서울특별시 강남구 역삼동".to_owned(),
        region_code: "1168010100".to_owned(),
        business_number: business_number.to_owned(),
    }
}

/// Registers and returns the owner.
pub async fn register(api: &UserApi, email: &str, business_number: &str) -> pb::Owner {
    api.register(Request::new(registration(email, business_number)))
        .await
        .unwrap_or_else(|s| panic!("register {email}: {s:?}"))
        .into_inner()
        .owner
        .expect("owner")
}

/// Signs in and returns the pair.
pub async fn login(api: &UserApi, email: &str, password: &str) -> Result<pb::TokenPair, tonic::Status> {
    api.login(Request::new(pb::LoginRequest { email: email.to_owned(), password: password.to_owned() }))
        .await
        .map(|r| r.into_inner().token_pair.expect("token pair"))
}

/// Refreshes.
pub async fn refresh(api: &UserApi, token: &str) -> Result<pb::TokenPair, tonic::Status> {
    api.refresh(Request::new(pb::RefreshRequest { refresh_token: token.to_owned() }))
        .await
        .map(|r| r.into_inner().token_pair.expect("token pair"))
}

/// A request made by the signed-in `owner_id` (as the gateway forwards it).
pub fn as_owner<T>(message: T, owner_id: &str) -> Request<T> {
    with_owner(Request::new(message), owner_id)
}

/// `ErrorInfo` of a status.
pub fn error_info(status: &tonic::Status) -> ErrorInfo {
    kem_proto::status::error_info_of(status).unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"))
}

/// `ErrorInfo.reason`, checking the domain.
pub fn reason(status: &tonic::Status) -> String {
    let info = error_info(status);
    assert_eq!(info.domain, "kem.user", "{status:?}");
    info.reason
}

/// The `BadRequest` field names of a status.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    let request: BadRequest =
        detail(status, "google.rpc.BadRequest").unwrap_or_else(|| panic!("no BadRequest in {status:?}"));
    request.field_violations.into_iter().map(|v| v.field).collect()
}

/// The `RetryInfo` delay of a status.
pub fn retry_delay(status: &tonic::Status) -> Option<Duration> {
    let info: RetryInfo = detail(status, "google.rpc.RetryInfo")?;
    let d = info.retry_delay?;
    Some(Duration::new(u64::try_from(d.seconds).ok()?, u32::try_from(d.nanos).ok()?))
}

/// The JWKS of GetSigningKeys exactly as the gateway builds it (`gateway::auth::UserServiceKeys`).
pub fn jwks(response: &pb::GetSigningKeysResponse) -> Jwks {
    Jwks {
        keys: response
            .keys
            .iter()
            .map(|k| Jwk {
                kty: k.kty.clone(),
                crv: k.crv.clone(),
                x: k.x.clone(),
                y: k.y.clone(),
                alg: Some(k.alg.clone()).filter(|a| !a.is_empty()),
                use_: Some(k.r#use.clone()).filter(|u| !u.is_empty()),
                kid: k.kid.clone(),
            })
            .collect(),
    }
}

/// A verifier trusting what GetSigningKeys publishes now, with the gateway's issuer/audience.
pub async fn verifier(api: &UserApi) -> Verifier {
    let keys = api.get_signing_keys(Request::new(pb::GetSigningKeysRequest {})).await.expect("keys").into_inner();
    assert_eq!((keys.issuer.as_str(), keys.audience.as_str()), ("kem-user", "kem-api"));
    Verifier::new(&jwks(&keys), "kem-user", "kem-api").expect("the published keys are valid")
}

/// The `kid` header of a JWT.
pub fn kid_of(token: &str) -> String {
    use base64::Engine as _;
    let header = token.split('.').next().expect("header");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).expect("base64url");
    let json: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    json["kid"].as_str().expect("kid").to_owned()
}
