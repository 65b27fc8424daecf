//! The participant pages added for prize claims, "my entry" (lookup and withdrawal) and phone
//! verification, through a real edge in front of the scripted services of [`crate::pages`]
//! (which implement ClaimPrize, SendParticipantCode, LookupEntry, WithdrawEntry and
//! ExportParticipants as the contracts describe); the CSV download headers; and the entry limits
//! sized for a shop's Wi-Fi, with hostile clients running beside participants.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use kem_gateway::protect::{EdgeLimits, RateLimit, TrustedProxies};
use kem_proto::kem::participation::v1::CodePurpose;

use crate::pages::{
    CODE, DRAWN, EXHAUSTED_CODE, EXPIRED_WINNER, IMAGE_ORIGIN, LOST_RECEIPT, OPEN, OTHER, Pages, REDRAWN_WINNER,
    UNKNOWN, VERIFIED, WINNER, WON_RECEIPT, entry_form, hidden, pages, start,
};
use crate::support::client;

/// Limits no test of the pages' logic runs into (the limits have their own tests below).
fn generous() -> EdgeLimits {
    let mut limits = EdgeLimits::default();
    let open = RateLimit::per_second(10_000, 10_000).expect("limit");
    limits.per_ip = open;
    limits.default_route.limit = open;
    for row in limits.routes.values_mut() {
        row.limit = open;
    }
    limits
}

/// What the alert boxes of a page say (to compare the wording of two answers).
fn alerts(page: &str) -> Vec<&str> {
    page.match_indices("role=\"alert\">")
        .map(|(at, marker)| {
            let rest = &page[at + marker.len()..];
            &rest[..rest.find("</div>").unwrap_or(rest.len())]
        })
        .collect()
}

fn claim(id: &str) -> String {
    format!("/e/{id}/claim")
}

fn me(id: &str) -> String {
    format!("/e/{id}/me")
}

/// Posts `form` in English.
async fn post_en(pages: &Pages, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    pages.post_with(path, form, &[("origin", &pages.origin()), ("accept-language", "en")]).await
}

#[tokio::test]
async fn the_claim_page_asks_for_phone_and_code_and_shows_the_claim_in_korean_or_english() {
    let pages = pages().await;
    let path = claim(DRAWN);
    let (status, headers, korean) = pages.get(&path, "ko").await;
    assert_eq!(status, 200, "{korean}");
    assert!(korean.contains("<html lang=\"ko\">") && korean.contains("<h1>당첨 경품 받기</h1>"), "{korean}");
    assert!(korean.contains(&format!("action=\"/e/{DRAWN}/claim\"")) && korean.contains("name=\"claim_code\""));
    assert!(korean.contains("name=\"email\" tabindex=\"-1\""), "the honeypot");
    assert_eq!(headers["cache-control"], "no-store", "a form with a per-render id");
    assert!(headers["content-security-policy"].to_str().expect("csp").contains("form-action 'self'"));
    let rid = hidden(&korean, "rid");
    assert_eq!(rid.len(), 32);
    let (_, headers, english) = pages.get(&path, "en-US,en;q=0.9").await;
    assert!(english.contains("<html lang=\"en\">") && english.contains("Claim your prize"), "{english}");
    assert_eq!(headers["content-language"], "en");
    assert_ne!(hidden(&english, "rid"), rid, "every render has its own id");

    let form = [("phone", "010-1234-5678"), ("claim_code", "ab23-cd45"), ("email", ""), ("rid", rid.as_str())];
    let (status, claimed) = pages.post(&path, &form).await;
    assert_eq!(status, 200, "{claimed}");
    assert!(claimed.contains("당첨 확인이 완료되었습니다") && claimed.contains("<dt>순위</dt><dd>1</dd>"), "{claimed}");
    assert!(claimed.contains("아메리카노 &lt;1잔&gt;") && claimed.contains("김*&lt;b&gt;수&lt;/b&gt;"), "escaped");
    assert!(claimed.contains("2026년 12월 7일 (월) 19:10"), "the claim time in Seoul");
    let (status, english) = post_en(&pages, &path, &form).await;
    assert_eq!(status, 200);
    assert!(english.contains("Your prize is claimed") && english.contains("Mon 7 Dec 2026, 19:10 KST"), "{english}");
    let claims = pages.seen.claims.lock().clone();
    assert_eq!(claims.len(), 2);
    assert_eq!(claims[0].0, rid, "the render's id is the call's request id");
    assert_eq!(claims[0].2.claim_code, "ab23-cd45", "sent as typed: case and hyphens are the service's to ignore");
    assert_eq!((claims[0].2.phone.as_str(), claims[0].1.as_str()), ("010-1234-5678", "127.0.0.1"));
    pages.shutdown.trigger();
}

