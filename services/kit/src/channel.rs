//! The six distribution channels: one vocabulary for every service (the event an owner publishes,
//! the copy ai writes, the images content sizes, the deliveries distribution makes), with the
//! conversions to and from `kem.common.v1.Channel` and the facts of the platforms behind them
//! that more than one service relies on.
//!
//! What a service does *per channel* stays in that service (content's image sizes, ai's speech
//! lengths, distribution's delivery rules); only the names and the platforms' own limits live here.
//!
//! | channel | stable name | platform text limit |
//! |---|---|---|
//! | 우리동네TV | `URIDONGNE_TV` | — (a video spot) |
//! | 링고비즈 | `RINGO_BIZ` | — (a ring-back tone) |
//! | 지니TV | `GENIE_TV` | — (an IPTV spot) |
//! | Instagram | `INSTAGRAM` | caption ≤ [`INSTAGRAM_CAPTION_MAX_CHARS`] characters including its ≤ [`INSTAGRAM_MAX_HASHTAGS`] hashtags |
//! | Naver Blog | `NAVER_BLOG` | ≤ [`NAVER_BLOG_MAX_TAGS`] tags |
//! | Kakao Channel | `KAKAO_CHANNEL` | text ≤ [`KAKAO_TEXT_MAX_CHARS`] characters, no hashtags |
//!
//! ```
//! use kem_kit::channel::Channel;
//!
//! let channel = Channel::parse("INSTAGRAM").expect("a stored name");
//! assert_eq!(Channel::from_number(channel.number()), Some(channel));
//! assert_eq!((channel.slug(), channel.korean()), ("instagram", "인스타그램"));
//! assert_eq!(Channel::from_number(0), None, "CHANNEL_UNSPECIFIED is no channel");
//! ```

use std::fmt;

use kem_proto::kem::common::v1 as common;
use serde::{Deserialize, Serialize};

/// Instagram's caption limit (characters), hashtags included: Graph API `caption`.
pub const INSTAGRAM_CAPTION_MAX_CHARS: usize = 2_200;
/// Instagram's hashtag limit per post.
pub const INSTAGRAM_MAX_HASHTAGS: usize = 30;
/// The tag limit of a Naver Blog post.
pub const NAVER_BLOG_MAX_TAGS: usize = 30;
/// Kakao 친구톡 / brand-message text limit (characters, text-only message) of the dealer APIs.
pub const KAKAO_TEXT_MAX_CHARS: usize = 1_000;

/// A channel an event is published to. Declared in the order of `kem.common.v1.Channel`, which is
/// also the order every service lists channels in. Serialized as its [stable name](Self::as_str).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Channel {
    /// 우리동네TV: KT neighbourhood video spot, through the partner contract.
    #[serde(rename = "URIDONGNE_TV")]
    UridongneTv,
    /// 링고비즈: KT business ring-back tone (audio), through the partner contract.
    #[serde(rename = "RINGO_BIZ")]
    RingoBiz,
    /// 지니TV: KT IPTV ad, through the partner contract.
    #[serde(rename = "GENIE_TV")]
    GenieTv,
    /// Instagram feed post (Graph API content publishing).
    #[serde(rename = "INSTAGRAM")]
    Instagram,
    /// Naver Blog article (owner-assisted publishing) or a Naver Cafe article.
    #[serde(rename = "NAVER_BLOG")]
    NaverBlog,
    /// Kakao Channel business message, through an official dealer.
    #[serde(rename = "KAKAO_CHANNEL")]
    KakaoChannel,
}

impl Channel {
    /// Every channel, in contract order.
    pub const ALL: [Channel; 6] = [
        Channel::UridongneTv,
        Channel::RingoBiz,
        Channel::GenieTv,
        Channel::Instagram,
        Channel::NaverBlog,
        Channel::KakaoChannel,
    ];

