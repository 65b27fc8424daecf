//! The Instagram Graph contract server (PROVIDERS.md §4): `GET /{v}/{ig-user}/content_publishing_limit`,
//! `POST /{v}/{ig-user}/media` (form: `image_url`, `caption`, `access_token`),
//! `GET /{v}/{container}?fields=status_code,status`, `POST /{v}/{ig-user}/media_publish`
//! (`creation_id`), `GET /{v}/{media}?fields=permalink`. Errors use the Graph envelope
//! `{"error":{"message","type","code","error_subcode","fbtrace_id"}}`: 190 for a bad token, 100 for
//! bad input, 9/2207042 past the 24 h publishing quota (counted at `media_publish`). Scriptable:
//! how containers end, and the quota. Counts every request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::task::JoinHandle;

pub const TOKEN: &str = "EAAB-test-token";
pub const IG_USER: &str = "17841400000000";
pub const VERSION: &str = "v21.0";

/// What a new container does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerScript {
    /// FINISHED at once.
    Finished,
    /// IN_PROGRESS for this many status reads, then FINISHED.
    InProgress(u32),
    /// ERROR with this `status` text.
    Error(String),
}

#[derive(Debug, Clone)]
struct Container {
    status_code: String,
    reads: u32,
    script: ContainerScript,
}

#[derive(Debug, Default)]
pub struct IgState {
    pub containers_created: u64,
    pub publishes: u64,
    pub calls: u64,
    pub captions: Vec<String>,
    pub image_urls: Vec<String>,
    containers: HashMap<String, Container>,
    script: Option<ContainerScript>,
    pub quota_total: i64,
    pub quota_usage: i64,
}

pub struct IgServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<IgState>>,
    task: JoinHandle<()>,
}

type Shared = Arc<Mutex<IgState>>;

fn graph_error(status: StatusCode, code: i64, subcode: Option<i64>, message: &str) -> Response {
    let mut error = json!({"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf"});
    if let Some(sub) = subcode {
        error["error_subcode"] = json!(sub);
    }
    (status, axum::Json(json!({ "error": error }))).into_response()
}

fn lock(state: &Shared) -> MutexGuard<'_, IgState> {
    state.lock().expect("instagram state")
}

/// Counts the call.
async fn enter(state: &Shared) {
    lock(state).calls += 1;
}

fn token_ok(token: Option<&String>) -> bool {
    token.map(String::as_str) == Some(TOKEN)
}

async fn read_node(
    State(state): State<Shared>,
    Path((version, node)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    enter(&state).await;
    if version != VERSION {
        return graph_error(StatusCode::BAD_REQUEST, 2635, None, "unsupported API version");
    }
    if !token_ok(query.get("access_token")) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            190,
            Some(463),
            "Error validating access token: Session has expired",
        );
    }
    let fields = query.get("fields").cloned().unwrap_or_default();
    let mut s = lock(&state);
    if let Some(container) = s.containers.get_mut(&node) {
        if fields != "status_code,status" {
            return graph_error(StatusCode::BAD_REQUEST, 100, None, "(#100) Tried accessing nonexisting field");
        }
        container.reads += 1;
        if container.status_code == "IN_PROGRESS"
            && let ContainerScript::InProgress(n) = container.script
            && container.reads > n
        {
            container.status_code = "FINISHED".into();
        }
        let status = match (&container.script, container.status_code.as_str()) {
            (ContainerScript::Error(text), "ERROR") => text.clone(),
            (_, code) => format!("{code}: ok"),
        };
        return axum::Json(json!({"status_code": container.status_code, "status": status, "id": node})).into_response();
    }
    if node.starts_with("m-") && fields == "permalink" {
        return axum::Json(json!({"permalink": format!("https://www.instagram.com/p/{node}/"), "id": node}))
            .into_response();
    }
    graph_error(StatusCode::BAD_REQUEST, 100, Some(33), "Unsupported get request. Object does not exist")
}

