//! The Naver Cafe API contract server (PROVIDERS.md §5): `POST /v1/cafe/{clubid}/menu/{menuid}/articles`
//! with `Authorization: Bearer <token>` and a form whose `subject` and `content` are URL-encoded
//! once more inside the form (decoded twice here). Errors use Naver's common envelope
//! `{"errorMessage","errorCode"}` (401 `024`, 403 `AP003` for a cafe the member cannot write to,
//! 400 `999`). The discontinued blog write API answers 404 with the same envelope. Counts posts.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use kem_distribution::infra::channels::{form_decode, percent_decode};
use serde_json::json;
use tokio::task::JoinHandle;

pub const TOKEN: &str = "naver-member-token";
pub const CLUB: &str = "31000001";
pub const MENU: &str = "7";

#[derive(Debug, Default)]
pub struct CafeState {
    pub calls: u64,
    /// (subject, content) of every article posted.
    pub articles: Vec<(String, String)>,
}

pub struct CafeServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<CafeState>>,
    task: JoinHandle<()>,
}

type Shared = Arc<Mutex<CafeState>>;

fn naver_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({"errorMessage": message, "errorCode": code}))).into_response()
}

async fn write(
    State(state): State<Shared>,
    Path((club, menu)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.lock().expect("cafe").calls += 1;
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if bearer != format!("Bearer {TOKEN}") {
        return naver_error(StatusCode::UNAUTHORIZED, "024", "Authentication failed (인증에 실패하였습니다.)");
    }
    if club != CLUB || menu != MENU {
        return naver_error(StatusCode::FORBIDDEN, "AP003", "카페 회원이 아니거나 글쓰기 권한이 없습니다.");
    }
    let form = form_decode(&String::from_utf8_lossy(&body));
    // The inner layer is URL-encoded the way Java's URLEncoder does it (space as '+'), and
    // decoded the same way.
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| percent_decode(&v.replace('+', " ")));
    let (Some(subject), Some(content)) = (field("subject"), field("content")) else {
        return naver_error(StatusCode::BAD_REQUEST, "999", "subject and content are required");
    };
    let mut s = state.lock().expect("cafe");
    s.articles.push((subject, content));
    let id = s.articles.len();
    axum::Json(json!({"message": {"@type": "response", "@service": "naverservice.community.cafe", "@version": "1.0.0",
        "status": "200", "result": {"msg": "Success", "cafeUrl": "kemcafe", "articleId": id,
        "articleUrl": format!("https://cafe.naver.com/kemcafe/{id}")}}}))
    .into_response()
}

async fn blog_write() -> Response {
    naver_error(StatusCode::NOT_FOUND, "404", "API not found (blog write API was discontinued)")
}

impl CafeServer {
    pub async fn start() -> CafeServer {
        let state: Shared = Arc::default();
        let router = Router::new()
            .route("/v1/cafe/{club}/menu/{menu}/articles", post(write))
            .route("/blog/writePost.json", post(blog_write))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind cafe");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("cafe serves");
        });
        CafeServer { addr, state, task }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> MutexGuard<'_, CafeState> {
        self.state.lock().expect("cafe")
    }

    pub fn calls(&self) -> u64 {
        self.state().calls
    }
}

impl Drop for CafeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
