//! The participant pages (`/e/...`) through a real edge, in front of scripted event and
//! participation services over mesh mTLS: languages, escaping, security headers, error pages,
//! the form's outcomes, the honeypot, same-origin posts, body limits, QR codes, page weight, and
//! a participant unaffected by hostile posts running beside them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kem_gateway::auth::{JwtAuthenticator, StaticKeys};
use kem_gateway::edge::{Edge, EdgeConfig};
use kem_gateway::idempotency::IdempotencyStore;
use kem_gateway::protect::{EdgeLimiter, EdgeLimits, TrustedProxies};
use kem_gateway::routes::RouteTable;
use kem_gateway::upstream::{Upstreams, upstream};
use kem_kit::cache::MemoryCache;
use kem_kit::jwt::{Issuer, SigningKey};
use kem_mesh::authz::Policy;
use kem_mesh::client::MeshChannel;
use kem_mesh::testing::{NAMESPACE, TRUST_DOMAIN, TestCa};
use kem_mesh::{RoleServer, Shutdown, Transport};
use kem_proto::kem::common::v1::{Channel, ParticipationMethod, Period, Prize};
use kem_proto::kem::event::v1::event_service_server::{EventService, EventServiceServer};
use kem_proto::kem::event::v1::{
    ChannelLink, EntryRules, GetPublicEventRequest, GetPublicEventResponse, PublicEvent, PublicEventState, Terms,
};
use kem_proto::kem::participation::v1::participation_service_server::{
    ParticipationService, ParticipationServiceServer,
};
use kem_proto::kem::participation::v1::{
    ClaimPrizeRequest, ClaimPrizeResponse, ClaimState, CodePurpose, DrawAudit, EnterRequest, EnterResponse, Entry,
    EntryStanding, ExportParticipantsRequest, ExportParticipantsResponse, GetPublicWinnersRequest,
    GetPublicWinnersResponse, LookupEntryRequest, LookupEntryResponse, PublicWinner, SendParticipantCodeRequest,
    SendParticipantCodeResponse, WithdrawEntryRequest, WithdrawEntryResponse,
};
use parking_lot::Mutex;
use tonic::{Code, Request, Response, Status};

use crate::support::{AUDIENCE, ISSUER, client};

pub(crate) const OPEN: &str = "0b6f3a52-7c1e-4d8e-9a4f-000000000001";
pub(crate) const HOSTILE: &str = "0b6f3a52-7c1e-4d8e-9a4f-000000000002";
pub(crate) const CLOSED: &str = "0b6f3a52-7c1e-4d8e-9a4f-000000000003";
pub(crate) const DRAWN: &str = "0b6f3a52-7c1e-4d8e-9a4f-000000000004";
pub(crate) const UPCOMING: &str = "0b6f3a52-7c1e-4d8e-9a4f-000000000005";
pub(crate) const UNAVAILABLE: &str = "0b6f3a52-7c1e-4d8e-9a4f-000000000006";
/// An open event whose entry rules verify phones with a one-time code.
pub(crate) const VERIFIED: &str = "0b6f3a52-7c1e-4d8e-9a4f-000000000007";
/// A second open event (its own entry budget per address).
pub(crate) const OTHER: &str = "0b6f3a52-7c1e-4d8e-9a4f-000000000008";
pub(crate) const UNKNOWN: &str = "0b6f3a52-7c1e-4d8e-9a4f-0000000000ff";

pub(crate) const TERMS_VERSION: &str = "terms-0123456789abcdef";
pub(crate) const IMAGE_ORIGIN: &str = "https://img.kem.example";
pub(crate) const PUBLIC_BASE: &str = "https://kem.example";
/// 2026-12-01T00:00:00Z (09:00 in Seoul) and 2026-12-07T09:00:00Z (18:00 in Seoul, a Monday).
const START: i64 = 1_796_083_200;
pub(crate) const END: i64 = 1_796_634_000;
/// The draw of DRAWN: ten minutes after the end (18:10 in Seoul); claims close 7 days later.
pub(crate) const DRAW_TIME: i64 = END + 600;

/// DRAWN's winners in the scripted service: (phone digits, claim code).
pub(crate) const WINNER: (&str, &str) = ("01012345678", "AB23CD45");
pub(crate) const EXPIRED_WINNER: (&str, &str) = ("01022220000", "EXP23CD4");
pub(crate) const REDRAWN_WINNER: (&str, &str) = ("01033330000", "RED23CD4");
/// The one-time code the scripted service "sends".
pub(crate) const CODE: &str = "123456";
/// A code that has used up its attempts.
pub(crate) const EXHAUSTED_CODE: &str = "999999";
/// Receipts with a fixed standing in the scripted service.
pub(crate) const WON_RECEIPT: &str = "WONWN-23456";
pub(crate) const LOST_RECEIPT: &str = "NOTWN-23456";

fn public_event(id: &str, title: &str, state: PublicEventState) -> PublicEvent {
    PublicEvent {
        event_id: id.to_owned(),
        title: title.to_owned(),
        description: "평일 점심 11:30-13:30\n매장 방문 고객 대상".to_owned(),
        copy: "점심 한 끼에 커피 한 잔".to_owned(),
        prize: Some(Prize { name: "아메리카노 1잔".into(), winner_count: 10, ..Default::default() }),
        period: Some(Period {
            start_time: Some(prost_types::Timestamp { seconds: START, nanos: 0 }),
            end_time: Some(prost_types::Timestamp { seconds: END, nanos: 0 }),
        }),
        participation_method: ParticipationMethod::Draw as i32,
        state: state as i32,
        image_url: format!("{IMAGE_ORIGIN}/api/v1/public/images/img-1"),
        terms: Some(Terms {
            version: TERMS_VERSION.to_owned(),
            controller: "동네 카페".to_owned(),
            items: vec!["이름".into(), "휴대전화번호".into()],
            purpose: "이벤트 응모 확인과 경품 안내".into(),
            retention_days: 30,
            text: "동네 카페는 이벤트 응모를 위해 아래 개인정보를 수집·이용합니다.\n수집 항목: 이름, 휴대전화번호\n\
                   보유 기간: 추첨 후 30일\n동의를 거부할 권리가 있으며, 거부하면 응모할 수 없습니다."
                .into(),
            text_en: "동네 카페 collects your name and mobile number to run this event.\nKept for 30 days after the \
                      draw.\nYou may refuse; if you do, you cannot enter."
                .into(),
            ..Default::default()
        }),
        store_name: "동네 카페".to_owned(),
        entry_url: format!("{PUBLIC_BASE}/e/{id}"),
        channel_links: vec![ChannelLink {
            channel: Channel::Instagram as i32,
            url: format!("{PUBLIC_BASE}/e/{id}?ch=instagram"),
        }],
        auto_draw: false,
        entry_rules: None,
        claim_days: 7,
    }
}

fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// What the scripted participation service saw.
#[derive(Default)]
pub(crate) struct Seen {
    pub(crate) enters: AtomicU32,
    /// (x-request-id, client ip, request) of every Enter.
    pub(crate) requests: Mutex<Vec<(String, String, EnterRequest)>>,
    /// phone → (request id that stored it, receipt code).
    pub(crate) entries: Mutex<HashMap<(String, String), (String, String)>>,
    /// Codes asked for: (event, phone digits, purpose).
    pub(crate) code_requests: Mutex<Vec<(String, String, i32)>>,
    /// SMS actually sent: (event, phone digits) → when (a LOOKUP code goes only to a phone that
    /// entered).
    pub(crate) sms: Mutex<HashMap<(String, String), i64>>,
    /// (x-request-id, client ip, request) of every ClaimPrize.
    pub(crate) claims: Mutex<Vec<(String, String, ClaimPrizeRequest)>>,
    /// Wrong claim codes per phone (5 allowed, as the contract says).
    pub(crate) wrong_claims: Mutex<HashMap<String, u32>>,
    pub(crate) lookups: AtomicU32,
    /// (x-request-id, request) of every WithdrawEntry.
    pub(crate) withdrawals: Mutex<Vec<(String, WithdrawEntryRequest)>>,
}

struct Events;

#[tonic::async_trait]
impl EventService for Events {
    async fn get_public_event(
        &self,
        request: Request<GetPublicEventRequest>,
    ) -> Result<Response<GetPublicEventResponse>, Status> {
        let id = request.into_inner().event_id;
        let event = match id.as_str() {
            OPEN => public_event(OPEN, "평일 점심 이벤트", PublicEventState::Open),
            HOSTILE => {
                let mut event = public_event(HOSTILE, "<script>alert(\"x\")</script>", PublicEventState::Open);
                event.description = "<img src=x onerror=alert(1)>".into();
                event.store_name = "\"><b>bold</b>".into();
                event.copy = "'; DROP TABLE entries; --".into();
                event.image_url = "javascript:alert(1)".into();
                event
            }
            CLOSED => public_event(CLOSED, "지난 이벤트", PublicEventState::Closed),
            VERIFIED => {
                let mut event = public_event(VERIFIED, "인증 이벤트", PublicEventState::Open);
                event.entry_rules = Some(EntryRules { verify_phone: true, max_entries_per_address: 0 });
                event
            }
            OTHER => public_event(OTHER, "다른 가게 이벤트", PublicEventState::Open),
            DRAWN => public_event(DRAWN, "추첨 끝난 이벤트", PublicEventState::Drawn),
            UPCOMING => public_event(UPCOMING, "곧 열릴 이벤트", PublicEventState::Upcoming),
            UNAVAILABLE => {
                let details = vec![kem_kit::status::retry_info(Duration::from_secs(7))];
                return Err(kem_proto::status::with_details(Code::Unavailable, "scripted outage", details));
            }
            _ => return Err(Status::not_found("no such public event")),
        };
        Ok(Response::new(GetPublicEventResponse { event: Some(event) }))
    }
}

struct Participation(Arc<Seen>);