async fn read_edge(
    State(state): State<Shared>,
    Path((version, node, edge)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    enter(&state).await;
    if version != VERSION || node != IG_USER || edge != "content_publishing_limit" {
        return graph_error(StatusCode::BAD_REQUEST, 100, Some(33), "Unsupported get request");
    }
    if !token_ok(query.get("access_token")) {
        return graph_error(StatusCode::BAD_REQUEST, 190, Some(460), "Error validating access token");
    }
    let s = lock(&state);
    axum::Json(json!({"data": [{"quota_usage": s.quota_usage, "config": {"quota_total": s.quota_total, "quota_duration": 86400}}]}))
        .into_response()
}

async fn write_edge(
    State(state): State<Shared>,
    Path((version, node, edge)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    enter(&state).await;
    // Decoded with an independent form parser, not the client's own encoder's twin.
    let mut form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    form.extend(query);
    if version != VERSION || node != IG_USER {
        return graph_error(StatusCode::BAD_REQUEST, 100, Some(33), "Unsupported post request");
    }
    if !token_ok(form.get("access_token")) {
        return graph_error(StatusCode::BAD_REQUEST, 190, Some(460), "Error validating access token");
    }
    let mut s = lock(&state);
    match edge.as_str() {
        "media" => {
            let image = form.get("image_url").cloned().unwrap_or_default();
            let caption = form.get("caption").cloned().unwrap_or_default();
            if !(image.starts_with("https://") || image.starts_with("http://")) {
                return graph_error(StatusCode::BAD_REQUEST, 100, None, "(#100) The parameter image_url is required");
            }
            if caption.chars().count() > 2_200 || caption.matches('#').count() > 30 {
                return graph_error(StatusCode::BAD_REQUEST, 100, Some(2_207_028), "caption too long");
            }
            s.containers_created += 1;
            let id = format!("c-{}", s.containers_created);
            let script = s.script.clone().unwrap_or(ContainerScript::Finished);
            let status_code = match script {
                ContainerScript::Finished => "FINISHED",
                ContainerScript::InProgress(_) => "IN_PROGRESS",
                ContainerScript::Error(_) => "ERROR",
            };
            s.containers.insert(id.clone(), Container { status_code: status_code.into(), reads: 0, script });
            s.captions.push(caption);
            s.image_urls.push(image);
            axum::Json(json!({ "id": id })).into_response()
        }
        "media_publish" => {
            let creation = form.get("creation_id").cloned().unwrap_or_default();
            let finished = s.containers.get(&creation).map(|c| c.status_code.clone());
            match finished.as_deref() {
                Some("FINISHED") => {}
                Some(_) => {
                    return graph_error(
                        StatusCode::BAD_REQUEST,
                        9_007,
                        Some(2_207_027),
                        "Media is not ready for publishing",
                    );
                }
                None => return graph_error(StatusCode::BAD_REQUEST, 100, None, "(#100) creation_id is invalid"),
            }
            if s.quota_usage >= s.quota_total {
                return graph_error(StatusCode::BAD_REQUEST, 9, Some(2_207_042), "Application request limit reached");
            }
            s.quota_usage += 1;
            s.publishes += 1;
            if let Some(c) = s.containers.get_mut(&creation) {
                c.status_code = "PUBLISHED".into();
            }
            axum::Json(json!({ "id": format!("m-{}", s.publishes) })).into_response()
        }
        _ => graph_error(StatusCode::BAD_REQUEST, 100, Some(33), "Unsupported post request"),
    }
}

impl IgServer {
    pub async fn start() -> IgServer {
        let state: Shared = Arc::new(Mutex::new(IgState { quota_total: 100, ..IgState::default() }));
        let router = Router::new()
            .route("/{version}/{node}", get(read_node))
            .route("/{version}/{node}/{edge}", get(read_edge).post(write_edge))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind instagram");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("instagram serves");
        });
        IgServer { addr, state, task }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> MutexGuard<'_, IgState> {
        lock(&self.state)
    }

    /// How the next containers end.
    pub fn script(&self, script: ContainerScript) {
        self.state().script = Some(script);
    }

    pub fn calls(&self) -> u64 {
        self.state().calls
    }

    pub fn publishes(&self) -> u64 {
        self.state().publishes
    }

    /// Quota of the 24 h window.
    pub fn quota(&self, used: i64, total: i64) {
        let mut s = self.state();
        s.quota_usage = used;
        s.quota_total = total;
    }
}

impl Drop for IgServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
