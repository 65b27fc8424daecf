//! The Naver contract server (PROVIDERS.md §11): Naver Login (nid.naver.com) and the Cafe write
//! API (openapi.naver.com) on one base URL.
//!
//! - `GET /oauth2.0/authorize?response_type=code&client_id&redirect_uri&state`: a bad client, a
//!   `redirect_uri` not registered EXACTLY, another `response_type` or a missing `state` is an
//!   error page (400, no redirect). Otherwise the scripted [`NaverConsent`] decides: 302 to
//!   `{redirect_uri}?code=…&state=…`, or `?state=…&error=access_denied&error_description=Canceled+By+User`.
//! - `GET|POST /oauth2.0/token` (query or form): `grant_type=authorization_code` (+ `client_id`,
//!   `client_secret`, `code`, `state`; the code is single use, lives [`CODE_TTL`] and is bound to the
//!   `state` of its authorize), `refresh_token` (a new access token, no new refresh token), `delete`
//!   (+ `access_token`, `service_provider=NAVER`: revokes the whole grant; answers success even for
//!   a token it does not know). Tokens answer `{"access_token","refresh_token","token_type":"bearer",
//!   "expires_in":"3600"}` — `expires_in` a STRING, as Naver sends it. Errors are
//!   `{"error","error_description"}` with HTTP 200 (the status is unconfirmed in §11; 200 is what
//!   clients report seeing), so a client must look at the body, not the status.
//! - `GET /v1/nid/me` with `Authorization: Bearer` → `{"resultcode":"00","message":"success",
//!   "response":{"id","nickname","name"}}`; 401 `024` for a bad/expired/revoked token, `028` for
//!   no header.
//! - `POST /v1/cafe/{clubid}/menu/{menuid}/articles` with a Bearer token of a member of the club and
//!   a form whose `subject` and `content` are URL-encoded once more inside the form. The outer layer
//!   is read as MS949 (Naver's samples encode it so): a client that encodes only once sends raw
//!   UTF-8 there and gets mojibake, as at Naver. A non-member is 403 `AP003`, an unknown club
//!   `AP006`, an unknown board `AP002` (`{"message":{…,"status":"500","error":{"code","msg"}}}`);
//!   an auth failure is Naver's common 401 `{"errorMessage","errorCode":"024"}`. Success is
//!   `{"message":{"@type":"response",…,"status":"200","result":{"msg":"Success","cafeUrl",
//!   "articleId","articleUrl"}}}`. Multipart (image) posts are not implemented: 415.
//!
//! Every expiry reads a virtual clock ([`NaverServer::advance`]). Counts calls, tokens, refreshes,
//! deletes; records articles.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use kem_kit::clock::{Clock, ManualClock};
use rand::Rng;
use serde_json::json;
use tokio::task::JoinHandle;

/// The registered application (Naver Developers: Client ID / Client Secret).
pub const CLIENT_ID: &str = "kemNaverClientId01";
pub const CLIENT_SECRET: &str = "kemNaverSecret";
/// A pre-registered access token of [`NaverServer::default_member`] (the old cafe fake's token).
pub const TOKEN: &str = "naver-member-token";
/// The default cafe ([`NaverServer::default_member`] is a member) and its writable board.
pub const CLUB: &str = "31000001";
pub const MENU: &str = "7";
pub const CAFE_URL: &str = "kemcafe";

/// Access token lifetime (`expires_in` "3600").
pub const ACCESS_TTL: Duration = Duration::from_secs(3_600);
/// Authorization code lifetime: undocumented by Naver; ten minutes assumed.
pub const CODE_TTL: Duration = Duration::from_secs(600);

/// A Naver user who can log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NaverMember {
    /// The app-scoped unique id `/v1/nid/me` answers.
    pub id: String,
    pub nickname: String,
    pub name: String,
}

/// What the user does on the next consent screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NaverConsent {
    Approve(NaverMember),
    Deny,
}

/// A scripted failure of the next cafe write (§11 error table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFailure {
    /// 403 `AP005`: the spam filter caught the article.
    Spam,
    /// 403 `AP007`: the member is suspended in this cafe.
    Suspended,
    /// 500 `999`: Naver's server error.
    Server,
}

