//! The entry form as it travels: the urlencoded body read into [`EntryForm`], the same-origin
//! rule for posts (there is no session, so no form token: a cross-site page must simply not be
//! able to post), and the errors shown next to each field.

use http::HeaderMap;
use kem_kit::channel::Channel;
use kem_kit::validate::{Text, check_text};

use super::lang::Lang;

/// The form's field names (the honeypot is named like a real field: bots fill in an email).
pub mod field {
    /// Participant's name.
    pub const NAME: &str = "name";
    /// Mobile number.
    pub const PHONE: &str = "phone";
    /// Required privacy consent checkbox.
    pub const PRIVACY: &str = "privacy";
    /// Optional marketing consent checkbox.
    pub const MARKETING: &str = "marketing";
    /// "I am 14 or older" checkbox.
    pub const AGE: &str = "age14";
    /// The honeypot: visually hidden, never filled by a person.
    pub const HONEYPOT: &str = "email";
    /// The terms version the page showed.
    pub const TERMS_VERSION: &str = "terms_version";
    /// The attribution channel (`?ch=`).
    pub const CHANNEL: &str = "ch";
    /// The per-render request id: a double submit replays the same entry.
    pub const REQUEST_ID: &str = "rid";
    /// Which submit button was pressed (`send_code`, `enter`, `receipt`, `phone`, `withdraw`, ...).
    pub const ACTION: &str = "action";
    /// A one-time code from an SMS (phone verification, entry lookup).
    pub const CODE: &str = "code";
    /// A winner's claim code.
    pub const CLAIM_CODE: &str = "claim_code";
    /// An entry's receipt code.
    pub const RECEIPT: &str = "receipt";
}

/// Longest name the participation service accepts (characters).
pub const NAME_MAX_CHARS: usize = 50;
/// Longest phone input worth sending ("+82 10-1234-5678" with spaces is 16).
pub const PHONE_MAX_CHARS: usize = 20;

/// Longest one-time code input worth sending (6 digits, with spaces typed in between).
pub const CODE_MAX_CHARS: usize = 12;
/// Longest claim code input worth sending (8 characters, with hyphens or spaces).
pub const CLAIM_CODE_MAX_CHARS: usize = 16;
/// Longest receipt code input worth sending ("XXXXX-XXXXX", with spaces).
pub const RECEIPT_MAX_CHARS: usize = 16;

/// Which button submitted the entry form.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EntryAction {
    /// Enter (the main button, and pressing Enter in a field).
    #[default]
    Enter,
    /// Send a one-time code to the phone first (events that verify phones).
    SendCode,
}

/// What a participant submitted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryForm {
    /// Name as typed (trimmed).
    pub name: String,
    /// Phone as typed (trimmed).
    pub phone: String,
    /// Privacy consent ticked.
    pub privacy: bool,
    /// Marketing consent ticked.
    pub marketing: bool,
    /// Age confirmation ticked.
    pub age: bool,
    /// Whether the honeypot was filled.
    pub honeypot: bool,
    /// The terms version the participant was shown.
    pub terms_version: String,
    /// The attribution channel, if a known one.
    pub channel: Option<Channel>,
    /// The render's request id, if well-formed.
    pub request_id: Option<String>,
    /// The one-time code from the verification SMS.
    pub verification_code: String,
    /// Which button was pressed.
    pub action: EntryAction,
}

impl EntryForm {
    /// Reads an `application/x-www-form-urlencoded` body. The first occurrence of a field counts;
    /// unknown fields are ignored.
    pub fn parse(body: &[u8]) -> EntryForm {
        let mut form = EntryForm::default();
        let mut seen = std::collections::HashSet::new();
        for (key, value) in form_urlencoded::parse(body) {
            if !seen.insert(key.clone()) {
                continue;
            }
            let value = value.trim();
            match key.as_ref() {
                field::NAME => form.name = value.to_owned(),
                field::PHONE => form.phone = value.to_owned(),
                field::PRIVACY => form.privacy = !value.is_empty(),
                field::MARKETING => form.marketing = !value.is_empty(),
                field::AGE => form.age = !value.is_empty(),
                field::HONEYPOT => form.honeypot = !value.is_empty(),
                field::TERMS_VERSION => form.terms_version = value.to_owned(),
                field::CHANNEL => form.channel = channel_param(value),
                field::REQUEST_ID => form.request_id = Some(value.to_owned()).filter(|v| is_request_id(v)),
                field::CODE => form.verification_code = value.to_owned(),
                field::ACTION if value == "send_code" => form.action = EntryAction::SendCode,
                _ => {}
            }
        }
        form
    }

