//! The terms participants consent to: the notice on the collection and use of personal
//! information that Korea's Personal Information Protection Act asks for (PIPA art. 15 para. 2:
//! who collects, which items, for what purpose, how long they are kept, the right to refuse and
//! what refusing means; art. 22: the optional marketing consent is asked for separately;
//! art. 22-2: a child under 14 needs a guardian, so under-14s cannot enter).
//!
//! Generated once, when the event is published, from the event and the store's name (the data
//! controller), and fixed from then on: a participant's consent names the version and records the
//! hash, so the text they agreed to can always be shown again. The Korean text is authoritative;
//! the English one is a translation. The hash covers both (`text` + `"\n"` + `text_en`).

use kem_kit::validate::{Text, check_text};
use serde::{Deserialize, Serialize};

use super::values::Millis;

/// What a store without a registered name is called in its terms.
pub const UNREGISTERED_STORE: &str = "(상호 미등록)";
/// Longest controller name kept (the user service's store-name limit).
pub const CONTROLLER_MAX: usize = 100;
/// The personal data an entry collects, in Korean.
pub const ITEMS: [&str; 2] = ["이름", "휴대전화번호"];
/// Why it is collected, in Korean.
pub const PURPOSE: &str = "이벤트 참여 확인, 당첨자 선정 및 경품 안내";
/// The version prefix; the version is this + the first [`VERSION_HEX_DIGITS`] of the hash.
pub const VERSION_PREFIX: &str = "terms-";
/// Hex digits of the hash in the version.
pub const VERSION_HEX_DIGITS: usize = 16;

/// The notice of one published event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    /// `terms-` + the first 16 hex digits of [`sha256`](Self::sha256).
    pub version: String,
    /// SHA-256 (lower-case hex) of `text` + `"\n"` + `text_en`.
    pub sha256: String,
    /// The data controller: the store's name.
    pub controller: String,
    /// Items collected, in Korean.
    pub items: Vec<String>,
    /// Purpose, in Korean.
    pub purpose: String,
    /// Days after the draw the data is kept.
    pub retention_days: i32,
    /// The notice in Korean (authoritative).
    pub text: String,
    /// The notice in English (a translation).
    pub text_en: String,
    /// When they were generated (the publication).
    pub created_at: Millis,
}

/// The store name as the controller of the terms: trimmed, with any character a single-line
/// text may not hold (control, line-break and bidi formatting characters) left out, at most
/// [`CONTROLLER_MAX`] characters; [`UNREGISTERED_STORE`] when nothing is left.
pub fn controller_name(store_name: &str) -> String {
    let mut buf = [0u8; 4];
    let kept: String =
        store_name.chars().filter(|c| check_text(c.encode_utf8(&mut buf), Text::line(1)).is_ok()).collect();
    let name: String = kept.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(CONTROLLER_MAX).collect();
    if name.is_empty() { UNREGISTERED_STORE.to_owned() } else { name }
}

fn days_en(days: i32) -> String {
    if days == 1 { "1 day".to_owned() } else { format!("{days} days") }
}

