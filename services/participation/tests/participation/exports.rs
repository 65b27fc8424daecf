//! CSV exports and their audit log: the file's bytes (BOM, bilingual header, CRLF, RFC 4180
//! quoting, the formula guard, masking, Korean), who may see full names and phones and until when
//! (a ManualClock moves past the retention period), one audit record per request id however often
//! it is retried, newest-first pages, and no export at all once the data is anonymized.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use kem_kit::clock::ManualClock;
use kem_kit::runtime::{ServiceContext, with_client_ip, with_owner};
use kem_participation::ParticipationApi;
use kem_proto::kem::event::v1::EventStatus;
use kem_proto::kem::participation::v1 as pb;
use kem_proto::kem::participation::v1::participation_service_server::ParticipationService;
use tonic::{Code, Request, Status};

use crate::support::*;

const BOM: &[u8] = b"\xEF\xBB\xBF";
const DAY: Duration = Duration::from_secs(86_400);
const PARTICIPANTS_HEADER: &str = "번호 No,이름 Name,휴대전화 Phone,유입 채널 Channel,참여 시각(KST) Entered at,\
     마케팅 수신 동의 Marketing consent,상태 Status";
const WINNERS_HEADER: &str = "순위 Rank,이름 Name,휴대전화 Phone,유입 채널 Channel,참여 시각(KST) Entered at,\
     수령 상태 Claim state,수령 기한(KST) Claim deadline,수령 시각(KST) Claimed at,당첨 알림 Notification";

fn export_request(event_id: &str, kind: pb::ExportKind, reveal: bool) -> pb::ExportParticipantsRequest {
    pb::ExportParticipantsRequest { event_id: event_id.to_owned(), kind: kind as i32, reveal }
}

/// ExportParticipants as the edge calls it: the owner, the request id and the owner's address.
pub async fn export_as(
    api: &ParticipationApi,
    owner: &str,
    request_id: Option<&str>,
    message: pb::ExportParticipantsRequest,
) -> Result<pb::ExportParticipantsResponse, Status> {
    let mut request = match request_id {
        Some(id) => with_request_id(message, id),
        None => Request::new(message),
    };
    request = with_client_ip(with_owner(request, owner), "203.0.113.9".parse::<IpAddr>().expect("ip"));
    Ok(api.export_participants(request).await?.into_inner())
}

pub async fn list_exports(
    api: &ParticipationApi,
    owner: &str,
    event_id: &str,
    size: i32,
    token: &str,
) -> Result<pb::ListExportsResponse, Status> {
    let request = pb::ListExportsRequest { event_id: event_id.to_owned(), page_size: size, page_token: token.into() };
    Ok(api.list_exports(as_owner(owner, request)).await?.into_inner())
}

/// The file's lines after the byte order mark, which it must start with; every line ends in CRLF.
fn lines(data: &[u8]) -> Vec<String> {
    assert!(data.starts_with(BOM), "UTF-8 byte order mark first");
    let text = std::str::from_utf8(&data[BOM.len()..]).expect("UTF-8");
    assert!(text.ends_with("\r\n"), "CRLF at the end");
    assert!(!text.replace("\r\n", "").contains('\n'), "no bare LF: {text:?}");
    text.strip_suffix("\r\n").unwrap_or(text).split("\r\n").map(str::to_owned).collect()
}

/// The participation service on the harness's database with a clock the test moves.
async fn with_clock(h: &Harness, clock: &ManualClock) -> ParticipationApi {
    let ctx = ServiceContext { clock: Arc::new(clock.clone()), ..h.ctx.clone() };
    kem_participation::start_api(ctx, test_config()).await.expect("start with a manual clock")
}