    /// The checks before sending a verification code: the phone alone.
    pub fn check_phone(&self) -> FieldErrors {
        FieldErrors { phone: phone_problem(&self.phone), ..FieldErrors::default() }
    }

    /// The code check of an event that verifies phones: present and plausible.
    pub fn check_code(&self, errors: &mut FieldErrors) {
        errors.code = code_problem(&self.verification_code);
    }

    /// The checks the edge makes itself before calling Enter (the service checks everything
    /// again): required fields present, single-line, within their lengths.
    pub fn check(&self) -> FieldErrors {
        let mut errors = FieldErrors::default();
        if self.name.is_empty() || check_text(&self.name, Text::line(NAME_MAX_CHARS)).is_err() {
            errors.name = Some(Problem::Name);
        }
        errors.phone = phone_problem(&self.phone);
        if !self.privacy {
            errors.privacy = Some(Problem::PrivacyRequired);
        }
        if !self.age {
            errors.age = Some(Problem::AgeRequired);
        }
        errors
    }
}

/// The problem with a typed phone, if any: missing, over-long, or holding control characters.
pub fn phone_problem(phone: &str) -> Option<Problem> {
    (phone.is_empty() || check_text(phone, Text::line(PHONE_MAX_CHARS)).is_err()).then_some(Problem::Phone)
}

/// The problem with a typed one-time code, if any.
pub fn code_problem(code: &str) -> Option<Problem> {
    if code.is_empty() {
        return Some(Problem::CodeRequired);
    }
    let plausible = check_text(code, Text::line(CODE_MAX_CHARS)).is_ok()
        && code.chars().all(|c| c.is_ascii_digit() || c == ' ' || c == '-');
    (!plausible).then_some(Problem::CodeWrong)
}

/// The first value of every field of an urlencoded body, trimmed (the claim and "my entry" forms).
#[derive(Debug, Clone, Default)]
pub struct Fields(std::collections::HashMap<String, String>);

impl Fields {
    /// Reads an `application/x-www-form-urlencoded` body; the first occurrence of a field counts.
    pub fn parse(body: &[u8]) -> Fields {
        let mut fields = std::collections::HashMap::new();
        for (key, value) in form_urlencoded::parse(body) {
            fields.entry(key.into_owned()).or_insert_with(|| value.trim().to_owned());
        }
        Fields(fields)
    }

    /// The value of `name` ("" when absent).
    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", String::as_str)
    }

    /// Whether the honeypot was filled.
    pub fn honeypot(&self) -> bool {
        !self.get(field::HONEYPOT).is_empty()
    }

    /// The render's request id, if well-formed.
    pub fn request_id(&self) -> Option<String> {
        Some(self.get(field::REQUEST_ID)).filter(|v| is_request_id(v)).map(str::to_owned)
    }
}

/// Whether `value` may be used as a request id: 1–128 visible ASCII characters (the rule the edge
/// applies to `X-Request-Id`).
pub fn is_request_id(value: &str) -> bool {
    !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic())
}

/// A `?ch=` value: a channel of the kit vocabulary, by its lower-case slug (`instagram`, what
/// channel links carry) or its stable name (`INSTAGRAM`); anything else is no channel.
pub fn channel_param(value: &str) -> Option<Channel> {
    Channel::ALL.into_iter().find(|c| c.slug().eq_ignore_ascii_case(value))
}

/// The `ch` query parameter of `query`, if it names a channel.
pub fn channel_in_query(query: Option<&str>) -> Option<Channel> {
    let query = query?;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == field::CHANNEL).and_then(|(_, v)| channel_param(&v))
}

