//! A test EventService backend with scripted behaviour and a ContentService serving image bytes,
//! both over mTLS, and a gateway in front.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use kem_gateway::auth::{JwtAuthenticator, RevocationList, StaticKeys};
use kem_gateway::edge::{Edge, EdgeConfig};
use kem_gateway::idempotency::IdempotencyStore;
use kem_gateway::protect::{EdgeLimiter, EdgeLimits};
use kem_gateway::routes::RouteTable;
use kem_gateway::upstream::{Upstreams, upstream};
use kem_kit::cache::MemoryCache;
use kem_kit::jwt::{Issuer, SigningKey};
use kem_mesh::authz::Policy;
use kem_mesh::balance::Resolver;
use kem_mesh::client::{BalancedChannel, ClientConfig, MeshChannel};
use kem_mesh::testing::{NAMESPACE, TRUST_DOMAIN, TestCa};
use kem_mesh::{RoleServer, Shutdown, Transport};
use kem_proto::kem::content::v1 as content;
use kem_proto::kem::content::v1::content_service_server::{ContentService, ContentServiceServer};
use kem_proto::kem::event::v1::event_service_server::{EventService, EventServiceServer};
use kem_proto::kem::event::v1::*;
use tonic::{Request, Response, Status};

pub const ISSUER: &str = "kem-user";
pub const AUDIENCE: &str = "kem-api";

/// Scripted backend: echoes what it received so tests can see the transcoded request.
#[derive(Default)]
pub struct ScriptedEvents {
    pub calls: AtomicU32,
}

fn owner_of<T>(request: &Request<T>) -> String {
    request.metadata().get(kem_kit::runtime::OWNER_METADATA).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}

fn client_of(metadata: &tonic::metadata::MetadataMap) -> String {
    metadata.get(kem_kit::runtime::CLIENT_IP_METADATA).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}

/// The service wrapper (the trait is foreign, so it is implemented on a local newtype).
pub struct Events(pub Arc<ScriptedEvents>);

