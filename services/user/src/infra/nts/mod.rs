//! The NTS business status API (국세청 사업자등록 상태조회, PROVIDERS.md §1): the real client over
//! the kit's [`ProviderClient`] (timeouts, safe retries, circuit breaker) and the built-in local
//! stand-in for `kem up` ([`LocalNts`], kept in [`infra::local`](crate::infra::local)). Both
//! produce the same wire entry, read into a [`Verification`] by one function, so the stand-in
//! exercises the same mapping as production.

mod client;
pub mod wire;

use std::time::SystemTime;

use kem_kit::external::{
    LOCAL_PREFIX, ProviderClient, ProviderConfig, ProviderConfigError, ProviderError, ProviderMode,
};
use kem_kit::store::millis;
use kem_mesh::breaker::BreakerConfig;

pub use crate::infra::local::nts::{CLOSED_ON, EXAMPLES, LocalNts};
pub use client::NtsClient;

use crate::domain::{BusinessNumber, BusinessStatus, ProviderSource, Verification};
use wire::StatusEntry;

/// Provider name: breaker, log field, metric label, and the `ProviderInfo.name` of real answers.
pub const PROVIDER: &str = "nts";
/// The production base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.odcloud.kr/api";
/// What real answers name as the API version.
pub const API_VERSION: &str = "nts-businessman/v1";

/// The NTS client settings of the production design: 5 s per attempt (3 s to connect), 3
/// attempts within 8 s (the lookup is read-only, so retrying is safe), and a breaker that opens
/// when 5% of the calls of the last 60 s failed (at least 20 calls seen), staying open 30 s.
pub fn provider_config(base_url: impl Into<String>) -> ProviderConfig {
    let mut config = ProviderConfig::new(PROVIDER, base_url);
    config.timeout = std::time::Duration::from_secs(5);
    config.connect_timeout = std::time::Duration::from_secs(3);
    config.max_attempts = 3;
    config.deadline = std::time::Duration::from_secs(8);
    // A status answer for 100 numbers is a few tens of KiB.
    config.max_body_bytes = 1 << 20;
    config.breaker = BreakerConfig {
        failure_rate_threshold: 0.05,
        minimum_calls: 20,
        window: std::time::Duration::from_secs(60),
        window_buckets: 12,
        open_duration: std::time::Duration::from_secs(30),
        half_open_probes: 3,
    };
    config
}

/// Why NTS gave no usable answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NtsError {
    /// The call failed (unreachable, timeout, breaker open, quota, credentials, error body).
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// NTS answered 200 but outside its contract (our number missing, an unknown status code).
    #[error("NTS answered outside its contract: {0}")]
    Contract(String),
}

impl NtsError {
    /// The daily quota of the service key is used up.
    pub fn is_quota(&self) -> bool {
        matches!(self, NtsError::Provider(ProviderError::RateLimited { .. }))
    }
}

/// Where verifications come from.
#[derive(Debug, Clone)]
pub enum NtsProvider {
    /// The real API.
    Real(NtsClient),
    /// The labelled local stand-in.
    Local(LocalNts),
}

impl NtsProvider {
    /// The provider `mode` selects (see [`ProviderMode::select`]).
    pub fn new(mode: &ProviderMode) -> Result<NtsProvider, ProviderConfigError> {
        Ok(match mode {
            ProviderMode::Real { config, credentials } => {
                NtsProvider::Real(NtsClient::new(ProviderClient::new(config.clone())?, credentials.clone()))
            }
            ProviderMode::Local { .. } => NtsProvider::Local(LocalNts),
        })
    }

    /// `nts` or `local:nts`.
    pub fn label(&self) -> String {
        match self {
            NtsProvider::Real(_) => PROVIDER.to_owned(),
            NtsProvider::Local(_) => format!("{LOCAL_PREFIX}{PROVIDER}"),
        }
    }

