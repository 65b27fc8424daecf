//! The pages themselves: the event with its entry form, the receipt, the closed and duplicate
//! notices, the winners with the draw audit, and the error pages. Every value from a service or
//! the participant goes through [`html!`]'s escaping; the markup is the literals below.

use kem_kit::channel::Channel;
use kem_proto::kem::common::v1::ParticipationMethod;
use kem_proto::kem::event::v1::{PublicEvent, PublicEventState};
use kem_proto::kem::participation::v1::{ClaimState, DrawAudit, GetPublicWinnersResponse};

use super::assets;
use super::form::{CODE_MAX_CHARS, EntryForm, FieldErrors, NAME_MAX_CHARS, PHONE_MAX_CHARS, Problem, field};
use super::html::{Html, Markup, html};
use super::lang::{Lang, seoul_time};

/// A whole HTML document around `body`.
pub fn document(lang: Lang, title: &str, body: &Markup) -> String {
    let mut out = Html::new();
    let css = assets::css_path();
    html!(&mut out;
        "<!doctype html>\n<html lang=\"" {lang.code()} "\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<title>" {title} "</title>\n<link rel=\"stylesheet\" href=\"" {css} "\">\n</head>\n<body>\n<main>\n"
        {body}
        "</main>\n</body>\n</html>\n"
    );
    out.into_string()
}

/// Where a participant stands: the service's state, or (when it sends none) the period's.
pub fn state_of(event: &PublicEvent, now_unix: i64) -> PublicEventState {
    match PublicEventState::try_from(event.state) {
        Ok(PublicEventState::Unspecified) | Err(_) => {
            let period = event.period.as_ref();
            let start = period.and_then(|p| p.start_time.as_ref()).map_or(i64::MIN, |t| t.seconds);
            let end = period.and_then(|p| p.end_time.as_ref()).map_or(i64::MAX, |t| t.seconds);
            if now_unix < start {
                PublicEventState::Upcoming
            } else if now_unix >= end {
                PublicEventState::Closed
            } else {
                PublicEventState::Open
            }
        }
        Ok(state) => state,
    }
}

fn state_label(state: PublicEventState, lang: Lang) -> &'static str {
    match state {
        PublicEventState::Upcoming => lang.pick("응모 예정", "Opens soon"),
        PublicEventState::Open => lang.pick("응모 중", "Open for entries"),
        PublicEventState::Closed | PublicEventState::Unspecified => lang.pick("응모 마감", "Closed"),
        PublicEventState::Drawn => lang.pick("당첨자 발표", "Winners announced"),
    }
}

fn start_of(event: &PublicEvent, lang: Lang) -> String {
    seoul_time(event.period.as_ref().and_then(|p| p.start_time.as_ref()), lang).unwrap_or_else(|| "—".to_owned())
}

pub(super) fn end_of(event: &PublicEvent, lang: Lang) -> String {
    seoul_time(event.period.as_ref().and_then(|p| p.end_time.as_ref()), lang).unwrap_or_else(|| "—".to_owned())
}

fn winner_count(event: &PublicEvent) -> i32 {
    event.prize.as_ref().map_or(0, |p| p.winner_count)
}

fn first_come(event: &PublicEvent) -> bool {
    event.participation_method == ParticipationMethod::FirstCome as i32
}

fn method_label(event: &PublicEvent, lang: Lang) -> &'static str {
    match (first_come(event), event.auto_draw) {
        (true, _) => lang.pick("선착순 (먼저 응모한 순서대로 당첨)", "First come, first served"),
        (false, true) => {
            lang.pick("응모 후 추첨 (마감 후 자동 추첨)", "Random draw after the entry period (automatic)")
        }
        (false, false) => lang.pick("응모 후 추첨", "Random draw after the entry period"),
    }
}

/// The event's image URL when it is an absolute http(s) URL (anything else is not shown).
pub fn image_url(event: &PublicEvent) -> Option<&str> {
    let url = event.image_url.as_str();
    super::form::origin_of(url).map(|_| url)
}