fn metadata<T>(request: &Request<T>, name: &str) -> String {
    request.metadata().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

fn exhausted(reason: &str, retry: Duration) -> Status {
    let info = kem_kit::status::error_info("kem.participation", reason, &[]);
    kem_proto::status::with_details(Code::ResourceExhausted, reason, vec![info, kem_kit::status::retry_info(retry)])
}

fn at(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

impl Participation {
    /// Whether `code` is the code sent to `phone` for `event` (a code is sent only once an SMS went).
    fn code_matches(&self, event: &str, phone: &str, code: &str) -> bool {
        code == CODE && self.0.sms.lock().contains_key(&(event.to_owned(), digits(phone)))
    }

    /// The entry of `phone` in `event`, if it entered.
    fn entered(&self, event: &str, phone: &str) -> Option<String> {
        self.0.entries.lock().get(&(event.to_owned(), phone.replace('-', ""))).map(|(_, receipt)| receipt.clone())
    }
}

fn refusal(code: Code, reason: &str) -> Status {
    let info = kem_kit::status::error_info("kem.participation", reason, &[]);
    kem_proto::status::with_details(code, reason, vec![info])
}

fn invalid(reason: &str, fields: &[&str]) -> Status {
    let info = kem_kit::status::error_info("kem.participation", reason, &[]);
    let request = kem_kit::status::bad_request(fields.iter().map(|f| ((*f).to_owned(), "invalid".to_owned())));
    kem_proto::status::with_details(Code::InvalidArgument, "invalid request", vec![info, request])
}

#[tonic::async_trait]
impl ParticipationService for Participation {
    async fn enter(&self, request: Request<EnterRequest>) -> Result<Response<EnterResponse>, Status> {
        self.0.enters.fetch_add(1, Ordering::SeqCst);
        let metadata =
            |name: &str| request.metadata().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let (rid, ip) = (metadata("x-request-id"), metadata(kem_kit::runtime::CLIENT_IP_METADATA));
        let entry = request.into_inner();
        self.0.requests.lock().push((rid.clone(), ip, entry.clone()));
        if entry.event_id == CLOSED || entry.event_id == DRAWN {
            return Err(refusal(Code::FailedPrecondition, "EVENT_NOT_OPEN"));
        }
        if entry.privacy_consent.as_ref().map(|c| c.consent_text_version.as_str()) != Some(TERMS_VERSION) {
            return Err(invalid("TERMS_OUTDATED", &["privacyConsent.consentTextVersion"]));
        }
        if !entry.phone.starts_with("010") {
            return Err(invalid("INVALID_ARGUMENT", &["phone"]));
        }
        if entry.event_id == VERIFIED {
            if entry.verification_code.is_empty() {
                return Err(invalid("VERIFICATION_REQUIRED", &["verificationCode"]));
            }
            if !self.code_matches(&entry.event_id, &entry.phone, &entry.verification_code) {
                return Err(invalid("VERIFICATION_FAILED", &["verificationCode"]));
            }
        }
        // The contract's replay: the same request id and phone answer with the stored entry.
        let key = (entry.event_id.clone(), entry.phone.replace('-', ""));
        let mut entries = self.0.entries.lock();
        let receipt = match entries.get(&key) {
            Some((stored_rid, receipt)) if *stored_rid == rid => receipt.clone(),
            Some(_) => return Err(refusal(Code::AlreadyExists, "DUPLICATE_ENTRY")),
            None => {
                let receipt = format!("RCPT{:01}-23456", entries.len() % 10);
                entries.insert(key, (rid, receipt.clone()));
                receipt
            }
        };
        Ok(Response::new(EnterResponse {
            entry: Some(Entry { event_id: entry.event_id, ..Default::default() }),
            receipt_code: receipt,
        }))
    }

    async fn get_public_winners(
        &self,
        request: Request<GetPublicWinnersRequest>,
    ) -> Result<Response<GetPublicWinnersResponse>, Status> {
        if request.into_inner().event_id != DRAWN {
            return Ok(Response::new(GetPublicWinnersResponse::default()));
        }
        let first = DrawAudit {
            draw_id: "draw-1".into(),
            seed: vec![0xAB; 32],
            algorithm: "chacha20-fisher-yates".into(),
            algorithm_version: "1".into(),
            entry_snapshot_sha256: "5f".repeat(32),
            entry_count: 42,
            winner_count: 2,
            draw_time: at(DRAW_TIME),
            ..Default::default()
        };
        // The redraw of the unclaimed prize (its deadline passed): the current draw is the first
        // one for the claim deadline of its winners in this script.
        let redraw = DrawAudit {
            draw_id: "draw-2".into(),
            seed: vec![0xCD; 32],
            entry_snapshot_sha256: "6e".repeat(32),
            entry_count: 40,
            winner_count: 1,
            draw_time: at(DRAW_TIME + 8 * 86_400),
            redraw_of: "<draw-1>".into(),
            ..first.clone()
        };
        Ok(Response::new(GetPublicWinnersResponse {
            winners: vec![
                PublicWinner {
                    rank: 1,
                    masked_name: "김*수".into(),
                    masked_phone: "010-****-5678".into(),
                    claim_state: ClaimState::Claimed as i32,
                },
                PublicWinner {
                    rank: 2,
                    masked_name: "<i>x</i>".into(),
                    masked_phone: "010-****-0001".into(),
                    claim_state: ClaimState::Unclaimed as i32,
                },
            ],
            audit: Some(first.clone()),
            draws: vec![first, redraw],
        }))
    }

    async fn claim_prize(&self, request: Request<ClaimPrizeRequest>) -> Result<Response<ClaimPrizeResponse>, Status> {
        let (rid, ip) = (metadata(&request, "x-request-id"), metadata(&request, kem_kit::runtime::CLIENT_IP_METADATA));
        let claim = request.into_inner();
        self.0.claims.lock().push((rid, ip, claim.clone()));
        let phone = digits(&claim.phone);
        if !phone.starts_with("010") || phone.len() != 11 {
            return Err(invalid("INVALID_ARGUMENT", &["phone"]));
        }
        let code: String =
            claim.claim_code.chars().filter(|c| *c != '-' && *c != ' ').collect::<String>().to_uppercase();
        if code.len() != 8 || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid("INVALID_ARGUMENT", &["claimCode"]));
        }
        let mut wrong = self.0.wrong_claims.lock();
        if wrong.get(&phone).copied().unwrap_or(0) >= 5 {
            return Err(exhausted("TOO_MANY_ATTEMPTS", Duration::from_secs(3600)));
        }
        let pair = (phone.as_str(), code.as_str());
        if claim.event_id == DRAWN && pair == EXPIRED_WINNER {
            return Err(refusal(Code::FailedPrecondition, "CLAIM_EXPIRED"));
        }
        if claim.event_id == DRAWN && pair == REDRAWN_WINNER {
            return Err(refusal(Code::FailedPrecondition, "PRIZE_REDRAWN"));
        }
        if claim.event_id != DRAWN || pair != WINNER {
            *wrong.entry(phone).or_default() += 1;
            return Err(refusal(Code::NotFound, "CLAIM_NOT_FOUND"));
        }
        Ok(Response::new(ClaimPrizeResponse {
            rank: 1,
            masked_name: "김*<b>수</b>".into(),
            prize: Some(Prize { name: "아메리카노 <1잔>".into(), winner_count: 2, ..Default::default() }),
            claim_time: at(DRAW_TIME + 3600),
        }))
    }

    async fn send_participant_code(
        &self,
        request: Request<SendParticipantCodeRequest>,
    ) -> Result<Response<SendParticipantCodeResponse>, Status> {
        let asked = request.into_inner();
        let phone = digits(&asked.phone);
        self.0.code_requests.lock().push((asked.event_id.clone(), phone.clone(), asked.purpose));
        if !phone.starts_with("010") || phone.len() != 11 {
            return Err(invalid("INVALID_ARGUMENT", &["phone"]));
        }
        if asked.purpose == CodePurpose::Entry as i32 && asked.event_id != VERIFIED {
            return Err(refusal(Code::FailedPrecondition, "VERIFICATION_NOT_REQUIRED"));
        }
        let now = now_unix();
        let key = (asked.event_id.clone(), phone.clone());
        let mut sms = self.0.sms.lock();
        // One code a minute per phone and event (whether or not an SMS went: the answer is the same).
        if sms.get(&key).is_some_and(|sent| now - sent < 60) {
            return Err(exhausted("CODE_RATE_LIMITED", Duration::from_secs(60)));
        }
        let entered = self.0.entries.lock().contains_key(&(asked.event_id.clone(), phone.clone()));
        if asked.purpose == CodePurpose::Entry as i32 || entered {
            sms.insert(key, now);
        }
        Ok(Response::new(SendParticipantCodeResponse { expire_time: at(now + 300), resend_time: at(now + 60) }))
    }

    async fn lookup_entry(
        &self,
        request: Request<LookupEntryRequest>,
    ) -> Result<Response<LookupEntryResponse>, Status> {
        self.0.lookups.fetch_add(1, Ordering::SeqCst);
        let lookup = request.into_inner();
        let not_found = || refusal(Code::NotFound, "ENTRY_NOT_FOUND");
        let entry = |name: &str| Entry {
            event_id: lookup.event_id.clone(),
            masked_name: name.into(),
            masked_phone: "010-****-5678".into(),
            create_time: at(END - 3600),
            ..Default::default()
        };
        let receipt = lookup.receipt_code.to_uppercase();
        if !receipt.is_empty() {
            if receipt == WON_RECEIPT {
                return Ok(Response::new(LookupEntryResponse {
                    entry: Some(entry("<b>김</b>*수")),
                    standing: EntryStanding::Won as i32,
                    rank: 2,
                    claim_state: ClaimState::Unclaimed as i32,
                    claim_deadline: at(DRAW_TIME + 7 * 86_400),
                }));
            }
            if receipt == LOST_RECEIPT {
                let standing = EntryStanding::NotWon as i32;
                return Ok(Response::new(LookupEntryResponse {
                    entry: Some(entry("박*영")),
                    standing,
                    ..Default::default()
                }));
            }
            let known = self.0.entries.lock().values().any(|(_, stored)| *stored == receipt);
            if !known {
                return Err(not_found());
            }
            let standing = EntryStanding::Entered as i32;
            return Ok(Response::new(LookupEntryResponse {
                entry: Some(entry("홍*동")),
                standing,
                ..Default::default()
            }));
        }
        if lookup.code == EXHAUSTED_CODE {
            return Err(exhausted("TOO_MANY_ATTEMPTS", Duration::from_secs(300)));
        }
        if self.entered(&lookup.event_id, &digits(&lookup.phone)).is_none()
            || !self.code_matches(&lookup.event_id, &lookup.phone, &lookup.code)
        {
            return Err(not_found());
        }
        let withdrawn = self.0.withdrawals.lock().iter().any(|(_, w)| digits(&w.phone) == digits(&lookup.phone));
        let standing = if withdrawn { EntryStanding::Withdrawn } else { EntryStanding::Entered } as i32;
        Ok(Response::new(LookupEntryResponse { entry: Some(entry("홍*<i>동</i>")), standing, ..Default::default() }))
    }

    async fn withdraw_entry(
        &self,
        request: Request<WithdrawEntryRequest>,
    ) -> Result<Response<WithdrawEntryResponse>, Status> {
        let rid = metadata(&request, "x-request-id");
        let withdraw = request.into_inner();
        if withdraw.code == EXHAUSTED_CODE {
            return Err(exhausted("TOO_MANY_ATTEMPTS", Duration::from_secs(300)));
        }
        if self.entered(&withdraw.event_id, &digits(&withdraw.phone)).is_none()
            || !self.code_matches(&withdraw.event_id, &withdraw.phone, &withdraw.code)
        {
            return Err(refusal(Code::NotFound, "ENTRY_NOT_FOUND"));
        }
        if withdraw.event_id == DRAWN {
            return Err(refusal(Code::FailedPrecondition, "ALREADY_DRAWN"));
        }
        self.0.withdrawals.lock().push((rid, withdraw));
        Ok(Response::new(WithdrawEntryResponse { withdraw_time: at(END - 1800) }))
    }

    async fn export_participants(
        &self,
        request: Request<ExportParticipantsRequest>,
    ) -> Result<Response<ExportParticipantsResponse>, Status> {
        let event = request.into_inner().event_id;
        Ok(Response::new(ExportParticipantsResponse {
            content_type: "text/csv; charset=utf-8".into(),
            data: b"\xEF\xBB\xBFrank,name\r\n1,\xEA\xB9\x80*\xEC\x88\x98\r\n".to_vec(),
            // A hostile name from the service: quotes, CR/LF and a path must not reach the header.
            filename: format!("당첨자 \"{event}\"\r\n../x.csv"),
            export_id: "export-1".into(),
        }))
    }
}

