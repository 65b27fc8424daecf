//! Instagram API with Instagram Login (PROVIDERS.md §9) and the token lifecycle every Graph call
//! checks. The routes of three hosts are served on the one base URL:
//!
//! - `GET /oauth/authorize` (www.instagram.com / api.instagram.com): the consent screen. A bad
//!   `client_id`, a `redirect_uri` not registered EXACTLY, a `response_type` other than `code` or a
//!   bad scope is an error page (400, no redirect), as Meta shows it. Otherwise the scripted
//!   [`Consent`] decides: 302 to `{redirect_uri}?code=…&state=…#_`, or to
//!   `{redirect_uri}?error=access_denied&error_reason=user_denied&error_description=Permissions+error&state=…`.
//! - `POST /oauth/access_token` (api.instagram.com): code → short-lived token (1 h). Codes are
//!   single use, live 1 h and are bound to the client and the `redirect_uri` of the authorize.
//!   Errors `400 {"error_type":"OAuthException","code":400,"error_message"}`.
//! - `GET /access_token?grant_type=ig_exchange_token` (graph.instagram.com): short → long-lived
//!   (60 days).
//! - `GET /refresh_access_token?grant_type=ig_refresh_token`: a long-lived token at least 24 h old
//!   and unexpired → a NEW token, 60 days from now; the old one keeps working until its own expiry.
//! - `GET /me` and `GET /{v}/me?fields=user_id,username`.
//!
//! Every expiry reads the server's virtual clock ([`super::IgServer::advance`]). A revoked account
//! (the user removed the app) answers Graph error 190/[`SUBCODE_APP_REMOVED`] on every token it had.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use kem_kit::clock::Clock;
use rand::Rng;
use serde_json::json;

use super::{IgState, Shared, graph_error, lock};

/// The registered Instagram app (client id / secret of the Meta dashboard).
pub const APP_ID: &str = "990602627938098";
pub const APP_SECRET: &str = "ig-app-secret-0b5f";

/// Scopes Instagram Login knows. The `business_*` ones died on 2025-01-27 and are refused.
pub const SCOPE_BASIC: &str = "instagram_business_basic";
pub const SCOPE_PUBLISH: &str = "instagram_business_content_publish";
pub const SCOPE_INSIGHTS: &str = "instagram_business_manage_insights";
pub const SCOPE_COMMENTS: &str = "instagram_business_manage_comments";
pub const SCOPE_MESSAGES: &str = "instagram_business_manage_messages";
const KNOWN_SCOPES: [&str; 5] = [SCOPE_BASIC, SCOPE_PUBLISH, SCOPE_INSIGHTS, SCOPE_COMMENTS, SCOPE_MESSAGES];

/// Authorization code lifetime (Meta says "valid for 1 hour"; unconfirmed, §9).
pub const CODE_TTL: Duration = Duration::from_secs(3_600);
/// Short-lived token lifetime.
pub const SHORT_TTL: Duration = Duration::from_secs(3_600);
/// Long-lived token lifetime (`expires_in` 5184000).
pub const LONG_TTL: Duration = Duration::from_secs(60 * 24 * 3_600);
/// A long-lived token must be this old before it can be refreshed.
pub const REFRESH_MIN_AGE: Duration = Duration::from_secs(24 * 3_600);

/// Graph 190 subcode of an expired token ("Session has expired").
pub const SUBCODE_EXPIRED: i64 = 463;
/// Graph 190 subcode of a token whose user removed the app ("App Not Installed", Meta's 458).
pub const SUBCODE_APP_REMOVED: i64 = 458;

/// A professional Instagram account that can log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgAccount {
    /// The Instagram professional account id (`user_id` of `/me`, the `{ig-user-id}` of Graph paths).
    pub user_id: String,
    pub username: String,
}

/// What the user does on the next consent screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consent {
    /// Logs in as `account` and grants the requested scopes that are in `scopes` (unticking a
    /// permission = leaving it out here).
    Approve { account: IgAccount, scopes: Vec<String> },
    /// Presses "Cancel".
    Deny,
}

impl Consent {
    /// Approves as `account`, granting every scope the app asked for.
    pub fn approve(account: &IgAccount) -> Consent {
        Consent::Approve { account: account.clone(), scopes: KNOWN_SCOPES.iter().map(|s| (*s).to_owned()).collect() }
    }
}