/// The event's poster, title, copy and facts: the top of every event page.
fn event_header(out: &mut Html, event: &PublicEvent, lang: Lang, state: PublicEventState) {
    if let Some(url) = image_url(event) {
        let alt = format!("{} {}", event.title, lang.pick("이벤트 이미지", "event image"));
        html!(out; "<img class=\"hero\" src=\"" {url} "\" alt=\"" {alt} "\">\n");
    }
    if !event.store_name.is_empty() {
        html!(out; "<p class=\"store\">" {event.store_name} "</p>\n");
    }
    html!(out; "<h1>" {event.title} "</h1>\n<p><span class=\"state\">" {state_label(state, lang)} "</span></p>\n");
    // Why there is no form comes first on a phone's screen, not below the poster's story.
    if state != PublicEventState::Open {
        state_message(out, event, lang, state);
    }
    if !event.copy.is_empty() {
        html!(out; "<p class=\"copy\">" {event.copy} "</p>\n");
    }
    // Selecting a recommendation copies its concept into the description: show it once.
    if !event.description.is_empty() && event.description != event.copy {
        html!(out; "<p class=\"description\">" {event.description} "</p>\n");
    }
    html!(out; "<dl class=\"facts\">\n");
    if let Some(prize) = event.prize.as_ref().filter(|p| !p.name.is_empty()) {
        html!(out; "<dt>" {lang.pick("경품", "Prize")} "</dt><dd>" {prize.name});
        if !prize.description.is_empty() {
            html!(out; "<br><span class=\"hint\">" {prize.description} "</span>");
        }
        html!(out; "</dd>\n");
    }
    let count = winner_count(event);
    if count > 0 {
        html!(out; "<dt>" {lang.pick("당첨 인원", "Winners")} "</dt><dd>" {count} {lang.pick("명", "")} "</dd>\n");
    }
    html!(out;
        "<dt>" {lang.pick("응모 기간", "Entry period")} "</dt><dd>" {start_of(event, lang)} " ~<br>"
        {end_of(event, lang)} "</dd>\n"
        "<dt>" {lang.pick("참여 방법", "How it works")} "</dt><dd>" {method_label(event, lang)} "</dd>\n</dl>\n"
    );
}

/// The path of an event page.
pub(super) fn event_path(event: &PublicEvent) -> String {
    format!("/e/{}", event.event_id)
}

/// Whether the event asks entrants to confirm their phone with a one-time code.
pub fn verifies_phone(event: &PublicEvent) -> bool {
    event.entry_rules.as_ref().is_some_and(|rules| rules.verify_phone)
}

/// The top of the claim and "my entry" pages: the store, the heading, and the event's link.
pub(super) fn small_header(out: &mut Html, event: &PublicEvent, heading: &str) {
    if !event.store_name.is_empty() {
        html!(out; "<p class=\"store\">" {event.store_name} "</p>\n");
    }
    html!(out; "<h1>" {heading} "</h1>\n<p><a href=\"" {event_path(event)} "\">" {event.title} "</a></p>\n");
}

/// A message next to a form that belongs to no single field: a code was sent, or when to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A one-time code went out (for LOOKUP: "if this number entered"); until when it works.
    CodeSent {
        /// The code's expiry in Seoul time, when the service said.
        expires: Option<String>,
        /// Whether the wording must not reveal that the phone entered (lookups).
        if_entered: bool,
    },
    /// Too many requests for codes or too many tries: when to try again (Seoul time).
    Wait(String),
    /// Too many wrong codes: when to try again, and to ask for a new code.
    TooManyAttempts(Option<String>),
}

/// Renders `notice` as a status (or alert) box.
pub(super) fn notice(out: &mut Html, notice: &Notice, lang: Lang) {
    match notice {
        Notice::CodeSent { expires, if_entered } => {
            let sent = if *if_entered {
                lang.pick(
                    "이 번호로 응모하셨다면 인증번호를 문자로 보냈습니다.",
                    "If this number entered the event, a code has been sent to it by text message.",
                )
            } else {
                lang.pick("인증번호를 문자로 보냈습니다.", "A code has been sent to this number by text message.")
            };
            html!(out; "<div class=\"message ok\" role=\"status\"><p>" {sent} "</p>");
            if let Some(expires) = expires {
                html!(out; "<p>" {lang.pick("유효 시간: ", "Valid until ")} {expires} "</p>");
            }
            html!(out; "</div>\n");
        }
        Notice::Wait(when) => html!(out;
            "<div class=\"message alert\" role=\"alert\"><p>"
            {lang.pick("요청이 너무 잦습니다. 다음 시간 이후에 다시 시도해 주세요: ", "Too many requests. Please try again ")}
            {when} "</p></div>\n"
        ),
        Notice::TooManyAttempts(when) => {
            html!(out;
                "<div class=\"message alert\" role=\"alert\"><p>"
                {lang.pick("잘못 입력한 횟수가 너무 많습니다.", "Too many wrong attempts.")} "</p>"
            );
            if let Some(when) = when {
                html!(out; "<p>" {lang.pick("다시 시도할 수 있는 시간: ", "You can try again ")} {when} "</p>");
            }
            html!(out; "</div>\n");
        }
    }
}

