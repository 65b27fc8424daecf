//! `kem bench gateway`: what the REST edge costs for one route, measured three ways in one run:
//! - `grpc-direct`: the generated gRPC client over mesh mTLS straight to the service;
//! - `rest-kem-gateway`: REST/JSON through kem's edge (descriptor-driven transcoding, JWT
//!   verification, rate limits, request ids, access log, then the mesh);
//! - `rest-static-bridge`: REST/JSON through a minimal hand-written axum handler for that one
//!   route calling the same gRPC client (the best a static bridge can do; no auth, no limits).
//!
//! Both REST paths receive byte-for-byte the same request (the bridge ignores the bearer token).
//!
//! All three run in this process against the same mTLS backend on loopback, so the ratios isolate
//! the edge itself.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use kem_gateway::auth::{JwtAuthenticator, StaticKeys};
use kem_gateway::edge::{Edge, EdgeConfig};
use kem_gateway::idempotency::IdempotencyStore;
use kem_gateway::protect::{EdgeLimiter, EdgeLimits, RateLimit};
use kem_gateway::routes::RouteTable;
use kem_gateway::upstream::{Upstreams, upstream};
use kem_kit::cache::MemoryCache;
use kem_kit::jwt::{Issuer, SigningKey};
use kem_mesh::authz::Policy;
use kem_mesh::client::MeshChannel;
use kem_mesh::testing::{NAMESPACE, TRUST_DOMAIN, TestCa};
use kem_mesh::{RoleServer, Shutdown, Transport};
use kem_proto::kem::event::v1::event_service_client::EventServiceClient;
use kem_proto::kem::event::v1::event_service_server::{EventService, EventServiceServer};
use kem_proto::kem::event::v1::{Event, EventStatus, GetEventRequest, GetEventResponse};
use tonic::{Request, Response, Status};

use super::load::{Contender, Plan, boxed, compare, print_table, versus};

/// Options of `kem bench gateway`.
#[derive(Args, Debug, Clone)]
pub struct GatewayBenchArgs {
    /// Seconds of each measurement.
    #[arg(long, default_value_t = 3)]
    pub seconds: u64,
    /// Interleaved rounds (throughput is the median of the rounds; latency pools them).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Measure only this path (for profiling one of them): grpc-direct, rest-kem-gateway or
    /// rest-static-bridge.
    #[arg(long)]
    pub only: Option<String>,
    /// Open-loop rate for the latency measurement (calls per second).
    #[arg(long, default_value_t = 1000)]
    pub rate: u32,
    /// Concurrent callers for the saturation measurement.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
}

struct Events;

#[tonic::async_trait]
impl EventService for Events {
    async fn get_event(&self, request: Request<GetEventRequest>) -> Result<Response<GetEventResponse>, Status> {
        let owner = request
            .metadata()
            .get(kem_kit::runtime::OWNER_METADATA)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        Ok(Response::new(GetEventResponse {
            event: Some(Event {
                event_id: request.into_inner().event_id,
                owner_id: owner,
                title: "Weekday lunch: bring a friend".into(),
                status: EventStatus::Draft as i32,
                ..Default::default()
            }),
        }))
    }
}

/// The static bridge's one handler.
async fn bridge(
    axum::extract::State(client): axum::extract::State<EventServiceClient<MeshChannel>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut client = client;
    match client.get_event(GetEventRequest { event_id: id }).await {
        Ok(response) => {
            let event = response.into_inner().event.unwrap_or_default();
            let body = serde_json::json!({"event": {"eventId": event.event_id, "ownerId": event.owner_id, "title": event.title, "status": "EVENT_STATUS_DRAFT"}});
            axum::Json(body).into_response()
        }
        Err(status) => (axum::http::StatusCode::BAD_GATEWAY, status.message().to_owned()).into_response(),
    }
}

