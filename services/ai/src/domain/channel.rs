//! What copy each channel takes: the per-channel limits the prompt states and the parser
//! enforces (one table, so the model is told exactly what is checked). The platforms' own limits
//! come from the kit's channel vocabulary ([`kem_kit::channel`]); the article length and the
//! speech lengths are ai's choices.
//!
//! | channel | text | hashtags | why |
//! |---|---|---|---|
//! | Instagram | caption ≤ 2,200 characters *including* the rendered ` #tag`s | ≤ 30 | Instagram's caption and hashtag limits |
//! | Kakao Channel | ≤ 1,000 characters | none | 친구톡/브랜드메시지 text limit of the dealer APIs |
//! | Naver Blog | ≤ [`NAVER_BLOG_MAX_CHARS`] (3,000) characters | ≤ 30 | a ready-to-post short article; Naver allows 30 tags |
//! | 링고비즈 | ≤ 15 s of speech (90 spoken characters) | none | a ring-back greeting callers hear before the owner answers |
//! | 우리동네TV | ≤ 15 s of speech (90 spoken characters) | none | a short neighbourhood spot |
//! | 지니TV | ≤ 30 s of speech (180 spoken characters) | none | a standard 30-second TV spot |
//!
//! Speech length is estimated at [`SPOKEN_CHARS_PER_SECOND`] spoken characters (letters and
//! digits; Korean syllables count one each) per second, the pace of a calm Korean TTS voice.
//! A hashtag is written without `#`, 1-50 characters of letters, digits or `_`, unique per copy.

use kem_kit::channel::{
    INSTAGRAM_CAPTION_MAX_CHARS, INSTAGRAM_MAX_HASHTAGS, KAKAO_TEXT_MAX_CHARS, NAVER_BLOG_MAX_TAGS,
};
use serde::{Deserialize, Serialize};

use super::values::Channel;

/// Longest Naver Blog copy: a ready-to-post short article (Naver itself sets no such limit).
pub const NAVER_BLOG_MAX_CHARS: usize = 3_000;
/// Korean speech pace used to turn seconds into characters (about 360 syllables a minute).
pub const SPOKEN_CHARS_PER_SECOND: usize = 6;
/// Longest hashtag accepted.
pub const MAX_HASHTAG_CHARS: usize = 50;

/// The limits of one channel's copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyLimits {
    /// Most characters of the text (for Instagram, of the caption with its hashtags appended).
    pub max_chars: usize,
    /// Most hashtags (0: the channel takes none).
    pub max_hashtags: usize,
    /// For spoken channels, the longest the text may take to say.
    pub max_speech_seconds: Option<usize>,
    /// Whether the hashtags count towards `max_chars` (they are appended to the caption).
    pub hashtags_in_text: bool,
}

impl CopyLimits {
    /// Spoken characters allowed, for spoken channels.
    pub fn max_spoken_chars(&self) -> Option<usize> {
        self.max_speech_seconds.map(|s| s * SPOKEN_CHARS_PER_SECOND)
    }

    /// The limits in words, for prompts.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match self.max_speech_seconds {
            Some(seconds) => parts.push(format!(
                "a spoken script of at most {seconds} seconds: at most {} letters/digits (Korean syllables count one each) and {} characters in total",
                seconds * SPOKEN_CHARS_PER_SECOND,
                self.max_chars
            )),
            None if self.hashtags_in_text => {
                parts.push(format!("at most {} characters including the hashtags appended as \" #tag\"", self.max_chars))
            }
            None => parts.push(format!("at most {} characters", self.max_chars)),
        }
        if self.max_hashtags == 0 {
            parts.push("no hashtags (empty array)".to_owned());
        } else {
            parts.push(format!("at most {} hashtags", self.max_hashtags));
        }
        parts.join("; ")
    }
}

/// Copy for one channel, as the model writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelCopy {
    /// The channel.
    pub channel: Channel,
    /// The text.
    pub text: String,
    /// Hashtags without `#`.
    pub hashtags: Vec<String>,
}