#[tokio::test]
async fn claim_refusals_are_clear_and_a_wrong_guess_learns_nothing() {
    let pages = start(generous(), TrustedProxies::none()).await;
    let path = claim(DRAWN);
    let post = |phone: &'static str, code: &'static str| {
        let pages = &pages;
        let path = path.clone();
        async move { pages.post(&path, &[("phone", phone), ("claim_code", code), ("email", "")]).await }
    };
    // A phone that won nothing, and the winner's phone with a wrong code: the same words.
    let (status, stranger) = post("010-4040-4040", "AB23CD45").await;
    assert_eq!(status, 422, "{stranger}");
    let (status, wrong) = post("010-1234-5678", "ZZ23CD45").await;
    assert_eq!(status, 422);
    assert_eq!(alerts(&stranger), alerts(&wrong), "nothing tells which part was wrong");
    assert!(wrong.contains("휴대전화 번호 또는 당첨 코드가 맞지 않습니다"), "{wrong}");
    assert!(
        wrong.contains("value=\"010-1234-5678\"") && wrong.contains("value=\"ZZ23CD45\""),
        "what was typed is kept"
    );

    // Expired: the deadline (the draw plus the event's 7 claim days) in Seoul time; redrawn.
    let (status, expired) = post("010-2222-0000", EXPIRED_WINNER.1).await;
    assert_eq!(status, 409, "{expired}");
    assert!(
        expired.contains("당첨 확인 기한이 지났습니다") && expired.contains("2026년 12월 14일 (월) 18:10"),
        "{expired}"
    );
    let (_, expired_en) = post_en(&pages, &path, &[("phone", "01022220000"), ("claim_code", EXPIRED_WINNER.1)]).await;
    assert!(expired_en.contains("Deadline: Mon 14 Dec 2026, 18:10 KST"), "{expired_en}");
    let (status, redrawn) = post("010-3333-0000", REDRAWN_WINNER.1).await;
    assert_eq!(status, 409);
    assert!(redrawn.contains("다른 참여자에게 돌아갔습니다") && !redrawn.contains("<form"), "{redrawn}");
    assert_eq!(
        (EXPIRED_WINNER.0, REDRAWN_WINNER.0, WINNER.0),
        ("01022220000", "01033330000", "01012345678"),
        "the scripted winners typed above"
    );

    // Too many wrong codes (5 for a phone): when to try again, with Retry-After.
    for _ in 0..4 {
        assert_eq!(post("010-1234-5678", "YY23CD45").await.0, 422);
    }
    let (status, locked) = post("010-1234-5678", "AB23CD45").await;
    assert_eq!(status, 429, "{locked}");
    assert!(locked.contains("잘못 입력한 횟수가 너무 많습니다") && locked.contains("(약 60분 뒤)"), "{locked}");
    let response = client()
        .post(pages.url(&path))
        .header("origin", pages.origin())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("phone=010-1234-5678&claim_code=AB23CD45")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "3600", "the service's RetryInfo");

    // Malformed input is refused at the edge, by its field, without a call.
    let calls = pages.seen.claims.lock().len();
    let (status, page) = post("", "AB").await;
    assert_eq!(status, 422);
    assert!(page.contains("id=\"phone-error\"") && page.contains("id=\"claim-code-error\""), "{page}");
    assert_eq!(pages.seen.claims.lock().len(), calls);
    pages.shutdown.trigger();
}