#[tonic::async_trait]
impl EventService for Events {
    async fn get_event(&self, request: Request<GetEventRequest>) -> Result<Response<GetEventResponse>, Status> {
        self.0.calls.fetch_add(1, Ordering::SeqCst);
        let owner = owner_of(&request);
        let request_metadata = request.metadata().clone();
        let id = request.into_inner().event_id;
        // `code-N` answers with gRPC status N, `slow` sleeps, anything else is found.
        if let Some(code) = id.strip_prefix("code-").and_then(|c| c.parse::<i32>().ok()) {
            let status = kem_proto::status::error_info(
                tonic::Code::from(code),
                &format!("scripted {code}"),
                "kem.test",
                "SCRIPTED",
                &[],
            );
            return Err(status);
        }
        if id == "slow" {
            // Real time by design: a backend really this slow makes deadlines fire and holds admission slots.
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        // `unavailable-N` answers UNAVAILABLE asking to come back in N seconds (RetryInfo).
        if let Some(seconds) = id.strip_prefix("unavailable-").and_then(|n| n.parse::<u64>().ok()) {
            let details = vec![kem_kit::status::retry_info(Duration::from_secs(seconds))];
            return Err(kem_proto::status::with_details(tonic::Code::Unavailable, "scripted outage", details));
        }
        // `huge-header` answers with response metadata over every client's header-list limit.
        if id == "huge-header" {
            let mut response = Response::new(GetEventResponse::default());
            let huge = "h".repeat(100 * 1024).parse().map_err(|_| Status::internal("header"))?;
            response.metadata_mut().insert("x-huge", huge);
            return Ok(response);
        }
        Ok(Response::new(GetEventResponse {
            event: Some(Event {
                event_id: id,
                owner_id: owner,
                // The client address the edge forwarded, so tests can see it.
                description: client_of(&request_metadata),
                title: "Weekday lunch".into(),
                budget: Some(kem_proto::kem::common::v1::Money { amount_krw: 9_007_199_254_740_993 }),
                status: EventStatus::Draft as i32,
                create_time: Some(prost_types::Timestamp { seconds: 1_790_000_000, nanos: 0 }),
                ..Default::default()
            }),
        }))
    }

    async fn create_event(
        &self,
        request: Request<CreateEventRequest>,
    ) -> Result<Response<CreateEventResponse>, Status> {
        let n = self.0.calls.fetch_add(1, Ordering::SeqCst);
        let owner = owner_of(&request);
        let mut event = request.into_inner().event.unwrap_or_default();
        event.event_id = format!("ev-{n}");
        event.owner_id = owner;
        Ok(Response::new(CreateEventResponse { event: Some(event) }))
    }

    async fn update_event(
        &self,
        request: Request<UpdateEventRequest>,
    ) -> Result<Response<UpdateEventResponse>, Status> {
        self.0.calls.fetch_add(1, Ordering::SeqCst);
        let request = request.into_inner();
        let mut event = request.event.unwrap_or_default();
        // Echo the mask in the description so the test can see it.
        event.description = request.update_mask.map(|m| m.paths.join(",")).unwrap_or_default();
        event.event_id = request.event_id;
        Ok(Response::new(UpdateEventResponse { event: Some(event) }))
    }

    async fn list_events(&self, request: Request<ListEventsRequest>) -> Result<Response<ListEventsResponse>, Status> {
        self.0.calls.fetch_add(1, Ordering::SeqCst);
        let request = request.into_inner();
        Ok(Response::new(ListEventsResponse {
            events: vec![],
            next_page_token: format!(
                "size={};token={};status={:?}",
                request.page_size, request.page_token, request.status
            ),
        }))
    }
}

/// The bytes every image of [`Images`] has.
pub const IMAGE_BYTES: &[u8] = b"\x89PNG\r\n\x1a\n scripted image";

/// Their SHA-256 (lower-case hex).
pub fn image_sha256() -> String {
    kem_kit::hex::encode(ring::digest::digest(&ring::digest::SHA256, IMAGE_BYTES).as_ref())
}

/// A content backend: every image id is found with [`IMAGE_BYTES`] (owner and public), except
/// `missing` (NOT_FOUND) and `untagged` (no digest); counts the calls.
#[derive(Default)]
pub struct Images {
    pub calls: AtomicU32,
    /// The `qr_text` of every `GetMediaContent` call, in order.
    pub qr_texts: parking_lot::Mutex<Vec<String>>,
}

impl Images {
    fn answer(&self, image_id: &str) -> Result<(String, Vec<u8>, String), Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match image_id {
            "missing" => Err(Status::not_found(format!("image \"{image_id}\" not found"))),
            "untagged" => Ok(("image/png".into(), IMAGE_BYTES.to_vec(), String::new())),
            _ => Ok(("image/png".into(), IMAGE_BYTES.to_vec(), image_sha256())),
        }
    }
}

/// The service wrapper (the trait is foreign).
pub struct Content(pub Arc<Images>);

#[tonic::async_trait]
impl ContentService for Content {
    async fn get_image_content(
        &self,
        request: Request<content::GetImageContentRequest>,
    ) -> Result<Response<content::GetImageContentResponse>, Status> {
        let (content_type, data, sha256) = self.0.answer(&request.into_inner().image_id)?;
        Ok(Response::new(content::GetImageContentResponse { content_type, data, sha256 }))
    }

    async fn get_public_image_content(
        &self,
        request: Request<content::GetPublicImageContentRequest>,
    ) -> Result<Response<content::GetPublicImageContentResponse>, Status> {
        let (content_type, data, sha256) = self.0.answer(&request.into_inner().image_id)?;
        Ok(Response::new(content::GetPublicImageContentResponse { content_type, data, sha256 }))
    }