/// The limits of `channel`'s copy (see the module table).
pub fn copy_limits(channel: Channel) -> CopyLimits {
    let text = |max_chars, max_hashtags, hashtags_in_text| CopyLimits {
        max_chars,
        max_hashtags,
        max_speech_seconds: None,
        hashtags_in_text,
    };
    let spoken = |seconds: usize| CopyLimits {
        // Room for spaces and punctuation around the spoken characters.
        max_chars: seconds * SPOKEN_CHARS_PER_SECOND * 2,
        max_hashtags: 0,
        max_speech_seconds: Some(seconds),
        hashtags_in_text: false,
    };
    match channel {
        // The caption limit counts the hashtags appended to it.
        Channel::Instagram => text(INSTAGRAM_CAPTION_MAX_CHARS, INSTAGRAM_MAX_HASHTAGS, true),
        Channel::KakaoChannel => text(KAKAO_TEXT_MAX_CHARS, 0, false),
        Channel::NaverBlog => text(NAVER_BLOG_MAX_CHARS, NAVER_BLOG_MAX_TAGS, false),
        Channel::RingoBiz | Channel::UridongneTv => spoken(15),
        Channel::GenieTv => spoken(30),
    }
}

/// Letters and digits of `text`: what a voice actually says (each Korean syllable is one).
pub fn spoken_chars(text: &str) -> usize {
    text.chars().filter(|c| c.is_alphanumeric()).count()
}

/// Estimated seconds to say `text` at [`SPOKEN_CHARS_PER_SECOND`].
pub fn speech_seconds(text: &str) -> usize {
    spoken_chars(text).div_ceil(SPOKEN_CHARS_PER_SECOND)
}

/// The caption as published on Instagram: the text, then ` #tag` per hashtag.
pub fn rendered_caption(copy: &ChannelCopy) -> String {
    let mut caption = copy.text.clone();
    for tag in &copy.hashtags {
        caption.push_str(" #");
        caption.push_str(tag);
    }
    caption
}