/// A problem with one field, shown next to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// Name missing or unusable.
    Name,
    /// Phone missing or not a Korean mobile number.
    Phone,
    /// Privacy consent not given.
    PrivacyRequired,
    /// The terms changed since the page was rendered.
    TermsOutdated,
    /// Marketing consent unusable.
    Marketing,
    /// Age not confirmed.
    AgeRequired,
    /// No one-time code typed (or the service asks for one).
    CodeRequired,
    /// The one-time code is malformed, wrong or expired.
    CodeWrong,
    /// The claim code is missing or not 8 characters of the code alphabet.
    ClaimCode,
    /// The receipt code is missing or malformed.
    Receipt,
}

impl Problem {
    /// The message shown next to the field.
    pub fn message(self, lang: Lang) -> &'static str {
        match self {
            Problem::Name => lang.pick("이름을 50자 이내로 입력해 주세요.", "Enter your name (up to 50 characters)."),
            Problem::Phone => lang.pick(
                "휴대전화 번호를 확인해 주세요. 예: 010-1234-5678",
                "Check your mobile number, e.g. 010-1234-5678.",
            ),
            Problem::PrivacyRequired => lang.pick(
                "개인정보 수집·이용에 동의해야 응모할 수 있습니다.",
                "You can enter only if you agree to the collection and use of your personal data.",
            ),
            Problem::TermsOutdated => lang.pick(
                "안내 내용이 바뀌었습니다. 바뀐 내용을 읽고 다시 동의해 주세요.",
                "The notice has changed. Please read the new notice and agree again.",
            ),
            Problem::Marketing => {
                lang.pick("마케팅 정보 수신 동의를 다시 선택해 주세요.", "Please choose the marketing consent again.")
            }
            Problem::AgeRequired => lang.pick(
                "만 14세 이상만 응모할 수 있습니다. 만 14세 미만은 보호자 동의가 필요합니다.",
                "You must be 14 or older to enter; under 14, a guardian's consent is needed.",
            ),
            Problem::CodeRequired => lang.pick(
                "문자로 받은 인증번호 6자리를 입력해 주세요. 아직 받지 않았다면 '인증번호 받기'를 눌러 주세요.",
                "Enter the 6-digit code from the text message. No code yet? Press \"Send me a code\".",
            ),
            Problem::CodeWrong => lang.pick(
                "인증번호가 맞지 않거나 만료되었습니다. 다시 확인하거나 새 인증번호를 받아 주세요.",
                "The code is wrong or has expired. Check it, or ask for a new code.",
            ),
            Problem::ClaimCode => lang.pick(
                "당첨 문자에 있는 당첨 코드 8자리를 입력해 주세요.",
                "Enter the 8-character claim code from your winner's text message.",
            ),
            Problem::Receipt => {
                lang.pick("접수 번호를 확인해 주세요. 예: AB2CD-3EF4G", "Check your receipt code, e.g. AB2CD-3EF4G.")
            }
        }
    }
}

/// The errors of one submission, by field; `general` holds what belongs to no field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors {
    /// Name.
    pub name: Option<Problem>,
    /// Phone.
    pub phone: Option<Problem>,
    /// Privacy consent.
    pub privacy: Option<Problem>,
    /// Marketing consent.
    pub marketing: Option<Problem>,
    /// Age confirmation.
    pub age: Option<Problem>,
    /// One-time code.
    pub code: Option<Problem>,
    /// Claim code.
    pub claim_code: Option<Problem>,
    /// Receipt code.
    pub receipt: Option<Problem>,
    /// Problems with no field of their own (e.g. a channel the event was not published to).
    pub general: bool,
}

impl FieldErrors {
    /// Whether nothing is wrong.
    pub fn is_empty(&self) -> bool {
        *self == FieldErrors::default()
    }

