//! "My entry": `GET /e/{event_id}/me` and its posts. A participant looks an entry up by receipt
//! code, or by phone: "send me a code" (participation `SendParticipantCode`, LOOKUP), then the
//! code (`LookupEntry`); the answer is where the entry stands (entered, won with the claim state,
//! deadline and the claim link, not won, withdrawn). Before the draw, an entry looked up by phone
//! can be withdrawn: a confirmation step (no call), then `WithdrawEntry`.
//!
//! Nothing here tells whether a phone entered: a code request is answered "if this number
//! entered, a code was sent" whatever happened (the service sends no SMS for a phone that did not
//! enter), and a wrong code and a phone that never entered get the same "nothing matches".
//!
//! Every post passes the entry form's checks (same origin, form type, body size, honeypot) and
//! counts against the REST lookup route's quota; a code request also against the codes route's
//! (each costs an SMS), a withdrawal also against the withdrawal route's.

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use kem_kit::validate::{Text, check_text};
use kem_proto::kem::event::v1::PublicEvent;
use kem_proto::kem::participation::v1::{self as participation, ClaimState, EntryStanding};

use super::claim::honeypot_and_id;
use super::form::{self, CODE_MAX_CHARS, FieldErrors, Fields, PHONE_MAX_CHARS, Problem, RECEIPT_MAX_CHARS, field};
use super::html::{Html, Markup, html};
use super::lang::{Lang, seoul_time};
use super::views::{self, Notice};
use super::{
    Cache, CodeRefusal, Ctx, calls, code_refused, digits, event_and_calls, failure_page, foreign_origin,
    fresh_request_id, page_response, read_form, refuse, route, wait_text, with_retry_after,
};

/// Which button submitted a "my entry" form.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MeAction {
    /// Look up by receipt code (also any unknown action: it sends no SMS).
    #[default]
    Receipt,
    /// Send a LOOKUP code to the phone.
    SendCode,
    /// Look up by phone and code.
    Phone,
    /// Ask to withdraw: the confirmation step.
    Withdraw,
    /// Withdraw, confirmed.
    ConfirmWithdraw,
}

impl MeAction {
    fn of(value: &str) -> MeAction {
        match value {
            "send_code" => MeAction::SendCode,
            "phone" => MeAction::Phone,
            "withdraw" => MeAction::Withdraw,
            "confirm_withdraw" => MeAction::ConfirmWithdraw,
            _ => MeAction::Receipt,
        }
    }

    /// Whether the action belongs to the phone flow (the code field is shown again).
    fn by_phone(self) -> bool {
        self != MeAction::Receipt
    }
}

/// What a "my entry" form holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeForm {
    /// The button pressed.
    pub action: MeAction,
    /// The receipt code as typed.
    pub receipt: String,
    /// The phone as typed.
    pub phone: String,
    /// The one-time code as typed.
    pub code: String,
}

impl MeForm {
    /// The form's fields from a parsed body.
    pub fn of(fields: &Fields) -> MeForm {
        MeForm {
            action: MeAction::of(fields.get(field::ACTION)),
            receipt: fields.get(field::RECEIPT).to_owned(),
            phone: fields.get(field::PHONE).to_owned(),
            code: fields.get(field::CODE).to_owned(),
        }
    }

    /// The checks the edge makes before calling, for the fields the action uses.
    pub fn check(&self) -> FieldErrors {
        let mut errors = FieldErrors::default();
        match self.action {
            MeAction::Receipt => errors.receipt = receipt_problem(&self.receipt),
            MeAction::SendCode => errors.phone = form::phone_problem(&self.phone),
            MeAction::Phone | MeAction::Withdraw | MeAction::ConfirmWithdraw => {
                errors.phone = form::phone_problem(&self.phone);
                errors.code = form::code_problem(&self.code);
            }
        }
        errors
    }
}

/// The problem with a typed receipt code: missing, over-long, control characters, or characters
/// no receipt has (letters and digits; participants add spaces and hyphens).
fn receipt_problem(receipt: &str) -> Option<Problem> {
    let plausible = !receipt.is_empty()
        && check_text(receipt, Text::line(RECEIPT_MAX_CHARS)).is_ok()
        && receipt.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ' ');
    (!plausible).then_some(Problem::Receipt)
}

/// How the lookup forms are shown.
struct MeState<'a> {
    values: &'a MeForm,
    errors: &'a FieldErrors,
    notice: Option<&'a Notice>,
    /// Nothing matched (the same words for a wrong code and a phone that never entered).
    not_found: bool,
    request_id: &'a str,
}

