//! The participant's side of an event, served by the edge without login: the hosted entry page
//! and its form, the receipt, the winners with the draw audit, QR codes of the entry links, and
//! the stylesheet.
//!
//! | route | answer |
//! |---|---|
//! | `GET /e/{event_id}?ch=` | the event (event `GetPublicEvent`) with the entry form while it is open |
//! | `POST /e/{event_id}` | the form (urlencoded, ≤ 8 KiB, same origin) → participation `Enter` → receipt, refusal or the form again with its errors |
//! | `GET /e/{event_id}/winners` | participation `GetPublicWinners`: masked winners with their claim state, every draw's audit |
//! | `GET`, `POST /e/{event_id}/claim` | a winner's claim: phone + claim code → participation `ClaimPrize` ([`claim`]) |
//! | `GET`, `POST /e/{event_id}/me` | "my entry": by receipt code, or phone + SMS code (`SendParticipantCode` LOOKUP) → `LookupEntry`; withdrawal with a confirmation step → `WithdrawEntry` ([`me`]) |
//! | `GET /e/{event_id}/qr.svg?ch=`, `qr.png?ch=` | the QR code of the channel link (or the entry URL) |
//! | `GET /e/assets/{name}` | the stylesheet under its content hash, cached for a year |
//!
//! Pages are rendered on the server (Korean, or English when `Accept-Language` prefers it), work
//! without JavaScript and load nothing from another origin: every response carries a strict
//! Content-Security-Policy (`img-src` adds exactly the origin of the event's image), `nosniff`,
//! a referrer policy, and `no-store` where a form or a receipt is shown. Backend calls go
//! through the edge's upstreams like the transcoded routes ([`calls`]); rate limits are the edge's:
//! each post counts against the quota of the REST route of the call it makes (entries per event
//! and address; codes, claims, lookups and withdrawals per address), so a page is no way around
//! the API's limits. Every form post passes the same checks before any call: same origin, form
//! type, body size (8 KiB), and a honeypot field; and carries a per-render request id.
//!
//! When the event verifies phones (`entry_rules.verify_phone`), the entry form has a second
//! submit button, "send me a code", which posts the same form (what was typed is kept) and asks
//! participation `SendParticipantCode` (ENTRY); the code typed is sent as Enter's
//! `verification_code`.

pub mod assets;
pub mod calls;
pub mod claim;
pub mod form;
pub mod html;
pub mod lang;
pub mod me;
pub mod qr;
pub mod views;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt as _;
use kem_kit::channel::Channel;
use kem_kit::validate::IdShape;
use kem_proto::kem::event::v1::PublicEvent;
use kem_proto::kem::participation::v1 as participation;

use self::calls::{Calls, Failure};
use self::form::{EntryAction, EntryForm, FieldErrors, Source};
use self::html::Markup;
use self::lang::Lang;
use self::views::{ErrorPage, FormState, Notice, Refusal};
use crate::edge::{Edge, REQUEST_ID, RequestId};
use crate::protect::limits::route as limit_route;
use crate::protect::{client_ip, rate_limit_headers};

/// Largest accepted form body.
pub const BODY_LIMIT: usize = 8 * 1024;

/// Rate-limit route names of the pages (the post shares the REST Enter route's quota).
pub mod route {
    /// The event page.
    pub const EVENT: &str = "GET /e/{event_id}";
    /// The entry post: the same quota as `POST /api/v1/events/{id}/participants`.
    pub const ENTER: &str = super::limit_route::ENTER_EVENT;
    /// The winners page.
    pub const WINNERS: &str = "GET /e/{event_id}/winners";
    /// The QR codes.
    pub const QR: &str = "GET /e/{event_id}/qr";
    /// The claim page.
    pub const CLAIM_PAGE: &str = "GET /e/{event_id}/claim";
    /// The claim post: the quota of `POST /api/v1/public/events/{id}/claims`.
    pub const CLAIM: &str = super::limit_route::CLAIM_PRIZE;
    /// The "my entry" page.
    pub const ME_PAGE: &str = "GET /e/{event_id}/me";
    /// Every "my entry" post: the quota of `POST /api/v1/public/events/{id}/entries:lookup`.
    pub const LOOKUP: &str = super::limit_route::LOOKUP_ENTRY;
    /// Posts that send a code (entry form, "my entry"): also the quota of
    /// `POST /api/v1/public/events/{id}/codes`.
    pub const SEND_CODE: &str = super::limit_route::SEND_CODE;
    /// Withdrawal posts: also the quota of `POST /api/v1/public/events/{id}/entries:withdraw`.
    pub const WITHDRAW: &str = super::limit_route::WITHDRAW_ENTRY;
}

