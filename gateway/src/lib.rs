//! The REST/JSON edge.
//!
//! Status: serves `/healthz` and `/readyz`; every API route answers `501 Not Implemented` with a
//! JSON `google.rpc.Status` body until the gateway issue brings descriptor-driven transcoding.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::net::SocketAddr;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use kem_mesh::Shutdown;
use tokio::net::TcpListener;

/// The edge's HTTP router.
pub fn router() -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .fallback(not_implemented)
}

async fn not_implemented() -> impl IntoResponse {
    // google.rpc.Status in canonical JSON: code 12 = UNIMPLEMENTED.
    (
        StatusCode::NOT_IMPLEMENTED,
        Json(serde_json::json!({
            "code": 12,
            "message": "the REST edge does not transcode this route yet (see README status table)",
            "details": []
        })),
    )
}

/// Serves the edge on `listener` until `shutdown` fires; returns the bound address and the task.
pub fn serve(
    listener: TcpListener,
    shutdown: Shutdown,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "REST edge listening");
    let task = tokio::spawn(async move {
        axum::serve(listener, router()).with_graceful_shutdown(async move { shutdown.wait().await }).await
    });
    Ok((addr, task))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[tokio::test]
    async fn health_is_ok_and_api_routes_say_unimplemented() {
        let ok =
            router().oneshot(Request::get("/healthz").body(Body::empty()).expect("request")).await.expect("response");
        assert_eq!(ok.status(), StatusCode::OK);
        let api = router()
            .oneshot(Request::get("/api/v1/events").body(Body::empty()).expect("request"))
            .await
            .expect("response");
        assert_eq!(api.status(), StatusCode::NOT_IMPLEMENTED);
        let body = api.into_body().collect().await.expect("body").to_bytes();
        let status: serde_json::Value = serde_json::from_slice(&body).expect("json status");
        assert_eq!(status["code"], 12);
    }
}
