//! The winner's claim page: `GET /e/{event_id}/claim` shows the form (the winner's SMS links
//! here), `POST` sends the phone and the claim code to participation `ClaimPrize`.
//!
//! Answers: the claim (rank, prize, when); the form again with each problem by its field; one
//! message for a wrong code whatever was wrong (the service answers CLAIM_NOT_FOUND alike, so a
//! guess learns nothing); the deadline that passed (CLAIM_EXPIRED, in Seoul time: the draw plus
//! the event's claim days, as the contract defines the deadline); the prize that went to someone
//! else (PRIZE_REDRAWN); and when to try again after too many wrong codes (TOO_MANY_ATTEMPTS,
//! 429 with `Retry-After`). The post passes the entry form's checks (same origin, form type, body
//! size, honeypot) and counts against the REST claim route's quota.

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use kem_kit::validate::{Text, check_text};
use kem_proto::kem::event::v1::PublicEvent;
use kem_proto::kem::participation::v1 as participation;

use super::calls::{self, Calls};
use super::form::{self, CLAIM_CODE_MAX_CHARS, FieldErrors, Fields, PHONE_MAX_CHARS, Problem, field};
use super::html::{Html, Markup, html};
use super::lang::{Lang, seoul_time};
use super::views::{self, Notice};
use super::{
    Cache, Ctx, event_and_calls, failure_page, foreign_origin, fresh_request_id, now_unix, page_response, read_form,
    refuse, route, wait_text, with_retry_after,
};

/// What the claim form holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimForm {
    /// The phone as typed.
    pub phone: String,
    /// The claim code as typed.
    pub claim_code: String,
}

impl ClaimForm {
    /// The form's fields from a parsed body.
    pub fn of(fields: &Fields) -> ClaimForm {
        ClaimForm { phone: fields.get(field::PHONE).to_owned(), claim_code: fields.get(field::CLAIM_CODE).to_owned() }
    }

    /// The checks the edge makes before calling: both present, single-line, plausible.
    pub fn check(&self) -> FieldErrors {
        FieldErrors {
            phone: form::phone_problem(&self.phone),
            claim_code: claim_code_problem(&self.claim_code),
            ..FieldErrors::default()
        }
    }
}

/// The problem with a typed claim code: missing, over-long, control characters, characters no
/// code has, or not 8 of them (codes are 8 letters and digits; participants add spaces and
/// hyphens, and the service ignores case).
fn claim_code_problem(code: &str) -> Option<Problem> {
    let plausible = check_text(code, Text::line(CLAIM_CODE_MAX_CHARS)).is_ok()
        && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ' ')
        && code.chars().filter(char::is_ascii_alphanumeric).count() == 8;
    (!plausible).then_some(Problem::ClaimCode)
}

/// Why a claim did not go through.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// No current winner has this phone and code (the same whatever was wrong).
    WrongCode,
    /// The deadline passed (its Seoul time, when known).
    Expired(Option<String>),
    /// The prize went to another participant.
    Redrawn,
    /// Too many wrong codes: when to try again.
    TooMany(String),
}

/// `GET /e/{event_id}/claim`: the form.
pub(super) async fn page(ctx: &Ctx<'_>, id: &str) -> Response {
    if let Some(refused) = refuse(ctx, route::CLAIM_PAGE, id) {
        return refused;
    }
    let (_, event) = match event_and_calls(ctx, id).await {
        Ok(found) => found,
        Err(failed) => return failed,
    };
    let body = claim_page(&event, ctx.lang, &ClaimForm::default(), &FieldErrors::default(), None, &fresh_request_id());
    page_response(ctx, StatusCode::OK, &title(&event, ctx.lang), &body, None, Cache::NoStore)
}