pub(crate) struct Pages {
    pub(crate) http: SocketAddr,
    pub(crate) seen: Arc<Seen>,
    pub(crate) shutdown: Shutdown,
    pub(crate) issuer: Issuer,
    _ca: TestCa,
}

impl Pages {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    pub(crate) fn origin(&self) -> String {
        format!("http://{}", self.http)
    }

    pub(crate) async fn get(&self, path: &str, accept_language: &str) -> (u16, reqwest::header::HeaderMap, String) {
        let response =
            client().get(self.url(path)).header("accept-language", accept_language).send().await.expect("GET");
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        (status, headers, response.text().await.expect("body"))
    }

    /// Posts `form` as a browser on this page would (same origin).
    pub(crate) async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        self.post_with(path, form, &[("origin", &self.origin())]).await
    }

    pub(crate) async fn post_with(&self, path: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> (u16, String) {
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let mut request =
            client().post(self.url(path)).header("content-type", "application/x-www-form-urlencoded").body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("POST");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    /// Loads the event page and returns its hidden request id and terms version.
    pub(crate) async fn render(&self, id: &str) -> (String, String) {
        let (status, _, page) = self.get(&format!("/e/{id}?ch=instagram"), "ko").await;
        assert_eq!(status, 200, "{page}");
        (hidden(&page, "rid"), hidden(&page, "terms_version"))
    }
}

/// The value of the hidden input `name` in `page`.
pub(crate) fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = page.find(&marker).unwrap_or_else(|| panic!("no hidden {name} in {page}")) + marker.len();
    page[at..].split('"').next().unwrap_or_default().to_owned()
}

pub(crate) async fn start(limits: EdgeLimits, trusted_proxies: TrustedProxies) -> Pages {
    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let seen = Arc::new(Seen::default());
    let services = ["kem.event.v1.EventService", "kem.participation.v1.ParticipationService"];
    let backend_id = ca.identity("event", Duration::from_secs(3600)).await;
    let policy = Policy::from_contracts(kem_proto::descriptor_pool(), &services, TRUST_DOMAIN, NAMESPACE, "gateway");
    let serving = RoleServer::new("event")
        .transport(Transport::MutualTls(backend_id))
        .policy(policy, Some(TestCa::id("gateway")))
        .drain_timeout(Duration::from_millis(200))
        .add_service(EventServiceServer::new(Events))
        .add_service(ParticipationServiceServer::new(Participation(seen.clone())))
        .serve(tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind"), shutdown.clone())
        .await
        .expect("backend");
    let gateway_id = ca.identity("gateway", Duration::from_secs(3600)).await;
    let channel =
        upstream(MeshChannel::new(&gateway_id, &serving.addr.to_string(), &TestCa::id("event")).expect("channel"));
    let mut upstreams = Upstreams::new();
    for service in services {
        upstreams.insert(service, channel.clone());
    }
    let issuer = Issuer::new(SigningKey::generate().expect("key"), ISSUER, AUDIENCE);
    let auth = JwtAuthenticator::new(ISSUER, AUDIENCE, Arc::new(StaticKeys(issuer.jwks(std::time::SystemTime::now()))));
    auth.refresh().await.expect("keys");
    let edge = Arc::new(Edge {
        routes: RouteTable::from_pool(kem_proto::descriptor_pool()).expect("routes"),
        upstreams,
        auth,
        limiter: EdgeLimiter::new(&limits),
        idempotency: IdempotencyStore::new(Arc::new(MemoryCache::new(100)), Duration::from_secs(60)),
        config: EdgeConfig { trusted_proxies, ..EdgeConfig::default() },
    });
    let router = kem_gateway::router(edge, None, &[]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (http, _task) = kem_gateway::serve(listener, router, shutdown.clone()).expect("serve");
    Pages { http, seen, shutdown, issuer, _ca: ca }
}

pub(crate) async fn pages() -> Pages {
    start(EdgeLimits::default(), TrustedProxies::none()).await
}

pub(crate) fn entry_form<'a>(rid: &'a str, terms: &'a str, phone: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", "홍길동"),
        ("phone", phone),
        ("privacy", "yes"),
        ("age14", "yes"),
        ("email", ""),
        ("terms_version", terms),
        ("ch", "instagram"),
        ("rid", rid),
    ]
}