/// The form as the participant last left it, with what is wrong.
pub struct FormState<'a> {
    /// Values typed so far (empty on a first render).
    pub values: &'a EntryForm,
    /// Problems to show next to the fields.
    pub errors: &'a FieldErrors,
    /// The render's request id.
    pub request_id: &'a str,
    /// The attribution channel to keep.
    pub channel: Option<Channel>,
    /// A code was sent, or when to try again.
    pub notice: Option<&'a Notice>,
}

/// The event page: the header, then the form when the event is open, or what the state means.
pub fn event_page(event: &PublicEvent, lang: Lang, state: PublicEventState, form: &FormState<'_>) -> Markup {
    let mut out = Html::new();
    // Any other state was explained right under the title (`event_header`).
    event_header(&mut out, event, lang, state);
    if state == PublicEventState::Open {
        if event.terms.as_ref().is_some_and(|t| !t.version.is_empty()) {
            entry_form(&mut out, event, lang, form);
        } else {
            html!(&mut out;
                "<div class=\"message alert\" role=\"alert\"><p>"
                {lang.pick("응모 안내를 불러오지 못했습니다. 잠시 후 다시 시도해 주세요.",
                           "The entry notice could not be loaded. Please try again in a moment.")}
                "</p></div>\n"
            );
        }
    }
    footer(&mut out, lang);
    out.into_markup()
}

fn state_message(out: &mut Html, event: &PublicEvent, lang: Lang, state: PublicEventState) {
    let (start, end) = (start_of(event, lang), end_of(event, lang));
    html!(out; "<div class=\"message\" role=\"status\">");
    match state {
        PublicEventState::Upcoming => html!(out;
            "<p><strong>" {lang.pick("아직 응모 기간이 아닙니다.", "Entries have not opened yet.")} "</strong></p><p>"
            {lang.pick("응모 시작: ", "Entries open: ")} {start} "<br>" {lang.pick("응모 마감: ", "Entries close: ")} {end} "</p>"
        ),
        PublicEventState::Drawn => html!(out;
            "<p><strong>" {lang.pick("응모가 마감되었고 당첨자를 추첨했습니다.", "Entries are closed and the winners have been drawn.")}
            "</strong></p><p>" {lang.pick("응모 기간: ", "Entry period: ")} {start} " ~ " {end} "</p><p><a href=\""
            {event_path(event)} "/winners\">" {lang.pick("당첨자 확인하기", "See the winners")} "</a></p>"
        ),
        _ => html!(out;
            "<p><strong>" {lang.pick("응모가 마감되었습니다.", "Entries are closed.")} "</strong></p><p>"
            {lang.pick("응모 기간: ", "Entry period: ")} {start} " ~ " {end} "</p><p>"
            {lang.pick("당첨자는 추첨 후 ", "The winners will be announced on ")}
            "<a href=\"" {event_path(event)} "/winners\">" {lang.pick("당첨자 발표 페이지", "the winners page")} "</a>"
            {lang.pick("에 공개됩니다.", " after the draw.")} "</p>"
        ),
    }
    html!(out; "</div>\n");
}

/// `aria-invalid` and `aria-describedby` for a field with an error element `{id}-error` and
/// optional other describing elements.
pub(super) fn aria(out: &mut Html, id: &'static str, problem: Option<Problem>, described_by: &'static str) {
    if problem.is_some() {
        html!(out; " aria-invalid=\"true\" aria-describedby=\"" {described_by} {id} "-error\"");
    } else if !described_by.is_empty() {
        html!(out; " aria-describedby=\"" {described_by.trim_end()} "\"");
    }
}

pub(super) fn field_error(out: &mut Html, id: &'static str, problem: Option<Problem>, lang: Lang) {
    if let Some(problem) = problem {
        html!(out; "<p class=\"error\" id=\"" {id} "-error\">" {problem.message(lang)} "</p>\n");
    }
}

fn checked(out: &mut Html, on: bool) {
    if on {
        out.raw(" checked");
    }
}