/// `GET /e/{event_id}/me`: the lookup forms.
pub(super) async fn page(ctx: &Ctx<'_>, id: &str) -> Response {
    if let Some(refused) = refuse(ctx, route::ME_PAGE, id) {
        return refused;
    }
    let (_, event) = match event_and_calls(ctx, id).await {
        Ok(found) => found,
        Err(failed) => return failed,
    };
    let (values, errors, rid) = (MeForm::default(), FieldErrors::default(), fresh_request_id());
    let state = MeState { values: &values, errors: &errors, notice: None, not_found: false, request_id: &rid };
    let body = me_page(&event, ctx.lang, &state);
    page_response(ctx, StatusCode::OK, &title(&event, ctx.lang), &body, None, Cache::NoStore)
}

/// `POST /e/{event_id}/me`: a lookup, a code request, or a withdrawal (asked, then confirmed).
pub(super) async fn post(ctx: &mut Ctx<'_>, id: &str, body: Body) -> Response {
    if let Some(refused) = refuse(ctx, route::LOOKUP, id) {
        return refused;
    }
    let (source, bytes) = match read_form(ctx, body).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let fields = Fields::parse(&bytes);
    let submitted = MeForm::of(&fields);
    let extra = match submitted.action {
        MeAction::SendCode => Some(route::SEND_CODE),
        MeAction::Withdraw | MeAction::ConfirmWithdraw => Some(route::WITHDRAW),
        MeAction::Receipt | MeAction::Phone => None,
    };
    if let Some(refused) = extra.and_then(|quota| refuse(ctx, quota, id)) {
        return refused;
    }
    // The render's id: a withdrawal submitted twice is the same withdrawal.
    let rid = fields.request_id().unwrap_or_else(fresh_request_id);
    if submitted.action == MeAction::ConfirmWithdraw {
        ctx.rid.clone_from(&rid);
    }
    let (calls, event) = match event_and_calls(ctx, id).await {
        Ok(found) => found,
        Err(failed) => return failed,
    };
    if let Some(refused) = foreign_origin(ctx, &source, &event) {
        return refused;
    }
    let again = |status, errors: &FieldErrors, notice: Option<&Notice>, not_found: bool| {
        let state = MeState { values: &submitted, errors, notice, not_found, request_id: &rid };
        let body = me_page(&event, ctx.lang, &state);
        page_response(ctx, status, &title(&event, ctx.lang), &body, None, Cache::NoStore)
    };
    let no_errors = FieldErrors::default();
    if fields.honeypot() {
        // A bot is told what anyone is told when nothing matches (or a code "was sent"); no call.
        tracing::info!(request_id = ctx.rid, "honeypot field filled; lookup not sent");
        if submitted.action == MeAction::SendCode {
            let sent = Notice::CodeSent { expires: None, if_entered: true };
            return again(StatusCode::OK, &no_errors, Some(&sent), false);
        }
        return again(StatusCode::UNPROCESSABLE_ENTITY, &no_errors, None, true);
    }
    let local = submitted.check();
    if !local.is_empty() {
        return again(StatusCode::UNPROCESSABLE_ENTITY, &local, None, false);
    }
    let event_id = event.event_id.clone();
    let (phone, code) = (submitted.phone.clone(), digits(&submitted.code));
    let status = match submitted.action {
        MeAction::Withdraw => {
            let body = confirm_page(&event, ctx.lang, &submitted, &rid);
            return page_response(ctx, StatusCode::OK, &title(&event, ctx.lang), &body, None, Cache::NoStore);
        }
        MeAction::SendCode => {
            let purpose = participation::CodePurpose::Lookup as i32;
            let request = participation::SendParticipantCodeRequest { event_id, phone, purpose };
            match calls.send_code(request, &ctx.rid).await {
                Ok(sent) => {
                    let expires = seoul_time(sent.expire_time.as_ref(), ctx.lang);
                    let notice = Notice::CodeSent { expires, if_entered: true };
                    return again(StatusCode::OK, &no_errors, Some(&notice), false);
                }
                Err(status) => {
                    return match code_refused(ctx, &status) {
                        Some(CodeRefusal::Phone(errors)) => {
                            again(StatusCode::UNPROCESSABLE_ENTITY, &errors, None, false)
                        }
                        Some(CodeRefusal::Wait(notice)) => with_retry_after(
                            again(StatusCode::TOO_MANY_REQUESTS, &no_errors, Some(&notice), false),
                            &status,
                        ),
                        None => failure_page(ctx, &status),
                    };
                }
            }
        }
        MeAction::ConfirmWithdraw => {
            let request = participation::WithdrawEntryRequest { event_id, phone, code };
            match calls.withdraw_entry(request, &ctx.rid).await {
                Ok(withdrawn) => {
                    let body = withdrawn_page(&event, ctx.lang, &withdrawn);
                    return page_response(ctx, StatusCode::OK, &title(&event, ctx.lang), &body, None, Cache::NoStore);
                }
                Err(status) if calls::reason(&status) == "ALREADY_DRAWN" => {
                    let body = already_drawn_page(&event, ctx.lang);
                    return page_response(
                        ctx,
                        StatusCode::CONFLICT,
                        &title(&event, ctx.lang),
                        &body,
                        None,
                        Cache::NoStore,
                    );
                }
                Err(status) => status,
            }
        }
        MeAction::Receipt | MeAction::Phone => {
            let request = if submitted.action == MeAction::Receipt {
                let receipt_code = submitted.receipt.clone();
                participation::LookupEntryRequest { event_id, receipt_code, ..Default::default() }
            } else {
                participation::LookupEntryRequest { event_id, phone, code, ..Default::default() }
            };
            match calls.lookup_entry(request, &ctx.rid).await {
                Ok(found) => {
                    // Withdrawing needs the phone and its code: offered to a lookup by phone only.
                    let holder = (submitted.action == MeAction::Phone).then_some((&submitted, rid.as_str()));
                    let body = standing_page(&event, ctx.lang, &found, holder);
                    return page_response(ctx, StatusCode::OK, &title(&event, ctx.lang), &body, None, Cache::NoStore);
                }
                Err(status) => status,
            }
        }
    };
    // A refused lookup or withdrawal.
    match (status.code(), calls::reason(&status).as_str()) {
        (tonic::Code::NotFound, _) => again(StatusCode::UNPROCESSABLE_ENTITY, &no_errors, None, true),
        (tonic::Code::InvalidArgument, _) => {
            let mut errors = FieldErrors::default();
            for violated in calls::violated_fields(&status) {
                errors.add_violation(&violated);
            }
            errors.general = false;
            let not_found = errors.is_empty();
            again(StatusCode::UNPROCESSABLE_ENTITY, &errors, None, not_found)
        }
        (tonic::Code::ResourceExhausted, "TOO_MANY_ATTEMPTS") => {
            let notice = Notice::TooManyAttempts(Some(wait_text(ctx, &status)));
            with_retry_after(again(StatusCode::TOO_MANY_REQUESTS, &no_errors, Some(&notice), false), &status)
        }
        _ => failure_page(ctx, &status),
    }
}