#[tokio::test]
async fn the_event_page_speaks_korean_or_english_by_accept_language() {
    let pages = pages().await;
    let (status, headers, korean) = pages.get(&format!("/e/{OPEN}"), "ko-KR,ko;q=0.9,en;q=0.8").await;
    assert_eq!(status, 200);
    assert!(korean.contains("<html lang=\"ko\">"), "{korean}");
    assert!(korean.contains("평일 점심 이벤트") && korean.contains("응모하기"));
    assert!(korean.contains("2026년 12월 7일 (월) 18:00"), "the end in Seoul time: {korean}");
    assert!(korean.contains("2026년 12월 1일 (화) 09:00"), "the start in Seoul time");
    assert!(korean.contains("아메리카노 1잔") && korean.contains("10명"), "prize and winner count");
    assert!(korean.contains("거부하면 응모할 수 없습니다"), "the Korean notice with the right to refuse");
    assert!(korean.contains("inputmode=\"tel\"") && korean.contains("autocomplete=\"tel\""));
    assert!(korean.contains(&format!("src=\"{IMAGE_ORIGIN}/api/v1/public/images/img-1\"")), "the image");
    assert_eq!(headers["content-language"], "ko");
    assert_eq!(headers["vary"], "Accept-Language");

    let (_, headers, english) = pages.get(&format!("/e/{OPEN}"), "en-US,en;q=0.9,ko;q=0.5").await;
    assert!(english.contains("<html lang=\"en\">"), "{english}");
    assert!(english.contains("Mon 7 Dec 2026, 18:00 KST") && english.contains("Submit my entry"), "{english}");
    assert!(english.contains("if you do, you cannot enter"), "the English notice");
    assert_eq!(headers["content-language"], "en");
    // q-values, not order, decide.
    let (_, _, preferred) = pages.get(&format!("/e/{OPEN}"), "en;q=0.2, ko;q=0.9").await;
    assert!(preferred.contains("<html lang=\"ko\">"));
    let (_, _, default) = pages.get(&format!("/e/{OPEN}"), "fr-FR").await;
    assert!(default.contains("<html lang=\"ko\">"), "neither language: Korean");

    // Each render has its own request id (a new render is a new entry attempt).
    let (first, second) = (pages.render(OPEN).await.0, pages.render(OPEN).await.0);
    assert_ne!(first, second);
    assert_eq!(first.len(), 32);
    pages.shutdown.trigger();
}