fn entry_form(out: &mut Html, event: &PublicEvent, lang: Lang, form: &FormState<'_>) {
    let terms = event.terms.clone().unwrap_or_default();
    let notice = match lang {
        Lang::En if !terms.text_en.is_empty() => terms.text_en.as_str(),
        _ => terms.text.as_str(),
    };
    let (values, errors) = (form.values, form.errors);
    html!(out; "<h2 id=\"form-title\">" {lang.pick("응모하기", "Enter")} "</h2>\n");
    if !errors.is_empty() {
        let summary = if errors.privacy == Some(Problem::TermsOutdated) {
            Problem::TermsOutdated.message(lang)
        } else if errors.general {
            lang.pick(
                "응모를 처리하지 못했습니다. 입력 내용을 확인하고 다시 시도해 주세요.",
                "Your entry could not be processed. Please check it and try again.",
            )
        } else {
            lang.pick("입력 내용을 확인해 주세요.", "Please check the fields marked below.")
        };
        html!(out; "<div class=\"message alert\" role=\"alert\" id=\"form-errors\"><p>" {summary} "</p></div>\n");
    }
    let verify = verifies_phone(event);
    html!(out; "<form method=\"post\" action=\"" {event_path(event)} "\" aria-labelledby=\"form-title\">\n");
    if verify {
        // Pressing Enter in a field submits with the form's first button: this one, so it enters
        // (and never sends another SMS); out of sight, the visible buttons are below.
        html!(out;
            "<button type=\"submit\" name=\"" {field::ACTION} "\" value=\"enter\" class=\"hp\" tabindex=\"-1\" aria-hidden=\"true\">"
            {lang.pick("응모하기", "Submit my entry")} "</button>\n"
        );
    }
    html!(out;
        "<div class=\"field\"><label for=\"name\">" {lang.pick("이름", "Name")} "</label>"
        "<input type=\"text\" id=\"name\" name=\"" {field::NAME} "\" autocomplete=\"name\" maxlength=\""
        {NAME_MAX_CHARS} "\" required value=\"" {values.name} "\""
    );
    aria(out, "name", errors.name, "");
    html!(out; ">\n");
    field_error(out, "name", errors.name, lang);
    html!(out;
        "</div>\n<div class=\"field\"><label for=\"phone\">" {lang.pick("휴대전화 번호", "Mobile number")} "</label>"
        "<input type=\"tel\" id=\"phone\" name=\"" {field::PHONE} "\" inputmode=\"tel\" autocomplete=\"tel\" maxlength=\""
        {PHONE_MAX_CHARS} "\" placeholder=\"010-1234-5678\" required value=\"" {values.phone} "\""
    );
    aria(out, "phone", errors.phone, "phone-hint ");
    html!(out;
        ">\n<p class=\"hint\" id=\"phone-hint\">"
        {lang.pick("당첨 안내를 받을 번호입니다. 한 번호로 한 번만 응모할 수 있습니다.",
                   "Winners are contacted at this number. One entry per number.")}
        "</p>\n"
    );
    field_error(out, "phone", errors.phone, lang);
    if verify {
        verification_field(out, lang, form);
    }
    // The notice: who collects what, why, for how long, and the right to refuse (PIPA art. 15, 22).
    html!(out;
        "</div>\n<h3 id=\"privacy-title\">" {lang.pick("개인정보 수집·이용 안내", "Collection and use of personal data")} "</h3>\n"
        "<div class=\"notice\" id=\"privacy-notice\" tabindex=\"0\" role=\"region\" aria-labelledby=\"privacy-title\">"
        {notice} "</div>\n<div class=\"field\"><div class=\"check\"><input type=\"checkbox\" id=\"privacy\" name=\""
        {field::PRIVACY} "\" value=\"yes\" required"
    );
    // After a terms change the participant must read and tick again.
    checked(out, values.privacy && errors.privacy.is_none());
    aria(out, "privacy", errors.privacy, "privacy-notice ");
    html!(out;
        "><label for=\"privacy\">" {lang.pick("[필수] 위 개인정보 수집·이용에 동의합니다.",
                                               "[Required] I agree to the collection and use of my personal data above.")}
        "</label></div>\n"
    );
    field_error(out, "privacy", errors.privacy, lang);
    html!(out;
        "</div>\n<div class=\"field\"><div class=\"check\"><input type=\"checkbox\" id=\"marketing\" name=\""
        {field::MARKETING} "\" value=\"yes\""
    );
    checked(out, values.marketing);
    aria(out, "marketing", errors.marketing, "marketing-hint ");
    let store = if event.store_name.is_empty() { lang.pick("매장", "the store") } else { event.store_name.as_str() };
    html!(out;
        "><label for=\"marketing\">" {lang.pick("[선택] ", "[Optional] ")} {store}
        {lang.pick("의 이벤트·혜택 소식을 문자로 받겠습니다.", ": send me news of events and offers by text message.")}
        "</label></div>\n<p class=\"hint\" id=\"marketing-hint\">"
        {lang.pick("동의하지 않아도 응모할 수 있습니다.", "You can enter without agreeing to this.")} "</p>\n"
    );
    field_error(out, "marketing", errors.marketing, lang);
    html!(out;
        "</div>\n<div class=\"field\"><div class=\"check\"><input type=\"checkbox\" id=\"age\" name=\"" {field::AGE}
        "\" value=\"yes\" required"
    );
    checked(out, values.age);
    aria(out, "age", errors.age, "age-hint ");
    html!(out;
        "><label for=\"age\">" {lang.pick("[필수] 만 14세 이상입니다.", "[Required] I am 14 or older.")}
        "</label></div>\n<p class=\"hint\" id=\"age-hint\">"
        {lang.pick("만 14세 미만은 보호자 동의가 필요해 응모할 수 없습니다.",
                   "Under 14, entering needs a guardian's consent, which this page does not collect.")}
        "</p>\n"
    );
    field_error(out, "age", errors.age, lang);
    // The honeypot: a plausible field, out of sight and out of the tab order.
    html!(out;
        "</div>\n<div class=\"hp\" aria-hidden=\"true\"><label for=\"email\">" {lang.pick("이메일", "Email")}
        "</label><input type=\"text\" id=\"email\" name=\"" {field::HONEYPOT} "\" tabindex=\"-1\" autocomplete=\"off\"></div>\n"
        "<input type=\"hidden\" name=\"" {field::TERMS_VERSION} "\" value=\"" {terms.version} "\">\n"
        "<input type=\"hidden\" name=\"" {field::REQUEST_ID} "\" value=\"" {form.request_id} "\">\n"
    );
    if let Some(channel) = form.channel {
        html!(out; "<input type=\"hidden\" name=\"" {field::CHANNEL} "\" value=\"" {channel.slug()} "\">\n");
    }
    html!(out;
        "<button type=\"submit\" name=\"" {field::ACTION} "\" value=\"enter\">" {lang.pick("응모하기", "Submit my entry")}
        "</button>\n</form>\n"
    );
}