/// What a page request resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page<'a> {
    Event(&'a str),
    Winners(&'a str),
    Claim(&'a str),
    Me(&'a str),
    Qr(&'a str, QrFormat),
    Asset(&'a str),
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QrFormat {
    Svg,
    Png,
}

impl<'a> Page<'a> {
    fn of(path: &'a str) -> Page<'a> {
        let Some(rest) = path.strip_prefix("/e/") else { return Page::Unknown };
        if let Some(name) = rest.strip_prefix("assets/") {
            return Page::Asset(name);
        }
        match rest.split_once('/') {
            None => Page::Event(rest),
            Some((id, "winners")) => Page::Winners(id),
            Some((id, "claim")) => Page::Claim(id),
            Some((id, "me")) => Page::Me(id),
            Some((id, "qr.svg")) => Page::Qr(id, QrFormat::Svg),
            Some((id, "qr.png")) => Page::Qr(id, QrFormat::Png),
            Some(_) => Page::Unknown,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Page::Event(_) => route::EVENT,
            Page::Winners(_) => route::WINNERS,
            Page::Claim(_) => route::CLAIM_PAGE,
            Page::Me(_) => route::ME_PAGE,
            Page::Qr(..) => route::QR,
            Page::Asset(_) => "GET /e/assets/{name}",
            Page::Unknown => "unmatched",
        }
    }
}

/// One page request: who asks, in which language, under which id.
struct Ctx<'a> {
    edge: &'a Edge,
    headers: &'a HeaderMap,
    uri: &'a http::Uri,
    lang: Lang,
    rid: String,
    client: IpAddr,
}

/// Serves one page request. A panic is caught and answered with the error page.
pub async fn handle(edge: &Arc<Edge>, request: Request) -> Response {
    let started = tokio::time::Instant::now();
    let peer = crate::peer_of(&request);
    let (parts, body) = request.into_parts();
    let page = Page::of(parts.uri.path());
    let mut ctx = Ctx {
        edge,
        headers: &parts.headers,
        uri: &parts.uri,
        lang: Lang::negotiate(&parts.headers),
        rid: RequestId::from_headers(&parts.headers).as_str().to_owned(),
        client: client_ip(peer, &parts.headers, &edge.config.trusted_proxies),
    };
    let span = crate::trace::ServerSpan::start(&parts.headers, &parts.method);
    let outcome = std::panic::AssertUnwindSafe(dispatch(&mut ctx, &parts.method, page, body));
    let mut response = match span.run(futures_util::FutureExt::catch_unwind(outcome)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!(request_id = ctx.rid, "a page failed while handling a request");
            error_page(&ctx, ErrorPage::Internal)
        }
    };
    if let Ok(value) = HeaderValue::from_str(&ctx.rid) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    if parts.method == Method::HEAD {
        *response.body_mut() = Body::empty();
    }
    let duration = started.elapsed();
    crate::access_log::record(&crate::access_log::AccessRecord {
        request_id: &ctx.rid,
        method: parts.method.as_str(),
        path: parts.uri.path(),
        rpc: Some(page.label()),
        owner: None,
        status: response.status().as_u16(),
        duration,
    });
    span.end(Some(page.label()).filter(|label| *label != "unmatched"), response.status());
    kem_mesh::telemetry::Registry::global().edge_request(page.label(), response.status().as_u16(), duration);
    response
}

async fn dispatch(ctx: &mut Ctx<'_>, method: &Method, page: Page<'_>, body: Body) -> Response {
    let readable = *method == Method::GET || *method == Method::HEAD;
    match page {
        Page::Asset(name) if readable => asset(ctx, name),
        Page::Unknown => error_page(ctx, ErrorPage::NotFound),
        Page::Event(id) if *method == Method::POST => post_entry(ctx, id, body).await,
        Page::Event(id) if readable => event(ctx, id).await,
        Page::Winners(id) if readable => winners(ctx, id).await,
        Page::Claim(id) if *method == Method::POST => claim::post(ctx, id, body).await,
        Page::Claim(id) if readable => claim::page(ctx, id).await,
        Page::Me(id) if *method == Method::POST => me::post(ctx, id, body).await,
        Page::Me(id) if readable => me::page(ctx, id).await,
        Page::Qr(id, format) if readable => qr_code(ctx, id, format).await,
        Page::Event(_) | Page::Claim(_) | Page::Me(_) => method_not_allowed(ctx, "GET, HEAD, POST"),
        _ => method_not_allowed(ctx, "GET, HEAD"),
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

async fn event(ctx: &Ctx<'_>, id: &str) -> Response {
    if let Some(refused) = refuse(ctx, route::EVENT, id) {
        return refused;
    }
    let (_, event) = match event_and_calls(ctx, id).await {
        Ok(found) => found,
        Err(failed) => return failed,
    };
    let channel = published_channel(&event, form::channel_in_query(ctx.uri.query()));
    let rid = fresh_request_id();
    let (values, errors) = (EntryForm::default(), FieldErrors::default());
    let form = FormState { values: &values, errors: &errors, request_id: &rid, channel, notice: None };
    let state = views::state_of(&event, now_unix());
    let body = views::event_page(&event, ctx.lang, state, &form);
    page_response(ctx, StatusCode::OK, &event.title, &body, Some(&event), Cache::NoStore)
}

async fn post_entry(ctx: &mut Ctx<'_>, id: &str, body: Body) -> Response {
    // Cheap refusals first: the limit, the address, where the post came from, the body's type
    // and size; only then a backend call.
    if let Some(refused) = refuse(ctx, route::ENTER, id) {
        return refused;
    }
    let (source, bytes) = match read_form(ctx, body).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let submitted = EntryForm::parse(&bytes);
    let sending = submitted.action == EntryAction::SendCode;
    // A code costs an SMS: its own, stricter quota as well.
    if sending && let Some(refused) = refuse(ctx, route::SEND_CODE, id) {
        return refused;
    }
    // The render's id makes a double submit (or a refresh that re-posts) the same entry.
    if !sending && let Some(rid) = &submitted.request_id {
        ctx.rid.clone_from(rid);
    }
    let (calls, event) = match event_and_calls(ctx, id).await {
        Ok(found) => found,
        Err(failed) => return failed,
    };
    if let Some(refused) = foreign_origin(ctx, &source, &event) {
        return refused;
    }
    let channel = published_channel(&event, submitted.channel);
    let verify = views::verifies_phone(&event);
    if submitted.honeypot {
        // A bot: it gets what success looks like, and nothing is sent or recorded.
        tracing::info!(request_id = ctx.rid, "honeypot field filled; entry not sent");
        if sending {
            let sent = Notice::CodeSent { expires: None, if_entered: false };
            let errors = FieldErrors::default();
            return entry_form_page(ctx, StatusCode::OK, &event, &submitted, &errors, channel, Some(&sent));
        }
        let body = views::receipt_page(&event, ctx.lang, &fake_receipt_code());
        return page_response(ctx, StatusCode::OK, &event.title, &body, Some(&event), Cache::NoStore);
    }
    if sending {
        if !verify {
            // The event does not verify phones (any more): just the form again, no SMS.
            let errors = FieldErrors::default();
            return entry_form_page(ctx, StatusCode::OK, &event, &submitted, &errors, channel, None);
        }
        return send_entry_code(ctx, &calls, &event, &submitted, channel).await;
    }
    let mut local = submitted.check();
    if verify {
        submitted.check_code(&mut local);
    }
    if !local.is_empty() {
        return form_again(ctx, &event, &submitted, &local, channel);
    }
    let enter = participation::EnterRequest {
        event_id: event.event_id.clone(),
        name: submitted.name.clone(),
        phone: submitted.phone.clone(),
        privacy_consent: Some(participation::Consent {
            granted: submitted.privacy,
            consent_text_version: submitted.terms_version.clone(),
            ..Default::default()
        }),
        marketing_consent: Some(participation::Consent {
            granted: submitted.marketing,
            consent_text_version: submitted.terms_version.clone(),
            ..Default::default()
        }),
        source_channel: channel.map_or(0, Channel::number),
        age_14_or_older: submitted.age,
        verification_code: if verify { digits(&submitted.verification_code) } else { String::new() },
    };
    match calls.enter(enter, &ctx.rid).await {
        Ok(entered) => {
            let body = views::receipt_page(&event, ctx.lang, &entered.receipt_code);
            page_response(ctx, StatusCode::OK, &event.title, &body, Some(&event), Cache::NoStore)
        }
        Err(status) => entry_refused(ctx, &event, &submitted, channel, &status),
    }
}

/// The answer to a refused `Enter`.
fn entry_refused(
    ctx: &Ctx<'_>,
    event: &PublicEvent,
    submitted: &EntryForm,
    channel: Option<Channel>,
    status: &tonic::Status,
) -> Response {
    let refusal = |refusal| {
        let body = views::refusal_page(event, ctx.lang, refusal);
        page_response(ctx, StatusCode::CONFLICT, &event.title, &body, Some(event), Cache::NoStore)
    };
    let reason = calls::reason(status);
    match (status.code(), reason.as_str()) {
        (tonic::Code::AlreadyExists, _) | (_, "DUPLICATE_ENTRY") => refusal(Refusal::Duplicate),
        (_, "EVENT_FULL") => refusal(Refusal::Full),
        (_, "ADDRESS_LIMIT") => refusal(Refusal::AddressLimit),
        (_, "EVENT_NOT_OPEN") => refusal(Refusal::NotOpen),
        (tonic::Code::FailedPrecondition, _) => refusal(Refusal::NotOpen),
        (tonic::Code::InvalidArgument, _) => {
            let mut errors = FieldErrors::default();
            for field in calls::violated_fields(status) {
                errors.add_violation(&field);
            }
            match reason.as_str() {
                "TERMS_OUTDATED" => errors.privacy = Some(form::Problem::TermsOutdated),
                "AGE_CONFIRMATION_REQUIRED" => errors.age = Some(form::Problem::AgeRequired),
                "CONSENT_REQUIRED" => {
                    errors.privacy.get_or_insert(form::Problem::PrivacyRequired);
                }
                "VERIFICATION_REQUIRED" => errors.code = Some(form::Problem::CodeRequired),
                "VERIFICATION_FAILED" => errors.code = Some(form::Problem::CodeWrong),
                _ => {}
            }
            if errors.is_empty() {
                errors.general = true;
            }
            form_again(ctx, event, submitted, &errors, channel)
        }
        _ => failure_page(ctx, status),
    }
}

/// The form again with what the participant typed and each error next to its field. The event
/// was fetched for this request, so after a terms change it shows the new terms.
fn form_again(
    ctx: &Ctx<'_>,
    event: &PublicEvent,
    submitted: &EntryForm,
    errors: &FieldErrors,
    channel: Option<Channel>,
) -> Response {
    entry_form_page(ctx, StatusCode::UNPROCESSABLE_ENTITY, event, submitted, errors, channel, None)
}

/// The event page with the form as the participant left it: values, errors and a notice. The
/// form keeps its render's request id (the entry it will make is still the same one).
fn entry_form_page(
    ctx: &Ctx<'_>,
    status: StatusCode,
    event: &PublicEvent,
    submitted: &EntryForm,
    errors: &FieldErrors,
    channel: Option<Channel>,
    notice: Option<&Notice>,
) -> Response {
    let fresh;
    let request_id = match &submitted.request_id {
        Some(rid) => rid.as_str(),
        None => {
            fresh = fresh_request_id();
            fresh.as_str()
        }
    };
    let form = FormState { values: submitted, errors, request_id, channel, notice };
    let state = views::state_of(event, now_unix());
    let body = views::event_page(event, ctx.lang, state, &form);
    page_response(ctx, status, &event.title, &body, Some(event), Cache::NoStore)
}

/// "Send me a code" on the entry form of an event that verifies phones: participation
/// `SendParticipantCode` (ENTRY), then the form again with what was typed and what happened.
async fn send_entry_code(
    ctx: &Ctx<'_>,
    calls: &Calls<'_>,
    event: &PublicEvent,
    submitted: &EntryForm,
    channel: Option<Channel>,
) -> Response {
    let errors = submitted.check_phone();
    if !errors.is_empty() {
        return entry_form_page(ctx, StatusCode::UNPROCESSABLE_ENTITY, event, submitted, &errors, channel, None);
    }
    let request = participation::SendParticipantCodeRequest {
        event_id: event.event_id.clone(),
        phone: submitted.phone.clone(),
        purpose: participation::CodePurpose::Entry as i32,
    };
    match calls.send_code(request, &ctx.rid).await {
        Ok(sent) => {
            let expires = lang::seoul_time(sent.expire_time.as_ref(), ctx.lang);
            let notice = Notice::CodeSent { expires, if_entered: false };
            entry_form_page(ctx, StatusCode::OK, event, submitted, &FieldErrors::default(), channel, Some(&notice))
        }
        Err(status) => match code_refused(ctx, &status) {
            Some(CodeRefusal::Phone(errors)) => {
                entry_form_page(ctx, StatusCode::UNPROCESSABLE_ENTITY, event, submitted, &errors, channel, None)
            }
            Some(CodeRefusal::Wait(notice)) => {
                let errors = FieldErrors::default();
                let page = entry_form_page(
                    ctx,
                    StatusCode::TOO_MANY_REQUESTS,
                    event,
                    submitted,
                    &errors,
                    channel,
                    Some(&notice),
                );
                with_retry_after(page, &status)
            }
            None => failure_page(ctx, &status),
        },
    }
}

/// How a refused `SendParticipantCode` is shown next to its form.
enum CodeRefusal {
    /// The phone is not a Korean mobile number.
    Phone(FieldErrors),
    /// Codes for this phone come too often (CODE_RATE_LIMITED): when to ask again.
    Wait(Notice),
}

/// The refusal of a `SendParticipantCode`, or `None` for a failure page (unknown event, outage).
fn code_refused(ctx: &Ctx<'_>, status: &tonic::Status) -> Option<CodeRefusal> {
    match status.code() {
        tonic::Code::InvalidArgument => {
            Some(CodeRefusal::Phone(FieldErrors { phone: Some(form::Problem::Phone), ..FieldErrors::default() }))
        }
        tonic::Code::ResourceExhausted if calls::reason(status) == "CODE_RATE_LIMITED" => {
            Some(CodeRefusal::Wait(Notice::Wait(wait_text(ctx, status))))
        }
        _ => None,
    }
}

/// When to try again after `status` (its RetryInfo; a minute when it has none), in words.
fn wait_text(ctx: &Ctx<'_>, status: &tonic::Status) -> String {
    let delay = kem_kit::status::retry_delay(status).unwrap_or(std::time::Duration::from_secs(60));
    lang::retry_time(now_unix(), delay, ctx.lang)
}

/// `response` with the `Retry-After` of `status` (its RetryInfo; a minute when it has none).
fn with_retry_after(mut response: Response, status: &tonic::Status) -> Response {
    let delay = kem_kit::status::retry_delay(status).map_or(60, |d| d.as_secs().clamp(1, 24 * 3600));
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(delay));
    response
}

/// The digits of a typed code (participants type spaces and hyphens; codes are digits).
fn digits(code: &str) -> String {
    code.chars().filter(char::is_ascii_digit).collect()
}

async fn winners(ctx: &Ctx<'_>, id: &str) -> Response {
    if let Some(refused) = refuse(ctx, route::WINNERS, id) {
        return refused;
    }
    let Some(calls) = calls(ctx) else { return error_page(ctx, ErrorPage::BadRequest) };
    let (event, winners) = tokio::join!(calls.public_event(id, &ctx.rid), calls.public_winners(id, &ctx.rid));
    let (event, winners) = match (event, winners) {
        (Ok(event), Ok(winners)) => (event, winners),
        (Err(status), _) | (_, Err(status)) => return failure_page(ctx, &status),
    };
    let body = views::winners_page(&event, ctx.lang, &winners);
    let title = format!("{} — {}", ctx.lang.pick("당첨자 발표", "Winners"), event.title);
    page_response(ctx, StatusCode::OK, &title, &body, None, Cache::Public(60))
}

async fn qr_code(ctx: &Ctx<'_>, id: &str, format: QrFormat) -> Response {
    if let Some(refused) = refuse(ctx, route::QR, id) {
        return refused;
    }
    let (_, event) = match event_and_calls(ctx, id).await {
        Ok(found) => found,
        Err(failed) => return failed,
    };
    let channel = form::channel_in_query(ctx.uri.query());
    let link = channel
        .and_then(|c| event.channel_links.iter().find(|l| l.channel == c.number()))
        .map(|l| l.url.as_str())
        .filter(|url| form::origin_of(url).is_some())
        .or_else(|| Some(event.entry_url.as_str()).filter(|url| form::origin_of(url).is_some()));
    let Some(link) = link else {
        // Without a public base URL from the service there is nothing to encode.
        return error_page(ctx, ErrorPage::Unavailable);
    };
    let (content_type, bytes) = match format {
        QrFormat::Svg => ("image/svg+xml", qr::svg(link).map(String::into_bytes)),
        QrFormat::Png => ("image/png", qr::png(link)),
    };
    let Some(bytes) = bytes else { return error_page(ctx, ErrorPage::Internal) };
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The link of a published event never changes; a day keeps printing and sharing cheap.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

fn asset(ctx: &Ctx<'_>, name: &str) -> Response {
    let Some((content_type, bytes)) = assets::asset(name) else { return error_page(ctx, ErrorPage::NotFound) };
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

// ---------------------------------------------------------------------------------------------
// Shared steps
// ---------------------------------------------------------------------------------------------

/// The cheap refusals of a form post, before any backend call: where it came from (403), its
/// type (415) and size (413). Where it came from, and the body.
async fn read_form(ctx: &Ctx<'_>, body: Body) -> Result<(Source, bytes::Bytes), Response> {
    let source = form::source(ctx.headers, ctx.uri);
    if source == Source::CrossSite {
        return Err(error_page(ctx, ErrorPage::CrossOrigin));
    }
    let is_form = ctx
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(error_page(ctx, ErrorPage::UnsupportedType));
    }
    let declared = ctx.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return Err(error_page(ctx, ErrorPage::TooLarge));
    }
    match http_body_util::Limited::new(body, BODY_LIMIT).collect().await {
        Ok(collected) => Ok((source, collected.to_bytes())),
        Err(_) => Err(error_page(ctx, ErrorPage::TooLarge)),
    }
}

/// The 403 for a post from an origin that is neither this host nor the event's public base (a
/// proxy may rewrite `Host`; the event's public base is this site too).
fn foreign_origin(ctx: &Ctx<'_>, source: &Source, event: &PublicEvent) -> Option<Response> {
    match source {
        Source::Other(origin) if form::origin_of(&event.entry_url).as_ref() != Some(origin) => {
            Some(error_page(ctx, ErrorPage::CrossOrigin))
        }
        _ => None,
    }
}

/// The per-IP and per-route limits (entries per event and address), then the event id's shape
/// (400 before any backend call): the refusal, if any.
fn refuse(ctx: &Ctx<'_>, route: &str, id: &str) -> Option<Response> {
    let decision = ctx.edge.limiter.check_event(route, Some(id), ctx.client, None, tokio::time::Instant::now());
    if !decision.allowed {
        let mut response = error_page(ctx, ErrorPage::TooMany);
        rate_limit_headers(&decision, response.headers_mut());
        return Some(response);
    }
    (!IdShape::Uuid.matches(id)).then(|| error_page(ctx, ErrorPage::BadRequest))
}

/// The request's backend calls and the public event `id`; the page to answer when there is none
/// (400 for an unreadable deadline header, 404, 503, ...).
async fn event_and_calls<'a>(ctx: &Ctx<'a>, id: &str) -> Result<(Calls<'a>, PublicEvent), Response> {
    let Some(calls) = calls(ctx) else { return Err(error_page(ctx, ErrorPage::BadRequest)) };
    match calls.public_event(id, &ctx.rid).await {
        Ok(event) => Ok((calls, event)),
        Err(status) => Err(failure_page(ctx, &status)),
    }
}

/// The request's backend calls, with its deadline (the edge's policy and headers); `None` when
/// a deadline header is unreadable.
fn calls<'a>(ctx: &Ctx<'a>) -> Option<Calls<'a>> {
    let deadline = ctx.edge.config.deadlines.for_request(ctx.headers).ok()?;
    Some(Calls { edge: ctx.edge, deadline, client: ctx.client })
}

/// `wanted` when the event was published to it (an entry through another channel would be
/// refused), else no channel.
fn published_channel(event: &PublicEvent, wanted: Option<Channel>) -> Option<Channel> {
    wanted.filter(|c| event.channel_links.is_empty() || event.channel_links.iter().any(|l| l.channel == c.number()))
}

fn failure_page(ctx: &Ctx<'_>, status: &tonic::Status) -> Response {
    match Failure::of(status) {
        Failure::NotFound => error_page(ctx, ErrorPage::NotFound),
        Failure::BadRequest => error_page(ctx, ErrorPage::BadRequest),
        Failure::Unavailable { retry_after } => {
            let mut response = error_page(ctx, ErrorPage::Unavailable);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            response
        }
        Failure::Internal => {
            tracing::warn!(request_id = ctx.rid, code = ?status.code(), "a page's backend call failed");
            error_page(ctx, ErrorPage::Internal)
        }
    }
}

fn error_page(ctx: &Ctx<'_>, page: ErrorPage) -> Response {
    let (title, body) = page.render(ctx.lang, &ctx.rid);
    let mut response = page_response(ctx, page.status(), title, &body, None, Cache::NoStore);
    if page == ErrorPage::Unavailable || page == ErrorPage::TooMany {
        response.headers_mut().entry(header::RETRY_AFTER).or_insert(HeaderValue::from_static("1"));
    }
    response
}

fn method_not_allowed(ctx: &Ctx<'_>, allow: &'static str) -> Response {
    let mut response = error_page(ctx, ErrorPage::MethodNotAllowed);
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// How a page may be cached.
#[derive(Debug, Clone, Copy)]
enum Cache {
    /// Forms (a per-render request id) and receipts: never stored.
    NoStore,
    /// Public and the same for everyone (per language) for this many seconds.
    Public(u32),
}

/// The Content-Security-Policy of a page: nothing but this origin's stylesheet and images, the
/// event image's origin, and `data:` images; forms post here only; no framing.
pub fn content_security_policy(image_origin: Option<&str>) -> String {
    let extra = image_origin.map(|o| format!(" {o}")).unwrap_or_default();
    format!(
        "default-src 'none'; img-src 'self' data:{extra}; style-src 'self'; form-action 'self'; base-uri 'none'; \
         frame-ancestors 'none'"
    )
}

fn page_response(
    ctx: &Ctx<'_>,
    status: StatusCode,
    title: &str,
    body: &Markup,
    event: Option<&PublicEvent>,
    cache: Cache,
) -> Response {
    let document = views::document(ctx.lang, title, body);
    let mut response = Response::new(Body::from(document));
    *response.status_mut() = status;
    let image_origin = event.and_then(views::image_url).and_then(form::origin_of);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    let csp = content_security_policy(image_origin.as_deref());
    // `origin_of` admits only characters valid in a header; the fallback drops the image origin.
    let csp = HeaderValue::from_str(&csp)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'; img-src 'self' data:; style-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"));
    headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("strict-origin-when-cross-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(ctx.lang.code()));
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
    let cache = match cache {
        Cache::NoStore => HeaderValue::from_static("no-store"),
        Cache::Public(seconds) => {
            HeaderValue::from_str(&format!("public, max-age={seconds}")).unwrap_or(HeaderValue::from_static("no-store"))
        }
    };
    headers.insert(header::CACHE_CONTROL, cache);
    response
}

/// A new render's request id: 32 random hex digits, like the edge's own.
fn fresh_request_id() -> String {
    use rand::Rng as _;
    kem_kit::hex::encode(rand::rng().random::<[u8; 16]>())
}

/// A receipt code that looks like a real one ("XXXXX-XXXXX" from participation's alphabet), for
/// the honeypot's fake success.
fn fake_receipt_code() -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut rng = rand::rng();
    let mut code: String = (0..10).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect();
    code.insert(5, '-');
    code
}

fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_to_pages() {
        let id = "0b6f3a52-7c1e-4d8e-9a4f-2f1d5c6b7a80";
        assert_eq!(Page::of(&format!("/e/{id}")), Page::Event(id));
        assert_eq!(Page::of(&format!("/e/{id}/winners")), Page::Winners(id));
        assert_eq!(Page::of(&format!("/e/{id}/claim")), Page::Claim(id));
        assert_eq!(Page::of(&format!("/e/{id}/me")), Page::Me(id));
        assert_eq!(Page::of(&format!("/e/{id}/qr.svg")), Page::Qr(id, QrFormat::Svg));
        assert_eq!(Page::of(&format!("/e/{id}/qr.png")), Page::Qr(id, QrFormat::Png));
        assert_eq!(Page::of("/e/assets/entry.x.css"), Page::Asset("entry.x.css"));
        assert_eq!(Page::of(&format!("/e/{id}/other")), Page::Unknown);
        assert_eq!(Page::of("/x"), Page::Unknown);
    }

    #[test]
    fn receipt_codes_look_real() {
        let code = fake_receipt_code();
        assert_eq!(code.len(), 11);
        assert_eq!(code.as_bytes()[5], b'-');
        assert!(code.chars().filter(|c| *c != '-').all(|c| "23456789ABCDEFGHJKLMNPQRSTUVWXYZ".contains(c)));
    }

    #[test]
    fn the_policy_allows_exactly_the_image_origin() {
        assert_eq!(
            content_security_policy(None),
            "default-src 'none'; img-src 'self' data:; style-src 'self'; form-action 'self'; base-uri 'none'; \
             frame-ancestors 'none'"
        );
        assert!(
            content_security_policy(Some("https://img.kem.example"))
                .contains("img-src 'self' data: https://img.kem.example;")
        );
    }
}