/// `POST /e/{event_id}/claim`: the claim.
pub(super) async fn post(ctx: &mut Ctx<'_>, id: &str, body: Body) -> Response {
    if let Some(refused) = refuse(ctx, route::CLAIM, id) {
        return refused;
    }
    let (source, bytes) = match read_form(ctx, body).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let fields = Fields::parse(&bytes);
    let submitted = ClaimForm::of(&fields);
    // The render's id: a double submit is the same claim (claims are idempotent anyway).
    let rid = fields.request_id().unwrap_or_else(fresh_request_id);
    ctx.rid.clone_from(&rid);
    let (calls, event) = match event_and_calls(ctx, id).await {
        Ok(found) => found,
        Err(failed) => return failed,
    };
    if let Some(refused) = foreign_origin(ctx, &source, &event) {
        return refused;
    }
    let again = |status, errors: &FieldErrors, outcome: Option<&Outcome>| {
        let body = claim_page(&event, ctx.lang, &submitted, errors, outcome, &rid);
        page_response(ctx, status, &title(&event, ctx.lang), &body, None, Cache::NoStore)
    };
    if fields.honeypot() {
        // A bot is told what a wrong guess is told, and nothing is sent.
        tracing::info!(request_id = ctx.rid, "honeypot field filled; claim not sent");
        return again(StatusCode::UNPROCESSABLE_ENTITY, &FieldErrors::default(), Some(&Outcome::WrongCode));
    }
    let local = submitted.check();
    if !local.is_empty() {
        return again(StatusCode::UNPROCESSABLE_ENTITY, &local, None);
    }
    let request = participation::ClaimPrizeRequest {
        event_id: event.event_id.clone(),
        phone: submitted.phone.clone(),
        claim_code: submitted.claim_code.clone(),
    };
    let status = match calls.claim_prize(request, &ctx.rid).await {
        Ok(claimed) => {
            let body = claimed_page(&event, ctx.lang, &claimed);
            return page_response(ctx, StatusCode::OK, &title(&event, ctx.lang), &body, None, Cache::NoStore);
        }
        Err(status) => status,
    };
    let reason = calls::reason(&status);
    match (status.code(), reason.as_str()) {
        (tonic::Code::NotFound, "CLAIM_NOT_FOUND") => {
            again(StatusCode::UNPROCESSABLE_ENTITY, &FieldErrors::default(), Some(&Outcome::WrongCode))
        }
        (tonic::Code::InvalidArgument, _) => {
            let mut errors = FieldErrors::default();
            for violated in calls::violated_fields(&status) {
                errors.add_violation(&violated);
            }
            // Only the phone and the code are sent: anything else is shown as a wrong code.
            let outcome = (errors.phone.is_none() && errors.claim_code.is_none()).then_some(Outcome::WrongCode);
            errors.general = false;
            again(StatusCode::UNPROCESSABLE_ENTITY, &errors, outcome.as_ref())
        }
        (tonic::Code::FailedPrecondition, "CLAIM_EXPIRED") => {
            let deadline = deadline(&calls, &event, ctx).await;
            let body = closed_page(&event, ctx.lang, &Outcome::Expired(deadline));
            page_response(ctx, StatusCode::CONFLICT, &title(&event, ctx.lang), &body, None, Cache::NoStore)
        }
        (tonic::Code::FailedPrecondition, "PRIZE_REDRAWN") => {
            let body = closed_page(&event, ctx.lang, &Outcome::Redrawn);
            page_response(ctx, StatusCode::CONFLICT, &title(&event, ctx.lang), &body, None, Cache::NoStore)
        }
        (tonic::Code::ResourceExhausted, "TOO_MANY_ATTEMPTS") => {
            let outcome = Outcome::TooMany(wait_text(ctx, &status));
            let page = again(StatusCode::TOO_MANY_REQUESTS, &FieldErrors::default(), Some(&outcome));
            with_retry_after(page, &status)
        }
        _ => failure_page(ctx, &status),
    }
}

/// The claim deadline that passed, in Seoul time: the current draw plus the event's claim days
/// (a winner whose deadline passed and whose prize was not redrawn is a winner of the current
/// draw: a redraw gives away every expired prize of the draws before it). `None` when unknown.
async fn deadline(calls: &Calls<'_>, event: &PublicEvent, ctx: &Ctx<'_>) -> Option<String> {
    if event.claim_days <= 0 {
        return None;
    }
    let winners = calls.public_winners(&event.event_id, &ctx.rid).await.ok()?;
    let drawn = winners.audit.as_ref()?.draw_time.as_ref()?;
    let seconds = drawn.seconds.checked_add(i64::from(event.claim_days).checked_mul(86_400)?)?;
    seoul_time(Some(&prost_types::Timestamp { seconds, nanos: 0 }), ctx.lang)
}

fn title(event: &PublicEvent, lang: Lang) -> String {
    format!("{} — {}", lang.pick("당첨 경품 받기", "Claim your prize"), event.title)
}