fn title(event: &PublicEvent, lang: Lang) -> String {
    format!("{} — {}", lang.pick("내 응모 확인", "My entry"), event.title)
}

/// The two ways to look an entry up, with what was typed and what went wrong.
fn me_page(event: &PublicEvent, lang: Lang, state: &MeState<'_>) -> Markup {
    let mut out = Html::new();
    let (values, errors) = (state.values, state.errors);
    views::small_header(&mut out, event, lang.pick("내 응모 확인", "My entry"));
    if state.not_found {
        html!(&mut out;
            "<div class=\"message alert\" role=\"alert\"><p>"
            {lang.pick("일치하는 응모를 찾지 못했습니다. 접수 번호나 인증번호를 확인해 주세요.",
                       "No entry matches. Please check the receipt code or the code from the text message.")}
            "</p></div>\n"
        );
    } else if !errors.is_empty() {
        html!(&mut out;
            "<div class=\"message alert\" role=\"alert\"><p>"
            {lang.pick("입력 내용을 확인해 주세요.", "Please check the fields marked below.")} "</p></div>\n"
        );
    }
    let action = format!("{}/me", views::event_path(event));
    // By receipt code.
    html!(&mut out;
        "<h2>" {lang.pick("접수 번호로 확인", "With your receipt code")} "</h2>\n"
        "<form method=\"post\" action=\"" {action} "\">\n<input type=\"hidden\" name=\"" {field::ACTION} "\" value=\"receipt\">\n"
        "<div class=\"field\"><label for=\"receipt\">" {lang.pick("접수 번호", "Receipt code")} "</label>"
        "<input type=\"text\" id=\"receipt\" name=\"" {field::RECEIPT} "\" autocomplete=\"off\" autocapitalize=\"characters\" \
         spellcheck=\"false\" maxlength=\"" {RECEIPT_MAX_CHARS} "\" placeholder=\"AB2CD-3EF4G\" required value=\"" {values.receipt} "\""
    );
    views::aria(&mut out, "receipt", errors.receipt, "");
    html!(&mut out; ">\n");
    views::field_error(&mut out, "receipt", errors.receipt, lang);
    honeypot_and_id(&mut out, lang, state.request_id, "email");
    html!(&mut out; "<button type=\"submit\">" {lang.pick("확인하기", "Look it up")} "</button>\n</form>\n");

    // By phone and a one-time code.
    let code_step = values.action.by_phone();
    html!(&mut out;
        "<h2 id=\"by-phone\">" {lang.pick("휴대전화 번호로 확인·취소", "With your mobile number (to withdraw, too)")} "</h2>\n"
        "<form method=\"post\" action=\"" {action} "\">\n"
        "<div class=\"field\"><label for=\"phone\">" {lang.pick("휴대전화 번호", "Mobile number")} "</label>"
        "<input type=\"tel\" id=\"phone\" name=\"" {field::PHONE} "\" inputmode=\"tel\" autocomplete=\"tel\" maxlength=\""
        {PHONE_MAX_CHARS} "\" placeholder=\"010-1234-5678\" required value=\"" {values.phone} "\""
    );
    views::aria(&mut out, "phone", errors.phone, "");
    html!(&mut out; ">\n");
    views::field_error(&mut out, "phone", errors.phone, lang);
    if let Some(notice) = state.notice {
        views::notice(&mut out, notice, lang);
    }
    if code_step {
        html!(&mut out;
            "</div>\n<div class=\"field\"><label for=\"code\">" {lang.pick("인증번호", "Code from the text message")} "</label>"
            "<input type=\"text\" id=\"code\" name=\"" {field::CODE} "\" inputmode=\"numeric\" autocomplete=\"one-time-code\" maxlength=\""
            {CODE_MAX_CHARS} "\" value=\"" {values.code} "\""
        );
        views::aria(&mut out, "code", errors.code, "");
        html!(&mut out; ">\n");
        views::field_error(&mut out, "code", errors.code, lang);
    }
    honeypot_and_id(&mut out, lang, state.request_id, "email-phone");
    if code_step {
        // The first button is what pressing Enter does: look up, never another SMS.
        html!(&mut out;
            "<button type=\"submit\" name=\"" {field::ACTION} "\" value=\"phone\">" {lang.pick("확인하기", "Look it up")} "</button>\n"
            "<button type=\"submit\" name=\"" {field::ACTION} "\" value=\"send_code\" class=\"secondary\" formnovalidate>"
            {lang.pick("인증번호 다시 받기", "Send a new code")} "</button>\n"
        );
    } else {
        html!(&mut out;
            "<button type=\"submit\" name=\"" {field::ACTION} "\" value=\"send_code\">" {lang.pick("인증번호 받기", "Send me a code")} "</button>\n"
        );
    }
    html!(&mut out; "</form>\n");
    views::footer(&mut out, lang);
    out.into_markup()
}