    /// The stable name: stored in databases, written in JSON, shown in messages. It is the proto
    /// enum value without its `CHANNEL_` prefix.
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::UridongneTv => "URIDONGNE_TV",
            Channel::RingoBiz => "RINGO_BIZ",
            Channel::GenieTv => "GENIE_TV",
            Channel::Instagram => "INSTAGRAM",
            Channel::NaverBlog => "NAVER_BLOG",
            Channel::KakaoChannel => "KAKAO_CHANNEL",
        }
    }

    /// The channel whose [stable name](Self::as_str) is `name` (exact spelling).
    pub fn parse(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The lower-case name used in message ids and metric labels.
    pub const fn slug(self) -> &'static str {
        match self {
            Channel::UridongneTv => "uridongne_tv",
            Channel::RingoBiz => "ringo_biz",
            Channel::GenieTv => "genie_tv",
            Channel::Instagram => "instagram",
            Channel::NaverBlog => "naver_blog",
            Channel::KakaoChannel => "kakao_channel",
        }
    }

    /// The Korean name owners know the channel by (prompts, generated copy, pages).
    pub const fn korean(self) -> &'static str {
        match self {
            Channel::UridongneTv => "우리동네TV",
            Channel::RingoBiz => "링고비즈",
            Channel::GenieTv => "지니TV",
            Channel::Instagram => "인스타그램",
            Channel::NaverBlog => "네이버 블로그",
            Channel::KakaoChannel => "카카오톡 채널",
        }
    }

    /// The `kem.common.v1.Channel` value.
    pub const fn to_proto(self) -> common::Channel {
        match self {
            Channel::UridongneTv => common::Channel::UridongneTv,
            Channel::RingoBiz => common::Channel::RingoBiz,
            Channel::GenieTv => common::Channel::GenieTv,
            Channel::Instagram => common::Channel::Instagram,
            Channel::NaverBlog => common::Channel::NaverBlog,
            Channel::KakaoChannel => common::Channel::KakaoChannel,
        }
    }

    /// The channel of a `kem.common.v1.Channel` value (`None` for UNSPECIFIED).
    pub const fn from_proto(value: common::Channel) -> Option<Channel> {
        match value {
            common::Channel::Unspecified => None,
            common::Channel::UridongneTv => Some(Channel::UridongneTv),
            common::Channel::RingoBiz => Some(Channel::RingoBiz),
            common::Channel::GenieTv => Some(Channel::GenieTv),
            common::Channel::Instagram => Some(Channel::Instagram),
            common::Channel::NaverBlog => Some(Channel::NaverBlog),
            common::Channel::KakaoChannel => Some(Channel::KakaoChannel),
        }
    }

    /// The `kem.common.v1.Channel` number, as it travels in messages.
    pub const fn number(self) -> i32 {
        self.to_proto() as i32
    }

    /// The channel of a `kem.common.v1.Channel` number (`None` for UNSPECIFIED and for numbers
    /// outside the enum; a service that must tell those apart checks for 0 first).
    pub fn from_number(number: i32) -> Option<Channel> {
        common::Channel::try_from(number).ok().and_then(Channel::from_proto)
    }

    /// Whether the channel goes through the KT partner contract (`partner/v1`).
    pub const fn is_partner(self) -> bool {
        matches!(self, Channel::UridongneTv | Channel::RingoBiz | Channel::GenieTv)
    }

    /// The longest text the platform takes in one post or message, where it sets one (for
    /// Instagram, hashtags included).
    pub const fn max_text_chars(self) -> Option<usize> {
        match self {
            Channel::Instagram => Some(INSTAGRAM_CAPTION_MAX_CHARS),
            Channel::KakaoChannel => Some(KAKAO_TEXT_MAX_CHARS),
            Channel::UridongneTv | Channel::RingoBiz | Channel::GenieTv | Channel::NaverBlog => None,
        }
    }

    /// The most hashtags (tags) the platform takes on one post (0: it takes none).
    pub const fn max_hashtags(self) -> usize {
        match self {
            Channel::Instagram => INSTAGRAM_MAX_HASHTAGS,
            Channel::NaverBlog => NAVER_BLOG_MAX_TAGS,
            Channel::UridongneTv | Channel::RingoBiz | Channel::GenieTv | Channel::KakaoChannel => 0,
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Channel> for common::Channel {
    fn from(channel: Channel) -> common::Channel {
        channel.to_proto()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip_in_contract_order() {
        for (i, channel) in Channel::ALL.into_iter().enumerate() {
            assert_eq!(Channel::parse(channel.as_str()), Some(channel));
            assert_eq!(Channel::from_number(channel.number()), Some(channel));
            assert_eq!(Channel::from_proto(channel.to_proto()), Some(channel));
            assert_eq!(common::Channel::from(channel), channel.to_proto());
            assert_eq!(channel.number(), i32::try_from(i).expect("six") + 1);
            assert_eq!(channel.slug(), channel.as_str().to_ascii_lowercase());
            assert_eq!(channel.to_string(), channel.as_str());
        }
        assert_eq!(Channel::from_number(0), None);
        assert_eq!(Channel::from_number(7), None);
        assert_eq!(Channel::from_number(-1), None);
        assert_eq!(Channel::from_proto(common::Channel::Unspecified), None);
        assert_eq!(Channel::parse("instagram"), None, "stable names are exact");
        assert_eq!(Channel::parse(""), None);
    }

    #[test]
    fn the_names_are_the_published_enum_values() {
        let pool = kem_proto::descriptor_pool();
        let channels = pool.get_enum_by_name("kem.common.v1.Channel").expect("Channel enum");
        assert_eq!(channels.values().count(), Channel::ALL.len() + 1, "every channel and UNSPECIFIED");
        for channel in Channel::ALL {
            let value = channels.get_value(channel.number()).expect("value");
            assert_eq!(value.name(), format!("CHANNEL_{}", channel.as_str()));
            assert_eq!(channel.to_proto().as_str_name(), value.name());
        }
    }

    #[test]
    fn json_uses_the_stable_names() {
        for channel in Channel::ALL {
            let json = serde_json::to_string(&channel).expect("serializes");
            assert_eq!(json, format!("\"{}\"", channel.as_str()));
            assert_eq!(serde_json::from_str::<Channel>(&json).expect("deserializes"), channel);
        }
        assert!(serde_json::from_str::<Channel>("\"Instagram\"").is_err(), "only the stable names");
    }

    #[test]
    fn platform_facts() {
        let partners: Vec<Channel> = Channel::ALL.into_iter().filter(|c| c.is_partner()).collect();
        assert_eq!(partners, [Channel::UridongneTv, Channel::RingoBiz, Channel::GenieTv]);
        assert_eq!(Channel::Instagram.max_text_chars(), Some(2_200));
        assert_eq!(Channel::Instagram.max_hashtags(), 30);
        assert_eq!((Channel::KakaoChannel.max_text_chars(), Channel::KakaoChannel.max_hashtags()), (Some(1_000), 0));
        assert_eq!((Channel::NaverBlog.max_text_chars(), Channel::NaverBlog.max_hashtags()), (None, 30));
        for partner in partners {
            assert_eq!((partner.max_text_chars(), partner.max_hashtags()), (None, 0), "{partner} carries no text");
        }
        let korean: std::collections::HashSet<&str> = Channel::ALL.into_iter().map(Channel::korean).collect();
        assert_eq!(korean.len(), 6, "each Korean name is its own");
    }
}