    /// Media renditions: [`IMAGE_BYTES`] as the ORIGINAL of every image, a real 1080×1350
    /// JPEG as its JPEG and INSTAGRAM_FEED, and [`partner_qr_bytes`] of the request's `qr_text`
    /// as its PARTNER_QR, except [`MEDIA_MISSING`] (NOT_FOUND) and [`MEDIA_SLOW`] (answers after
    /// 300 ms, so crawlers pile up on it).
    async fn get_media_content(
        &self,
        request: Request<content::GetMediaContentRequest>,
    ) -> Result<Response<content::GetMediaContentResponse>, Status> {
        let r = request.into_inner();
        self.0.qr_texts.lock().push(r.qr_text.clone());
        if r.image_id == MEDIA_SLOW {
            // Real time by design: the edge's single flight must hold the followers this long.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let id = if r.image_id == MEDIA_MISSING { "missing" } else { r.image_id.as_str() };
        let (mut content_type, mut data, mut sha256) = self.0.answer(id)?;
        if r.variant == content::MediaVariant::PartnerQr as i32 {
            data = partner_qr_bytes(&r.qr_text);
            sha256 = kem_kit::hex::encode(ring::digest::digest(&ring::digest::SHA256, &data).as_ref());
        } else if r.variant != content::MediaVariant::Original as i32 {
            data = kem_testkit::contracts::instagram::sample_jpeg_sized(1080, 1350);
            sha256 = kem_kit::hex::encode(ring::digest::digest(&ring::digest::SHA256, &data).as_ref());
            content_type = "image/jpeg".into();
        }
        Ok(Response::new(content::GetMediaContentResponse { content_type, data, sha256, width: 1080, height: 1350 }))
    }
}

/// The stand-in PARTNER_QR rendition: the stored bytes followed by the QR text, so each text has
/// its own body (as content's drawn code does).
pub fn partner_qr_bytes(qr_text: &str) -> Vec<u8> {
    [IMAGE_BYTES, qr_text.as_bytes()].concat()
}

/// A media image the content backend does not have.
pub const MEDIA_MISSING: &str = "3c5d2b1a-0000-4000-8000-0000000000ff";
/// A media image the content backend is slow to render.
pub const MEDIA_SLOW: &str = "3c5d2b1a-0000-4000-8000-0000000000aa";

/// A backend plus a gateway in front of it.
pub struct Setup {
    pub http: SocketAddr,
    pub backend: Arc<ScriptedEvents>,
    /// The content backend (image bytes).
    pub images: Arc<Images>,
    pub issuer: Issuer,
    /// The revocations the edge enforces (no source: tests apply them directly).
    pub revocations: Arc<RevocationList>,
    pub shutdown: Shutdown,
    /// One per backend instance: trigger to kill that instance.
    pub replica_shutdowns: Vec<Shutdown>,
    _ca: TestCa,
}

impl Setup {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    pub fn token(&self, owner: &str) -> String {
        self.issuer.issue(owner, Default::default()).expect("token").0
    }
}

pub async fn start(config: EdgeConfig, limits: EdgeLimits) -> Setup {
    start_replicated(config, limits, 1).await
}

/// Like [`start`] with `replicas` backend instances behind one balanced mesh client.
pub async fn start_replicated(config: EdgeConfig, limits: EdgeLimits, replicas: usize) -> Setup {
    start_full(config, limits, replicas, Arc::new(MemoryCache::new(10_000))).await
}

/// Like [`start_replicated`], with the idempotency store in `cache`.
pub async fn start_full(
    config: EdgeConfig,
    limits: EdgeLimits,
    replicas: usize,
    cache: Arc<dyn kem_kit::cache::Cache>,
) -> Setup {
    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let backend = Arc::new(ScriptedEvents::default());
    let event_id = ca.identity("event", Duration::from_secs(3600)).await;
    let service = "kem.event.v1.EventService";
    let mut addrs = Vec::new();
    let mut replica_shutdowns = Vec::new();
    for _ in 0..replicas {
        let replica_shutdown = Shutdown::new();
        let policy =
            Policy::from_contracts(kem_proto::descriptor_pool(), &[service], TRUST_DOMAIN, NAMESPACE, "gateway");
        let serving = RoleServer::new("event")
            .transport(Transport::MutualTls(event_id.clone()))
            .policy(policy, Some(TestCa::id("gateway")))
            .drain_timeout(Duration::from_millis(200))
            .add_service(EventServiceServer::new(Events(backend.clone())))
            .serve(tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind"), replica_shutdown.clone())
            .await
            .expect("backend");
        addrs.push(serving.addr.to_string());
        replica_shutdowns.push(replica_shutdown);
    }

    let gateway_id = ca.identity("gateway", Duration::from_secs(3600)).await;
    let mut upstreams = Upstreams::new();
    let channel = if replicas == 1 {
        upstream(MeshChannel::new(&gateway_id, &addrs[0], &TestCa::id("event")).expect("channel"))
    } else {
        upstream(
            BalancedChannel::new(
                &gateway_id,
                service,
                &TestCa::id("event"),
                Resolver::fixed(addrs),
                ClientConfig::default(),
            )
            .expect("balanced"),
        )
    };
    upstreams.insert(service, channel);

    let images = Arc::new(Images::default());
    let content_service = "kem.content.v1.ContentService";
    let policy =
        Policy::from_contracts(kem_proto::descriptor_pool(), &[content_service], TRUST_DOMAIN, NAMESPACE, "gateway");
    let content_id = ca.identity("content", Duration::from_secs(3600)).await;
    let serving = RoleServer::new("content")
        .transport(Transport::MutualTls(content_id))
        .policy(policy, Some(TestCa::id("gateway")))
        .drain_timeout(Duration::from_millis(200))
        .add_service(ContentServiceServer::new(Content(images.clone())))
        .serve(tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind"), shutdown.clone())
        .await
        .expect("content backend");
    let content_channel = MeshChannel::new(&gateway_id, &serving.addr.to_string(), &TestCa::id("content"));
    upstreams.insert(content_service, upstream(content_channel.expect("content channel")));

    let key = SigningKey::generate().expect("key");
    let issuer = Issuer::new(key, ISSUER, AUDIENCE);
    let revocations = RevocationList::disabled();
    let keys = Arc::new(StaticKeys(issuer.jwks(std::time::SystemTime::now())));
    let auth = JwtAuthenticator::with_revocations(ISSUER, AUDIENCE, keys, revocations.clone());
    let edge = Arc::new(Edge {
        routes: RouteTable::from_pool(kem_proto::descriptor_pool()).expect("routes"),
        upstreams,
        auth: auth.clone(),
        limiter: EdgeLimiter::new(&limits),
        idempotency: IdempotencyStore::new(cache, Duration::from_secs(3600)),
        config,
    });
    auth.refresh().await.expect("signing keys");
    let router = kem_gateway::router(edge, Some(auth), &["https://app.kem.example".to_owned()]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (http, _task) = kem_gateway::serve(listener, router, shutdown.clone()).expect("serve");
    Setup { http, backend, images, issuer, revocations, shutdown, replica_shutdowns, _ca: ca }
}

pub fn client() -> reqwest::Client {
    // reqwest is built without a bundled crypto provider; the tree's one provider is ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().expect("client")
}

/// An edge with routes and auth but no backends (for tests of the HTTP layer around the API).
pub fn edge_without_backends() -> Edge {
    let issuer = Issuer::new(SigningKey::generate().expect("key"), ISSUER, AUDIENCE);
    Edge {
        routes: RouteTable::from_pool(kem_proto::descriptor_pool()).expect("routes"),
        upstreams: Upstreams::new(),
        auth: JwtAuthenticator::new(ISSUER, AUDIENCE, Arc::new(StaticKeys(issuer.jwks(std::time::SystemTime::now())))),
        limiter: EdgeLimiter::new(&EdgeLimits::default()),
        idempotency: IdempotencyStore::new(Arc::new(MemoryCache::new(100)), Duration::from_secs(60)),
        config: EdgeConfig::default(),
    }
}