#[tokio::test]
async fn my_entry_by_receipt_and_by_phone_then_a_withdrawal_with_a_confirmation_step() {
    let pages = start(generous(), TrustedProxies::none()).await;
    let (rid, terms) = pages.render(OPEN).await;
    let (status, receipt) = pages.post(&format!("/e/{OPEN}"), &entry_form(&rid, &terms, "010-1234-5678")).await;
    assert_eq!(status, 200);
    assert!(receipt.contains(&format!("href=\"/e/{OPEN}/me\"")), "the receipt links my entry: {receipt}");

    let path = me(OPEN);
    let (status, headers, page) = pages.get(&path, "ko").await;
    assert_eq!(status, 200);
    assert!(page.contains("접수 번호로 확인") && page.contains("value=\"send_code\">인증번호 받기"), "{page}");
    assert_eq!(headers["cache-control"], "no-store");
    let (_, _, english) = pages.get(&path, "en").await;
    assert!(english.contains("With your receipt code") && english.contains("Send me a code"), "{english}");
    let rid = hidden(&page, "rid");

    // By receipt code (as typed: lower case is fine): entered, not withdrawable without the phone.
    let (status, standing) =
        pages.post(&path, &[("action", "receipt"), ("receipt", "rcpt0-23456"), ("email", ""), ("rid", &rid)]).await;
    assert_eq!(status, 200, "{standing}");
    assert!(standing.contains("응모되어 있습니다") && standing.contains("2026년 12월 7일 (월) 18:00"), "{standing}");
    assert!(standing.contains("#by-phone") && !standing.contains("value=\"withdraw\""));
    let (_, won) = pages.post(&me(DRAWN), &[("action", "receipt"), ("receipt", WON_RECEIPT)]).await;
    assert!(won.contains("축하합니다") && won.contains("순위: 2") && won.contains("확인 대기"), "{won}");
    assert!(
        won.contains("확인 기한: 2026년 12월 14일 (월) 18:10") && won.contains(&format!("href=\"/e/{DRAWN}/claim\""))
    );
    assert!(won.contains("&lt;b&gt;김&lt;/b&gt;*수") && !won.contains("<b>김"), "names from the service are escaped");
    let (_, won_en) = post_en(&pages, &me(DRAWN), &[("action", "receipt"), ("receipt", WON_RECEIPT)]).await;
    assert!(won_en.contains("Congratulations") && won_en.contains("Claim by: Mon 14 Dec 2026, 18:10 KST"), "{won_en}");
    let (_, lost) = pages.post(&me(DRAWN), &[("action", "receipt"), ("receipt", LOST_RECEIPT)]).await;
    assert!(lost.contains("당첨되지 않았습니다"), "{lost}");
    let (status, unknown) = pages.post(&path, &[("action", "receipt"), ("receipt", "ZZZZZ-ZZZZZ")]).await;
    assert_eq!(status, 422);
    assert!(unknown.contains("일치하는 응모를 찾지 못했습니다"), "{unknown}");

    // A code for a phone that entered, and for one that did not: the same answer, one SMS.
    let send = |phone: &'static str| [("action", "send_code"), ("phone", phone), ("email", "")];
    let (status, entered) = pages.post(&path, &send("010-1234-5678")).await;
    let (other_status, never) = pages.post(&path, &send("010-8888-0000")).await;
    assert_eq!((status, other_status), (200, 200));
    assert!(entered.contains("이 번호로 응모하셨다면 인증번호를 문자로 보냈습니다"), "{entered}");
    let sent_part =
        |page: &str| page.split("role=\"status\">").nth(1).map(|r| r.split("</div>").next().map(str::to_owned));
    let (a, b) = (sent_part(&entered).flatten().expect("notice"), sent_part(&never).flatten().expect("notice"));
    assert_eq!(a.split("유효 시간").next(), b.split("유효 시간").next(), "the same words either way");
    assert!(entered.contains("name=\"code\"") && never.contains("name=\"code\""), "the code step either way");
    assert_eq!(pages.seen.sms.lock().len(), 1, "an SMS only to the phone that entered");
    let purposes: Vec<i32> = pages.seen.code_requests.lock().iter().map(|(_, _, p)| *p).collect();
    assert_eq!(purposes, vec![CodePurpose::Lookup as i32; 2]);

    // A wrong code, then the right one (typed with a space): the entry, with the withdraw button.
    let by_phone =
        |code: &'static str| [("action", "phone"), ("phone", "010-1234-5678"), ("code", code), ("email", "")];
    let (status, nothing) = pages.post(&path, &by_phone("000000")).await;
    assert_eq!(status, 422);
    assert_eq!(alerts(&nothing), alerts(&unknown), "a wrong code reads like no entry at all");
    let (status, standing) = pages.post(&path, &by_phone("123 456")).await;
    assert_eq!(status, 200, "{standing}");
    assert!(standing.contains("홍*&lt;i&gt;동&lt;/i&gt;") && standing.contains("value=\"withdraw\""), "{standing}");
    assert_eq!((hidden(&standing, "phone"), hidden(&standing, "code")), ("010-1234-5678".into(), "123 456".into()));

    // Withdrawing asks first (no call), then withdraws with the render's id.
    let step_rid = hidden(&standing, "rid");
    let ask = [("action", "withdraw"), ("phone", "010-1234-5678"), ("code", "123 456"), ("rid", step_rid.as_str())];
    let (status, confirm) = pages.post(&path, &ask).await;
    assert_eq!(status, 200);
    assert!(confirm.contains("되돌릴 수 없습니다") && confirm.contains("value=\"confirm_withdraw\""), "{confirm}");
    assert!(pages.seen.withdrawals.lock().is_empty(), "asking is no withdrawal");
    let confirmed =
        [("action", "confirm_withdraw"), ("phone", "010-1234-5678"), ("code", "123 456"), ("rid", &step_rid)];
    let (status, withdrawn) = pages.post(&path, &confirmed).await;
    assert_eq!(status, 200, "{withdrawn}");
    assert!(
        withdrawn.contains("응모가 취소되었습니다") && withdrawn.contains("2026년 12월 7일 (월) 17:30"),
        "{withdrawn}"
    );
    let withdrawals = pages.seen.withdrawals.lock().clone();
    assert_eq!(withdrawals.len(), 1);
    assert_eq!((withdrawals[0].0.as_str(), withdrawals[0].1.code.as_str()), (step_rid.as_str(), CODE), "digits only");
    let (_, english) = post_en(&pages, &path, &confirmed).await;
    assert!(english.contains("Your entry is withdrawn"), "withdrawing again answers OK: {english}");
    let (_, after) = pages.post(&path, &by_phone("123456")).await;
    assert!(after.contains("취소된 응모입니다"), "{after}");

    // After the draw there is nothing to withdraw; a code out of attempts says when to retry.
    pages.seen.entries.lock().insert((DRAWN.into(), "01077770000".into()), ("r".into(), "RCPT9-99999".into()));
    pages.seen.sms.lock().insert((DRAWN.into(), "01077770000".into()), 0);
    let drawn = [("action", "confirm_withdraw"), ("phone", "010-7777-0000"), ("code", CODE)];
    let (status, page) = pages.post(&me(DRAWN), &drawn).await;
    assert_eq!(status, 409);
    assert!(page.contains("이미 추첨이 끝나 응모를 취소할 수 없습니다"), "{page}");
    let (status, page) = pages.post(&path, &by_phone(EXHAUSTED_CODE)).await;
    assert_eq!(status, 429);
    assert!(page.contains("잘못 입력한 횟수가 너무 많습니다") && page.contains("(약 5분 뒤)"), "{page}");
    pages.shutdown.trigger();
}