/// The JSON shape of `POST /oauth/access_token` (§9: clients must parse both).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TokenShape {
    /// `{"access_token","user_id":<number>,"permissions":"a,b"}`.
    #[default]
    Flat,
    /// `{"data":[{"access_token","user_id":"<string>","permissions":"a,b"}]}`.
    Wrapped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    ShortLived,
    LongLived,
}

/// What the server knows of one token it issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub kind: TokenKind,
    pub user_id: String,
    pub scopes: Vec<String>,
    /// Virtual-clock milliseconds since the Unix epoch.
    pub issued_ms: i64,
    pub expires_ms: i64,
    pub revoked: bool,
}

#[derive(Debug, Clone)]
struct Code {
    redirect_uri: String,
    user_id: String,
    scopes: Vec<String>,
    expires_ms: i64,
    used: bool,
}

#[derive(Debug, Default)]
pub(super) struct Login {
    redirects: Vec<String>,
    accounts: Vec<IgAccount>,
    consents: VecDeque<Consent>,
    codes: HashMap<String, Code>,
    tokens: HashMap<String, TokenInfo>,
    shape: TokenShape,
    authorizations: u64,
    tokens_issued: u64,
    refreshes: u64,
}

pub(super) fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn random(prefix: &str, len: usize) -> String {
    let tail: String = rand::rng().sample_iter(rand::distr::Alphanumeric).take(len).map(char::from).collect();
    format!("{prefix}{tail}")
}

impl Login {
    /// The default account (`super::IG_USER`) with the pre-registered long-lived `super::TOKEN`.
    pub(super) fn seeded(now_ms: i64) -> Login {
        let mut login = Login::default();
        login.accounts.push(IgAccount { user_id: super::IG_USER.into(), username: "kem_test_store".into() });
        login.tokens.insert(
            super::TOKEN.into(),
            TokenInfo {
                kind: TokenKind::LongLived,
                user_id: super::IG_USER.into(),
                scopes: KNOWN_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
                issued_ms: now_ms,
                expires_ms: now_ms.saturating_add(ms(LONG_TTL)),
                revoked: false,
            },
        );
        login
    }

    pub(super) fn has_account(&self, user_id: &str) -> bool {
        self.accounts.iter().any(|a| a.user_id == user_id)
    }

    fn issue(&mut self, kind: TokenKind, user_id: &str, scopes: Vec<String>, now_ms: i64) -> String {
        let (prefix, ttl) = match kind {
            TokenKind::ShortLived => ("IGQVJ", SHORT_TTL),
            TokenKind::LongLived => ("IGAAL", LONG_TTL),
        };
        let token = random(prefix, 48);
        let info = TokenInfo {
            kind,
            user_id: user_id.to_owned(),
            scopes,
            issued_ms: now_ms,
            expires_ms: now_ms.saturating_add(ms(ttl)),
            revoked: false,
        };
        self.tokens.insert(token.clone(), info);
        self.tokens_issued += 1;
        token
    }
}

/// The token of a Graph call: `access_token` (query or form) or `Authorization: Bearer`.
pub(super) fn token_of<'a>(params: &'a HashMap<String, String>, headers: &'a HeaderMap) -> Option<&'a str> {
    params
        .get("access_token")
        .map(String::as_str)
        .or_else(|| headers.get(http::header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim))
}

/// A refused Graph call: Meta's error envelope, HTTP 400.
#[derive(Debug)]
pub(super) struct Refusal {
    code: i64,
    subcode: Option<i64>,
    message: &'static str,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        graph_error(StatusCode::BAD_REQUEST, self.code, self.subcode, self.message)
    }
}

/// Checks a Graph call's token: known, unexpired, its account not revoked (190 otherwise).
pub(super) fn check_token(s: &IgState, token: Option<&str>) -> Result<TokenInfo, Refusal> {
    let refuse = |subcode, message| Err(Refusal { code: 190, subcode, message });
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return refuse(None, "An active access token must be used");
    };
    let Some(info) = s.login.tokens.get(token) else {
        return refuse(None, "Invalid OAuth access token - Cannot parse access token");
    };
    if info.revoked {
        return refuse(
            Some(SUBCODE_APP_REMOVED),
            "Error validating access token: The user has not authorized application",
        );
    }
    if s.clock.now_ms() >= info.expires_ms {
        return refuse(Some(SUBCODE_EXPIRED), "Error validating access token: Session has expired");
    }
    Ok(info.clone())
}