/// The claim form with what was typed, the problems by their fields, and why the last try failed.
fn claim_page(
    event: &PublicEvent,
    lang: Lang,
    values: &ClaimForm,
    errors: &FieldErrors,
    outcome: Option<&Outcome>,
    request_id: &str,
) -> Markup {
    let mut out = Html::new();
    views::small_header(&mut out, event, lang.pick("당첨 경품 받기", "Claim your prize"));
    match outcome {
        Some(Outcome::WrongCode) => html!(&mut out;
            "<div class=\"message alert\" role=\"alert\"><p>"
            {lang.pick("휴대전화 번호 또는 당첨 코드가 맞지 않습니다. 당첨 문자를 다시 확인해 주세요.",
                       "The mobile number or the claim code does not match. Please check your winner's text message.")}
            "</p></div>\n"
        ),
        Some(Outcome::TooMany(when)) => views::notice(&mut out, &Notice::TooManyAttempts(Some(when.clone())), lang),
        Some(other) => closed_message(&mut out, lang, other),
        None if !errors.is_empty() => html!(&mut out;
            "<div class=\"message alert\" role=\"alert\"><p>"
            {lang.pick("입력 내용을 확인해 주세요.", "Please check the fields marked below.")} "</p></div>\n"
        ),
        None => html!(&mut out;
            "<p>" {lang.pick("당첨 안내 문자에 있는 당첨 코드와, 응모할 때 쓴 휴대전화 번호를 입력해 주세요.",
                             "Enter the claim code from your winner's text message and the mobile number you entered with.")}
            "</p>\n"
        ),
    }
    html!(&mut out;
        "<form method=\"post\" action=\"" {views::event_path(event)} "/claim\">\n"
        "<div class=\"field\"><label for=\"phone\">" {lang.pick("휴대전화 번호", "Mobile number")} "</label>"
        "<input type=\"tel\" id=\"phone\" name=\"" {field::PHONE} "\" inputmode=\"tel\" autocomplete=\"tel\" maxlength=\""
        {PHONE_MAX_CHARS} "\" placeholder=\"010-1234-5678\" required value=\"" {values.phone} "\""
    );
    views::aria(&mut out, "phone", errors.phone, "");
    html!(&mut out; ">\n");
    views::field_error(&mut out, "phone", errors.phone, lang);
    html!(&mut out;
        "</div>\n<div class=\"field\"><label for=\"claim-code\">" {lang.pick("당첨 코드", "Claim code")} "</label>"
        "<input type=\"text\" id=\"claim-code\" name=\"" {field::CLAIM_CODE} "\" autocomplete=\"off\" autocapitalize=\"characters\" \
         spellcheck=\"false\" maxlength=\"" {CLAIM_CODE_MAX_CHARS} "\" required value=\"" {values.claim_code} "\""
    );
    views::aria(&mut out, "claim-code", errors.claim_code, "claim-code-hint ");
    html!(&mut out;
        ">\n<p class=\"hint\" id=\"claim-code-hint\">" {lang.pick("영문과 숫자 8자리 (예: AB23CD45)", "8 letters and digits, e.g. AB23CD45")}
        "</p>\n"
    );
    views::field_error(&mut out, "claim-code", errors.claim_code, lang);
    honeypot_and_id(&mut out, lang, request_id, "email");
    html!(&mut out;
        "<button type=\"submit\">" {lang.pick("당첨 확인하기", "Claim my prize")} "</button>\n</form>\n"
    );
    views::my_entry_link(&mut out, event, lang);
    views::footer(&mut out, lang);
    out.into_markup()
}

/// Closes the last field, then the honeypot (its element id `hp_id`, unique on the page) and the
/// render's request id (shared by the claim and "my entry" forms).
pub(super) fn honeypot_and_id(out: &mut Html, lang: Lang, request_id: &str, hp_id: &'static str) {
    html!(out;
        "</div>\n<div class=\"hp\" aria-hidden=\"true\"><label for=\"" {hp_id} "\">" {lang.pick("이메일", "Email")}
        "</label><input type=\"text\" id=\"" {hp_id} "\" name=\"" {field::HONEYPOT} "\" tabindex=\"-1\" autocomplete=\"off\"></div>\n"
        "<input type=\"hidden\" name=\"" {field::REQUEST_ID} "\" value=\"" {request_id} "\">\n"
    );
}