#[tokio::test]
async fn entering_an_event_that_verifies_phones_sends_a_code_and_keeps_what_was_typed() {
    let pages = start(generous(), TrustedProxies::none()).await;
    let path = format!("/e/{VERIFIED}");
    let (_, _, page) = pages.get(&path, "ko").await;
    assert!(page.contains("value=\"send_code\" class=\"secondary\" formnovalidate>인증번호 받기"), "{page}");
    assert!(page.contains("name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\""));
    // Pressing Enter in a field uses the first button of the form: it must enter, not send an SMS.
    let form = &page[page.find("<form").expect("form")..];
    let first = &form[form.find("<button").expect("button")..];
    assert!(first.starts_with("<button type=\"submit\" name=\"action\" value=\"enter\""), "{first}");
    let (_, _, english) = pages.get(&path, "en").await;
    assert!(english.contains("Send me a code") && english.contains("Verification code"));
    let (_, _, plain) = pages.get(&format!("/e/{OPEN}"), "ko").await;
    assert!(!plain.contains("name=\"code\"") && !plain.contains("send_code"), "only events that verify phones");

    let (rid, terms) = (hidden(&page, "rid"), hidden(&page, "terms_version"));
    // "Send me a code" before ticking the boxes (the button skips the browser's checks).
    let mut ask = entry_form(&rid, &terms, "010-2323-4545");
    ask.retain(|(k, _)| !matches!(*k, "privacy" | "age14"));
    ask.push(("action", "send_code"));
    let (status, sent) = pages.post(&path, &ask).await;
    assert_eq!(status, 200, "{sent}");
    assert!(sent.contains("인증번호를 문자로 보냈습니다") && sent.contains("유효 시간: "), "{sent}");
    assert!(sent.contains("value=\"010-2323-4545\"") && sent.contains("value=\"홍길동\""), "what was typed is kept");
    assert_eq!(hidden(&sent, "rid"), rid, "still the same entry attempt");
    assert_eq!(pages.seen.enters.load(Ordering::SeqCst), 0);
    assert_eq!(
        pages.seen.code_requests.lock().clone(),
        vec![(VERIFIED.to_owned(), "01023234545".to_owned(), CodePurpose::Entry as i32)]
    );
    // Again at once: the service's one-code-a-minute rule, with the time to retry.
    let response = client()
        .post(pages.url(&path))
        .header("origin", pages.origin())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_urlencoded::Serializer::new(String::new()).extend_pairs(&ask).finish())
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "60");
    let limited = response.text().await.expect("page");
    assert!(limited.contains("요청이 너무 잦습니다") && limited.contains("(약 1분 뒤)"), "{limited}");
    assert!(limited.contains("value=\"010-2323-4545\""));

    // Entering without the code: refused at the edge, by the code field.
    let entry = entry_form(&rid, &terms, "010-2323-4545");
    let (status, page) = pages.post(&path, &entry).await;
    assert_eq!(status, 422);
    assert!(
        page.contains("id=\"code-error\"") && page.contains("문자로 받은 인증번호 6자리를 입력해 주세요"),
        "{page}"
    );
    assert_eq!(pages.seen.enters.load(Ordering::SeqCst), 0);
    // A wrong code: the service's VERIFICATION_FAILED, by the code field, values kept.
    let mut wrong = entry.clone();
    wrong.push(("code", "654321"));
    let (status, page) = pages.post(&path, &wrong).await;
    assert_eq!(status, 422);
    assert!(page.contains("인증번호가 맞지 않거나 만료되었습니다") && page.contains("value=\"654321\""), "{page}");
    assert!(page.contains("aria-invalid=\"true\" aria-describedby=\"code-hint code-error\""));
    // The right code (typed with a hyphen): entered, the digits sent as Enter's verification_code.
    let mut right = entry.clone();
    right.push(("code", "123-456"));
    let (status, receipt) = pages.post(&path, &right).await;
    assert_eq!(status, 200, "{receipt}");
    assert!(receipt.contains("class=\"receipt\""));
    let requests = pages.seen.requests.lock().clone();
    let last = requests.last().expect("enter");
    assert_eq!((last.0.as_str(), last.2.verification_code.as_str()), (rid.as_str(), CODE));
    pages.shutdown.trigger();
}