#[tokio::test]
async fn hostile_titles_and_texts_are_escaped() {
    let pages = pages().await;
    let (status, headers, page) = pages.get(&format!("/e/{HOSTILE}"), "ko").await;
    assert_eq!(status, 200);
    assert!(!page.contains("<script>") && !page.contains("<img src=x") && !page.contains("<b>bold"), "{page}");
    assert!(page.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"), "{page}");
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(page.contains("&quot;&gt;&lt;b&gt;bold&lt;/b&gt;"));
    assert!(page.contains("&#39;; DROP TABLE entries; --"));
    assert!(!page.contains("javascript:"), "an image URL that is not http(s) is not shown");
    let csp = headers["content-security-policy"].to_str().expect("csp");
    assert!(csp.contains("img-src 'self' data:;"), "no image origin for a non-http image: {csp}");
    // Nothing but our own markup: every tag in the page is one the views write.
    let allowed = [
        "html", "head", "meta", "title", "link", "body", "main", "img", "p", "h1", "h2", "h3", "span", "dl", "dt",
        "dd", "br", "div", "form", "label", "input", "button", "footer", "strong", "a", "!doctype",
    ];
    for tag in page.split('<').skip(1).map(|t| t.trim_start_matches('/').split([' ', '>', '\n']).next().unwrap_or("")) {
        assert!(allowed.contains(&tag.to_ascii_lowercase().as_str()), "unexpected tag <{tag}>");
    }
    pages.shutdown.trigger();
}

#[tokio::test]
async fn every_page_carries_the_security_headers() {
    let pages = pages().await;
    let expect_csp = format!(
        "default-src 'none'; img-src 'self' data: {IMAGE_ORIGIN}; style-src 'self'; form-action 'self'; \
         base-uri 'none'; frame-ancestors 'none'"
    );
    let (_, headers, page) = pages.get(&format!("/e/{OPEN}"), "ko").await;
    assert_eq!(headers["content-security-policy"], expect_csp.as_str());
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "strict-origin-when-cross-origin");
    assert_eq!(headers["cache-control"], "no-store", "a form with a per-render id is never stored");
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert!(headers.contains_key("x-request-id"));
    for (path, status) in [
        (format!("/e/{UNKNOWN}"), 404),
        ("/e/not-an-id".to_owned(), 400),
        (format!("/e/{OPEN}/winners"), 200),
        (format!("/e/{DRAWN}/winners"), 200),
    ] {
        let (got, headers, _) = pages.get(&path, "ko").await;
        assert_eq!(got, status, "{path}");
        let csp = headers["content-security-policy"].to_str().expect("csp");
        assert!(
            csp.starts_with("default-src 'none'; img-src 'self' data:") && csp.ends_with("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "strict-origin-when-cross-origin", "{path}");
    }

    // The stylesheet: under its content hash, for a year; nothing else under /e/assets.
    let css =
        page.split("<link rel=\"stylesheet\" href=\"").nth(1).and_then(|r| r.split('"').next()).expect("css link");
    assert!(css.starts_with("/e/assets/entry.") && css.ends_with(".css"), "{css}");
    let (status, headers, body) = pages.get(css, "ko").await;
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(headers["content-type"], "text/css; charset=utf-8");
    assert!(body.contains("--ink"));
    assert_eq!(pages.get("/e/assets/entry.css", "ko").await.0, 404);
    assert_eq!(pages.get("/e/assets/..%2F..%2FCargo.toml", "ko").await.0, 404);
    pages.shutdown.trigger();
}

#[tokio::test]
async fn unknown_garbage_and_unavailable_events_get_404_400_and_503_pages() {
    let pages = pages().await;
    let (status, headers, page) = pages.get(&format!("/e/{UNKNOWN}"), "ko").await;
    assert_eq!(status, 404);
    assert!(page.contains("이벤트를 찾을 수 없습니다") && page.contains("<html lang=\"ko\">"), "{page}");
    assert_eq!(headers["cache-control"], "no-store");
    for garbage in ["/e/x", "/e/%3Cscript%3E", "/e/0B6F3A52-7C1E-4D8E-9A4F-000000000001", "/e/''%20OR%201=1"] {
        let (status, _, page) = pages.get(garbage, "en").await;
        assert_eq!(status, 400, "{garbage}");
        assert!(page.contains("This address is not valid") && !page.contains("<script"), "{page}");
    }
    let (status, headers, page) = pages.get(&format!("/e/{UNAVAILABLE}"), "ko").await;
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "7", "the service's RetryInfo");
    assert!(page.contains("잠시 후 다시 시도해 주세요"), "{page}");
    assert_eq!(pages.get(&format!("/e/{OPEN}/nothing"), "ko").await.0, 404);
    let deleted = client().delete(pages.url(&format!("/e/{OPEN}"))).send().await.expect("DELETE");
    assert_eq!(deleted.status().as_u16(), 405);
    assert_eq!(deleted.headers()["allow"], "GET, HEAD, POST");

    // A service missing from the edge altogether is unavailable too.
    let edge = crate::support::edge_without_backends();
    let app = kem_gateway::router(Arc::new(edge), None, &[]);
    let response = tower::ServiceExt::oneshot(
        app,
        http::Request::get(format!("/e/{OPEN}")).body(axum::body::Body::empty()).expect("request"),
    )
    .await
    .expect("response");
    assert_eq!(response.status().as_u16(), 503);
    pages.shutdown.trigger();
}

#[tokio::test]
async fn a_form_post_enters_and_shows_the_receipt_and_a_double_submit_replays_it() {
    let pages = pages().await;
    let (rid, terms) = pages.render(OPEN).await;
    assert_eq!(terms, TERMS_VERSION);
    let form = entry_form(&rid, &terms, "010-1234-5678");
    let (status, receipt) = pages.post(&format!("/e/{OPEN}"), &form).await;
    assert_eq!(status, 200, "{receipt}");
    assert!(
        receipt.contains("응모가 완료되었습니다")
            && receipt.contains("<p class=\"receipt\" id=\"receipt\">RCPT0-23456</p>"),
        "{receipt}"
    );
    assert!(receipt.contains("2026년 12월 7일 (월) 18:00"), "what happens next, with the draw date");
    assert!(receipt.contains(&format!("href=\"/e/{OPEN}/winners\"")));

    // The same render submitted again (a double click, a refresh that re-posts): the same entry.
    let (status, again) = pages.post(&format!("/e/{OPEN}"), &form).await;
    assert_eq!(status, 200, "{again}");
    assert!(again.contains("RCPT0-23456"));
    assert_eq!(pages.seen.entries.lock().len(), 1);

    // What the service received: the render's id as x-request-id, the consents with the terms
    // version, the age confirmation and the attribution channel.
    let requests = pages.seen.requests.lock().clone();
    let (sent_rid, client_ip, request) = &requests[0];
    assert_eq!(sent_rid, &rid);
    assert_eq!(client_ip, "127.0.0.1");
    assert_eq!((request.name.as_str(), request.phone.as_str()), ("홍길동", "010-1234-5678"));
    let privacy = request.privacy_consent.clone().expect("privacy consent");
    assert!(privacy.granted && privacy.consent_text_version == TERMS_VERSION);
    assert!(!request.marketing_consent.clone().expect("marketing consent").granted, "the optional box was left empty");
    assert!(request.age_14_or_older);
    assert_eq!(request.source_channel, Channel::Instagram as i32);
    pages.shutdown.trigger();
}

#[tokio::test]
async fn a_second_entry_of_a_phone_is_a_duplicate_and_a_closed_event_refuses_with_its_dates() {
    let pages = pages().await;
    let (rid, terms) = pages.render(OPEN).await;
    assert_eq!(pages.post(&format!("/e/{OPEN}"), &entry_form(&rid, &terms, "010-2222-3333")).await.0, 200);
    let (new_rid, _) = pages.render(OPEN).await;
    let (status, page) = pages.post(&format!("/e/{OPEN}"), &entry_form(&new_rid, &terms, "01022223333")).await;
    assert_eq!(status, 409);
    assert!(page.contains("이미 참여하셨습니다") && page.contains("2026년 12월 1일 (화) 09:00"), "{page}");

    let (status, page) = pages.post(&format!("/e/{CLOSED}"), &entry_form(&new_rid, &terms, "010-4444-5555")).await;
    assert_eq!(status, 409);
    assert!(page.contains("지금은 응모할 수 없습니다") && page.contains("2026년 12월 7일 (월) 18:00"), "{page}");

    // The pages of events not open say so, with their dates, and show no form.
    let (_, _, closed) = pages.get(&format!("/e/{CLOSED}"), "ko").await;
    assert!(
        closed.contains("응모가 마감되었습니다")
            && closed.contains("2026년 12월 7일 (월) 18:00")
            && !closed.contains("<form")
    );
    let (_, _, upcoming) = pages.get(&format!("/e/{UPCOMING}"), "en").await;
    assert!(
        upcoming.contains("Entries have not opened yet") && upcoming.contains("Tue 1 Dec 2026, 09:00 KST"),
        "{upcoming}"
    );
    assert!(!upcoming.contains("<form"));
    let (_, _, drawn) = pages.get(&format!("/e/{DRAWN}"), "ko").await;
    assert!(drawn.contains(&format!("href=\"/e/{DRAWN}/winners\"")) && !drawn.contains("<form"), "{drawn}");
    pages.shutdown.trigger();
}

#[tokio::test]
async fn invalid_fields_re_render_the_form_with_the_values_and_each_error_by_its_field() {
    let pages = pages().await;
    let (rid, terms) = pages.render(OPEN).await;

    // Missing consents and name: checked at the edge, no call.
    let mut form = entry_form(&rid, &terms, "010-1234-0000");
    form.retain(|(k, _)| !matches!(*k, "privacy" | "age14" | "name"));
    let (status, page) = pages.post(&format!("/e/{OPEN}"), &form).await;
    assert_eq!(status, 422, "{page}");
    assert_eq!(pages.seen.enters.load(Ordering::SeqCst), 0, "the edge's own checks cost no call");
    assert!(page.contains("value=\"010-1234-0000\""), "what was typed is kept: {page}");
    for id in ["name", "privacy", "age"] {
        assert!(page.contains(&format!("id=\"{id}-error\"")), "{id} error shown");
    }
    assert!(page.contains("aria-invalid=\"true\" aria-describedby=\"privacy-notice privacy-error\""), "{page}");
    assert!(page.contains("aria-invalid=\"true\" aria-describedby=\"name-error\""));
    assert!(!page.contains("id=\"phone-error\""), "no error on a good field");
    assert_eq!(hidden(&page, "rid"), rid, "the render's id is kept");

    // The service's field violations are placed by their fields.
    let (status, page) = pages.post(&format!("/e/{OPEN}"), &entry_form(&rid, &terms, "<b>555</b>")).await;
    assert_eq!(status, 422);
    assert!(page.contains("aria-invalid=\"true\" aria-describedby=\"phone-hint phone-error\""), "{page}");
    assert!(page.contains("value=\"&lt;b&gt;555&lt;/b&gt;\""), "kept and escaped");
    assert!(page.contains("value=\"홍길동\""));

    // Outdated terms: the form again with the current terms, to be ticked again.
    let (status, page) = pages.post(&format!("/e/{OPEN}"), &entry_form(&rid, "terms-old", "010-1234-0000")).await;
    assert_eq!(status, 422);
    assert!(page.contains("안내 내용이 바뀌었습니다"), "{page}");
    assert_eq!(hidden(&page, "terms_version"), TERMS_VERSION);
    let privacy_box = page.split("id=\"privacy\"").nth(1).and_then(|r| r.split('>').next()).expect("privacy box");
    assert!(!privacy_box.contains("checked"), "consent to new terms is asked again: {privacy_box}");
    pages.shutdown.trigger();
}

#[tokio::test]
async fn the_honeypot_gets_a_fake_receipt_and_no_entry() {
    let pages = pages().await;
    let (rid, terms) = pages.render(OPEN).await;
    let (_, _, page) = pages.get(&format!("/e/{OPEN}"), "ko").await;
    assert!(page.contains("<div class=\"hp\" aria-hidden=\"true\">"), "hidden from assistive technology");
    assert!(page.contains("name=\"email\" tabindex=\"-1\" autocomplete=\"off\""), "out of the tab order");
    let mut form = entry_form(&rid, &terms, "010-9999-0000");
    form.retain(|(k, _)| *k != "email");
    form.push(("email", "bot@example.com"));
    let (status, fake) = pages.post(&format!("/e/{OPEN}"), &form).await;
    assert_eq!(status, 200);
    assert!(fake.contains("응모가 완료되었습니다") && fake.contains("class=\"receipt\""), "{fake}");
    assert_eq!(pages.seen.enters.load(Ordering::SeqCst), 0, "nothing was entered");
    pages.shutdown.trigger();
}

#[tokio::test]
async fn cross_origin_posts_are_refused() {
    let pages = pages().await;
    let (rid, terms) = pages.render(OPEN).await;
    let form = entry_form(&rid, &terms, "010-7777-0000");
    let path = format!("/e/{OPEN}");
    for headers in [
        vec![("origin", "https://evil.example")],
        vec![("origin", "null")],
        vec![("referer", "https://evil.example/phish")],
        vec![("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")],
    ] {
        let (status, page) = pages.post_with(&path, &form, &headers).await;
        assert_eq!(status, 403, "{headers:?}");
        assert!(page.contains("다른 사이트에서 보낸 응모는 받을 수 없습니다"), "{page}");
    }
    assert_eq!(pages.seen.enters.load(Ordering::SeqCst), 0);
    // The event's public base is this site too (behind a proxy that rewrites Host).
    let (status, _) = pages.post_with(&path, &form, &[("origin", PUBLIC_BASE)]).await;
    assert_eq!(status, 200);
    // So is a post with no origin information at all (no browser, no ambient authority).
    let (rid, _) = pages.render(OPEN).await;
    let (status, _) = pages.post_with(&path, &entry_form(&rid, &terms, "010-7777-0001"), &[]).await;
    assert_eq!(status, 200);
    pages.shutdown.trigger();
}

#[tokio::test]
async fn oversized_and_foreign_bodies_are_refused_before_any_call() {
    let pages = pages().await;
    let path = pages.url(&format!("/e/{OPEN}"));
    let origin = pages.origin();
    let big = format!("name={}", "a".repeat(9 * 1024));
    let response = client()
        .post(&path)
        .header("origin", &origin)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big.clone())
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 413);
    // Without a Content-Length (chunked), the limit holds while reading.
    let chunks = futures_util::stream::iter(
        (0..9).map(|_| Ok::<_, std::io::Error>(http_body::Frame::data(bytes::Bytes::from(vec![b'a'; 1024])))),
    );
    let response = client()
        .post(&path)
        .header("origin", &origin)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(reqwest::Body::wrap(http_body_util::StreamBody::new(chunks)))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 413);
    let response = client()
        .post(&path)
        .header("origin", &origin)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 415);
    assert_eq!(pages.seen.enters.load(Ordering::SeqCst), 0);
    pages.shutdown.trigger();
}