/// The phone check of an event that verifies phones: the code field and its "send" button, which
/// posts the same form (so what was typed is kept) without the browser's required-field checks.
fn verification_field(out: &mut Html, lang: Lang, form: &FormState<'_>) {
    let problem = form.errors.code;
    html!(out;
        "<button type=\"submit\" name=\"" {field::ACTION} "\" value=\"send_code\" class=\"secondary\" formnovalidate>"
        {lang.pick("인증번호 받기", "Send me a code")} "</button>\n"
    );
    if let Some(message) = form.notice {
        notice(out, message, lang);
    }
    html!(out;
        "</div>\n<div class=\"field\"><label for=\"code\">" {lang.pick("인증번호", "Verification code")} "</label>"
        "<input type=\"text\" id=\"code\" name=\"" {field::CODE} "\" inputmode=\"numeric\" autocomplete=\"one-time-code\" maxlength=\""
        {CODE_MAX_CHARS} "\" value=\"" {form.values.verification_code} "\""
    );
    aria(out, "code", problem, "code-hint ");
    html!(out;
        ">\n<p class=\"hint\" id=\"code-hint\">"
        {lang.pick("이 이벤트는 휴대전화 확인이 필요합니다. 문자로 받은 6자리 숫자를 입력해 주세요 (5분 동안 유효).",
                   "This event checks your number: enter the 6-digit code from the text message (valid for 5 minutes).")}
        "</p>\n"
    );
    field_error(out, "code", problem, lang);
}

pub(super) fn footer(out: &mut Html, lang: Lang) {
    html!(out; "<footer><p>" {lang.pick("KT 이벤트 마케팅으로 만든 페이지입니다.", "A page made with KT event marketing.")} "</p></footer>\n");
}

/// What follows an entry: when entries close and how winners are chosen and announced.
fn next_steps(out: &mut Html, event: &PublicEvent, lang: Lang) {
    let (end, count) = (end_of(event, lang), winner_count(event));
    html!(out; "<h2>" {lang.pick("다음 안내", "What happens next")} "</h2>\n<p>");
    if first_come(event) {
        html!(out;
            {lang.pick("선착순으로 먼저 응모한 ", "The first ")} {count}
            {lang.pick("명이 당첨됩니다. 응모 마감: ", " entries win. Entries close: ")} {end}
        );
    } else {
        html!(out;
            {lang.pick("응모는 ", "Entries close on ")} {end}
            {lang.pick("에 마감되며, 마감 후 추첨으로 당첨자 ", ", then ")} {count}
            {lang.pick("명을 뽑습니다.", " winners are drawn at random.")}
        );
    }
    html!(out;
        // Winners are contacted by the store (it sees their numbers); kem sends no SMS yet.
        "</p>\n<p>" {lang.pick("당첨자는 ", "Winners are listed (masked) on ")}
        "<a href=\"" {event_path(event)} "/winners\">" {lang.pick("당첨자 발표 페이지", "the winners page")} "</a>"
        {lang.pick("에 가려진 이름으로 공개되며, 가게에서 연락드립니다.", ", and the store contacts them.")} "</p>\n"
    );
}