#[tokio::test]
async fn participant_csv_is_excel_safe_korean_and_masked() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    let mut first = entry(&id, "김민수", "010-1234-5678");
    first.marketing_consent = Some(marketing_consent());
    let receipt = h.enter_response(None, first).await.expect("enter").receipt_code;
    // Names a spreadsheet would run, and ones that need quoting once masked.
    let hostile = ["=HYPERLINK(\"http://evil\",\"x\")", "+82", "@SUM", "-1", "\"인용\"", "Kim, Min"];
    for (i, name) in hostile.iter().enumerate() {
        let mut request = entry(&id, name, &phone(100 + i));
        request.source_channel = if i % 2 == 0 { 0 } else { kem_proto::kem::common::v1::Channel::KakaoChannel as i32 };
        h.enter(request).await.expect("enter");
    }

    let file = export_as(&h.api, OWNER, Some("export-1"), export_request(&id, pb::ExportKind::Participants, false))
        .await
        .expect("export");
    assert_eq!(file.content_type, "text/csv; charset=utf-8");
    assert!(file.filename.starts_with(&format!("participants-{id}-")) && file.filename.ends_with(".csv"));
    assert!(!file.export_id.is_empty());
    let lines = lines(&file.data);
    assert_eq!(lines.len(), 1 + 7, "{lines:#?}");
    assert_eq!(lines[0], PARTICIPANTS_HEADER);
    let (number, rest) = lines[1].split_once(',').expect("cells");
    assert_eq!(number, "1");
    assert!(rest.starts_with("김*수,010-****-5678,인스타그램,"), "{rest}");
    assert!(rest.ends_with(",Y,응모 entered"), "{rest}");
    let time = rest.split(',').nth(3).expect("time");
    assert!(
        time.len() == 19 && time.as_bytes()[4] == b'-' && time.as_bytes()[10] == b' ' && time.as_bytes()[13] == b':',
        "Asia/Seoul time as 2026-12-07 18:00:00: {time}"
    );
    // Masked first (first and last character kept), then guarded and quoted.
    let formula = format!("2,'={})", "*".repeat(27));
    assert!(lines[2].starts_with(&format!("{formula},010-****-0100,직접 Direct,")), "{}", lines[2]);
    assert!(lines[3].starts_with("3,'+*2,010-****-0101,카카오톡 채널,"), "{}", lines[3]);
    assert!(lines[4].starts_with("4,'@**M,"), "{}", lines[4]);
    assert!(lines[5].starts_with("5,'-*,"), "a two-character name keeps its first: {}", lines[5]);
    assert!(lines[6].starts_with("6,\"\"\"**\"\"\","), "{}", lines[6]);
    assert!(lines[7].starts_with("7,K******n,"), "masking removed the comma: {}", lines[7]);
    assert!(lines[7].ends_with(",,응모 entered"), "no marketing consent asked: {}", lines[7]);
    let text = String::from_utf8_lossy(&file.data);
    for secret in ["1234-5678", "01012345678", "+8210", "민수", receipt.as_str(), &receipt.replace('-', "")] {
        assert!(!text.contains(secret), "{secret:?} in the export");
    }
    h.cleanup().await;
}