    /// Places a `google.rpc.BadRequest` field violation (participation's camelCase paths).
    pub fn add_violation(&mut self, field: &str) {
        let field = field.trim();
        let head = field.split('.').next().unwrap_or(field);
        match head {
            "name" => self.name = Some(Problem::Name),
            "phone" => self.phone = Some(Problem::Phone),
            "privacyConsent" | "privacy_consent" => {
                if field.ends_with("consentTextVersion") || field.ends_with("consent_text_version") {
                    self.privacy = Some(Problem::TermsOutdated);
                } else {
                    self.privacy.get_or_insert(Problem::PrivacyRequired);
                }
            }
            "marketingConsent" | "marketing_consent" => self.marketing = Some(Problem::Marketing),
            f if f.starts_with("age") => self.age = Some(Problem::AgeRequired),
            "verificationCode" | "verification_code" | "code" => self.code = Some(Problem::CodeWrong),
            "claimCode" | "claim_code" => self.claim_code = Some(Problem::ClaimCode),
            "receiptCode" | "receipt_code" => self.receipt = Some(Problem::Receipt),
            _ => self.general = true,
        }
    }
}

/// Where a post came from, by `Sec-Fetch-Site`, `Origin`, then `Referer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The browser says so (`Sec-Fetch-Site: same-origin`), or the origin matches the `Host`.
    SameOrigin,
    /// No header says where the post came from (a non-browser client, an old browser): allowed,
    /// there is no ambient authority to abuse.
    Unknown,
    /// An origin (`scheme://authority`) that is not the request's host; still allowed when it
    /// is the event's public base (a proxy that rewrites `Host`).
    Other(String),
    /// Certainly another site (`Sec-Fetch-Site: cross-site`, `Origin: null`, a garbled origin).
    CrossSite,
}

/// Where the post with `headers` came from.
pub fn source(headers: &HeaderMap, uri: &http::Uri) -> Source {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(site) = header("sec-fetch-site") {
        match site {
            "same-origin" => return Source::SameOrigin,
            "cross-site" => return Source::CrossSite,
            // `same-site` (a sibling subdomain) and `none` (typed into the address bar) fall
            // through to the origin check.
            _ => {}
        }
    }
    let origin = match (header("origin"), header("referer")) {
        (Some(origin), _) => match origin_of(origin) {
            Some(origin) => origin,
            None => return Source::CrossSite,
        },
        (None, Some(referer)) => match origin_of(referer) {
            Some(origin) => origin,
            None => return Source::CrossSite,
        },
        (None, None) => return Source::Unknown,
    };
    let host = header("host").or_else(|| uri.authority().map(http::uri::Authority::as_str));
    let authority = origin.split_once("://").map_or("", |(_, authority)| authority);
    match host {
        Some(host) if host.eq_ignore_ascii_case(authority) => Source::SameOrigin,
        _ => Source::Other(origin),
    }
}