/// Where the entry stands; with the withdraw button when it was looked up by phone and code
/// (`holder`: the form and its render id) and no draw happened yet.
fn standing_page(
    event: &PublicEvent,
    lang: Lang,
    found: &participation::LookupEntryResponse,
    holder: Option<(&MeForm, &str)>,
) -> Markup {
    let mut out = Html::new();
    views::small_header(&mut out, event, lang.pick("내 응모", "My entry"));
    let entry = found.entry.clone().unwrap_or_default();
    html!(&mut out; "<dl class=\"facts\">");
    if !entry.masked_name.is_empty() {
        html!(&mut out; "<dt>" {lang.pick("이름", "Name")} "</dt><dd>" {entry.masked_name} "</dd>");
    }
    if !entry.masked_phone.is_empty() {
        html!(&mut out; "<dt>" {lang.pick("휴대전화", "Mobile")} "</dt><dd class=\"mono\">" {entry.masked_phone} "</dd>");
    }
    if let Some(at) = seoul_time(entry.create_time.as_ref(), lang) {
        html!(&mut out; "<dt>" {lang.pick("응모 시각", "Entered")} "</dt><dd>" {at} "</dd>");
    }
    html!(&mut out; "</dl>\n");
    let path = views::event_path(event);
    match EntryStanding::try_from(found.standing).unwrap_or(EntryStanding::Unspecified) {
        EntryStanding::Entered | EntryStanding::Unspecified => {
            html!(&mut out;
                "<div class=\"message ok\" role=\"status\"><p><strong>" {lang.pick("응모되어 있습니다.", "You are entered.")}
                "</strong></p><p>" {lang.pick("아직 추첨 전입니다. 응모 마감: ", "No draw yet. Entries close: ")} {views::end_of(event, lang)}
                "</p></div>\n"
            );
            match holder {
                Some((form, rid)) => {
                    html!(&mut out;
                        "<form method=\"post\" action=\"" {path} "/me\">\n<input type=\"hidden\" name=\"" {field::ACTION} "\" value=\"withdraw\">\n"
                    );
                    credentials(&mut out, form, rid);
                    html!(&mut out;
                        "<button type=\"submit\" class=\"secondary\">" {lang.pick("응모 취소하기", "Withdraw my entry")} "</button>\n</form>\n"
                    );
                }
                None => html!(&mut out;
                    "<p class=\"hint\">" {lang.pick("응모를 취소하려면 ", "To withdraw, ")} "<a href=\"" {path} "/me#by-phone\">"
                    {lang.pick("휴대전화 번호로 확인", "look your entry up by mobile number")} "</a>"
                    {lang.pick("해 주세요.", ".")} "</p>\n"
                ),
            }
        }
        EntryStanding::Won => won(&mut out, event, lang, found),
        EntryStanding::NotWon => html!(&mut out;
            "<div class=\"message\" role=\"status\"><p><strong>" {lang.pick("아쉽게도 당첨되지 않았습니다.", "Sorry, this entry did not win.")}
            "</strong></p><p><a href=\"" {path} "/winners\">" {lang.pick("당첨자 발표 보기", "See the winners page")} "</a></p></div>\n"
        ),
        EntryStanding::Withdrawn => html!(&mut out;
            "<div class=\"message\" role=\"status\"><p><strong>" {lang.pick("취소된 응모입니다.", "This entry was withdrawn.")}
            "</strong></p><p>" {lang.pick("추첨에서 빠졌고 이름과 번호는 지워졌습니다.", "It takes part in no draw, and its name and number were erased.")}
            "</p></div>\n"
        ),
    }
    views::footer(&mut out, lang);
    out.into_markup()
}

