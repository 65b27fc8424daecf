//! Text shaping per channel (within the platforms' limits of [`kem_kit::channel`], article HTML),
//! Korean phone numbers and dates, and the Kakao 친구톡 quiet hours. Pure functions.

use kem_kit::channel::{
    INSTAGRAM_CAPTION_MAX_CHARS, INSTAGRAM_MAX_HASHTAGS, KAKAO_TEXT_MAX_CHARS, NAVER_BLOG_MAX_TAGS,
};

use super::job::{Copy, JobSpec};

/// Korea Standard Time offset (no daylight saving).
const KST_OFFSET_MS: i64 = 9 * 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// `text` cut to at most `max` characters (an ellipsis marks the cut).
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Hashtags normalised: no `#`, no spaces, no empties, no duplicates (case-insensitive), in order.
pub fn hashtags(tags: &[String], max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for tag in tags {
        let tag: String = tag.trim().trim_start_matches('#').chars().filter(|c| !c.is_whitespace()).collect();
        if !tag.is_empty() && !out.iter().any(|t| t.to_lowercase() == tag.to_lowercase()) && out.len() < max {
            out.push(tag);
        }
    }
    out
}

/// What a post calls its entry link (the Kakao button's name, the label before a URL).
pub const ENTRY_LINK_LABEL: &str = "참여하기";

/// The line that carries the entry link in plain text, `None` without one.
pub fn entry_link_line(copy: &Copy) -> Option<String> {
    let url = copy.entry_url.trim();
    (!url.is_empty()).then(|| format!("{ENTRY_LINK_LABEL} 👉 {url}"))
}

/// The Instagram caption: the copy, its hashtags (at most 30), then the entry link as the last
/// line, within 2,200 characters (the text is shortened, never the tags or the link). Instagram
/// does not make caption URLs clickable; the URL is there to be copied (see
/// `infra::channels`).
pub fn instagram_caption(copy: &Copy) -> String {
    let tags = hashtags(&copy.hashtags, INSTAGRAM_MAX_HASHTAGS);
    let tag_line = tags.iter().map(|t| format!("#{t}")).collect::<Vec<_>>().join(" ");
    let tail: Vec<String> =
        [Some(tag_line), entry_link_line(copy)].into_iter().flatten().filter(|l| !l.is_empty()).collect();
    // Each tail line is preceded by a blank line ("\n\n").
    let reserved: usize = tail.iter().map(|l| l.chars().count() + 2).sum();
    let mut caption = truncate(copy.text.trim(), INSTAGRAM_CAPTION_MAX_CHARS.saturating_sub(reserved));
    for line in tail {
        if !caption.is_empty() {
            caption.push_str("\n\n");
        }
        caption.push_str(&line);
    }
    caption
}

/// The Kakao message: the copy plus the prize and the period, then the entry link as the last
/// line (the message also gets a web-link button), within 1,000 characters (the text is
/// shortened, never the link).
pub fn kakao_text(job: &JobSpec, copy: &Copy) -> String {
    let mut text = copy.text.trim().to_owned();
    if text.is_empty() {
        text = job.title.clone();
    }
    if let Some(prize) = &job.prize {
        text.push_str(&format!("\n\n🎁 경품: {} ({}명)", prize.name, prize.winner_count));
    }
    if let Some(period) = period_text(job) {
        text.push_str(&format!("\n📅 기간: {period}"));
    }
    match entry_link_line(copy) {
        Some(link) => {
            let room = KAKAO_TEXT_MAX_CHARS.saturating_sub(link.chars().count() + 2);
            format!("{}\n\n{link}", truncate(&text, room))
        }
        None => truncate(&text, KAKAO_TEXT_MAX_CHARS),
    }
}

/// "2025-11-01 ~ 2025-11-14" in Korea time (the end is exclusive, so its day is the day before
/// when it falls on midnight), or `None` when the period is unknown.
pub fn period_text(job: &JobSpec) -> Option<String> {
    if job.period_start_ms <= 0 || job.period_end_ms <= job.period_start_ms {
        return None;
    }
    Some(format!("{} ~ {}", kst_date(job.period_start_ms), kst_date(job.period_end_ms - 1)))
}