/// An article the cafe accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Article {
    pub club: String,
    pub menu: String,
    pub member_id: String,
    /// Decoded twice, as Naver reads it.
    pub subject: String,
    pub content: String,
    pub article_id: u64,
    pub article_url: String,
}

#[derive(Debug)]
struct Code {
    state: String,
    member_id: String,
    expires_ms: i64,
    used: bool,
}

#[derive(Debug)]
struct Access {
    member_id: String,
    /// The refresh token of the grant it came from (`None` for [`TOKEN`]).
    grant: Option<String>,
    expires_ms: i64,
    revoked: bool,
}

#[derive(Debug)]
struct Grant {
    member_id: String,
    revoked: bool,
}

#[derive(Debug)]
struct Club {
    cafe_url: String,
    menus: Vec<String>,
    members: HashSet<String>,
    next_article: u64,
}

#[derive(Debug, Default)]
struct NaverState {
    clock: ManualClock,
    calls: u64,
    redirects: Vec<String>,
    members: Vec<NaverMember>,
    consents: VecDeque<NaverConsent>,
    codes: HashMap<String, Code>,
    access: HashMap<String, Access>,
    grants: HashMap<String, Grant>,
    clubs: HashMap<String, Club>,
    articles: Vec<Article>,
    failures: VecDeque<WriteFailure>,
    tokens_issued: u64,
    refreshes: u64,
    deletes: u64,
}

type Shared = Arc<Mutex<NaverState>>;

fn lock(state: &Shared) -> MutexGuard<'_, NaverState> {
    state.lock().expect("naver state")
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn random(len: usize) -> String {
    rand::rng().sample_iter(rand::distr::Alphanumeric).take(len).map(char::from).collect()
}

impl NaverState {
    /// The member behind a live access token.
    fn member_of(&self, token: &str) -> Option<String> {
        let access = self.access.get(token)?;
        let grant_ok = access.grant.as_ref().is_none_or(|g| self.grants.get(g).is_some_and(|g| !g.revoked));
        (!access.revoked && grant_ok && self.clock.now_ms() < access.expires_ms).then(|| access.member_id.clone())
    }

    fn issue_access(&mut self, member_id: &str, grant: Option<String>) -> String {
        let token = format!("AAAAO{}", random(40));
        let expires_ms = self.clock.now_ms().saturating_add(ms(ACCESS_TTL));
        self.access
            .insert(token.clone(), Access { member_id: member_id.to_owned(), grant, expires_ms, revoked: false });
        self.tokens_issued += 1;
        token
    }

    fn issue_grant(&mut self, member_id: &str) -> (String, String) {
        let refresh = random(48);
        self.grants.insert(refresh.clone(), Grant { member_id: member_id.to_owned(), revoked: false });
        let access = self.issue_access(member_id, Some(refresh.clone()));
        (access, refresh)
    }
}

fn error_page(message: &str) -> Response {
    let escaped = message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    (StatusCode::BAD_REQUEST, Html(format!("<html><body><p>{escaped}</p></body></html>"))).into_response()
}

fn redirect(uri: &str, params: &[(&str, &str)]) -> Response {
    let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    let joiner = if uri.contains('?') { '&' } else { '?' };
    (StatusCode::FOUND, [(http::header::LOCATION, format!("{uri}{joiner}{query}"))]).into_response()
}

async fn authorize(State(state): State<Shared>, Query(query): Query<HashMap<String, String>>) -> Response {
    let mut s = lock(&state);
    s.calls += 1;
    let get = |name: &str| query.get(name).map(String::as_str).unwrap_or_default();
    if get("client_id") != CLIENT_ID {
        return error_page("등록되지 않은 애플리케이션입니다 (unknown client_id)");
    }
    let redirect_uri = get("redirect_uri");
    if !s.redirects.iter().any(|r| r == redirect_uri) {
        return error_page("redirect_uri가 등록된 Callback URL과 일치하지 않습니다 (redirect_uri mismatch)");
    }
    if get("response_type") != "code" {
        return error_page("unsupported_response_type");
    }
    let st = get("state");
    if st.is_empty() {
        return error_page("state is required");
    }
    let consent = s.consents.pop_front().unwrap_or_else(|| NaverConsent::Approve(s.members[0].clone()));
    match consent {
        NaverConsent::Deny => redirect(
            redirect_uri,
            &[("state", st), ("error", "access_denied"), ("error_description", "Canceled By User")],
        ),
        NaverConsent::Approve(member) => {
            let code = random(18);
            let expires_ms = s.clock.now_ms().saturating_add(ms(CODE_TTL));
            s.codes.insert(code.clone(), Code { state: st.to_owned(), member_id: member.id, expires_ms, used: false });
            redirect(redirect_uri, &[("code", &code), ("state", st)])
        }
    }
}