#[tokio::test]
async fn the_new_forms_refuse_other_sites_big_and_foreign_bodies_and_bots_before_any_call() {
    let pages = pages().await;
    for path in [claim(DRAWN), me(OPEN), format!("/e/{VERIFIED}")] {
        let form = [("phone", "010-1234-5678"), ("claim_code", "AB23CD45"), ("action", "send_code")];
        for headers in [vec![("origin", "https://evil.example")], vec![("sec-fetch-site", "cross-site")]] {
            let (status, page) = pages.post_with(&path, &form, &headers).await;
            assert_eq!(status, 403, "{path} {headers:?}");
            assert!(page.contains("다른 사이트에서 보낸"), "{page}");
        }
        let send = |content_type: &'static str, body: String| {
            client()
                .post(pages.url(&path))
                .header("origin", pages.origin())
                .header("content-type", content_type)
                .body(body)
                .send()
        };
        let big =
            send("application/x-www-form-urlencoded", format!("phone={}", "1".repeat(9 * 1024))).await.expect("POST");
        assert_eq!(big.status().as_u16(), 413, "{path}");
        let json = send("application/json", "{\"phone\":\"010\"}".to_owned()).await.expect("POST");
        assert_eq!(json.status().as_u16(), 415, "{path}");
        let deleted = client().delete(pages.url(&path)).send().await.expect("DELETE");
        assert_eq!(deleted.status().as_u16(), 405);
        assert_eq!(deleted.headers()["allow"], "GET, HEAD, POST");
    }
    // Bots filling the honeypot are told what anyone is told, and nothing is sent.
    let bot = |extra: (&'static str, &'static str)| {
        vec![("phone", "010-1234-5678"), ("claim_code", WINNER.1), ("email", "bot@example.com"), extra]
    };
    let (status, page) = pages.post(&claim(DRAWN), &bot(("x", "y"))).await;
    assert_eq!(status, 422);
    assert!(page.contains("휴대전화 번호 또는 당첨 코드가 맞지 않습니다"));
    let (status, page) = pages.post(&me(OPEN), &bot(("action", "send_code"))).await;
    assert_eq!(status, 200);
    assert!(page.contains("이 번호로 응모하셨다면"), "{page}");
    let (status, page) = pages.post(&me(OPEN), &bot(("action", "receipt"))).await;
    assert_eq!(status, 422);
    assert!(page.contains("일치하는 응모를 찾지 못했습니다"));
    let (status, page) = pages.post(&format!("/e/{VERIFIED}"), &bot(("action", "send_code"))).await;
    assert_eq!(status, 200);
    assert!(page.contains("인증번호를 문자로 보냈습니다"), "{page}");
    assert!(pages.seen.claims.lock().is_empty() && pages.seen.code_requests.lock().is_empty());
    assert_eq!(pages.seen.lookups.load(Ordering::SeqCst), 0);
    // Ids: garbage is 400, unknown events 404, before any form.
    assert_eq!(pages.get("/e/nope/claim", "ko").await.0, 400);
    assert_eq!(pages.get("/e/%3Cscript%3E/me", "ko").await.0, 400);
    assert_eq!(pages.get(&claim(UNKNOWN), "ko").await.0, 404);
    assert_eq!(pages.post(&me(UNKNOWN), &[("action", "receipt"), ("receipt", "AB2CD-3EF4G")]).await.0, 404);
    pages.shutdown.trigger();
}