/// Checks that the token may act on `node` (the account itself, or `me`) with `scope`: another
/// account's id is permission error 10, an id nobody has is 100/33.
pub(super) fn check_owner(s: &IgState, info: &TokenInfo, node: &str, scope: &str) -> Result<(), Refusal> {
    if node != "me" && node != info.user_id {
        if s.login.has_account(node) {
            return Err(permission_error());
        }
        return Err(Refusal {
            code: 100,
            subcode: Some(33),
            message: "Unsupported request. Object does not exist, cannot be loaded due to missing permissions",
        });
    }
    check_scope(info, scope)
}

pub(super) fn check_scope(info: &TokenInfo, scope: &str) -> Result<(), Refusal> {
    if info.scopes.iter().any(|s| s == scope) { Ok(()) } else { Err(permission_error()) }
}

pub(super) fn permission_error() -> Refusal {
    Refusal { code: 10, subcode: None, message: "(#10) Application does not have permission for this action" }
}

/// Meta's consent-dialog error page: no redirect, the user sees the message.
fn error_page(message: &str) -> Response {
    let escaped = message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    (StatusCode::BAD_REQUEST, Html(format!("<html><body><h1>Invalid Request</h1><p>{escaped}</p></body></html>")))
        .into_response()
}

fn redirect(uri: &str, params: &[(&str, &str)], fragment: &str) -> Response {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        query.append_pair(k, v);
    }
    let joiner = if uri.contains('?') { '&' } else { '?' };
    let location = format!("{uri}{joiner}{}{fragment}", query.finish());
    (StatusCode::FOUND, [(http::header::LOCATION, location)]).into_response()
}

pub(super) async fn authorize(State(state): State<Shared>, Query(query): Query<HashMap<String, String>>) -> Response {
    let mut s = lock(&state);
    s.calls += 1;
    s.login.authorizations += 1;
    let get = |name: &str| query.get(name).map(String::as_str).unwrap_or_default();
    if get("client_id") != APP_ID {
        return error_page("Invalid platform app");
    }
    let redirect_uri = get("redirect_uri");
    if !s.login.redirects.iter().any(|r| r == redirect_uri) {
        return error_page("Invalid redirect_uri: it must match a registered Valid OAuth Redirect URI exactly");
    }
    if get("response_type") != "code" {
        return error_page("Invalid response_type: only code is supported");
    }
    let requested: Vec<String> = get("scope").split([',', ' ']).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    if let Some(bad) = requested.iter().find(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
        return error_page(&format!("Invalid Scopes: {bad}"));
    }
    if !requested.iter().any(|s| s == SCOPE_BASIC) {
        return error_page("Invalid Scopes: instagram_business_basic is required");
    }
    let state_param = query.get("state").cloned();
    let consent = match s.login.consents.pop_front() {
        Some(consent) => consent,
        None => Consent::approve(&s.login.accounts[0]),
    };
    let code;
    let mut params: Vec<(&str, &str)> = Vec::new();
    match consent {
        Consent::Deny => {
            params.extend([
                ("error", "access_denied"),
                ("error_reason", "user_denied"),
                ("error_description", "Permissions error"),
            ]);
            if let Some(st) = state_param.as_deref() {
                params.push(("state", st));
            }
            return redirect(redirect_uri, &params, "#_");
        }
        Consent::Approve { account, scopes } => {
            let granted: Vec<String> = requested.iter().filter(|r| scopes.contains(r)).cloned().collect();
            code = random("AQB", 64);
            let expires_ms = s.clock.now_ms().saturating_add(ms(CODE_TTL));
            let record = Code {
                redirect_uri: redirect_uri.to_owned(),
                user_id: account.user_id,
                scopes: granted,
                expires_ms,
                used: false,
            };
            s.login.codes.insert(code.clone(), record);
        }
    }
    params.push(("code", &code));
    if let Some(st) = state_param.as_deref() {
        params.push(("state", st));
    }
    redirect(redirect_uri, &params, "#_")
}