#[tokio::test]
async fn garbage_channels_are_ignored() {
    let pages = pages().await;
    for query in ["?ch=tiktok", "?ch=%3Cscript%3E", "?ch=", "?ch=kakao_channel", "?ch=instagram%00"] {
        let (status, _, page) = pages.get(&format!("/e/{OPEN}{query}"), "ko").await;
        assert_eq!(status, 200, "{query}");
        assert!(!page.contains("name=\"ch\""), "{query}: unknown or unpublished channels are not kept");
    }
    let (_, _, page) = pages.get(&format!("/e/{OPEN}?ch=INSTAGRAM"), "ko").await;
    assert_eq!(hidden(&page, "ch"), "instagram", "a published channel is kept for attribution");

    let (rid, terms) = pages.render(OPEN).await;
    let mut form = entry_form(&rid, &terms, "010-3030-3030");
    form.retain(|(k, _)| *k != "ch");
    form.push(("ch", "<script>"));
    assert_eq!(pages.post(&format!("/e/{OPEN}"), &form).await.0, 200);
    let requests = pages.seen.requests.lock().clone();
    assert_eq!(requests[0].2.source_channel, 0, "entered without attribution");
    pages.shutdown.trigger();
}

#[tokio::test]
async fn qr_codes_are_decodable_png_and_svg_of_public_events_only() {
    let pages = pages().await;
    let response = client().get(pages.url(&format!("/e/{OPEN}/qr.png?ch=instagram"))).send().await.expect("png");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert!(response.headers()["cache-control"].to_str().expect("cache").starts_with("public, max-age="));
    let bytes = response.bytes().await.expect("bytes");
    assert_eq!(bytes.get(..8), Some(&b"\x89PNG\r\n\x1a\n"[..]), "the PNG signature");
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes.to_vec()));
    let reader = decoder.read_info().expect("a PNG");
    let info = reader.info();
    assert_eq!(info.width, info.height, "square");
    // Version 3–6 at 8 px per module with a 4-module quiet zone: 264 to 392 pixels.
    assert!((200..=600).contains(&info.width), "plausible size: {}", info.width);

    let response = client().get(pages.url(&format!("/e/{OPEN}/qr.svg"))).send().await.expect("svg");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "image/svg+xml");
    let svg = response.text().await.expect("text");
    let document = roxmltree::Document::parse(&svg).expect("the SVG is XML");
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert!(root.descendants().any(|n| n.tag_name().name() == "rect"));
    let path = root.descendants().find(|n| n.tag_name().name() == "path").expect("a path");
    assert!(path.attribute("d").is_some_and(|d| d.starts_with('M')));

    // Different links, different codes; unknown events and garbage ids get none.
    let plain =
        client().get(pages.url(&format!("/e/{OPEN}/qr.png"))).send().await.expect("png").bytes().await.expect("b");
    assert_ne!(plain, bytes, "the channel link differs from the entry URL");
    assert_eq!(
        client().get(pages.url(&format!("/e/{UNKNOWN}/qr.png"))).send().await.expect("png").status().as_u16(),
        404
    );
    assert_eq!(client().get(pages.url("/e/nope/qr.svg")).send().await.expect("svg").status().as_u16(), 400);
    pages.shutdown.trigger();
}

