//! The pages' two languages: Korean (the default and the authoritative text) and English when the
//! browser prefers it, and dates as participants read them: Asia/Seoul local time.

use http::HeaderMap;
use time::{OffsetDateTime, UtcOffset, Weekday};

/// A page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// 한국어 (default).
    Ko,
    /// English.
    En,
}

impl Lang {
    /// The `lang` attribute value.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ko => "ko",
            Lang::En => "en",
        }
    }

    /// `ko` or `en`, whichever is this language.
    pub fn pick(self, ko: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Ko => ko,
            Lang::En => en,
        }
    }

    /// The language `Accept-Language` prefers: the highest q-value among Korean and English
    /// (`ko`, `ko-KR`, `en`, `en-US`, …; `*` counts as Korean), the earlier one on a tie, Korean
    /// when neither is acceptable or the header is missing or unreadable. `q=0` means "not this".
    pub fn negotiate(headers: &HeaderMap) -> Lang {
        let mut best: Option<(u16, Lang)> = None;
        for value in headers.get_all(http::header::ACCEPT_LANGUAGE) {
            let Ok(value) = value.to_str() else { continue };
            // A browser sends a handful of ranges; a hostile header cannot make this loop long.
            for range in value.split(',').take(32) {
                let mut parts = range.split(';');
                let tag = parts.next().unwrap_or("").trim();
                let q = parts
                    .find_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
                    .map_or(Some(1000), parse_q);
                let Some(q) = q else { continue };
                let primary = tag.split('-').next().unwrap_or("");
                let lang = if primary.eq_ignore_ascii_case("en") {
                    Lang::En
                } else if primary.eq_ignore_ascii_case("ko") || primary == "*" {
                    Lang::Ko
                } else {
                    continue;
                };
                if q > 0 && best.is_none_or(|(best_q, _)| q > best_q) {
                    best = Some((q, lang));
                }
            }
        }
        best.map_or(Lang::Ko, |(_, lang)| lang)
    }
}

/// A q-value (`0`, `0.8`, `1.000`) in thousandths; `None` when malformed.
fn parse_q(text: &str) -> Option<u16> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths =
        fraction.bytes().chain(std::iter::repeat(b'0')).take(3).fold(0u16, |n, b| n * 10 + u16::from(b - b'0'));
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Korea Standard Time: UTC+9 all year (no daylight saving since 1988).
const KST: UtcOffset = match UtcOffset::from_hms(9, 0, 0) {
    Ok(offset) => offset,
    Err(_) => UtcOffset::UTC,
};

/// `timestamp` in Asia/Seoul local time: "2026년 12월 7일 (월) 18:00" or "Mon 7 Dec 2026, 18:00 KST";
/// `None` when unset or out of range.
pub fn seoul_time(timestamp: Option<&prost_types::Timestamp>, lang: Lang) -> Option<String> {
    let timestamp = timestamp?;
    let local = OffsetDateTime::from_unix_timestamp(timestamp.seconds).ok()?.to_offset(KST);
    let (hour, minute) = (local.hour(), local.minute());
    Some(match lang {
        Lang::Ko => format!(
            "{}년 {}월 {}일 ({}) {hour:02}:{minute:02}",
            local.year(),
            u8::from(local.month()),
            local.day(),
            korean_weekday(local.weekday())
        ),
        Lang::En => format!(
            "{} {} {} {}, {hour:02}:{minute:02} KST",
            english_weekday(local.weekday()),
            local.day(),
            english_month(u8::from(local.month())),
            local.year()
        ),
    })
}

/// When a participant may try again, `delay` after `now_unix`: the Seoul time (the next full
/// minute, so "18:01" is never too early) and the wait in minutes, e.g. "2026년 12월 7일 (월) 18:01
/// 이후 (약 1분 뒤)" or "after Mon 7 Dec 2026, 18:01 KST (in about 1 min)".
pub fn retry_time(now_unix: i64, delay: std::time::Duration, lang: Lang) -> String {
    let seconds = i64::try_from(delay.as_secs()).unwrap_or(i64::MAX).clamp(1, 7 * 24 * 3600);
    let at = now_unix.saturating_add(seconds);
    let at = at.saturating_add((60 - at.rem_euclid(60)) % 60);
    let minutes = (seconds + 59) / 60;
    let when = seoul_time(Some(&prost_types::Timestamp { seconds: at, nanos: 0 }), lang).unwrap_or_default();
    match lang {
        Lang::Ko => format!("{when} 이후 (약 {minutes}분 뒤)"),
        Lang::En => format!("after {when} (in about {minutes} min)"),
    }
}