fn oauth_error(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error_type": "OAuthException", "code": 400, "error_message": message})),
    )
        .into_response()
}

pub(super) async fn access_token(State(state): State<Shared>, body: Bytes) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let get = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let mut s = lock(&state);
    s.calls += 1;
    if get("client_id") != APP_ID {
        return oauth_error("Invalid platform app");
    }
    if get("client_secret") != APP_SECRET {
        return oauth_error("Error validating client secret.");
    }
    if get("grant_type") != "authorization_code" {
        return oauth_error("Unsupported grant_type: only authorization_code");
    }
    let now = s.clock.now_ms();
    let Some(code) = s.login.codes.get_mut(get("code")) else {
        return oauth_error("Invalid authorization code");
    };
    if code.used {
        return oauth_error("This authorization code has been used");
    }
    if now >= code.expires_ms {
        return oauth_error("This authorization code has expired");
    }
    if code.redirect_uri != get("redirect_uri") {
        return oauth_error(
            "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request",
        );
    }
    code.used = true;
    let (user_id, scopes) = (code.user_id.clone(), code.scopes.clone());
    let token = s.login.issue(TokenKind::ShortLived, &user_id, scopes.clone(), now);
    let permissions = scopes.join(",");
    let answer = match s.login.shape {
        TokenShape::Flat => {
            let number: u64 = user_id.parse().unwrap_or_default();
            json!({"access_token": token, "user_id": number, "permissions": permissions})
        }
        TokenShape::Wrapped => {
            json!({"data": [{"access_token": token, "user_id": user_id, "permissions": permissions}]})
        }
    };
    axum::Json(answer).into_response()
}

pub(super) async fn exchange(
    State(state): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut s = lock(&state);
    s.calls += 1;
    if query.get("grant_type").map(String::as_str) != Some("ig_exchange_token") {
        return graph_error(StatusCode::BAD_REQUEST, 100, None, "(#100) grant_type must be ig_exchange_token");
    }
    if query.get("client_secret").map(String::as_str) != Some(APP_SECRET) {
        return graph_error(StatusCode::BAD_REQUEST, 101, None, "Error validating client secret.");
    }
    let info = match check_token(&s, token_of(&query, &headers)) {
        Ok(info) => info,
        Err(refusal) => return refusal.into_response(),
    };
    if info.kind != TokenKind::ShortLived {
        return graph_error(StatusCode::BAD_REQUEST, 190, None, "Only a short-lived token can be exchanged");
    }
    let now = s.clock.now_ms();
    let token = s.login.issue(TokenKind::LongLived, &info.user_id, info.scopes, now);
    axum::Json(json!({"access_token": token, "token_type": "bearer", "expires_in": LONG_TTL.as_secs()})).into_response()
}

pub(super) async fn refresh(
    State(state): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut s = lock(&state);
    s.calls += 1;
    if query.get("grant_type").map(String::as_str) != Some("ig_refresh_token") {
        return graph_error(StatusCode::BAD_REQUEST, 100, None, "(#100) grant_type must be ig_refresh_token");
    }
    let info = match check_token(&s, token_of(&query, &headers)) {
        Ok(info) => info,
        Err(refusal) => return refusal.into_response(),
    };
    let now = s.clock.now_ms();
    if info.kind != TokenKind::LongLived {
        return graph_error(StatusCode::BAD_REQUEST, 190, None, "Only a long-lived token can be refreshed");
    }
    if now.saturating_sub(info.issued_ms) < ms(REFRESH_MIN_AGE) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            190,
            None,
            "A token must be at least 24 hours old to be refreshed",
        );
    }
    s.login.refreshes += 1;
    let token = s.login.issue(TokenKind::LongLived, &info.user_id, info.scopes, now);
    axum::Json(json!({"access_token": token, "token_type": "bearer", "expires_in": LONG_TTL.as_secs()})).into_response()
}