/// A winning entry: the rank, the claim state with its deadline, and the claim link.
fn won(out: &mut Html, event: &PublicEvent, lang: Lang, found: &participation::LookupEntryResponse) {
    let deadline = seoul_time(found.claim_deadline.as_ref(), lang);
    html!(out;
        "<div class=\"message ok\" role=\"status\"><p><strong>" {lang.pick("축하합니다! 당첨되었습니다.", "Congratulations, you won!")}
        "</strong></p><p>" {lang.pick("순위: ", "Rank: ")} {found.rank} "</p><p>" {lang.pick("경품 수령: ", "Prize: ")}
        {views::claim_state_label(found.claim_state, lang)} "</p>"
    );
    let state = ClaimState::try_from(found.claim_state).unwrap_or(ClaimState::Unspecified);
    if let Some(deadline) = deadline.filter(|_| matches!(state, ClaimState::Unclaimed | ClaimState::Expired)) {
        html!(out; "<p>" {lang.pick("확인 기한: ", "Claim by: ")} {deadline} "</p>");
    }
    html!(out; "</div>\n");
    match state {
        ClaimState::Unclaimed | ClaimState::Unspecified => html!(out;
            "<p><a href=\"" {views::event_path(event)} "/claim\">" {lang.pick("당첨 경품 받기 (당첨 코드 입력)", "Claim the prize (with the claim code)")}
            "</a></p>\n"
        ),
        ClaimState::Redrawn => html!(out;
            "<p>" {lang.pick("기한이 지나 경품이 다른 참여자에게 돌아갔습니다.", "The deadline passed and the prize went to another participant.")} "</p>\n"
        ),
        ClaimState::Claimed | ClaimState::Expired => {}
    }
}

/// The phone, the code and the render id, carried to the next step as hidden fields (the page is
/// never stored: `no-store`).
fn credentials(out: &mut Html, form: &MeForm, rid: &str) {
    html!(out;
        "<input type=\"hidden\" name=\"" {field::PHONE} "\" value=\"" {form.phone} "\">\n"
        "<input type=\"hidden\" name=\"" {field::CODE} "\" value=\"" {form.code} "\">\n"
        "<input type=\"hidden\" name=\"" {field::REQUEST_ID} "\" value=\"" {rid} "\">\n"
    );
}