/// The receipt: the code, big and easy to copy, and what happens next.
pub fn receipt_page(event: &PublicEvent, lang: Lang, receipt_code: &str) -> Markup {
    let mut out = Html::new();
    html!(&mut out;
        "<div class=\"message ok\" role=\"status\"><h1>" {lang.pick("응모가 완료되었습니다", "You're in!")} "</h1><p>"
        {event.title} "</p></div>\n<p>" {lang.pick("접수 번호", "Your receipt code")} "</p>\n"
        "<p class=\"receipt\" id=\"receipt\">" {receipt_code} "</p>\n<p class=\"hint\">"
        {lang.pick("이 번호를 복사하거나 화면을 캡처해 두세요. 당첨 확인 때 필요할 수 있습니다.",
                   "Copy this code or take a screenshot: you may need it to claim a prize.")}
        "</p>\n"
    );
    next_steps(&mut out, event, lang);
    my_entry_link(&mut out, event, lang);
    footer(&mut out, lang);
    out.into_markup()
}

/// The link to "my entry": look up, and withdraw before the draw.
pub(super) fn my_entry_link(out: &mut Html, event: &PublicEvent, lang: Lang) {
    html!(out;
        "<p><a href=\"" {event_path(event)} "/me\">" {lang.pick("내 응모 확인·취소", "Check or withdraw my entry")} "</a></p>\n"
    );
}

/// Why an entry was not taken although the form was fine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This phone already entered.
    Duplicate,
    /// The event is not accepting entries (not started, ended, drawn).
    NotOpen,
    /// A first-come event is full.
    Full,
    /// The owner's limit of entries per client address was reached.
    AddressLimit,
}

/// The page for a refused entry, with the event's dates.
pub fn refusal_page(event: &PublicEvent, lang: Lang, refusal: Refusal) -> Markup {
    let mut out = Html::new();
    let (headline, detail) = match refusal {
        Refusal::Duplicate => (
            lang.pick("이미 참여하셨습니다", "You have already entered"),
            lang.pick(
                "이 휴대전화 번호로 이미 응모했습니다. 한 번호로 한 번만 응모할 수 있습니다.",
                "This mobile number has already entered this event; each number can enter once.",
            ),
        ),
        Refusal::NotOpen => (
            lang.pick("지금은 응모할 수 없습니다", "Entries are not open"),
            lang.pick("응모 기간이 아니거나 응모가 마감되었습니다.", "The event is not open for entries right now."),
        ),
        Refusal::Full => (
            lang.pick("선착순 응모가 마감되었습니다", "All first-come places are taken"),
            lang.pick("준비된 인원이 모두 응모했습니다.", "Every first-come place has been taken."),
        ),
        Refusal::AddressLimit => (
            lang.pick("이 네트워크에서는 더 응모할 수 없습니다", "No more entries from this network"),
            lang.pick(
                "이 인터넷 연결(와이파이 등)에서 이벤트가 정한 응모 수를 모두 채웠습니다. 휴대전화 데이터로 바꿔 응모해 주세요.",
                "This connection (e.g. this Wi-Fi) has made as many entries as the event allows. Please switch to mobile data to enter.",
            ),
        ),
    };
    html!(&mut out;
        "<div class=\"message alert\" role=\"alert\"><h1>" {headline} "</h1><p>" {detail} "</p></div>\n"
        "<p><strong>" {event.title} "</strong></p>\n<dl class=\"facts\"><dt>" {lang.pick("응모 기간", "Entry period")}
        "</dt><dd>" {start_of(event, lang)} " ~<br>" {end_of(event, lang)} "</dd></dl>\n"
    );
    if refusal == Refusal::Duplicate {
        next_steps(&mut out, event, lang);
    } else {
        html!(&mut out;
            "<p><a href=\"" {event_path(event)} "/winners\">" {lang.pick("당첨자 발표 보기", "See the winners page")} "</a></p>\n"
        );
    }
    footer(&mut out, lang);
    out.into_markup()
}