fn token_error(error: &str, description: &str) -> Response {
    axum::Json(json!({"error": error, "error_description": description})).into_response()
}

async fn token(State(state): State<Shared>, Query(query): Query<HashMap<String, String>>, body: Bytes) -> Response {
    let mut params: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    params.extend(query);
    let get = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
    let mut s = lock(&state);
    s.calls += 1;
    if get("client_id") != CLIENT_ID || get("client_secret") != CLIENT_SECRET {
        return token_error("invalid_client", "client authentication failed");
    }
    let bearer = |access: &str, refresh: Option<&str>| {
        let mut answer =
            json!({"access_token": access, "token_type": "bearer", "expires_in": ACCESS_TTL.as_secs().to_string()});
        if let Some(refresh) = refresh {
            answer["refresh_token"] = json!(refresh);
        }
        axum::Json(answer).into_response()
    };
    match get("grant_type") {
        "authorization_code" => {
            let now = s.clock.now_ms();
            let Some(code) = s.codes.get_mut(get("code")) else {
                return token_error("invalid_request", "no valid data in session");
            };
            if code.used || now >= code.expires_ms || code.state != get("state") {
                return token_error("invalid_request", "no valid data in session");
            }
            code.used = true;
            let member = code.member_id.clone();
            let (access, refresh) = s.issue_grant(&member);
            bearer(&access, Some(&refresh))
        }
        "refresh_token" => {
            let member = match s.grants.get(get("refresh_token")) {
                Some(grant) if !grant.revoked => grant.member_id.clone(),
                _ => return token_error("invalid_request", "invalid refresh_token"),
            };
            s.refreshes += 1;
            let grant = get("refresh_token").to_owned();
            let access = s.issue_access(&member, Some(grant));
            bearer(&access, None)
        }
        "delete" => {
            let given = get("access_token").to_owned();
            if get("service_provider") == "NAVER" {
                s.deletes += 1;
                let grant = s.access.get(&given).and_then(|a| a.grant.clone());
                if let Some(access) = s.access.get_mut(&given) {
                    access.revoked = true;
                }
                if let Some(grant) = grant.and_then(|g| s.grants.get_mut(&g)) {
                    grant.revoked = true;
                }
            }
            axum::Json(json!({"access_token": given, "result": "success"})).into_response()
        }
        _ => token_error("invalid_request", "unsupported grant_type"),
    }
}

/// The Bearer token's member, or Naver's (code, message) of the failed check.
fn bearer_member(s: &NaverState, headers: &HeaderMap) -> Result<String, (&'static str, &'static str)> {
    let Some(header) = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Err(("028", "Authentication header not exists"));
    };
    let token = header.strip_prefix("Bearer ").unwrap_or_default().trim();
    s.member_of(token).ok_or(("024", "Authentication failed (인증에 실패했습니다.)"))
}

async fn me(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let mut s = lock(&state);
    s.calls += 1;
    let shape = |code: &str, message: &str| {
        (StatusCode::UNAUTHORIZED, axum::Json(json!({"resultcode": code, "message": message}))).into_response()
    };
    let id = match bearer_member(&s, &headers) {
        Ok(id) => id,
        Err((code, message)) => return shape(code, message),
    };
    let Some(member) = s.members.iter().find(|m| m.id == id) else {
        return shape("024", "Authentication failed");
    };
    axum::Json(json!({"resultcode": "00", "message": "success",
        "response": {"id": member.id, "nickname": member.nickname, "name": member.name}}))
    .into_response()
}

/// Naver's common OpenAPI error (gateway level: authentication).
fn openapi_error(code: &str, message: &str) -> Response {
    (StatusCode::UNAUTHORIZED, axum::Json(json!({"errorMessage": message, "errorCode": code}))).into_response()
}