#[tokio::test]
async fn only_winners_are_revealed_and_only_inside_the_retention_period() {
    let h = Harness::new().await;
    let clock = ManualClock::starting_now();
    let api = with_clock(&h, &clock).await;
    let id = h.add(event(EventStatus::Published));
    h.enter(entry(&id, "김민수", "010-1234-5678")).await.expect("enter");
    h.enter(entry(&id, "이영희", "+82 10 2222 3333")).await.expect("enter");

    let participants = expect_code(
        export_as(&api, OWNER, None, export_request(&id, pb::ExportKind::Participants, true)).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&participants), "REVEAL_NOT_ALLOWED");
    let undrawn = expect_code(
        export_as(&api, OWNER, None, export_request(&id, pb::ExportKind::Winners, true)).await,
        Code::FailedPrecondition,
    );
    assert_eq!((reason(&undrawn), metadata(&undrawn, "why")), ("REVEAL_NOT_ALLOWED".into(), "not_drawn".into()));
    let empty =
        export_as(&api, OWNER, None, export_request(&id, pb::ExportKind::Winners, false)).await.expect("masked");
    assert_eq!(lines(&empty.data), [WINNERS_HEADER], "no draw: the header alone");
    let unspecified = expect_code(
        export_as(&api, OWNER, None, export_request(&id, pb::ExportKind::Unspecified, false)).await,
        Code::InvalidArgument,
    );
    assert_eq!(violations(&unspecified), ["kind"]);

    h.events.set_status(&id, EventStatus::Ended);
    api.draw_winners(as_owner(OWNER, draw_request(&id, 2))).await.expect("draw");
    let revealed = export_as(&api, OWNER, Some("reveal-1"), export_request(&id, pb::ExportKind::Winners, true))
        .await
        .expect("reveal");
    let rows = lines(&revealed.data);
    assert_eq!(rows.len(), 3);
    let mut people: Vec<&str> = rows[1..].iter().map(|r| r.split(',').nth(1).unwrap_or_default()).collect();
    people.sort_unstable();
    assert_eq!(people, ["김민수", "이영희"]);
    assert!(rows[1..].iter().any(|r| r.contains(",010-1234-5678,")), "{rows:#?}");
    assert!(rows[1..].iter().any(|r| r.contains(",010-2222-3333,")), "{rows:#?}");
    assert!(rows[1].starts_with("1,") && rows[2].starts_with("2,"));
    assert_eq!(rows[0], WINNERS_HEADER);
    for row in &rows[1..] {
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells.len(), 9, "{row}");
        assert_eq!(cells[5], "미수령 unclaimed", "the claim state: {row}");
        assert_eq!(cells[6].len(), 19, "the claim deadline in Seoul time: {row}");
        assert_eq!(cells[7], "", "not claimed yet: {row}");
    }

    // Retention is 30 days after the draw: the last millisecond reveals, the next does not.
    clock.advance(30 * DAY - Duration::from_millis(1));
    export_as(&api, OWNER, None, export_request(&id, pb::ExportKind::Winners, true)).await.expect("still inside");
    clock.advance(Duration::from_millis(1));
    let over = expect_code(
        export_as(&api, OWNER, None, export_request(&id, pb::ExportKind::Winners, true)).await,
        Code::FailedPrecondition,
    );
    assert_eq!((reason(&over), metadata(&over, "why")), ("REVEAL_NOT_ALLOWED".into(), "retention_over".into()));
    let masked =
        export_as(&api, OWNER, None, export_request(&id, pb::ExportKind::Winners, false)).await.expect("masked");
    assert!(String::from_utf8_lossy(&masked.data).contains("010-****-5678"));
    assert!(!String::from_utf8_lossy(&masked.data).contains("1234"));

    // The scheduler anonymizes; from then on nothing is exported, masked or not.
    let anonymize = pb::AnonymizeEntriesRequest { event_id: id.clone(), create_before: None };
    assert_eq!(
        api.anonymize_entries(Request::new(anonymize)).await.expect("anonymize").into_inner().anonymized_count,
        2
    );
    for (kind, reveal) in
        [(pb::ExportKind::Participants, false), (pb::ExportKind::Winners, false), (pb::ExportKind::Winners, true)]
    {
        let erased = expect_code(
            export_as(&api, OWNER, None, export_request(&id, kind, reveal)).await,
            Code::FailedPrecondition,
        );
        assert_eq!(reason(&erased), "DATA_ERASED", "{kind:?} reveal={reveal}");
    }

    // The audit log outlives the erasure and holds no participant's data.
    let log = list_exports(&api, OWNER, &id, 50, "").await.expect("list");
    let revealed_records: Vec<_> = log.exports.iter().filter(|r| r.revealed).collect();
    assert_eq!(revealed_records.len(), 2, "two revealed exports: {:#?}", log.exports);
    assert!(revealed_records.iter().all(|r| r.kind == pb::ExportKind::Winners as i32 && r.row_count == 2));
    assert!(!format!("{log:?}").contains("1234"));
    h.cleanup().await;
}

