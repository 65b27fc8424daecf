//! Admission control at the edge: one adaptive concurrency limit per backend service
//! ([`kem_mesh::admission`]), so that overload is refused at the door in microseconds instead of
//! queueing inside the platform until the clients' deadlines pass.
//!
//! Per service, because their latencies differ by orders of magnitude (an entry takes
//! milliseconds, an analytics dashboard much longer) and one slow service must not shrink the
//! limit of the others. A refused request gets `503 Service Unavailable` with `Retry-After: 1`
//! and a `google.rpc.Status` body carrying `RetryInfo`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use kem_mesh::admission::{Admission, AdmissionConfig, Permit, Rejected};
use parking_lot::RwLock;

/// Per-service admission state of the edge. Cheap to clone (shared state).
#[derive(Clone)]
pub struct EdgeAdmission {
    config: Option<AdmissionConfig>,
    services: Arc<RwLock<HashMap<String, Admission>>>,
}

impl std::fmt::Debug for EdgeAdmission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeAdmission").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Default for EdgeAdmission {
    fn default() -> Self {
        EdgeAdmission::new(Some(AdmissionConfig::default()))
    }
}

impl EdgeAdmission {
    /// Admission per `config` for every service; `None` admits everything.
    pub fn new(config: Option<AdmissionConfig>) -> EdgeAdmission {
        EdgeAdmission { config, services: Arc::default() }
    }

    /// The controller of `service`, created on first use.
    fn of(&self, service: &str) -> Option<Admission> {
        let config = self.config?;
        if let Some(admission) = self.services.read().get(service) {
            return Some(admission.clone());
        }
        let mut services = self.services.write();
        Some(services.entry(service.to_owned()).or_insert_with(|| Admission::new(config)).clone())
    }

    /// Admits a request to `service` (now or after a short wait), or refuses it. `Ok(None)`:
    /// admission control is off.
    pub async fn admit(&self, service: &str) -> Result<Option<Permit>, Rejected> {
        let Some(admission) = self.of(service) else { return Ok(None) };
        if let Some(permit) = admission.try_admit() {
            return Ok(Some(permit));
        }
        admission.admit().await.map(Some)
    }

    /// Exposes every service's controller on `registry` (`edge_service` label).
    pub fn register_metrics(&self, registry: &kem_mesh::telemetry::Registry) {
        let services = self.services.clone();
        registry.register_collector(std::sync::Arc::new(move |out: &mut kem_mesh::telemetry::MetricWriter| {
            let all: Vec<(String, Admission)> =
                services.read().iter().map(|(name, admission)| (name.clone(), admission.clone())).collect();
            for (name, admission) in all {
                admission.write_metrics(out, &[("edge_service", &name)]);
            }
        }));
    }

    /// Limits and counters per service, for metrics and tests.
    pub fn snapshot(&self) -> Vec<(String, kem_mesh::admission::AdmissionSnapshot)> {
        let mut all: Vec<_> = self.services.read().iter().map(|(name, a)| (name.clone(), a.snapshot())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// The 503 for a refused request.
pub fn overloaded(rejected: &Rejected) -> Response {
    let body = serde_json::json!({
        "code": tonic::Code::Unavailable as i32,
        "message": format!("the service is {rejected}"),
        "details": [crate::errors::retry_info_json(1)],
    });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