/// The Cafe API's own error envelope.
fn cafe_error(status: StatusCode, code: &str, msg: &str) -> Response {
    (
        status,
        axum::Json(json!({"message": {"@type": "error", "@service": "naverservice.community.cafe",
            "@version": "1.0.0", "status": "500", "error": {"code": code, "msg": msg}}})),
    )
        .into_response()
}

/// `%XX` and `+` decoded to bytes.
fn unescape(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let hex = |b: Option<&u8>| b.and_then(|b| char::from(*b).to_digit(16));
        match text[i] {
            b'+' => out.push(b' '),
            b'%' if hex(text.get(i + 1)).is_some() && hex(text.get(i + 2)).is_some() => {
                let (hi, lo) = (hex(text.get(i + 1)).unwrap_or(0), hex(text.get(i + 2)).unwrap_or(0));
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                i += 3;
                continue;
            }
            other => out.push(other),
        }
        i += 1;
    }
    out
}

/// Reads a Cafe form field as Naver does: the form layer as MS949, then the inner layer as UTF-8.
fn double_decode(value: &[u8]) -> String {
    let bytes = unescape(value);
    let (outer, _, _) = encoding_rs::EUC_KR.decode(&bytes);
    String::from_utf8_lossy(&unescape(outer.as_bytes())).into_owned()
}

async fn write(
    State(state): State<Shared>,
    Path((club, menu)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = lock(&state);
    s.calls += 1;
    let member = match bearer_member(&s, &headers) {
        Ok(member) => member,
        Err((code, message)) => return openapi_error(code, message),
    };
    let content_type = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if content_type.starts_with("multipart/") {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "multipart posts are not implemented by this contract server")
            .into_response();
    }
    let Some(cafe) = s.clubs.get(&club) else {
        return cafe_error(StatusCode::FORBIDDEN, "AP006", "존재하지 않는 카페입니다.");
    };
    if !cafe.members.contains(&member) {
        return cafe_error(StatusCode::FORBIDDEN, "AP003", "카페 회원이 아니거나 글쓰기 권한이 없습니다.");
    }
    if !cafe.menus.contains(&menu) {
        return cafe_error(StatusCode::FORBIDDEN, "AP002", "글쓰기가 불가능한 게시판입니다.");
    }
    let mut fields: HashMap<String, String> = HashMap::new();
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let mut parts = pair.splitn(2, |b| *b == b'=');
        let name = String::from_utf8_lossy(&unescape(parts.next().unwrap_or_default())).into_owned();
        fields.insert(name, double_decode(parts.next().unwrap_or_default()));
    }
    let (Some(subject), Some(content)) = (fields.remove("subject"), fields.remove("content")) else {
        return cafe_error(StatusCode::FORBIDDEN, "AP001", "subject와 content는 필수입니다.");
    };
    if subject.trim().is_empty() || content.trim().is_empty() {
        return cafe_error(StatusCode::FORBIDDEN, "AP001", "subject와 content는 필수입니다.");
    }
    if content.to_ascii_lowercase().contains("<script") {
        return cafe_error(StatusCode::FORBIDDEN, "AP001", "content에 script를 넣을 수 없습니다.");
    }
    match s.failures.pop_front() {
        Some(WriteFailure::Spam) => {
            return cafe_error(StatusCode::FORBIDDEN, "AP005", "스팸으로 의심되어 등록이 제한되었습니다.");
        }
        Some(WriteFailure::Suspended) => {
            return cafe_error(StatusCode::FORBIDDEN, "AP007", "활동 정지된 회원입니다.");
        }
        Some(WriteFailure::Server) => {
            return cafe_error(StatusCode::INTERNAL_SERVER_ERROR, "999", "일시적인 오류입니다.");
        }
        None => {}
    }
    let Some(cafe) = s.clubs.get_mut(&club) else {
        return cafe_error(StatusCode::FORBIDDEN, "AP006", "존재하지 않는 카페입니다.");
    };
    cafe.next_article += 1;
    let article_id = cafe.next_article;
    let cafe_url = cafe.cafe_url.clone();
    let article_url = format!("https://cafe.naver.com/{cafe_url}/{article_id}");
    s.articles.push(Article {
        club,
        menu,
        member_id: member,
        subject,
        content,
        article_id,
        article_url: article_url.clone(),
    });
    axum::Json(json!({"message": {"@type": "response", "@service": "naverservice.community.cafe",
        "@version": "1.0.0", "status": "200", "result": {"msg": "Success", "cafeUrl": cafe_url,
        "articleId": article_id, "articleUrl": article_url}}}))
    .into_response()
}