#[tokio::test]
async fn garbage_in_every_field_gets_a_clear_message_never_a_500() {
    let pages = start(generous(), TrustedProxies::none()).await;
    let long = "9".repeat(5000);
    let garbage: [&str; 10] = [
        "",
        "\u{0}",
        "a\r\nb",
        &long,
        "\u{202E}123456",
        "<script>alert(1)</script>",
        "💣💣",
        "%00",
        "\u{7}",
        "' OR 1=1 --",
    ];
    for g in garbage {
        let cases: Vec<(String, Vec<(&str, &str)>)> = vec![
            (claim(DRAWN), vec![("phone", g), ("claim_code", "AB23CD45")]),
            (claim(DRAWN), vec![("phone", "010-5555-0000"), ("claim_code", g)]),
            (claim(DRAWN), vec![("phone", "010-5555-0000"), ("claim_code", "AB23CD45"), ("rid", g)]),
            (me(OPEN), vec![("action", "receipt"), ("receipt", g)]),
            (me(OPEN), vec![("action", "send_code"), ("phone", g)]),
            (me(OPEN), vec![("action", "phone"), ("phone", "010-5555-0000"), ("code", g)]),
            (me(OPEN), vec![("action", "withdraw"), ("phone", g), ("code", g)]),
            (me(OPEN), vec![("action", "confirm_withdraw"), ("phone", "010-5555-0000"), ("code", g)]),
            (me(OPEN), vec![("action", g), ("receipt", g), ("phone", g), ("code", g)]),
            (format!("/e/{VERIFIED}"), vec![("action", "send_code"), ("phone", g)]),
            (
                format!("/e/{VERIFIED}"),
                vec![("action", "enter"), ("name", "홍길동"), ("phone", "010-5555-0000"), ("code", g)],
            ),
            (format!("/e/{VERIFIED}"), vec![("action", g), ("phone", g), ("code", g)]),
        ];
        for (path, form) in cases {
            let (status, page) = pages.post(&path, &form).await;
            // 413 when two 5,000-character fields exceed the form's 8 KiB.
            assert!([413, 422, 429].contains(&status), "{path} {form:?}: {status} {page}");
            assert!(page.contains("role=\"alert\""), "{path} {form:?}: a message says what is wrong: {page}");
            assert!(!page.contains("<script>alert"), "{path}: escaped");
        }
    }
    // Also on the query string and the path of the new pages.
    for path in
        ["/e/x/claim?phone=%00", &format!("/e/{OPEN}/me?%FF=%00"), &format!("/e/{DRAWN}/claim?{}", "a".repeat(4000))]
    {
        let (status, _, _) = pages.get(path, "ko").await;
        assert!(status < 500, "{path}: {status}");
    }
    pages.shutdown.trigger();
}