/// The article for owner-assisted publishing and the Naver Cafe: title, escaped HTML body with
/// the image, copy, prize, period, the entry link (an `<a href>` showing the URL) and hashtags.
pub fn article_html(job: &JobSpec, copy: &Copy, image_url: Option<&str>) -> String {
    let mut html = String::new();
    if let Some(url) = image_url {
        html.push_str(&format!("<p><img src=\"{}\" alt=\"{}\"></p>\n", escape(url), escape(&job.title)));
    }
    let body = if copy.text.trim().is_empty() { job.description.as_str() } else { copy.text.as_str() };
    for paragraph in body.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        html.push_str(&format!("<p>{}</p>\n", escape(paragraph).replace('\n', "<br>")));
    }
    if let Some(prize) = &job.prize {
        html.push_str(&format!("<p><strong>경품</strong>: {} ({}명)</p>\n", escape(&prize.name), prize.winner_count));
    }
    if let Some(period) = period_text(job) {
        html.push_str(&format!("<p><strong>기간</strong>: {period}</p>\n"));
    }
    let url = copy.entry_url.trim();
    if !url.is_empty() {
        // A link readers can click, and the URL visible for those who copy the article.
        let url = escape(url);
        html.push_str(&format!("<p><strong>{ENTRY_LINK_LABEL}</strong>: <a href=\"{url}\">{url}</a></p>\n"));
    }
    let tags = hashtags(&copy.hashtags, NAVER_BLOG_MAX_TAGS);
    if !tags.is_empty() {
        let line = tags.iter().map(|t| format!("#{}", escape(t))).collect::<Vec<_>>().join(" ");
        html.push_str(&format!("<p>{line}</p>\n"));
    }
    html
}