/// `GET /{v}/me?fields=user_id,username`. `id` is the app-scoped id, not the account id: a client
/// that publishes to `id` gets 100/33, as it would at Meta.
pub(super) fn me(s: &IgState, query: &HashMap<String, String>, headers: &HeaderMap) -> Response {
    let info = match check_token(s, token_of(query, headers)) {
        Ok(info) => info,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(account) = s.login.accounts.iter().find(|a| a.user_id == info.user_id) else {
        return graph_error(StatusCode::BAD_REQUEST, 190, None, "Invalid OAuth access token");
    };
    let mut answer = json!({"id": app_scoped_id(&account.user_id)});
    let fields = query.get("fields").map(String::as_str).unwrap_or("id");
    for field in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        match field {
            "id" => {}
            "user_id" => answer["user_id"] = json!(account.user_id),
            "username" => answer["username"] = json!(account.username),
            "account_type" => answer["account_type"] = json!("BUSINESS"),
            other => {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    100,
                    None,
                    &format!("(#100) Tried accessing nonexisting field ({other})"),
                );
            }
        }
    }
    axum::Json(answer).into_response()
}

fn app_scoped_id(user_id: &str) -> String {
    format!("9{}", user_id.chars().rev().collect::<String>())
}

pub(super) async fn me_unversioned(
    State(state): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut s = lock(&state);
    s.calls += 1;
    me(&s, &query, &headers)
}

impl super::IgServer {
    /// Registers a Valid OAuth Redirect URI (matched exactly, as Meta does).
    pub fn allow_redirect(&self, uri: &str) {
        self.state().login.redirects.push(uri.to_owned());
    }

    /// A new professional account that can log in.
    pub fn add_account(&self, username: &str) -> IgAccount {
        let mut s = self.state();
        let n = u64::try_from(s.login.accounts.len()).unwrap_or(u64::MAX);
        let base: u64 = super::IG_USER.parse().unwrap_or_default();
        let account = IgAccount { user_id: (base + n).to_string(), username: username.to_owned() };
        s.login.accounts.push(account.clone());
        account
    }

    /// The account of `super::IG_USER` (the pre-registered `super::TOKEN`'s), whom the consent
    /// screen logs in when nothing is scripted.
    pub fn default_account(&self) -> IgAccount {
        self.state().login.accounts[0].clone()
    }

    /// What the user does on the next consent screen (queued; unscripted screens approve as
    /// [`Self::default_account`], granting every requested scope).
    pub fn consent(&self, consent: Consent) {
        self.state().login.consents.push_back(consent);
    }

    /// The JSON shape of the code exchange's answer.
    pub fn token_shape(&self, shape: TokenShape) {
        self.state().login.shape = shape;
    }

    /// The user removed the app: every token of `account` answers 190/[`SUBCODE_APP_REMOVED`]
    /// from now on (a later login issues working tokens again).
    pub fn revoke(&self, account: &IgAccount) {
        for info in self.state().login.tokens.values_mut().filter(|t| t.user_id == account.user_id) {
            info.revoked = true;
        }
    }

    /// Mints a long-lived token of `account` with `scopes`, as if it had logged in a moment ago
    /// (for tests that start from a connected account).
    pub fn issue_long_lived(&self, account: &IgAccount, scopes: &[&str]) -> String {
        let mut s = self.state();
        let now = s.clock.now_ms();
        s.login.issue(TokenKind::LongLived, &account.user_id, scopes.iter().map(|x| (*x).to_owned()).collect(), now)
    }

    /// Tokens issued so far (short-lived, long-lived and refreshed; not the pre-registered one).
    pub fn tokens_issued(&self) -> u64 {
        self.state().login.tokens_issued
    }

    /// Successful `refresh_access_token` calls.
    pub fn refreshes(&self) -> u64 {
        self.state().login.refreshes
    }

    /// Consent screens shown (`GET /oauth/authorize` calls).
    pub fn authorizations(&self) -> u64 {
        self.state().login.authorizations
    }

    /// The tokens of `account` a Graph call would accept now (unexpired, unrevoked).
    pub fn live_tokens(&self, account: &IgAccount) -> Vec<String> {
        let s = self.state();
        let now = s.clock.now_ms();
        s.login
            .tokens
            .iter()
            .filter(|(_, t)| t.user_id == account.user_id && !t.revoked && now < t.expires_ms)
            .map(|(token, _)| token.clone())
            .collect()
    }

    /// What the server knows of `token` (None: never issued here).
    pub fn token_info(&self, token: &str) -> Option<TokenInfo> {
        self.state().login.tokens.get(token).cloned()
    }