/// The Blog write API is gone (§5).
async fn blog_write() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"errorMessage": "API not found (blog write API was discontinued)", "errorCode": "404"})),
    )
        .into_response()
}

pub struct NaverServer {
    pub addr: SocketAddr,
    state: Shared,
    task: JoinHandle<()>,
}

impl NaverServer {
    /// A server on its own virtual clock, starting at the current time.
    pub async fn start() -> NaverServer {
        NaverServer::start_with_clock(ManualClock::starting_now()).await
    }

    /// A server whose expiries read `clock` (a clone of the services' clock moves both).
    pub async fn start_with_clock(clock: ManualClock) -> NaverServer {
        let member =
            NaverMember {
                id: "kMq2YbZ0dR7hUe1cFvJ3pX9sLw".into(), nickname: "케이엠".into(), name: "김민지".into()
            };
        let mut s = NaverState { clock, ..NaverState::default() };
        let expires_ms = s.clock.now_ms().saturating_add(ms(ACCESS_TTL));
        s.access.insert(TOKEN.into(), Access { member_id: member.id.clone(), grant: None, expires_ms, revoked: false });
        s.clubs.insert(
            CLUB.into(),
            Club {
                cafe_url: CAFE_URL.into(),
                menus: vec![MENU.into()],
                members: HashSet::from([member.id.clone()]),
                next_article: 0,
            },
        );
        s.members.push(member);
        let state: Shared = Arc::new(Mutex::new(s));
        let router = Router::new()
            .route("/oauth2.0/authorize", get(authorize))
            .route("/oauth2.0/token", get(token).post(token))
            .route("/v1/nid/me", get(me))
            .route("/v1/cafe/{club}/menu/{menu}/articles", post(write))
            .route("/blog/writePost.json", post(blog_write))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind naver");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("naver serves");
        });
        NaverServer { addr, state, task }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn state(&self) -> MutexGuard<'_, NaverState> {
        lock(&self.state)
    }

    /// The virtual clock (a clone: advancing it advances the server).
    pub fn clock(&self) -> ManualClock {
        self.state().clock.clone()
    }

    pub fn advance(&self, by: Duration) {
        self.state().clock.advance(by);
    }

    /// Registers a Callback URL (matched exactly).
    pub fn allow_redirect(&self, uri: &str) {
        self.state().redirects.push(uri.to_owned());
    }

    /// The member [`TOKEN`] belongs to, a member of [`CLUB`]; unscripted consent screens log in as them.
    pub fn default_member(&self) -> NaverMember {
        self.state().members[0].clone()
    }

    /// A new Naver user (a member of no cafe).
    pub fn add_member(&self, nickname: &str) -> NaverMember {
        let member = NaverMember { id: random(26), nickname: nickname.to_owned(), name: format!("{nickname} 사장") };
        self.state().members.push(member.clone());
        member
    }

    /// What the user does on the next consent screen (queued).
    pub fn consent(&self, consent: NaverConsent) {
        self.state().consents.push_back(consent);
    }

    /// A cafe with these writable boards (no members).
    pub fn add_club(&self, club: &str, cafe_url: &str, menus: &[&str]) {
        let menus = menus.iter().map(|m| (*m).to_owned()).collect();
        let cafe = Club { cafe_url: cafe_url.to_owned(), menus, members: HashSet::new(), next_article: 0 };
        self.state().clubs.insert(club.to_owned(), cafe);
    }

    /// `member` joins `club` (an unknown club is ignored).
    pub fn join(&self, member: &NaverMember, club: &str) {
        if let Some(cafe) = self.state().clubs.get_mut(club) {
            cafe.members.insert(member.id.clone());
        }
    }

    pub fn leave(&self, member: &NaverMember, club: &str) {
        if let Some(cafe) = self.state().clubs.get_mut(club) {
            cafe.members.remove(&member.id);
        }
    }

    /// The user withdrew the app's consent on Naver: every access and refresh token they have dies.
    pub fn revoke(&self, member: &NaverMember) {
        let mut s = self.state();
        for access in s.access.values_mut().filter(|a| a.member_id == member.id) {
            access.revoked = true;
        }
        for grant in s.grants.values_mut().filter(|g| g.member_id == member.id) {
            grant.revoked = true;
        }
    }

    /// Mints an access + refresh token pair of `member`, as if they had logged in a moment ago.
    pub fn issue_tokens(&self, member: &NaverMember) -> (String, String) {
        self.state().issue_grant(&member.id)
    }

    /// The next cafe write fails this way (queued).
    pub fn fail_next_write(&self, failure: WriteFailure) {
        self.state().failures.push_back(failure);
    }

    /// Every article accepted, in order.
    pub fn articles(&self) -> Vec<Article> {
        self.state().articles.clone()
    }

    pub fn calls(&self) -> u64 {
        self.state().calls
    }

    /// Access tokens issued (by code and by refresh; not [`TOKEN`]).
    pub fn tokens_issued(&self) -> u64 {
        self.state().tokens_issued
    }

    /// Successful `grant_type=refresh_token` calls.
    pub fn refreshes(&self) -> u64 {
        self.state().refreshes
    }

    /// `grant_type=delete` calls (valid token or not).
    pub fn deletes(&self) -> u64 {
        self.state().deletes
    }

    /// Access tokens of `member` an API call would accept now.
    pub fn live_tokens(&self, member: &NaverMember) -> Vec<String> {
        let s = self.state();
        s.access.keys().filter(|t| s.member_of(t).as_deref() == Some(member.id.as_str())).cloned().collect()
    }
}