/// HTML-escapes text for element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The Korea-time calendar date of an instant, `YYYY-MM-DD`.
pub fn kst_date(ms: i64) -> String {
    let days = (ms + KST_OFFSET_MS).div_euclid(DAY_MS);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// An instant as RFC 3339 UTC with seconds (`2025-11-01T03:00:00Z`).
pub fn rfc3339(ms: i64) -> String {
    let days = ms.div_euclid(DAY_MS);
    let secs = ms.rem_euclid(DAY_MS) / 1000;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A Korean phone number as dialled domestically, digits only: `+82 10-1234-5678` →
/// `01012345678`, `02-123-4567` → `021234567`. `None` when it is not a Korean number of 9–11
/// digits.
pub fn domestic_phone(phone: &str) -> Option<String> {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let national = if phone.trim_start().starts_with('+') {
        let rest = digits.strip_prefix("82")?;
        format!("0{}", rest.trim_start_matches('0'))
    } else {
        digits
    };
    (national.starts_with('0') && (9..=11).contains(&national.len())).then_some(national)
}

/// Kakao restricts 친구톡 advertising messages at night (20:00–08:00 Korea time). When `now_ms`
/// falls in that window, the next 08:00 KST; otherwise `None`.
pub fn kakao_quiet_until(now_ms: i64) -> Option<i64> {
    let local = now_ms + KST_OFFSET_MS;
    let day_start = local.div_euclid(DAY_MS) * DAY_MS;
    let hour = (local - day_start) / 3_600_000;
    let eight = 8 * 3_600_000;
    match hour {
        20..=23 => Some(day_start + DAY_MS + eight - KST_OFFSET_MS),
        0..=7 => Some(day_start + eight - KST_OFFSET_MS),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::job::PrizeSpec;

    /// 2025-11-01T00:00:00+09:00.
    const NOV_1_KST: i64 = 1_761_922_800_000;

    #[test]
    fn captions_keep_their_tags_within_the_limits() {
        let copy = Copy {
            text: "점심 이벤트".into(),
            hashtags: vec!["#점심".into(), "점심".into(), " 이벤트 ".into(), String::new()],
            ..Copy::default()
        };
        assert_eq!(instagram_caption(&copy), "점심 이벤트\n\n#점심 #이벤트");
        let long =
            Copy { text: "가".repeat(5_000), hashtags: (0..40).map(|i| format!("t{i}")).collect(), ..Copy::default() };
        let caption = instagram_caption(&long);
        assert!(caption.chars().count() <= INSTAGRAM_CAPTION_MAX_CHARS);
        assert_eq!(caption.matches('#').count(), INSTAGRAM_MAX_HASHTAGS);
        assert_eq!(instagram_caption(&Copy { text: " hi ".into(), ..Copy::default() }), "hi");
    }

    #[test]
    fn every_text_ends_with_the_entry_link_kept_whole() {
        let url = "https://kem.example/e/e-1?ch=instagram&x=\"<b>\"";
        let copy = Copy { text: "점심 이벤트".into(), hashtags: vec!["점심".into()], entry_url: url.into() };
        assert_eq!(instagram_caption(&copy), format!("점심 이벤트\n\n#점심\n\n참여하기 👉 {url}"));
        let long = Copy {
            text: "가".repeat(5_000),
            hashtags: (0..40).map(|i| format!("t{i}")).collect(),
            entry_url: url.into(),
        };
        let caption = instagram_caption(&long);
        assert!(caption.chars().count() <= INSTAGRAM_CAPTION_MAX_CHARS);
        assert!(caption.ends_with(&format!("\n\n참여하기 👉 {url}")), "{caption}");
        assert_eq!(caption.matches('#').count(), INSTAGRAM_MAX_HASHTAGS);
        let bare = Copy { entry_url: url.into(), ..Copy::default() };
        assert_eq!(instagram_caption(&bare), format!("참여하기 👉 {url}"), "no blank lines before a lone link");

        let job = JobSpec { title: "점심".into(), ..JobSpec::default() };
        let text = kakao_text(&job, &Copy { text: "x".repeat(2_000), entry_url: url.into(), ..Copy::default() });
        assert_eq!(text.chars().count(), KAKAO_TEXT_MAX_CHARS);
        assert!(text.ends_with(&format!("…\n\n참여하기 👉 {url}")), "{text}");

        let html = article_html(&job, &Copy { entry_url: url.into(), ..Copy::default() }, None);
        let escaped = "https://kem.example/e/e-1?ch=instagram&amp;x=&quot;&lt;b&gt;&quot;";
        assert!(
            html.contains(&format!("<p><strong>참여하기</strong>: <a href=\"{escaped}\">{escaped}</a></p>")),
            "{html}"
        );
        assert!(!article_html(&job, &Copy::default(), None).contains("<a "), "no link without a URL");
    }

    #[test]
    fn dates_are_korean_calendar_days() {
        assert_eq!(kst_date(NOV_1_KST), "2025-11-01");
        assert_eq!(kst_date(NOV_1_KST - 1), "2025-10-31");
        assert_eq!(rfc3339(NOV_1_KST), "2025-10-31T15:00:00Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        let job = JobSpec { period_start_ms: NOV_1_KST, period_end_ms: NOV_1_KST + 14 * DAY_MS, ..JobSpec::default() };
        assert_eq!(period_text(&job).as_deref(), Some("2025-11-01 ~ 2025-11-14"));
        assert_eq!(period_text(&JobSpec::default()), None);
    }

    #[test]
    fn phones_are_read_as_domestic_numbers() {
        assert_eq!(domestic_phone("+821012345678").as_deref(), Some("01012345678"));
        assert_eq!(domestic_phone("+82 2-1234-5678").as_deref(), Some("0212345678"));
        assert_eq!(domestic_phone("010-1234-5678").as_deref(), Some("01012345678"));
        assert_eq!(domestic_phone("+14155550100"), None);
        assert_eq!(domestic_phone("12345"), None);
        assert_eq!(domestic_phone(""), None);
    }

    #[test]
    fn kakao_quiet_hours_end_at_eight_korea_time() {
        let hour = 3_600_000;
        assert_eq!(kakao_quiet_until(NOV_1_KST + 12 * hour), None);
        assert_eq!(kakao_quiet_until(NOV_1_KST + 8 * hour), None);
        assert_eq!(kakao_quiet_until(NOV_1_KST + 19 * hour + 59 * 60_000), None);
        assert_eq!(kakao_quiet_until(NOV_1_KST + 21 * hour), Some(NOV_1_KST + DAY_MS + 8 * hour));
        assert_eq!(kakao_quiet_until(NOV_1_KST + 3 * hour), Some(NOV_1_KST + 8 * hour));
        assert_eq!(kakao_quiet_until(NOV_1_KST), Some(NOV_1_KST + 8 * hour));
    }

    #[test]
    fn articles_and_messages_carry_the_event_safely() {
        let job = JobSpec {
            title: "<점심>".into(),
            prize: Some(PrizeSpec { name: "커피 & 쿠키".into(), winner_count: 3 }),
            ..JobSpec::default()
        };
        let copy =
            Copy { text: "첫 줄\n둘째\n\n<script>".into(), hashtags: vec!["점심".into()], ..Copy::default() };
        let html = article_html(&job, &copy, Some("https://x/y?a=1&b=2"));
        assert!(html.contains("src=\"https://x/y?a=1&amp;b=2\""), "{html}");
        assert!(html.contains("<p>첫 줄<br>둘째</p>") && html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("커피 &amp; 쿠키 (3명)") && html.contains("#점심"), "{html}");
        let text = kakao_text(&job, &Copy { text: "x".repeat(2_000), ..Copy::default() });
        assert_eq!(text.chars().count(), KAKAO_TEXT_MAX_CHARS);
        assert_eq!(kakao_text(&job, &Copy::default()), "<점심>\n\n🎁 경품: 커피 & 쿠키 (3명)");
    }
}