/// Whether `tag` is a valid hashtag body (no `#`, letters/digits/`_`, 1-50 characters).
pub fn valid_hashtag(tag: &str) -> bool {
    let len = tag.chars().count();
    (1..=MAX_HASHTAG_CHARS).contains(&len) && tag.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// A hashtag made from free text (spaces and punctuation removed), if anything is left.
pub fn hashtag_from(text: &str) -> Option<String> {
    let tag: String = text.chars().filter(|c| c.is_alphanumeric() || *c == '_').take(MAX_HASHTAG_CHARS).collect();
    (!tag.is_empty()).then_some(tag)
}

/// Everything wrong with `copy` against its channel's limits, each problem prefixed with `path`.
pub fn copy_problems(path: &str, copy: &ChannelCopy) -> Vec<String> {
    let limits = copy_limits(copy.channel);
    let channel = copy.channel.as_str();
    let mut problems = Vec::new();
    if copy.text.trim().is_empty() {
        problems.push(format!("{path}.text: must not be empty"));
    }
    let chars = if limits.hashtags_in_text { rendered_caption(copy) } else { copy.text.clone() }.chars().count();
    if chars > limits.max_chars {
        let what = if limits.hashtags_in_text { "with its hashtags " } else { "" };
        problems
            .push(format!("{path}.text: {chars} characters {what}exceed the {channel} limit of {}", limits.max_chars));
    }
    if let Some(max_spoken) = limits.max_spoken_chars() {
        let spoken = spoken_chars(&copy.text);
        if spoken > max_spoken {
            problems.push(format!(
                "{path}.text: {spoken} spoken characters take about {} s to say; {channel} allows {} s ({max_spoken} characters)",
                speech_seconds(&copy.text),
                limits.max_speech_seconds.unwrap_or_default()
            ));
        }
    }
    if copy.hashtags.len() > limits.max_hashtags {
        if limits.max_hashtags == 0 {
            problems.push(format!("{path}.hashtags: {channel} takes no hashtags; use an empty array"));
        } else {
            problems.push(format!(
                "{path}.hashtags: {} hashtags exceed the {channel} limit of {}",
                copy.hashtags.len(),
                limits.max_hashtags
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (i, tag) in copy.hashtags.iter().enumerate() {
        if !valid_hashtag(tag) {
            problems.push(format!(
                "{path}.hashtags[{i}]: {tag:?} must be 1-{MAX_HASHTAG_CHARS} letters, digits or '_' without the leading '#'"
            ));
        } else if !seen.insert(tag.to_lowercase()) {
            problems.push(format!("{path}.hashtags[{i}]: {tag:?} is repeated"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(channel: Channel, text: &str, hashtags: &[&str]) -> ChannelCopy {
        ChannelCopy { channel, text: text.to_owned(), hashtags: hashtags.iter().map(|t| (*t).to_owned()).collect() }
    }

    #[test]
    fn instagram_counts_the_rendered_hashtags_and_caps_them_at_thirty() {
        let text = "가".repeat(2_190);
        assert!(
            copy_problems("c", &copy(Channel::Instagram, &text, &["카페"])).is_empty(),
            "2,194 characters with the hashtag"
        );
        let problems = copy_problems("c", &copy(Channel::Instagram, &text, &["카페이벤트", "강남"]));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("2201 characters with its hashtags"), "{problems:?}");
        let many: Vec<String> = (0..31).map(|i| format!("tag{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let problems = copy_problems("c", &copy(Channel::Instagram, "짧은 글", &many));
        assert!(problems.iter().any(|p| p.contains("31 hashtags exceed the INSTAGRAM limit of 30")), "{problems:?}");
    }

    #[test]
    fn kakao_takes_a_thousand_characters_and_no_hashtags() {
        assert!(copy_problems("c", &copy(Channel::KakaoChannel, &"가".repeat(1_000), &[])).is_empty());
        let over = copy_problems("c", &copy(Channel::KakaoChannel, &"가".repeat(1_001), &[]));
        assert!(over[0].contains("1001 characters exceed the KAKAO_CHANNEL limit of 1000"), "{over:?}");
        let tags = copy_problems("c", &copy(Channel::KakaoChannel, "안녕하세요", &["이벤트"]));
        assert!(tags[0].contains("takes no hashtags"), "{tags:?}");
    }

    #[test]
    fn spoken_channels_are_limited_in_seconds() {
        // 90 syllables = 15 s at 6 per second: the 링고비즈 limit exactly.
        let fifteen = "안녕하세요 ".repeat(18);
        assert_eq!((spoken_chars(&fifteen), speech_seconds(&fifteen)), (90, 15));
        assert!(copy_problems("c", &copy(Channel::RingoBiz, &fifteen, &[])).is_empty());
        let longer = format!("{fifteen}감사");
        let problems = copy_problems("c", &copy(Channel::RingoBiz, &longer, &[]));
        assert!(problems.iter().any(|p| p.contains("92 spoken characters take about 16 s")), "{problems:?}");
        // 지니TV allows twice as long.
        assert!(copy_problems("c", &copy(Channel::GenieTv, &longer, &[])).is_empty());
        assert_eq!(copy_limits(Channel::GenieTv).max_spoken_chars(), Some(180));
    }

    #[test]
    fn hashtags_are_validated() {
        let problems = copy_problems("c", &copy(Channel::NaverBlog, "글", &["#카페", "강남 카페", "ok_1", "OK_1", ""]));
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("without the leading '#'"));
        assert!(problems[2].contains("repeated"));
        assert_eq!(hashtag_from("카페 K & 베이커리!"), Some("카페K베이커리".to_owned()));
        assert_eq!(hashtag_from(" &! "), None);
        assert!(copy_problems("c", &copy(Channel::NaverBlog, "  ", &[]))[0].contains("must not be empty"));
    }

    #[test]
    fn every_channel_has_a_described_limit() {
        for channel in Channel::ALL {
            let limits = copy_limits(channel);
            assert!(limits.max_chars > 0);
            assert!(!limits.describe().is_empty());
        }
    }
}