impl Drop for NaverServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::instagram::testing::{get_json, get_raw, post_form, request};

    const CALLBACK: &str = "https://kem.example/api/v1/channels/naver/callback";

    fn authorize_url(naver: &NaverServer, redirect_uri: &str, state: &str) -> String {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", CLIENT_ID)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state)
            .finish();
        format!("{}/oauth2.0/authorize?{query}", naver.base_url())
    }

    async fn callback(url: &str) -> (u16, HashMap<String, String>) {
        let (status, headers, _) = get_raw(url).await;
        let Some(location) = headers.get(http::header::LOCATION) else { return (status, HashMap::new()) };
        let location = location.to_str().expect("ascii");
        assert!(location.starts_with(CALLBACK), "{location}");
        let query = location.split_once('?').expect("query").1;
        (status, form_urlencoded::parse(query.as_bytes()).into_owned().collect())
    }

    async fn code_grant(naver: &NaverServer, code: &str, state: &str) -> serde_json::Value {
        post_form(
            &format!("{}/oauth2.0/token", naver.base_url()),
            &[
                ("grant_type", "authorization_code"),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
                ("code", code),
                ("state", state),
            ],
        )
        .await
        .1
    }

    async fn me_of(naver: &NaverServer, token: &str) -> (u16, serde_json::Value) {
        let auth = format!("Bearer {token}");
        let (status, _, body) = request(
            http::Method::GET,
            &format!("{}/v1/nid/me", naver.base_url()),
            &[("authorization", &auth)],
            String::new(),
        )
        .await;
        (status, serde_json::from_slice(&body).expect("json"))
    }

    /// Java's `URLEncoder`: space as '+', `*-._` kept.
    fn encode(text: &str) -> String {
        form_urlencoded::byte_serialize(text.as_bytes()).collect()
    }

    async fn post_article(naver: &NaverServer, club: &str, token: &str, body: String) -> (u16, serde_json::Value) {
        let auth = format!("Bearer {token}");
        let headers = [("authorization", auth.as_str()), ("content-type", "application/x-www-form-urlencoded")];
        let url = format!("{}/v1/cafe/{club}/menu/{MENU}/articles", naver.base_url());
        let (status, _, body) = request(http::Method::POST, &url, &headers, body).await;
        (status, serde_json::from_slice(&body).expect("json"))
    }

    #[tokio::test]
    async fn login_code_refresh_and_delete() {
        let naver = NaverServer::start().await;
        naver.allow_redirect(CALLBACK);
        let owner = naver.add_member("빵집");
        naver.consent(NaverConsent::Approve(owner.clone()));
        let (status, params) = callback(&authorize_url(&naver, CALLBACK, "csrf-1")).await;
        assert_eq!((status, params["state"].as_str()), (302, "csrf-1"));
        let code = params["code"].clone();

        assert_eq!(code_grant(&naver, &code, "csrf-other").await["error"], "invalid_request", "bound to its state");
        let tokens = code_grant(&naver, &code, "csrf-1").await;
        assert_eq!(tokens["expires_in"], json!("3600"), "a string: {tokens}");
        assert_eq!(tokens["token_type"], "bearer");
        assert_eq!(code_grant(&naver, &code, "csrf-1").await["error"], "invalid_request", "single use");
        let access = tokens["access_token"].as_str().expect("access").to_owned();
        let refresh = tokens["refresh_token"].as_str().expect("refresh").to_owned();

        let (status, me) = me_of(&naver, &access).await;
        assert_eq!(status, 200, "{me}");
        assert_eq!((me["resultcode"].as_str(), me["response"]["id"].as_str()), (Some("00"), Some(owner.id.as_str())));
        assert_eq!(me["response"]["nickname"], "빵집");

        naver.advance(ACCESS_TTL);
        let (status, expired) = me_of(&naver, &access).await;
        assert_eq!((status, expired["resultcode"].as_str()), (401, Some("024")));
        let url = format!(
            "{}/oauth2.0/token?grant_type=refresh_token&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}&refresh_token={refresh}",
            naver.base_url()
        );
        let (status, renewed) = get_json(&url).await;
        assert_eq!(status, 200, "GET works too: {renewed}");
        assert_eq!(renewed["expires_in"], json!("3600"));
        assert!(renewed.get("refresh_token").is_none(), "no new refresh token: {renewed}");
        let renewed = renewed["access_token"].as_str().expect("access").to_owned();
        assert_eq!(me_of(&naver, &renewed).await.0, 200);
        assert_eq!((naver.refreshes(), naver.tokens_issued()), (1, 2));

        let delete = [
            ("grant_type", "delete"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("access_token", renewed.as_str()),
            ("service_provider", "NAVER"),
        ];
        let (_, deleted) = post_form(&format!("{}/oauth2.0/token", naver.base_url()), &delete).await;
        assert_eq!(
            (deleted["result"].as_str(), deleted["access_token"].as_str()),
            (Some("success"), Some(renewed.as_str()))
        );
        assert_eq!(me_of(&naver, &renewed).await.0, 401, "deleted");
        assert_eq!(get_json(&url).await.1["error"], "invalid_request", "the grant's refresh token died too");
        let mut forged = delete;
        forged[3] = ("access_token", "never-issued");
        let (_, deleted) = post_form(&format!("{}/oauth2.0/token", naver.base_url()), &forged).await;
        assert_eq!(deleted["result"], "success", "Naver answers success for unknown tokens");
        assert_eq!(naver.deletes(), 2);
        let mut wrong = delete;
        wrong[2] = ("client_secret", "guess");
        assert_eq!(
            post_form(&format!("{}/oauth2.0/token", naver.base_url()), &wrong).await.1["error"],
            "invalid_client"
        );
    }

    #[tokio::test]
    async fn one_code_granted_concurrently_yields_one_token_pair() {
        let naver = Arc::new(NaverServer::start().await);
        naver.allow_redirect(CALLBACK);
        let (_, params) = callback(&authorize_url(&naver, CALLBACK, "csrf-c")).await;
        let attempts: Vec<_> = (0..8)
            .map(|_| {
                let (naver, code) = (naver.clone(), params["code"].clone());
                tokio::spawn(async move { code_grant(&naver, &code, "csrf-c").await.get("access_token").is_some() })
            })
            .collect();
        let mut granted = 0;
        for attempt in attempts {
            granted += usize::from(attempt.await.expect("grant"));
        }
        assert_eq!((granted, naver.tokens_issued()), (1, 1));
    }

    #[tokio::test]
    async fn authorize_checks_redirect_and_state_and_can_be_denied() {
        let naver = NaverServer::start().await;
        naver.allow_redirect(CALLBACK);
        for bad in [
            authorize_url(&naver, &format!("{CALLBACK}?x=1"), "s"),
            authorize_url(&naver, "https://evil.example/cb", "s"),
            authorize_url(&naver, CALLBACK, ""),
            authorize_url(&naver, CALLBACK, "s").replace(CLIENT_ID, "other"),
            authorize_url(&naver, CALLBACK, "s").replace("response_type=code", "response_type=token"),
        ] {
            let (status, headers, _) = get_raw(&bad).await;
            assert_eq!((status, headers.get(http::header::LOCATION)), (400, None), "{bad}");
        }
        naver.consent(NaverConsent::Deny);
        let (status, denied) = callback(&authorize_url(&naver, CALLBACK, "csrf-2")).await;
        assert_eq!(status, 302);
        assert_eq!(
            (denied["state"].as_str(), denied["error"].as_str(), denied.get("code")),
            ("csrf-2", "access_denied", None)
        );
        let (_, params) = callback(&authorize_url(&naver, CALLBACK, "csrf-3")).await;
        naver.advance(CODE_TTL);
        assert_eq!(code_grant(&naver, &params["code"], "csrf-3").await["error"], "invalid_request", "expired code");
    }

    #[tokio::test]
    async fn cafe_write_decodes_twice_and_checks_membership() {
        let naver = NaverServer::start().await;
        let subject = "카페 가입 인사 50% & more";
        let content = "<p>안녕하세요 <a href='https://kem.example/e/1?c=naver'>이벤트</a></p>";
        let body = format!("subject={}&content={}", encode(&encode(subject)), encode(&encode(content)));
        assert!(body.contains("%25EC%25B9%25B4"), "카 double-encoded as §11 shows: {body}");
        let (status, ok) = post_article(&naver, CLUB, TOKEN, body).await;
        assert_eq!(status, 200, "{ok}");
        assert_eq!(ok["message"]["status"], "200");
        assert_eq!(ok["message"]["result"]["articleId"], 1);
        assert_eq!(ok["message"]["result"]["articleUrl"], "https://cafe.naver.com/kemcafe/1");
        let article = &naver.articles()[0];
        assert_eq!((article.subject.as_str(), article.content.as_str()), (subject, content));

        let once = format!("subject={}&content={}", encode(subject), encode(content));
        assert_eq!(post_article(&naver, CLUB, TOKEN, once).await.0, 200);
        assert_ne!(naver.articles()[1].subject, subject, "encoded once reads as mojibake, as at Naver");

        let stranger = naver.add_member("옆집");
        let (access, _) = naver.issue_tokens(&stranger);
        let body = format!("subject={}&content={}", encode(&encode("hi")), encode(&encode("hello")));
        let (status, refused) = post_article(&naver, CLUB, &access, body.clone()).await;
        assert_eq!(status, 403);
        assert_eq!(
            (refused["message"]["status"].as_str(), refused["message"]["error"]["code"].as_str()),
            (Some("500"), Some("AP003")),
            "{refused}"
        );
        naver.join(&stranger, CLUB);
        assert_eq!(post_article(&naver, CLUB, &access, body.clone()).await.0, 200);
        assert_eq!(post_article(&naver, "999", &access, body.clone()).await.1["message"]["error"]["code"], "AP006");
        naver.fail_next_write(WriteFailure::Spam);
        assert_eq!(post_article(&naver, CLUB, &access, body.clone()).await.1["message"]["error"]["code"], "AP005");
        let (status, auth) = post_article(&naver, CLUB, "forged", body.clone()).await;
        assert_eq!((status, auth["errorCode"].as_str()), (401, Some("024")));
        naver.revoke(&stranger);
        assert_eq!(post_article(&naver, CLUB, &access, body).await.0, 401, "revoked");
        let script = format!("subject=x&content={}", encode(&encode("<script>alert(1)</script>")));
        assert_eq!(post_article(&naver, CLUB, TOKEN, script).await.1["message"]["error"]["code"], "AP001");
        assert_eq!(post_article(&naver, CLUB, TOKEN, "subject=x".into()).await.1["message"]["error"]["code"], "AP001");
        assert_eq!(naver.articles().len(), 3);
    }
}