#[tokio::test]
async fn a_participant_is_unharmed_while_an_attacker_hammers_the_claim_page() {
    let trusted = TrustedProxies::parse(["127.0.0.1/32"]).expect("proxies");
    let pages = Arc::new(start(EdgeLimits::default(), trusted).await);
    const ATTACKER: &str = "203.0.113.77";
    const PARTICIPANT: &str = "198.51.100.9";

    let attacker = {
        let pages = pages.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for n in 0..60 {
                let code = format!("Q{n:07}");
                let form = [("phone", "010-6666-0000"), ("claim_code", code.as_str()), ("email", "")];
                let headers = [("x-forwarded-for", ATTACKER), ("origin", "https://kem.example")];
                statuses.push(pages.post_with(&claim(DRAWN), &form, &headers).await.0);
            }
            statuses
        })
    };
    // The participant, meanwhile: enters, opens the claim page, claims.
    let headers = [("x-forwarded-for", PARTICIPANT)];
    let page = client()
        .get(pages.url(&format!("/e/{OPEN}")))
        .header(headers[0].0, headers[0].1)
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("page");
    let (rid, terms) = (hidden(&page, "rid"), hidden(&page, "terms_version"));
    let (status, receipt) = pages
        .post_with(
            &format!("/e/{OPEN}"),
            &entry_form(&rid, &terms, "010-1212-3434"),
            &[headers[0], ("origin", &pages.origin())],
        )
        .await;
    assert_eq!(status, 200, "{receipt}");
    let claim_page =
        client().get(pages.url(&claim(DRAWN))).header(headers[0].0, headers[0].1).send().await.expect("GET");
    assert_eq!(claim_page.status().as_u16(), 200);
    let form = [("phone", "010-1234-5678"), ("claim_code", WINNER.1), ("email", "")];
    let (status, claimed) = pages.post_with(&claim(DRAWN), &form, &[headers[0], ("origin", &pages.origin())]).await;
    assert_eq!(status, 200, "{claimed}");

    let statuses = attacker.await.expect("attacker");
    assert!(statuses.iter().all(|s| [422, 429].contains(s)), "{statuses:?}");
    assert!(statuses.contains(&429), "the attacker ran into the claim limit of its address: {statuses:?}");
    let claims = pages.seen.claims.lock().clone();
    let from_attacker = claims.iter().filter(|(_, ip, _)| ip == ATTACKER).count();
    assert!(from_attacker <= 15, "the edge stopped the rest before the service: {from_attacker} reached it");
    assert!(claims.iter().any(|(_, ip, c)| ip == PARTICIPANT && c.claim_code == WINNER.1));
    pages.shutdown.trigger();
}