#[tokio::test]
async fn every_export_is_recorded_once_per_request_id_newest_first() {
    let h = Harness::new().await;
    let clock = ManualClock::starting_now();
    let api = with_clock(&h, &clock).await;
    let id = h.add(event(EventStatus::Published));
    h.enter_many(&id, 3).await;
    let participants = || export_request(&id, pb::ExportKind::Participants, false);

    // The mesh re-sends a call with its request id: 3 in a row and 8 at once, one record.
    let first = export_as(&api, OWNER, Some("req-A"), participants()).await.expect("export");
    for _ in 0..2 {
        clock.advance(Duration::from_millis(5));
        let again = export_as(&api, OWNER, Some("req-A"), participants()).await.expect("retry");
        assert_eq!(again.export_id, first.export_id, "a retry is the same export");
        assert_eq!(again.data, first.data);
    }
    let retries =
        futures_util::future::join_all((0..8).map(|_| export_as(&api, OWNER, Some("req-B"), participants()))).await;
    let ids: std::collections::HashSet<String> =
        retries.into_iter().map(|r| r.expect("concurrent retry").export_id).collect();
    assert_eq!(ids.len(), 1, "concurrent retries of one request: one record");
    clock.advance(Duration::from_millis(5));
    // A different export reusing an id is still recorded (a client-chosen id hides nothing).
    let winners = export_as(&api, OWNER, Some("req-A"), export_request(&id, pb::ExportKind::Winners, false))
        .await
        .expect("winners");
    assert_ne!(winners.export_id, first.export_id);
    // Calls without a request id are never merged.
    for _ in 0..2 {
        clock.advance(Duration::from_millis(5));
        export_as(&api, OWNER, None, participants()).await.expect("no request id");
    }

    let all = list_exports(&api, OWNER, &id, 0, "").await.expect("list");
    assert_eq!(all.exports.len(), 5, "{:#?}", all.exports);
    assert!(all.next_page_token.is_empty());
    let times: Vec<i64> = all
        .exports
        .iter()
        .map(|r| r.create_time.as_ref().map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000).unwrap_or_default())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    let a = all.exports.iter().find(|r| r.export_id == first.export_id).expect("req-A recorded");
    assert_eq!(
        (a.event_id.as_str(), a.actor_id.as_str(), a.client_address.as_str(), a.kind, a.revealed, a.row_count),
        (id.as_str(), OWNER, "203.0.113.9", pb::ExportKind::Participants as i32, false, 3)
    );
    assert_eq!(all.exports[0].kind, pb::ExportKind::Participants as i32, "the newest is the last call");
    let stored: i64 = kem_kit::store::query("SELECT repeats FROM exports WHERE id = $1")
        .bind(first.export_id.clone())
        .fetch_one(h.store().primary())
        .await
        .expect("row")
        .get("repeats")
        .expect("repeats");
    assert_eq!(stored, 2, "the retries are counted on the one record");

    // Pages of 2: the same records in the same order, and tokens bound to the listing.
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let page = list_exports(&api, OWNER, &id, 2, &token).await.expect("page");
        assert!(page.exports.len() <= 2);
        paged.extend(page.exports.into_iter().map(|r| r.export_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paged, all.exports.iter().map(|r| r.export_id.clone()).collect::<Vec<_>>());
    let participants_token = h.list(OWNER, &id, 1, "").await.expect("participants page").next_page_token;
    let foreign = expect_code(list_exports(&api, OWNER, &id, 2, &participants_token).await, Code::InvalidArgument);
    assert_eq!(violations(&foreign), ["pageToken"]);
    let negative = expect_code(list_exports(&api, OWNER, &id, -1, "").await, Code::InvalidArgument);
    assert_eq!(violations(&negative), ["pageSize"]);
    h.cleanup().await;
}

#[tokio::test]
async fn large_events_export_in_pages() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    // More than two export pages (500): every entry once, numbered in arrival order.
    let entered = h.enter_many(&id, 1_001).await;
    let file =
        export_as(&h.api, OWNER, None, export_request(&id, pb::ExportKind::Participants, false)).await.expect("export");
    let rows = lines(&file.data);
    assert_eq!(rows.len(), 1 + entered.len());
    for (i, row) in rows[1..].iter().enumerate() {
        assert!(row.starts_with(&format!("{},", i + 1)), "row {i}: {row}");
    }
    let listed = h.all_entries(&id).await;
    for (row, entry) in rows[1..].iter().zip(&listed) {
        assert!(row.contains(&entry.masked_phone), "arrival order as ListParticipants: {row}");
    }
    let log = list_exports(&h.api, OWNER, &id, 1, "").await.expect("log");
    assert_eq!(log.exports[0].row_count, 1_001);
    h.cleanup().await;
}