    /// The real client, if this is the real provider (breaker state and counters for metrics).
    pub fn client(&self) -> Option<&ProviderClient> {
        match self {
            NtsProvider::Real(client) => Some(client.provider()),
            NtsProvider::Local(_) => None,
        }
    }

    /// Looks `number` up now, stamping the answer `at` (the caller's clock).
    pub async fn lookup(&self, number: &BusinessNumber, at: SystemTime) -> Result<Verification, NtsError> {
        let (entry, source) = match self {
            NtsProvider::Real(client) => {
                let entries = client.status(&[number.as_str()]).await?;
                let entry = entries
                    .into_iter()
                    .find(|e| e.b_no == number.as_str())
                    .ok_or_else(|| NtsError::Contract(format!("the answer has no entry for {}", number.as_str())))?;
                let source = ProviderSource { local: false, name: PROVIDER.to_owned(), model: API_VERSION.to_owned() };
                (entry, source)
            }
            NtsProvider::Local(local) => {
                let entry = local.status(number);
                let source = ProviderSource { local: true, name: self.label(), model: String::new() };
                tracing::debug!(provider = %source.name, business_number = %number, status = %entry.b_stt_cd,
                    "LOCAL stand-in answered a business status lookup (demo data, not NTS)");
                (entry, source)
            }
        };
        verification(entry, source, at)
    }
}

/// Reads one wire entry as a verification.
fn verification(entry: StatusEntry, source: ProviderSource, at: SystemTime) -> Result<Verification, NtsError> {
    let status = BusinessStatus::from_nts_code(&entry.b_stt_cd)
        .ok_or_else(|| NtsError::Contract(format!("unknown b_stt_cd {:?} for {}", entry.b_stt_cd, entry.b_no)))?;
    let unregistered = status == BusinessStatus::Unregistered;
    Ok(Verification {
        business_number: entry.b_no,
        status,
        nts_status_code: entry.b_stt_cd,
        nts_status_text: entry.b_stt,
        tax_type: entry.tax_type,
        // An unregistered number has no tax type code, whatever the text says.
        tax_type_code: if unregistered { String::new() } else { entry.tax_type_cd },
        end_date: entry.end_dt,
        unit_taxation_closure: entry.utcc_yn.eq_ignore_ascii_case("Y"),
        verified_at_ms: millis(at),
        source,
        cached: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_production_breaker_opens_at_five_percent() {
        let config = provider_config(DEFAULT_BASE_URL);
        assert_eq!(config.breaker.failure_rate_threshold, 0.05);
        assert!(config.breaker.validate().is_ok());
        assert!(ProviderClient::new(config).is_ok());
    }

    #[tokio::test]
    async fn local_answers_are_labelled_and_mapped() {
        let nts = NtsProvider::new(&ProviderMode::Local { provider: PROVIDER.to_owned() }).expect("local");
        let closed = nts
            .lookup(&BusinessNumber::parse("000-03-00001").expect("valid"), SystemTime::now())
            .await
            .expect("answer");
        assert_eq!(closed.status, BusinessStatus::Closed);
        assert_eq!(closed.closed_date(), "2024-12-31");
        assert!(closed.source.local);
        assert_eq!(closed.source.name, "local:nts");
        let unknown = nts
            .lookup(&BusinessNumber::parse("000-00-00000").expect("valid"), SystemTime::now())
            .await
            .expect("answer");
        assert_eq!((unknown.status, unknown.tax_type_code.as_str()), (BusinessStatus::Unregistered, ""));
    }

    #[test]
    fn unknown_status_codes_are_contract_violations() {
        let entry = StatusEntry { b_no: "1248100998".into(), b_stt_cd: "09".into(), ..StatusEntry::default() };
        let source = ProviderSource { local: false, name: PROVIDER.into(), model: String::new() };
        assert!(matches!(verification(entry, source, SystemTime::now()), Err(NtsError::Contract(_))));
    }
}