/// The confirmation step of a withdrawal: what it means, then the button that does it.
fn confirm_page(event: &PublicEvent, lang: Lang, form: &MeForm, rid: &str) -> Markup {
    let mut out = Html::new();
    views::small_header(&mut out, event, lang.pick("응모를 취소할까요?", "Withdraw your entry?"));
    html!(&mut out;
        "<div class=\"message alert\" role=\"alert\"><p>"
        {lang.pick("취소하면 추첨에서 빠지고, 이름과 휴대전화 번호가 바로 지워집니다. 되돌릴 수 없습니다.",
                   "Your entry leaves the draw and your name and number are erased at once. This cannot be undone.")}
        "</p></div>\n<form method=\"post\" action=\"" {views::event_path(event)} "/me\">\n"
        "<input type=\"hidden\" name=\"" {field::ACTION} "\" value=\"confirm_withdraw\">\n"
    );
    credentials(&mut out, form, rid);
    html!(&mut out;
        "<div class=\"hp\" aria-hidden=\"true\"><label for=\"email\">" {lang.pick("이메일", "Email")}
        "</label><input type=\"text\" id=\"email\" name=\"" {field::HONEYPOT} "\" tabindex=\"-1\" autocomplete=\"off\"></div>\n"
        "<button type=\"submit\">" {lang.pick("네, 응모를 취소합니다", "Yes, withdraw my entry")} "</button>\n</form>\n"
        "<p><a href=\"" {views::event_path(event)} "\">" {lang.pick("취소하지 않고 돌아가기", "No, keep my entry")} "</a></p>\n"
    );
    views::footer(&mut out, lang);
    out.into_markup()
}

fn withdrawn_page(event: &PublicEvent, lang: Lang, withdrawn: &participation::WithdrawEntryResponse) -> Markup {
    let mut out = Html::new();
    html!(&mut out;
        "<div class=\"message ok\" role=\"status\"><h1>" {lang.pick("응모가 취소되었습니다", "Your entry is withdrawn")}
        "</h1><p>" {event.title} "</p></div>\n<p>"
        {lang.pick("추첨에서 빠졌고, 이름과 휴대전화 번호를 지웠습니다.", "It leaves every draw, and your name and number were erased.")}
        "</p>\n"
    );
    if let Some(at) = seoul_time(withdrawn.withdraw_time.as_ref(), lang) {
        html!(&mut out; "<p class=\"hint\">" {lang.pick("취소 시각: ", "Withdrawn at ")} {at} "</p>\n");
    }
    views::footer(&mut out, lang);
    out.into_markup()
}

fn already_drawn_page(event: &PublicEvent, lang: Lang) -> Markup {
    let mut out = Html::new();
    views::small_header(&mut out, event, lang.pick("내 응모", "My entry"));
    html!(&mut out;
        "<div class=\"message alert\" role=\"alert\"><p>"
        {lang.pick("이미 추첨이 끝나 응모를 취소할 수 없습니다.", "The winners were already drawn: the entry can no longer be withdrawn.")}
        "</p><p><a href=\"" {views::event_path(event)} "/winners\">" {lang.pick("당첨자 발표 보기", "See the winners page")} "</a></p></div>\n"
    );
    views::footer(&mut out, lang);
    out.into_markup()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_action_checks_the_fields_it_uses() {
        let form = |body: &[u8]| MeForm::of(&Fields::parse(body));
        assert!(form(b"action=receipt&receipt=AB2CD-3EF4G").check().is_empty());
        assert_eq!(form(b"receipt=%00").check().receipt, Some(Problem::Receipt), "no action: by receipt");
        assert_eq!(form(b"action=nonsense").action, MeAction::Receipt, "an unknown action never sends an SMS");
        assert!(form(b"action=send_code&phone=010-1234-5678").check().is_empty());
        let errors = form(b"action=phone&phone=010-1234-5678&code=12a").check();
        assert_eq!((errors.phone, errors.code), (None, Some(Problem::CodeWrong)));
        let errors = form(b"action=confirm_withdraw").check();
        assert_eq!((errors.phone, errors.code), (Some(Problem::Phone), Some(Problem::CodeRequired)));
        assert_eq!(receipt_problem(&"A".repeat(17)), Some(Problem::Receipt));
    }
}