#[tokio::test]
async fn the_21st_customer_on_a_shops_wifi_enters_and_each_event_keeps_its_own_budget() {
    let trusted = TrustedProxies::parse(["127.0.0.1/32"]).expect("proxies");
    let pages = start(EdgeLimits::default(), trusted).await;
    const SHOP: &str = "198.51.100.20";
    const BOT: &str = "203.0.113.99";
    for n in 0..25 {
        let page = client()
            .get(pages.url(&format!("/e/{OPEN}")))
            .header("x-forwarded-for", SHOP)
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .expect("page");
        let phone = format!("010-4000-{n:04}");
        let (rid, terms) = (hidden(&page, "rid"), hidden(&page, "terms_version"));
        let (status, receipt) = pages
            .post_with(
                &format!("/e/{OPEN}"),
                &entry_form(&rid, &terms, &phone),
                &[("x-forwarded-for", SHOP), ("origin", &pages.origin())],
            )
            .await;
        assert_eq!(status, 200, "customer {} on the shop's Wi-Fi: {receipt}", n + 1);
    }
    // A bot on another address uses up its budget for one event...
    let mut statuses = Vec::new();
    for _ in 0..70 {
        statuses.push(pages.post_with(&format!("/e/{OPEN}"), &[("name", "x")], &[("x-forwarded-for", BOT)]).await.0);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    // ...and still has one for another event; the shop's customers are not affected either.
    let (status, _) = pages.post_with(&format!("/e/{OTHER}"), &[("name", "x")], &[("x-forwarded-for", BOT)]).await;
    assert_eq!(status, 422, "another event has its own budget");
    let (status, _) = pages.post_with(&format!("/e/{OPEN}"), &[("name", "x")], &[("x-forwarded-for", SHOP)]).await;
    assert_eq!(status, 422, "the shop's address is not the bot's");
    pages.shutdown.trigger();
}

#[tokio::test]
async fn csv_exports_download_with_a_safe_file_name_and_are_never_stored() {
    let pages = pages().await;
    let token = pages.issuer.issue("owner-1", Default::default()).expect("token").0;
    let response = client()
        .get(pages.url(&format!("/api/v1/events/{OPEN}/participants:export?kind=EXPORT_KIND_WINNERS")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status().as_u16(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-store", "personal data: no cache keeps it");
    let disposition = headers["content-disposition"].to_str().expect("ascii");
    assert!(disposition.starts_with("attachment; filename=\"___ _"), "{disposition}");
    assert!(disposition.contains("filename*=UTF-8''%EB%8B%B9%EC%B2%A8%EC%9E%90%20_"), "{disposition}");
    assert!(disposition.ends_with("_.._x.csv"), "no path, no quote, no line break survives: {disposition}");
    assert_eq!(disposition.matches('"').count(), 2, "{disposition}");
    assert!(!disposition.contains('/') && !disposition.contains('\\'), "{disposition}");
    let body = response.bytes().await.expect("body");
    assert_eq!(body.get(..3), Some(&b"\xEF\xBB\xBF"[..]), "the bytes as the service made them");
    // Without a token there is no file.
    let anonymous =
        client().get(pages.url(&format!("/api/v1/events/{OPEN}/participants:export"))).send().await.expect("GET");
    assert_eq!(anonymous.status().as_u16(), 401);
    pages.shutdown.trigger();
}

#[tokio::test]
async fn the_new_pages_weigh_far_less_than_200_kb() {
    let pages = start(generous(), TrustedProxies::none()).await;
    let (_, _, entry) = pages.get(&format!("/e/{OPEN}"), "ko").await;
    let css = entry.split("<link rel=\"stylesheet\" href=\"").nth(1).and_then(|r| r.split('"').next()).expect("css");
    let (_, _, stylesheet) = pages.get(css, "ko").await;
    let (rid, terms) = pages.render(OPEN).await;
    assert_eq!(pages.post(&format!("/e/{OPEN}"), &entry_form(&rid, &terms, "010-1234-5678")).await.0, 200);
    let _ = pages.post(&me(OPEN), &[("action", "send_code"), ("phone", "010-1234-5678")]).await;
    let mut weighed = vec![
        ("claim form", pages.get(&claim(DRAWN), "ko").await.2),
        ("my entry", pages.get(&me(OPEN), "ko").await.2),
        ("entry form with phone verification", pages.get(&format!("/e/{VERIFIED}"), "ko").await.2),
        ("winners with claim states and 2 draws", pages.get(&format!("/e/{DRAWN}/winners"), "ko").await.2),
    ];
    let posted = [
        ("claimed", claim(DRAWN), vec![("phone", "010-1234-5678"), ("claim_code", WINNER.1)]),
        ("my entry: standing", me(OPEN), vec![("action", "phone"), ("phone", "010-1234-5678"), ("code", CODE)]),
        ("withdrawal confirmation", me(OPEN), vec![("action", "withdraw"), ("phone", "010-1234-5678"), ("code", CODE)]),
    ];
    for (label, path, form) in posted {
        let (status, page) = pages.post(&path, &form).await;
        assert_eq!(status, 200, "{label}: {page}");
        weighed.push((label, page));
    }
    for (label, page) in &weighed {
        let weight = page.len() + stylesheet.len();
        println!("{label}: {} bytes of HTML + {} bytes of CSS = {weight} bytes", page.len(), stylesheet.len());
        assert!(weight < 32 * 1024, "{label}: {weight} bytes");
        assert!(!page.contains("<script"), "{label}: no JavaScript");
        let absolute: Vec<&str> =
            page.match_indices("http").map(|(at, _)| &page[at..(at + 40).min(page.len())]).collect();
        assert!(absolute.iter().all(|url| url.starts_with(IMAGE_ORIGIN)), "{label}: {absolute:?}");
    }
    pages.shutdown.trigger();
}