fn korean_weekday(day: Weekday) -> &'static str {
    match day {
        Weekday::Monday => "월",
        Weekday::Tuesday => "화",
        Weekday::Wednesday => "수",
        Weekday::Thursday => "목",
        Weekday::Friday => "금",
        Weekday::Saturday => "토",
        Weekday::Sunday => "일",
    }
}

fn english_weekday(day: Weekday) -> &'static str {
    match day {
        Weekday::Monday => "Mon",
        Weekday::Tuesday => "Tue",
        Weekday::Wednesday => "Wed",
        Weekday::Thursday => "Thu",
        Weekday::Friday => "Fri",
        Weekday::Saturday => "Sat",
        Weekday::Sunday => "Sun",
    }
}

fn english_month(month: u8) -> &'static str {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    MONTHS.get(usize::from(month).saturating_sub(1)).copied().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Lang {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::ACCEPT_LANGUAGE, value.parse().expect("header"));
        Lang::negotiate(&headers)
    }

    #[test]
    fn q_values_decide_between_korean_and_english() {
        assert_eq!(Lang::negotiate(&HeaderMap::new()), Lang::Ko, "no header: Korean");
        assert_eq!(accept("en-US,en;q=0.9"), Lang::En);
        assert_eq!(accept("ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7"), Lang::Ko);
        assert_eq!(accept("en;q=0.5, ko;q=0.8"), Lang::Ko, "order does not matter, q does");
        assert_eq!(accept("ko;q=0.5, EN;q=0.8"), Lang::En);
        assert_eq!(accept("fr-FR, en;q=0.3"), Lang::En, "the only acceptable one of ours");
        assert_eq!(accept("fr-FR, de"), Lang::Ko, "neither: the default");
        assert_eq!(accept("en;q=0, ko;q=0.1"), Lang::Ko, "q=0 is a refusal");
        assert_eq!(accept("en;q=0"), Lang::Ko);
        assert_eq!(accept("en, ko"), Lang::En, "a tie goes to the first");
        assert_eq!(accept("*;q=0.5, en;q=0.4"), Lang::Ko, "the wildcard is the default language");
        assert_eq!(accept("en;q=2, ko;q=0.1"), Lang::Ko, "a malformed q is ignored");
        assert_eq!(accept("en;q=0.8;x=1"), Lang::En);
        assert_eq!(accept(&"xx,".repeat(500)), Lang::Ko);
    }

    #[test]
    fn q_values_parse_to_thousandths() {
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("0.8"), Some(800));
        assert_eq!(parse_q("0.125"), Some(125));
        assert_eq!(parse_q("0"), Some(0));
        for bad in ["1.5", "2", "0.1234", "-1", "", "x", "0.x"] {
            assert_eq!(parse_q(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates_are_shown_in_seoul_time() {
        // 2026-12-07T09:00:00Z is 18:00 in Seoul, a Monday.
        let ts = prost_types::Timestamp { seconds: 1_796_634_000, nanos: 0 };
        assert_eq!(seoul_time(Some(&ts), Lang::Ko).as_deref(), Some("2026년 12월 7일 (월) 18:00"));
        assert_eq!(seoul_time(Some(&ts), Lang::En).as_deref(), Some("Mon 7 Dec 2026, 18:00 KST"));
        // 23:30 UTC is the next day in Seoul.
        let late = prost_types::Timestamp { seconds: 1_796_634_000 - 9 * 3600 + 23 * 3600 + 1800, nanos: 0 };
        assert_eq!(seoul_time(Some(&late), Lang::Ko).as_deref(), Some("2026년 12월 8일 (화) 08:30"));
        assert_eq!(seoul_time(None, Lang::Ko), None);
        assert_eq!(seoul_time(Some(&prost_types::Timestamp { seconds: i64::MAX, nanos: 0 }), Lang::Ko), None);
    }

    #[test]
    fn retry_times_round_up_to_the_next_minute() {
        let now = 1_796_634_000 + 10; // 18:00:10 in Seoul
        let one_minute = std::time::Duration::from_secs(60);
        assert_eq!(retry_time(now, one_minute, Lang::Ko), "2026년 12월 7일 (월) 18:02 이후 (약 1분 뒤)");
        assert_eq!(
            retry_time(now, std::time::Duration::from_secs(3600), Lang::En),
            "after Mon 7 Dec 2026, 19:01 KST (in about 60 min)"
        );
        assert!(retry_time(now, std::time::Duration::MAX, Lang::Ko).contains("2026년 12월 14일"), "capped at a week");
    }
}