#[tokio::test]
async fn the_winners_page_shows_masked_winners_and_the_draw_audit() {
    let pages = pages().await;
    let (status, headers, page) = pages.get(&format!("/e/{DRAWN}/winners"), "ko").await;
    assert_eq!(status, 200);
    assert!(page.contains("김*수") && page.contains("010-****-5678"), "{page}");
    assert!(page.contains("&lt;i&gt;x&lt;/i&gt;"), "names are escaped too");
    assert!(page.contains(&"ab".repeat(32)), "the seed in hex");
    assert!(page.contains("chacha20-fisher-yates v1") && page.contains(&"5f".repeat(32)) && page.contains(">42<"));
    assert!(page.contains("2026년 12월 7일 (월) 18:10"), "the draw time in Seoul");
    assert!(page.contains("검증 방법"), "how to verify");
    assert!(headers["cache-control"].to_str().expect("cache").starts_with("public"));
    // Each winner's claim state, every draw's record when there was a redraw, and "my entry".
    assert!(page.contains("<td>수령 확인</td>") && page.contains("<td>확인 대기</td>"), "{page}");
    assert!(page.contains("추첨 기록 (재추첨 포함)") && page.contains("<h3>추첨 2</h3>"), "{page}");
    assert!(page.contains(&"cd".repeat(32)) && page.contains(&"6e".repeat(32)), "the redraw's seed and snapshot");
    assert!(page.contains("2026년 12월 15일 (화) 18:10"), "the redraw's time in Seoul");
    assert!(page.contains("&lt;draw-1&gt;"), "what the redraw continues, escaped");
    assert!(page.contains(&format!("href=\"/e/{DRAWN}/me\"")), "a link to my entry");
    let (_, _, english) = pages.get(&format!("/e/{DRAWN}/winners"), "en").await;
    assert!(english.contains("To verify:"));
    assert!(english.contains("<td>Claimed</td>") && english.contains("Draw records (with redraws)"), "{english}");
    let (_, _, none) = pages.get(&format!("/e/{OPEN}/winners"), "ko").await;
    assert!(none.contains("아직 당첨자를 추첨하지 않았습니다"), "{none}");
    pages.shutdown.trigger();
}

#[tokio::test]
async fn page_weight_stays_under_200_kb_without_the_image() {
    let pages = pages().await;
    let (_, _, page) = pages.get(&format!("/e/{OPEN}"), "ko").await;
    let css = page.split("<link rel=\"stylesheet\" href=\"").nth(1).and_then(|r| r.split('"').next()).expect("css");
    let (_, _, stylesheet) = pages.get(css, "ko").await;
    let weight = page.len() + stylesheet.len();
    println!("entry page weight: {} bytes of HTML + {} bytes of CSS = {weight} bytes", page.len(), stylesheet.len());
    assert!(weight < 200 * 1024, "{weight} bytes");
    // Nothing is loaded from another origin but the event image.
    let absolute: Vec<&str> = page.match_indices("http").map(|(at, _)| &page[at..(at + 40).min(page.len())]).collect();
    assert!(absolute.iter().all(|url| url.starts_with(IMAGE_ORIGIN)), "{absolute:?}");
    assert!(!page.contains("<script"), "no JavaScript");
    pages.shutdown.trigger();
}

#[tokio::test]
async fn a_well_behaved_participant_is_unaffected_by_hostile_posts() {
    let trusted = TrustedProxies::parse(["127.0.0.1/32"]).expect("proxies");
    let pages = Arc::new(start(EdgeLimits::default(), trusted).await);
    let path = format!("/e/{OPEN}");
    let (_, terms) = pages.render(OPEN).await;

    // The attacker, from 203.0.113.66: cross-site posts, oversized bodies, garbage, bots.
    let attacker = {
        let pages = pages.clone();
        let path = path.clone();
        let terms = terms.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            // More than the Enter quota's burst (60 per event and address).
            for i in 0..100 {
                let xff = [("x-forwarded-for", "203.0.113.66")];
                let (status, _) = match i % 4 {
                    0 => {
                        pages
                            .post_with(
                                &path,
                                &entry_form("r", &terms, "010-0000-0000"),
                                &[xff[0], ("origin", "https://evil.example")],
                            )
                            .await
                    }
                    1 => pages.post_with(&path, &[("name", &"x".repeat(10_000))], &[xff[0]]).await,
                    2 => pages.post_with(&path, &[("\u{0}", "\u{0}"), ("phone", "💣")], &[xff[0]]).await,
                    _ => pages.post_with(&path, &[("email", "bot@example.com")], &[xff[0]]).await,
                };
                statuses.push(status);
            }
            statuses
        })
    };
    // The participant, from 198.51.100.7, meanwhile.
    for n in 0..5 {
        let response = client()
            .get(pages.url(&format!("{path}?ch=instagram")))
            .header("x-forwarded-for", "198.51.100.7")
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status().as_u16(), 200);
        let page = response.text().await.expect("page");
        let phone = format!("010-5050-{n:04}");
        let form = entry_form(&hidden(&page, "rid"), &terms, &phone)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<Vec<_>>();
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (status, receipt) =
            pages.post_with(&path, &form, &[("x-forwarded-for", "198.51.100.7"), ("origin", &pages.origin())]).await;
        assert_eq!(status, 200, "participant entry {n}: {receipt}");
        assert!(receipt.contains("class=\"receipt\""));
    }
    let statuses = attacker.await.expect("attacker");
    assert!(statuses.iter().all(|s| [403, 413, 422, 429, 200].contains(s)), "{statuses:?}");
    assert!(statuses.contains(&429), "the attacker ran into the Enter limit of its address: {statuses:?}");
    assert!(!statuses.iter().any(|s| *s >= 500), "no failure of the edge");
    let requests = pages.seen.requests.lock().clone();
    assert!(
        requests.iter().all(|(_, ip, _)| ip == "198.51.100.7"),
        "only the participant's entries reached the service"
    );
    pages.shutdown.trigger();
}