/// The winners (masked) and the audit of their draw.
pub fn winners_page(event: &PublicEvent, lang: Lang, winners: &GetPublicWinnersResponse) -> Markup {
    let mut out = Html::new();
    html!(&mut out;
        "<p class=\"store\">" {event.store_name} "</p>\n<h1>" {lang.pick("당첨자 발표", "Winners")} "</h1>\n<p><a href=\""
        {event_path(event)} "\">" {event.title} "</a></p>\n"
    );
    let Some(audit) = winners.audit.as_ref() else {
        html!(&mut out;
            "<div class=\"message\" role=\"status\"><p>" {lang.pick("아직 당첨자를 추첨하지 않았습니다.", "The winners have not been drawn yet.")}
            "</p><p>" {lang.pick("응모 마감: ", "Entries close: ")} {end_of(event, lang)} "</p></div>\n"
        );
        footer(&mut out, lang);
        return out.into_markup();
    };
    html!(&mut out;
        "<table><caption class=\"hint\">" {lang.pick("개인정보 보호를 위해 이름과 번호 일부를 가렸습니다.",
                                                     "Names and numbers are partly hidden to protect privacy.")}
        "</caption><thead><tr><th scope=\"col\">" {lang.pick("순위", "Rank")} "</th><th scope=\"col\">"
        {lang.pick("이름", "Name")} "</th><th scope=\"col\">" {lang.pick("휴대전화", "Mobile")} "</th><th scope=\"col\">"
        {lang.pick("경품 수령", "Prize")} "</th></tr></thead><tbody>\n"
    );
    for winner in &winners.winners {
        html!(&mut out;
            "<tr><td>" {winner.rank} "</td><td>" {winner.masked_name} "</td><td class=\"mono\">" {winner.masked_phone}
            "</td><td>" {claim_state_label(winner.claim_state, lang)} "</td></tr>\n"
        );
    }
    html!(&mut out; "</tbody></table>\n");
    my_entry_link(&mut out, event, lang);
    if winners.draws.len() > 1 {
        // Redraws: every draw's record, oldest first, so each can be checked.
        html!(&mut out; "<h2>" {lang.pick("추첨 기록 (재추첨 포함)", "Draw records (with redraws)")} "</h2>\n");
        for (n, draw) in winners.draws.iter().enumerate() {
            html!(&mut out; "<h3>" {lang.pick("추첨 ", "Draw ")} {n + 1} "</h3>\n");
            draw_record(&mut out, draw, lang);
        }
    } else {
        html!(&mut out; "<h2>" {lang.pick("추첨 기록", "Draw record")} "</h2>\n");
        draw_record(&mut out, audit, lang);
    }
    html!(&mut out;
        "<p>"
        {lang.pick(
            "검증 방법: 마감 시점 응모 ID를 오름차순으로 줄바꿈(\\n)으로 이어 붙인 SHA-256이 위 스냅샷 값과 같은지 확인하고, 같은 시드로 위 방식을 다시 실행하면 같은 당첨자가 같은 순서로 나옵니다.",
            "To verify: the SHA-256 of the eligible entry ids, sorted ascending and joined with \\n, equals the snapshot hash above, and re-running the named procedure with the seed over them yields the same winners in the same order.",
        )}
        "</p>\n"
    );
    footer(&mut out, lang);
    out.into_markup()
}

/// One draw's audit as a list of facts.
fn draw_record(out: &mut Html, audit: &DrawAudit, lang: Lang) {
    let seed = if audit.seed.is_empty() { "—".to_owned() } else { kem_kit::hex::encode(&audit.seed) };
    let drawn_at = seoul_time(audit.draw_time.as_ref(), lang).unwrap_or_else(|| "—".to_owned());
    html!(out;
        "<dl class=\"facts audit\">"
        "<dt>" {lang.pick("추첨 시각", "Drawn at")} "</dt><dd>" {drawn_at} "</dd>"
        "<dt>" {lang.pick("방식", "Procedure")} "</dt><dd>" {audit.algorithm} " v" {audit.algorithm_version} "</dd>"
        "<dt>" {lang.pick("시드", "Seed")} "</dt><dd>" {seed} "</dd>"
        "<dt>" {lang.pick("응모 스냅샷 SHA-256", "Entry snapshot SHA-256")} "</dt><dd>" {audit.entry_snapshot_sha256} "</dd>"
        "<dt>" {lang.pick("응모 수", "Entries")} "</dt><dd>" {audit.entry_count} "</dd>"
        "<dt>" {lang.pick("당첨 수", "Winners")} "</dt><dd>" {audit.winner_count} "</dd>"
    );
    if !audit.redraw_of.is_empty() {
        html!(out; "<dt>" {lang.pick("재추첨 (이전 추첨)", "Redraw of")} "</dt><dd>" {audit.redraw_of} "</dd>");
    }
    html!(out; "</dl>\n");
}

/// A winner's claim state in words.
pub(super) fn claim_state_label(state: i32, lang: Lang) -> &'static str {
    match ClaimState::try_from(state) {
        Ok(ClaimState::Claimed) => lang.pick("수령 확인", "Claimed"),
        Ok(ClaimState::Expired) => lang.pick("기한 지남", "Deadline passed"),
        Ok(ClaimState::Redrawn) => lang.pick("재추첨됨", "Redrawn"),
        Ok(ClaimState::Unclaimed) => lang.pick("확인 대기", "Not claimed yet"),
        Ok(ClaimState::Unspecified) | Err(_) => "—",
    }
}