/// The notice for the event titled `title`, run by `store_name`, keeping the data
/// `retention_days` after the draw, whose winners claim their prize within `claim_days` of the
/// draw (said with the purpose: the phone number is how a winner is told and claims), generated
/// at `now`. The same inputs always give the same text, hash and version (`now` is only
/// recorded).
pub fn generate(store_name: &str, title: &str, retention_days: i32, claim_days: i32, now: Millis) -> Terms {
    let controller = controller_name(store_name);
    let title = title.trim();
    let items = ITEMS.join(", ");
    let n = retention_days;
    let c = claim_days;
    let text = [
        "[개인정보 수집·이용 동의]".to_owned(),
        format!("{controller}은(는) 「{title}」 이벤트 운영을 위하여 아래와 같이 개인정보를 수집·이용합니다."),
        format!("1. 개인정보처리자: {controller}"),
        format!("2. 수집 항목: {items}"),
        format!("3. 수집·이용 목적: {PURPOSE} (당첨자는 추첨 후 {c}일 이내에 경품을 받을 수 있습니다)"),
        format!(
            "4. 보유·이용 기간 및 파기: 추첨 후 {n}일 (추첨하지 않으면 이벤트 종료 후 {n}일)이 지나면 지체 없이 파기합니다."
        ),
        "5. 동의를 거부할 권리가 있으며, 거부 시 이벤트 참여가 제한됩니다.".to_owned(),
        "6. 마케팅 정보 수신 동의는 별도의 선택 사항이며, 동의하지 않아도 이벤트에 참여할 수 있습니다.".to_owned(),
        "7. 만 14세 미만은 이벤트에 참여할 수 없습니다.".to_owned(),
    ]
    .join("\n");
    let days = days_en(n);
    let text_en = [
        "[Consent to the collection and use of personal information]".to_owned(),
        format!("{controller} collects and uses personal information as follows to run the event \"{title}\"."),
        format!("1. Data controller: {controller}"),
        "2. Items collected: name, mobile phone number".to_owned(),
        format!(
            "3. Purpose: confirming your entry, winner selection and prize notice (winners can claim their prize \
             within {} after the draw)",
            days_en(c)
        ),
        format!(
            "4. Retention and deletion: deleted without delay {days} after the draw ({days} after the event ends if no draw is made)."
        ),
        "5. You have the right to refuse this consent; if you refuse, you cannot enter the event.".to_owned(),
        "6. Consent to marketing messages is asked for separately and is optional; you can enter without it."
            .to_owned(),
        "7. Children under 14 cannot enter the event.".to_owned(),
    ]
    .join("\n");
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("{text}\n{text_en}").as_bytes());
    let sha256 = kem_kit::hex::encode(digest.as_ref());
    let version = format!("{VERSION_PREFIX}{}", &sha256[..VERSION_HEX_DIGITS]);
    Terms {
        version,
        sha256,
        controller,
        items: ITEMS.iter().map(|i| (*i).to_owned()).collect(),
        purpose: PURPOSE.to_owned(),
        retention_days,
        text,
        text_en,
        created_at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms() -> Terms {
        generate("카페 온도", "평일 점심 아메리카노 이벤트", 30, 7, 1_000)
    }

    #[test]
    fn the_same_inputs_give_the_same_hash_and_version() {
        let a = terms();
        let b = generate("카페 온도", "평일 점심 아메리카노 이벤트", 30, 7, 99_000);
        assert_eq!(
            (a.sha256.as_str(), a.version.as_str(), a.text.as_str()),
            (b.sha256.as_str(), b.version.as_str(), b.text.as_str())
        );
        assert_eq!(b.created_at, 99_000, "the time is recorded, not hashed");
        assert_eq!(a.sha256.len(), 64);
        assert!(a.sha256.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{}", a.sha256);
        assert_eq!(a.version, format!("terms-{}", &a.sha256[..16]));
        let expected = ring::digest::digest(&ring::digest::SHA256, format!("{}\n{}", a.text, a.text_en).as_bytes());
        assert_eq!(a.sha256, kem_kit::hex::encode(expected.as_ref()), "over text, a line feed and text_en");
    }

    #[test]
    fn another_store_retention_or_event_gives_another_hash() {
        let base = terms();
        for other in [
            generate("카페 온도 2호점", "평일 점심 아메리카노 이벤트", 30, 7, 1_000),
            generate("카페 온도", "평일 점심 아메리카노 이벤트", 31, 7, 1_000),
            generate("카페 온도", "주말 브런치 이벤트", 30, 7, 1_000),
            generate("카페 온도", "평일 점심 아메리카노 이벤트", 30, 14, 1_000),
        ] {
            assert_ne!(other.sha256, base.sha256);
            assert_ne!(other.version, base.version);
        }
    }

    #[test]
    fn the_notice_says_what_pipa_requires() {
        let t = terms();
        assert_eq!(t.controller, "카페 온도");
        assert_eq!(t.items, vec!["이름", "휴대전화번호"]);
        assert_eq!(t.purpose, "이벤트 참여 확인, 당첨자 선정 및 경품 안내");
        assert_eq!(t.retention_days, 30);
        for needed in [
            "개인정보처리자: 카페 온도",
            "이름, 휴대전화번호",
            "이벤트 참여 확인, 당첨자 선정 및 경품 안내",
            "파기",
            "추첨 후 30일",
            "추첨 후 7일 이내에 경품을 받을 수 있습니다",
            "동의를 거부할 권리가 있으며, 거부 시 이벤트 참여가 제한됩니다",
            "마케팅 정보 수신 동의는 별도의 선택 사항",
            "만 14세 미만",
            "「평일 점심 아메리카노 이벤트」",
        ] {
            assert!(t.text.contains(needed), "Korean text lacks {needed:?}:\n{}", t.text);
        }
        for needed in [
            "Data controller: 카페 온도",
            "name, mobile phone number",
            "winner selection and prize notice",
            "deleted without delay 30 days after the draw",
            "claim their prize within 7 days after the draw",
            "right to refuse",
            "separately and is optional",
            "under 14",
        ] {
            assert!(t.text_en.contains(needed), "English text lacks {needed:?}:\n{}", t.text_en);
        }
        let one = generate("가게", "이벤트", 1, 1, 0).text_en;
        assert!(one.contains("1 day after the draw") && one.contains("within 1 day after the draw"), "{one}");
    }

    #[test]
    fn no_control_characters_but_line_feeds() {
        let hostile = generate("카페\u{0}\u{202E}온도\r\n\t 본점 ", "이벤트", 7, 7, 0);
        assert_eq!(hostile.controller, "카페온도 본점");
        for t in [terms(), hostile] {
            for text in [&t.text, &t.text_en, &t.controller, &t.purpose] {
                assert!(check_text(text, Text::prose(10_000)).is_ok(), "{text:?}");
                assert!(!text.contains(['\r', '\t', '\u{0}']), "{text:?}");
            }
            assert!(check_text(&t.controller, Text::line(CONTROLLER_MAX)).is_ok());
        }
    }

    #[test]
    fn an_unnamed_store_is_called_unregistered() {
        assert_eq!(controller_name(""), UNREGISTERED_STORE);
        assert_eq!(controller_name(" \u{7}\n "), UNREGISTERED_STORE);
        assert_eq!(controller_name(&"가".repeat(150)).chars().count(), CONTROLLER_MAX);
        assert!(generate("", "이벤트", 30, 7, 0).text.contains("개인정보처리자: (상호 미등록)"));
    }
}