fn closed_message(out: &mut Html, lang: Lang, outcome: &Outcome) {
    html!(out; "<div class=\"message alert\" role=\"alert\">");
    match outcome {
        Outcome::Expired(deadline) => {
            html!(out;
                "<p><strong>" {lang.pick("당첨 확인 기한이 지났습니다.", "The deadline to claim this prize has passed.")} "</strong></p>"
            );
            if let Some(deadline) = deadline {
                html!(out; "<p>" {lang.pick("확인 기한: ", "Deadline: ")} {deadline} "</p>");
            }
        }
        Outcome::Redrawn => html!(out;
            "<p><strong>" {lang.pick("기한이 지나 경품이 다른 참여자에게 돌아갔습니다.",
                                     "The deadline passed and the prize went to another participant.")} "</strong></p>"
        ),
        Outcome::WrongCode | Outcome::TooMany(_) => {}
    }
    html!(out; "</div>\n");
}

/// An expired or redrawn claim: what happened, without the form.
fn closed_page(event: &PublicEvent, lang: Lang, outcome: &Outcome) -> Markup {
    let mut out = Html::new();
    views::small_header(&mut out, event, lang.pick("당첨 경품 받기", "Claim your prize"));
    closed_message(&mut out, lang, outcome);
    html!(&mut out;
        "<p><a href=\"" {views::event_path(event)} "/winners\">" {lang.pick("당첨자 발표 보기", "See the winners page")} "</a></p>\n"
    );
    views::footer(&mut out, lang);
    out.into_markup()
}

/// The claim went through: rank, prize, and when.
fn claimed_page(event: &PublicEvent, lang: Lang, claimed: &participation::ClaimPrizeResponse) -> Markup {
    let mut out = Html::new();
    let at = seoul_time(claimed.claim_time.as_ref(), lang).unwrap_or_else(|| seoul_now(lang));
    html!(&mut out;
        "<div class=\"message ok\" role=\"status\"><h1>" {lang.pick("당첨 확인이 완료되었습니다", "Your prize is claimed")}
        "</h1><p>" {event.title} "</p></div>\n<dl class=\"facts\">"
        "<dt>" {lang.pick("순위", "Rank")} "</dt><dd>" {claimed.rank} "</dd>"
        "<dt>" {lang.pick("이름", "Name")} "</dt><dd>" {claimed.masked_name} "</dd>"
    );
    if let Some(prize) = claimed.prize.as_ref().filter(|p| !p.name.is_empty()) {
        html!(&mut out; "<dt>" {lang.pick("경품", "Prize")} "</dt><dd>" {prize.name} "</dd>");
    }
    let store = if event.store_name.is_empty() { lang.pick("매장", "the store") } else { event.store_name.as_str() };
    html!(&mut out;
        "<dt>" {lang.pick("확인 시각", "Claimed at")} "</dt><dd>" {at} "</dd></dl>\n<p>"
        {lang.pick("경품 받는 방법은 ", "How to collect the prize: ")} {store}
        {lang.pick("에서 안내합니다. 이 화면을 캡처해 두세요.", " will tell you. Keep a screenshot of this page.")} "</p>\n"
    );
    views::footer(&mut out, lang);
    out.into_markup()
}

/// Now in Seoul time (for a claim answered without its time).
fn seoul_now(lang: Lang) -> String {
    seoul_time(Some(&prost_types::Timestamp { seconds: now_unix(), nanos: 0 }), lang).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_codes_are_checked_for_shape_before_any_call() {
        assert_eq!(claim_code_problem("AB23CD45"), None);
        assert_eq!(claim_code_problem("ab23-cd45"), None, "case and hyphens are the service's to ignore");
        for bad in
            ["", "AB", "AB23\u{0}CD45", "<script>", "AB23CD45AB23CD45X", "가나다라마바사아", "AB23\nCD45", "AB23CD4"]
        {
            assert_eq!(claim_code_problem(bad), Some(Problem::ClaimCode), "{bad:?}");
        }
        let form = ClaimForm::of(&Fields::parse(b"phone=010-1234-5678&claim_code=+AB23CD45+"));
        assert!(form.check().is_empty());
        let errors = ClaimForm::default().check();
        assert_eq!((errors.phone, errors.claim_code), (Some(Problem::Phone), Some(Problem::ClaimCode)));
    }
}