/// The kinds of error page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorPage {
    /// 400: a garbled address.
    BadRequest,
    /// 403: a post from another site.
    CrossOrigin,
    /// 404: no such (public) event or page.
    NotFound,
    /// 405: a method the page does not take.
    MethodNotAllowed,
    /// 413: a body over the limit.
    TooLarge,
    /// 415: not a form post.
    UnsupportedType,
    /// 429: too many requests.
    TooMany,
    /// 500: a defect.
    Internal,
    /// 503: a service is unavailable.
    Unavailable,
}

impl ErrorPage {
    /// The HTTP status.
    pub fn status(self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            ErrorPage::BadRequest => S::BAD_REQUEST,
            ErrorPage::CrossOrigin => S::FORBIDDEN,
            ErrorPage::NotFound => S::NOT_FOUND,
            ErrorPage::MethodNotAllowed => S::METHOD_NOT_ALLOWED,
            ErrorPage::TooLarge => S::PAYLOAD_TOO_LARGE,
            ErrorPage::UnsupportedType => S::UNSUPPORTED_MEDIA_TYPE,
            ErrorPage::TooMany => S::TOO_MANY_REQUESTS,
            ErrorPage::Internal => S::INTERNAL_SERVER_ERROR,
            ErrorPage::Unavailable => S::SERVICE_UNAVAILABLE,
        }
    }

    fn texts(self, lang: Lang) -> (&'static str, &'static str) {
        match self {
            ErrorPage::BadRequest => (
                lang.pick("잘못된 주소입니다", "This address is not valid"),
                lang.pick("이벤트 주소를 다시 확인해 주세요.", "Please check the event's address."),
            ),
            ErrorPage::CrossOrigin => (
                lang.pick("요청을 받을 수 없습니다", "Request refused"),
                lang.pick(
                    "다른 사이트에서 보낸 응모는 받을 수 없습니다. 이벤트 페이지에서 직접 응모해 주세요.",
                    "Entries sent from another site are not accepted. Please enter on the event page itself.",
                ),
            ),
            ErrorPage::NotFound => (
                lang.pick("이벤트를 찾을 수 없습니다", "Event not found"),
                lang.pick(
                    "주소가 바뀌었거나 없는 이벤트입니다. 받은 링크를 다시 확인해 주세요.",
                    "The event does not exist or the link is wrong. Please check the link you received.",
                ),
            ),
            ErrorPage::MethodNotAllowed => (
                lang.pick("허용되지 않는 요청입니다", "Not allowed"),
                lang.pick(
                    "이 페이지는 이런 방식의 요청을 받지 않습니다.",
                    "This page does not accept this kind of request.",
                ),
            ),
            ErrorPage::TooLarge => (
                lang.pick("입력 내용이 너무 깁니다", "Too much data"),
                lang.pick("입력한 내용을 줄여서 다시 시도해 주세요.", "Please shorten what you typed and try again."),
            ),
            ErrorPage::UnsupportedType => (
                lang.pick("지원하지 않는 형식입니다", "Unsupported format"),
                lang.pick(
                    "이벤트 페이지의 응모 양식으로 응모해 주세요.",
                    "Please use the entry form on the event page.",
                ),
            ),
            ErrorPage::TooMany => (
                lang.pick("요청이 너무 많습니다", "Too many requests"),
                lang.pick("잠시 후 다시 시도해 주세요.", "Please wait a moment and try again."),
            ),
            ErrorPage::Internal => (
                lang.pick("문제가 생겼습니다", "Something went wrong"),
                lang.pick(
                    "잠시 후 다시 시도해 주세요. 문제가 계속되면 아래 요청 번호를 알려 주세요.",
                    "Please try again later. If it keeps happening, quote the request id below.",
                ),
            ),
            ErrorPage::Unavailable => (
                lang.pick("잠시 후 다시 시도해 주세요", "Please try again in a moment"),
                lang.pick(
                    "서비스가 잠시 응답하지 않습니다. 같은 응모를 다시 보내도 중복으로 접수되지 않습니다.",
                    "The service is briefly unavailable. Sending the same entry again will not enter you twice.",
                ),
            ),
        }
    }

    /// The page's title and body.
    pub fn render(self, lang: Lang, request_id: &str) -> (&'static str, Markup) {
        let (title, detail) = self.texts(lang);
        let mut out = Html::new();
        html!(&mut out;
            "<div class=\"message alert\" role=\"alert\"><h1>" {title} "</h1><p>" {detail} "</p></div>\n"
            "<p class=\"hint\">" {lang.pick("요청 번호: ", "Request id: ")} "<span class=\"mono\">" {request_id} "</span></p>\n"
        );
        footer(&mut out, lang);
        (title, out.into_markup())
    }
}