/// Runs the benchmark and prints the table and ratios.
pub async fn run(args: GatewayBenchArgs) -> anyhow::Result<()> {
    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let service = "kem.event.v1.EventService";
    let backend = RoleServer::new("event")
        .transport(Transport::MutualTls(ca.identity("event", Duration::from_secs(3600)).await))
        .policy(
            Policy::from_contracts(kem_proto::descriptor_pool(), &[service], TRUST_DOMAIN, NAMESPACE, "gateway"),
            Some(TestCa::id("gateway")),
        )
        .reflection(false)
        .add_service(EventServiceServer::new(Events))
        .serve(tokio::net::TcpListener::bind("127.0.0.1:0").await?, shutdown.clone())
        .await?;
    let gateway_id = ca.identity("gateway", Duration::from_secs(3600)).await;
    let channel = MeshChannel::new(&gateway_id, &backend.addr.to_string(), &TestCa::id("event"))?;

    // The kem edge.
    let issuer = Issuer::new(SigningKey::generate()?, "kem-user", "kem-api");
    let auth =
        JwtAuthenticator::new("kem-user", "kem-api", Arc::new(StaticKeys(issuer.jwks(std::time::SystemTime::now()))));
    auth.refresh().await.map_err(anyhow::Error::msg)?;
    let open = RateLimit::per_second(1_000_000, 1_000_000)?;
    let defaults = EdgeLimits::default();
    let limits = EdgeLimits {
        per_ip: open,
        default_route: kem_gateway::protect::RouteLimit { limit: open, ..defaults.default_route },
        ..defaults
    };
    let mut upstreams = Upstreams::new();
    upstreams.insert(service, upstream(channel.clone()));
    let edge = Arc::new(Edge {
        routes: RouteTable::from_pool(kem_proto::descriptor_pool())?,
        upstreams,
        auth: auth.clone(),
        limiter: EdgeLimiter::new(&limits),
        idempotency: IdempotencyStore::new(Arc::new(MemoryCache::new(1000)), Duration::from_secs(60)),
        config: EdgeConfig::default(),
    });
    let (edge_addr, _) = kem_gateway::serve(
        tokio::net::TcpListener::bind("127.0.0.1:0").await?,
        kem_gateway::router(edge, Some(auth), &[]),
        shutdown.clone(),
    )?;

    // The static bridge.
    let bridge_router = axum::Router::new()
        .route("/api/v1/events/{id}", axum::routing::get(bridge))
        .with_state(EventServiceClient::new(channel.clone()));
    let bridge_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let bridge_addr = bridge_listener.local_addr()?;
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ =
            axum::serve(bridge_listener, bridge_router).with_graceful_shutdown(async move { stop.wait().await }).await;
    });

    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(256).build().context("http client")?;
    let token = issuer.issue("owner-bench", Default::default())?.0;

    println!("kem bench gateway: GET one event, three ways, same mTLS backend, all on loopback in one process");
    println!(
        "{} interleaved rounds, each: saturation with {} concurrent callers for {} s, then open loop at {}/s for {} s\n",
        args.rounds, args.concurrency, args.seconds, args.rate, args.seconds
    );
    let direct = {
        let client = EventServiceClient::new(channel.clone());
        move || {
            let mut client = client.clone();
            async move {
                client
                    .get_event(GetEventRequest { event_id: "ev-1".into() })
                    .await
                    .map(|_| ())
                    .map_err(|s| s.to_string())
            }
        }
    };
    // Both REST paths get the same request, bearer token included (the bridge ignores it), built
    // once: the client's work is then identical and the ratio is the servers' difference alone.
    let authorization = {
        let mut value = axum::http::HeaderValue::from_str(&format!("Bearer {token}")).context("token header")?;
        value.set_sensitive(true);
        value
    };
    let rest = |url: String| {
        let (http, authorization) = (http.clone(), authorization.clone());
        move || {
            let (http, url, authorization) = (http.clone(), url.clone(), authorization.clone());
            async move {
                let response = http
                    .get(&url)
                    .header(axum::http::header::AUTHORIZATION, authorization)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if !response.status().is_success() {
                    return Err(response.status().to_string());
                }
                response.bytes().await.map(|_| ()).map_err(|e| e.to_string())
            }
        }
    };
    let mut contenders = vec![
        Contender::new("grpc-direct", boxed(direct)),
        Contender::new("rest-kem-gateway", boxed(rest(format!("http://{edge_addr}/api/v1/events/ev-1")))),
        Contender::new("rest-static-bridge", boxed(rest(format!("http://{bridge_addr}/api/v1/events/ev-1")))),
    ];
    if let Some(only) = &args.only {
        contenders.retain(|contender| &contender.name == only);
        anyhow::ensure!(!contenders.is_empty(), "--only {only}: no such path");
    }
    let plan = Plan {
        concurrency: args.concurrency,
        rate: args.rate,
        seconds: Duration::from_secs(args.seconds),
        rounds: args.rounds,
    };
    let outcomes = compare(&contenders, plan).await;
    print_table("path", &outcomes);
    let [_, gateway, bridge] = &outcomes[..] else {
        shutdown.trigger();
        return Ok(());
    };
    println!("kem gateway vs static bridge: {} (targets: >= 0.85x, <= +0.5 ms)", versus(gateway, bridge, args.rate));
    shutdown.trigger();
    Ok(())
}
