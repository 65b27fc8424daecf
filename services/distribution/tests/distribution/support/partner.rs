//! A KT partner for the tests: the crate's own partner side of `partner/v1`
//! ([`kem_distribution::infra::local::partner_server`]) behind a fault-injection layer that
//! counts every request (and `POST /jobs` separately), can make the next N requests fail with a
//! 503 `maintenance` problem, and can hang.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use kem_distribution::infra::local::partner_server::{PartnerServerConfig, PartnerState, router};
use kem_kit::Secret;
use serde_json::json;
use tokio::task::JoinHandle;

pub const CLIENT_ID: &str = "kem-test";
pub const CLIENT_SECRET: &str = "partner-secret";

#[derive(Debug, Default)]
pub struct Faults {
    pub calls: AtomicU64,
    pub submissions: AtomicU64,
    pub fail_next: AtomicU32,
    pub lose_next: AtomicU32,
    pub hang: AtomicBool,
    /// `creative.asset_url` of every `POST /jobs` (replays included), in order.
    pub asset_urls: std::sync::Mutex<Vec<String>>,
}

pub struct TestPartner {
    pub addr: SocketAddr,
    pub state: Arc<PartnerState>,
    pub faults: Arc<Faults>,
    task: JoinHandle<()>,
}

async fn faults(State(faults): State<Arc<Faults>>, request: Request, next: Next) -> Response {
    faults.calls.fetch_add(1, Ordering::SeqCst);
    let submission = request.method() == Method::POST && request.uri().path().ends_with("/jobs");
    let request = if submission {
        faults.submissions.fetch_add(1, Ordering::SeqCst);
        // Read the campaign to see which image link it carries, then hand the same bytes on.
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, 1024 * 1024).await.expect("a readable submission");
        let campaign: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        if let Some(url) = campaign["creative"]["asset_url"].as_str() {
            faults.asset_urls.lock().expect("asset urls").push(url.to_owned());
        }
        Request::from_parts(parts, axum::body::Body::from(bytes))
    } else {
        request
    };
    if faults.hang.load(Ordering::SeqCst) {
        // A partner that never answers: the client's own deadline is what is tested.
        std::future::pending::<()>().await;
    }
    let fail = faults.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    if fail {
        let mut response = (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"type": "about:blank", "title": "Service Unavailable", "status": 503,
                              "detail": "scheduled maintenance", "code": "maintenance", "request_id": "r"})),
        )
            .into_response();
        response.headers_mut().insert("content-type", "application/problem+json".parse().expect("header"));
        response.headers_mut().insert("retry-after", "0".parse().expect("header"));
        return response;
    }
    let response = next.run(request).await;
    let lose =
        submission && faults.lose_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    if lose {
        // The partner acted, but the answer never arrives.
        std::future::pending::<()>().await;
    }
    response
}

impl TestPartner {
    /// A partner whose review takes `review_step` per step and asks to be polled at once.
    pub async fn start(review_step: Duration) -> TestPartner {
        let config = PartnerServerConfig {
            clients: vec![(CLIENT_ID.to_owned(), Secret::new(CLIENT_SECRET))],
            review_step,
            retry_after: Duration::ZERO,
            ..PartnerServerConfig::default()
        };
        TestPartner::with_config(config).await
    }

    pub async fn with_config(config: PartnerServerConfig) -> TestPartner {
        let state = PartnerState::new(config);
        let faults: Arc<Faults> = Arc::default();
        let app = router(state.clone()).layer(middleware::from_fn_with_state(faults.clone(), self::faults));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind partner");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("partner serves");
        });
        TestPartner { addr, state, faults, task }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/partner/v1", self.addr)
    }

    pub fn calls(&self) -> u64 {
        self.faults.calls.load(Ordering::SeqCst)
    }

    /// `POST /jobs` requests received (replays included).
    pub fn submissions(&self) -> u64 {
        self.faults.submissions.load(Ordering::SeqCst)
    }

    /// The `creative.asset_url` of every submission so far.
    pub fn asset_urls(&self) -> Vec<String> {
        self.faults.asset_urls.lock().expect("asset urls").clone()
    }

    pub fn hang(&self, hang: bool) {
        self.faults.hang.store(hang, Ordering::SeqCst);
    }

    /// The next `n` submissions (`POST /jobs`) are processed, but their answers are lost.
    pub fn lose_next(&self, n: u32) {
        self.faults.lose_next.store(n, Ordering::SeqCst);
    }

    pub fn fail_next(&self, n: u32) {
        self.faults.fail_next.store(n, Ordering::SeqCst);
    }
}

impl Drop for TestPartner {
    fn drop(&mut self) {
        self.task.abort();
    }
}