/// `scheme://authority` (lower-case) of an absolute http(s) URL or origin; `None` for `null`,
/// other schemes, user info and anything unparsable.
pub fn origin_of(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = uri.authority()?.as_str();
    if authority.contains('@') || authority.is_empty() {
        return None;
    }
    let safe = authority.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    safe.then(|| format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_is_read_first_value_wins_and_junk_is_ignored() {
        let body =
            b"name=%ED%99%8D%EA%B8%B8%EB%8F%99&phone=+010-1234-5678+&privacy=yes&age14=yes&terms_version=terms-abc\
                     &ch=instagram&rid=abc123&name=second&unknown=1&email=";
        let form = EntryForm::parse(body);
        assert_eq!(form.name, "홍길동");
        assert_eq!(form.phone, "010-1234-5678");
        assert!(form.privacy && form.age && !form.marketing && !form.honeypot);
        assert_eq!(form.channel, Some(Channel::Instagram));
        assert_eq!(form.request_id.as_deref(), Some("abc123"));
        assert!(form.check().is_empty());

        let hostile = EntryForm::parse(b"ch=tiktok&rid=%00bad&email=bot%40example.com&name=ev%00il");
        assert_eq!(hostile.channel, None);
        assert_eq!(hostile.request_id, None);
        assert!(hostile.honeypot);
        let errors = hostile.check();
        assert_eq!(
            (errors.name, errors.phone, errors.privacy, errors.age),
            (Some(Problem::Name), Some(Problem::Phone), Some(Problem::PrivacyRequired), Some(Problem::AgeRequired))
        );
        let _ = EntryForm::parse(&[0xFF, b'=', 0xFE, b'&', b'%', b'Z']);

        let send = EntryForm::parse(b"phone=010-1234-5678&action=send_code&code=+123456+");
        assert_eq!((send.action, send.verification_code.as_str()), (EntryAction::SendCode, "123456"));
        assert!(send.check_phone().is_empty());
        assert_eq!(EntryForm::parse(b"action=other").action, EntryAction::Enter, "anything else enters");
    }

    #[test]
    fn codes_are_checked_for_shape_before_any_call() {
        assert_eq!(code_problem(""), Some(Problem::CodeRequired));
        assert_eq!(code_problem("123 456"), None);
        for bad in ["12345a", "1\u{0}3456", "1234567890123", "١٢٣٤٥٦", "<b>"] {
            assert_eq!(code_problem(bad), Some(Problem::CodeWrong), "{bad:?}");
        }
        let fields = Fields::parse(b"receipt=+AB2CD-3EF4G+&receipt=second&email=x&rid=%00");
        assert_eq!(fields.get("receipt"), "AB2CD-3EF4G");
        assert_eq!(fields.get("missing"), "");
        assert!(fields.honeypot());
        assert_eq!(fields.request_id(), None);
    }

    #[test]
    fn channels_come_from_the_kit_vocabulary() {
        assert_eq!(channel_param("instagram"), Some(Channel::Instagram));
        assert_eq!(channel_param("KAKAO_CHANNEL"), Some(Channel::KakaoChannel));
        assert_eq!(channel_param("<script>"), None);
        assert_eq!(channel_param(""), None);
        assert_eq!(channel_in_query(Some("x=1&ch=naver_blog")), Some(Channel::NaverBlog));
        assert_eq!(channel_in_query(Some("ch=unknown")), None);
        assert_eq!(channel_in_query(None), None);
    }

    #[test]
    fn violations_land_next_to_their_fields() {
        let mut errors = FieldErrors::default();
        for field in ["name", "phone", "privacyConsent.granted", "ageConfirmation", "sourceChannel"] {
            errors.add_violation(field);
        }
        assert_eq!(errors.privacy, Some(Problem::PrivacyRequired));
        assert_eq!(errors.age, Some(Problem::AgeRequired));
        assert!(errors.general && errors.name.is_some() && errors.phone.is_some());
        let mut outdated = FieldErrors::default();
        outdated.add_violation("privacyConsent.consentTextVersion");
        assert_eq!(outdated.privacy, Some(Problem::TermsOutdated));
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("value"));
        }
        map
    }

    #[test]
    fn posts_must_come_from_this_origin_when_the_browser_says_where_from() {
        let uri: http::Uri = "/e/x".parse().expect("uri");
        let host = ("host", "kem.example");
        assert_eq!(source(&headers(&[host, ("origin", "https://kem.example")]), &uri), Source::SameOrigin);
        assert_eq!(
            source(&headers(&[host, ("referer", "https://KEM.example/e/x?ch=instagram")]), &uri),
            Source::SameOrigin
        );
        assert_eq!(source(&headers(&[host]), &uri), Source::Unknown);
        assert_eq!(
            source(&headers(&[host, ("origin", "https://evil.example")]), &uri),
            Source::Other("https://evil.example".into())
        );
        assert_eq!(source(&headers(&[host, ("origin", "null")]), &uri), Source::CrossSite);
        assert_eq!(
            source(&headers(&[host, ("sec-fetch-site", "cross-site"), ("origin", "https://kem.example")]), &uri),
            Source::CrossSite
        );
        assert_eq!(source(&headers(&[host, ("sec-fetch-site", "same-origin")]), &uri), Source::SameOrigin);
        assert_eq!(source(&headers(&[host, ("origin", "https://kem.example@evil.example")]), &uri), Source::CrossSite);
        assert_eq!(origin_of("javascript:alert(1)"), None);
        assert_eq!(
            origin_of("https://img.kem.example:8443/api/v1/public/images/1").as_deref(),
            Some("https://img.kem.example:8443")
        );
    }
}