    /// Every distinct scope granted to `account`'s live tokens.
    pub fn granted_scopes(&self, account: &IgAccount) -> HashSet<String> {
        let live = self.live_tokens(account);
        let s = self.state();
        live.iter().filter_map(|t| s.login.tokens.get(t)).flat_map(|t| t.scopes.iter().cloned()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{IgServer, VERSION};
    use super::*;
    use crate::contracts::instagram::testing::{get_json, post_form};

    const CALLBACK: &str = "https://kem.example/api/v1/channels/instagram/callback";

    fn authorize_url(ig: &IgServer, redirect_uri: &str, scope: &str, state: &str) -> String {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", APP_ID)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", scope)
            .append_pair("state", state)
            .finish();
        format!("{}/oauth/authorize?{query}", ig.base_url())
    }

    /// Follows the consent screen; the Location's query pairs (fragment checked and stripped).
    async fn consent_screen(url: &str) -> (u16, HashMap<String, String>) {
        let (status, headers, _) = crate::contracts::instagram::testing::get_raw(url).await;
        let Some(location) = headers.get(http::header::LOCATION) else { return (status, HashMap::new()) };
        let location = location.to_str().expect("ascii location");
        assert!(location.ends_with("#_"), "Meta appends #_: {location}");
        let query = location.trim_end_matches("#_").split_once('?').expect("a query").1;
        (status, form_urlencoded::parse(query.as_bytes()).into_owned().collect())
    }

    async fn code_for(ig: &IgServer, scope: &str) -> String {
        let (status, params) = consent_screen(&authorize_url(ig, CALLBACK, scope, "st-1")).await;
        assert_eq!(status, 302);
        assert_eq!(params["state"], "st-1");
        params["code"].clone()
    }

    async fn exchange_code(ig: &IgServer, code: &str, redirect_uri: &str) -> (u16, serde_json::Value) {
        post_form(
            &format!("{}/oauth/access_token", ig.base_url()),
            &[
                ("client_id", APP_ID),
                ("client_secret", APP_SECRET),
                ("grant_type", "authorization_code"),
                ("redirect_uri", redirect_uri),
                ("code", code),
            ],
        )
        .await
    }

    async fn long_lived(ig: &IgServer, short: &str) -> (u16, serde_json::Value) {
        get_json(&format!(
            "{}/access_token?grant_type=ig_exchange_token&client_secret={APP_SECRET}&access_token={short}",
            ig.base_url()
        ))
        .await
    }

    async fn refresh_token(ig: &IgServer, long: &str) -> (u16, serde_json::Value) {
        get_json(&format!("{}/refresh_access_token?grant_type=ig_refresh_token&access_token={long}", ig.base_url()))
            .await
    }

    async fn me_of(ig: &IgServer, token: &str) -> (u16, serde_json::Value) {
        get_json(&format!("{}/{VERSION}/me?fields=user_id,username&access_token={token}", ig.base_url())).await
    }

    #[tokio::test]
    async fn code_short_long_refresh_flow() {
        let ig = IgServer::start().await;
        ig.allow_redirect(CALLBACK);
        let shop = ig.add_account("bakery_seoul");
        ig.consent(Consent::approve(&shop));
        let code = code_for(&ig, "instagram_business_basic,instagram_business_content_publish").await;

        let (status, short) = exchange_code(&ig, &code, CALLBACK).await;
        assert_eq!(status, 200, "{short}");
        assert_eq!(short["user_id"].as_u64().map(|n| n.to_string()), Some(shop.user_id.clone()), "a JSON number");
        assert_eq!(short["permissions"], "instagram_business_basic,instagram_business_content_publish");
        let short = short["access_token"].as_str().expect("token").to_owned();

        let (status, me) = me_of(&ig, &short).await;
        assert_eq!(status, 200, "{me}");
        assert_eq!(
            (me["user_id"].as_str(), me["username"].as_str()),
            (Some(shop.user_id.as_str()), Some("bakery_seoul"))
        );
        assert_ne!(me["id"], me["user_id"], "id is app-scoped");

        let (status, long) = long_lived(&ig, &short).await;
        assert_eq!(status, 200, "{long}");
        assert_eq!((long["token_type"].as_str(), long["expires_in"].as_u64()), (Some("bearer"), Some(5_184_000)));
        let long = long["access_token"].as_str().expect("token").to_owned();
        assert_eq!(ig.token_info(&long).map(|t| t.kind), Some(TokenKind::LongLived));

        let (status, early) = refresh_token(&ig, &long).await;
        assert_eq!((status, early["error"]["code"].as_i64()), (400, Some(190)), "younger than 24 h: {early}");
        ig.advance(Duration::from_secs(25 * 3_600));
        let (status, short_again) = long_lived(&ig, &short).await;
        assert_eq!(
            (status, short_again["error"]["error_subcode"].as_i64()),
            (400, Some(SUBCODE_EXPIRED)),
            "the short-lived token died after 1 h: {short_again}"
        );
        let (status, refreshed) = refresh_token(&ig, &long).await;
        assert_eq!(status, 200, "{refreshed}");
        let fresh = refreshed["access_token"].as_str().expect("token").to_owned();
        assert_ne!(fresh, long, "a refresh issues a new token");
        assert_eq!(ig.refreshes(), 1);
        assert_eq!(me_of(&ig, &long).await.0, 200, "the old token keeps working until its expiry");

        // 60 days after the first long-lived token: it expired, the refreshed one (25 h younger) lives.
        ig.advance(LONG_TTL - Duration::from_secs(25 * 3_600));
        let (status, old) = me_of(&ig, &long).await;
        assert_eq!((status, old["error"]["error_subcode"].as_i64()), (400, Some(SUBCODE_EXPIRED)), "{old}");
        assert_eq!(refresh_token(&ig, &long).await.1["error"]["code"], 190, "an expired token cannot be refreshed");
        assert_eq!(me_of(&ig, &fresh).await.0, 200);
        assert_eq!(ig.live_tokens(&shop), vec![fresh.clone()]);
        ig.advance(Duration::from_secs(25 * 3_600));
        assert_eq!(me_of(&ig, &fresh).await.1["error"]["error_subcode"], SUBCODE_EXPIRED);
        assert_eq!(ig.tokens_issued(), 3);
    }

    #[tokio::test]
    async fn codes_are_single_use_bound_to_the_redirect_and_live_an_hour() {
        let ig = IgServer::start().await;
        ig.allow_redirect(CALLBACK);
        ig.allow_redirect("https://kem.example/other");
        let code = code_for(&ig, SCOPE_BASIC).await;
        let (status, mismatch) = exchange_code(&ig, &code, "https://kem.example/other").await;
        assert_eq!(
            (status, mismatch["error_type"].as_str(), mismatch["code"].as_i64()),
            (400, Some("OAuthException"), Some(400))
        );
        assert!(mismatch["error_message"].as_str().is_some_and(|m| m.contains("redirect_uri")), "{mismatch}");
        let (status, _) = exchange_code(&ig, &format!("{code}#_"), CALLBACK).await;
        assert_eq!(status, 400, "the #_ suffix is not part of the code");
        assert_eq!(exchange_code(&ig, &code, CALLBACK).await.0, 200);
        let (status, reused) = exchange_code(&ig, &code, CALLBACK).await;
        assert_eq!(status, 400, "{reused}");
        assert!(reused["error_message"].as_str().is_some_and(|m| m.contains("used")), "{reused}");

        let late = code_for(&ig, SCOPE_BASIC).await;
        ig.advance(CODE_TTL);
        assert_eq!(exchange_code(&ig, &late, CALLBACK).await.0, 400, "codes live one hour");

        let fresh = code_for(&ig, SCOPE_BASIC).await;
        let (status, wrong_secret) = post_form(
            &format!("{}/oauth/access_token", ig.base_url()),
            &[
                ("client_id", APP_ID),
                ("client_secret", "guessed"),
                ("grant_type", "authorization_code"),
                ("redirect_uri", CALLBACK),
                ("code", &fresh),
            ],
        )
        .await;
        assert_eq!((status, wrong_secret["code"].as_i64()), (400, Some(400)), "{wrong_secret}");
        assert_eq!(ig.tokens_issued(), 1);
    }

    #[tokio::test]
    async fn the_consent_screen_checks_client_redirect_and_scope_and_can_be_denied() {
        let ig = IgServer::start().await;
        ig.allow_redirect(CALLBACK);
        let scope = "instagram_business_basic";
        for bad in [
            authorize_url(&ig, &format!("{CALLBACK}/"), scope, "s"),
            authorize_url(&ig, "https://evil.example/cb", scope, "s"),
            authorize_url(&ig, &CALLBACK.replace("https", "http"), scope, "s"),
            authorize_url(&ig, CALLBACK, "business_basic", "s"),
            authorize_url(&ig, CALLBACK, SCOPE_PUBLISH, "s"),
            authorize_url(&ig, CALLBACK, scope, "s").replace(APP_ID, "1234"),
            authorize_url(&ig, CALLBACK, scope, "s").replace("response_type=code", "response_type=token"),
        ] {
            let (status, headers, _) = crate::contracts::instagram::testing::get_raw(&bad).await;
            assert_eq!(status, 400, "{bad}");
            assert!(headers.get(http::header::LOCATION).is_none(), "no redirect: {bad}");
        }
        ig.consent(Consent::Deny);
        let (status, denied) = consent_screen(&authorize_url(&ig, CALLBACK, scope, "st-9")).await;
        assert_eq!(status, 302);
        assert_eq!(
            (denied["error"].as_str(), denied["error_reason"].as_str(), denied["error_description"].as_str()),
            ("access_denied", "user_denied", "Permissions error")
        );
        assert_eq!((denied["state"].as_str(), denied.get("code")), ("st-9", None));

        // Unscripted: the default account, granting what was asked; unticking a permission.
        let code = code_for(&ig, "instagram_business_basic,instagram_business_content_publish").await;
        ig.token_shape(TokenShape::Wrapped);
        let (_, wrapped) = exchange_code(&ig, &code, CALLBACK).await;
        assert_eq!(wrapped["data"][0]["user_id"], super::super::IG_USER, "a string in the wrapper: {wrapped}");
        let account = ig.default_account();
        ig.consent(Consent::Approve { account, scopes: vec![SCOPE_BASIC.into()] });
        let code = code_for(&ig, "instagram_business_basic,instagram_business_content_publish").await;
        let (_, narrowed) = exchange_code(&ig, &code, CALLBACK).await;
        assert_eq!(narrowed["data"][0]["permissions"], SCOPE_BASIC);
    }

    #[tokio::test]
    async fn one_code_exchanged_concurrently_yields_one_token() {
        let ig = std::sync::Arc::new(IgServer::start().await);
        ig.allow_redirect(CALLBACK);
        let code = code_for(&ig, SCOPE_BASIC).await;
        let attempts: Vec<_> = (0..8)
            .map(|_| {
                let (ig, code) = (ig.clone(), code.clone());
                tokio::spawn(async move { exchange_code(&ig, &code, CALLBACK).await.0 })
            })
            .collect();
        let mut statuses = Vec::new();
        for attempt in attempts {
            statuses.push(attempt.await.expect("exchange"));
        }
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 400, 400, 400, 400, 400, 400, 400]);
        assert_eq!(ig.tokens_issued(), 1);
    }

    #[tokio::test]
    async fn a_revoked_account_answers_190_on_every_token() {
        let ig = IgServer::start().await;
        ig.allow_redirect(CALLBACK);
        let shop = ig.add_account("cafe_busan");
        ig.consent(Consent::approve(&shop));
        let code = code_for(&ig, SCOPE_BASIC).await;
        let short = exchange_code(&ig, &code, CALLBACK).await.1["access_token"].as_str().expect("token").to_owned();
        let long = long_lived(&ig, &short).await.1["access_token"].as_str().expect("token").to_owned();
        ig.revoke(&shop);
        for token in [&short, &long] {
            let (status, answer) = me_of(&ig, token).await;
            assert_eq!(
                (status, answer["error"]["code"].as_i64(), answer["error"]["error_subcode"].as_i64()),
                (400, Some(190), Some(SUBCODE_APP_REMOVED))
            );
        }
        assert!(ig.live_tokens(&shop).is_empty());
        assert_eq!(me_of(&ig, super::super::TOKEN).await.0, 200, "other accounts are untouched");
        assert_eq!(me_of(&ig, "IGAALforged").await.1["error"]["code"], 190);
    }
}
