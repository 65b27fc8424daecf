//! What winners and participants are told by SMS, in Korean: the winner's notice (store, event,
//! claim code, deadline as a date in Asia/Seoul, the claim page) and the one-time code message.
//! The texts name only what the participant gave the store (no advertising: they go out as
//! `COMM`, PROVIDERS.md §8).

use super::claim::ClaimCode;
use super::event::Millis;
use super::otp::OneTimeCode;

/// Korea Standard Time: UTC+9, no daylight saving.
const KST_OFFSET_S: i64 = 9 * 3600;

/// The calendar date and time of `ms`: (year, month, day, hour, minute, second) in UTC, or in
/// Asia/Seoul when `seoul`. `None` for instants outside the calendar's range.
pub fn civil(ms: Millis, seoul: bool) -> Option<(i32, u8, u8, u8, u8, u8)> {
    let offset = if seoul { KST_OFFSET_S } else { 0 };
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000).checked_add(offset)?).ok()?;
    Some((t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second()))
}

/// `2026년 12월 7일 23:59` — `ms` as a date and time in Asia/Seoul.
pub fn seoul_datetime(ms: Millis) -> String {
    civil(ms, true).map_or_else(String::new, |(y, mo, d, h, mi, _)| format!("{y}년 {mo}월 {d}일 {h:02}:{mi:02}"))
}

/// The claim page of an event: `<entry_url>/claim`.
pub fn claim_url(entry_url: &str) -> String {
    format!("{}/claim", entry_url.trim_end_matches('/'))
}

/// The winner's notice.
pub fn winner_text(store: &str, title: &str, code: &ClaimCode, deadline_ms: Millis, entry_url: &str) -> String {
    let store = if store.trim().is_empty() { "kem" } else { store.trim() };
    let mut text = format!(
        "[{store}] '{}' 이벤트에 당첨되셨습니다.\n당첨 코드: {}\n수령 기한: {}까지",
        title.trim(),
        code.display(),
        seoul_datetime(deadline_ms)
    );
    if !entry_url.trim().is_empty() {
        text.push_str(&format!("\n수령 신청: {}", claim_url(entry_url.trim())));
    }
    text
}

/// The one-time code message (short enough for an SMS).
pub fn code_text(store: &str, code: &OneTimeCode) -> String {
    let store = if store.trim().is_empty() { "kem" } else { store.trim() };
    format!("[{store}] 인증번호 {} (5분 안에 입력해 주세요)", code.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_are_seoul_dates() {
        // 2025-12-07T14:59:00Z is 23:59 in Seoul.
        assert_eq!(seoul_datetime(1_765_119_540_000), "2025년 12월 7일 23:59");
    }

    #[test]
    fn the_winner_notice_names_store_event_code_deadline_and_claim_page() {
        let code = ClaimCode::parse("ABCD2345").expect("code");
        let text = winner_text("카페 온기", "점심 이벤트", &code, 1_765_119_540_000, "https://kem.example/e/1/");
        assert!(text.starts_with("[카페 온기] '점심 이벤트'"), "{text}");
        assert!(text.contains("ABCD-2345") && text.contains("2025년 12월 7일"), "{text}");
        assert!(text.ends_with("https://kem.example/e/1/claim"), "{text}");
    }
}
