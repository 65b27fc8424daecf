//! The six distribution channels, as the service names them in storage, logs and message ids.

use std::fmt;

/// A channel an event is delivered to. Declared in the order of `kem.common.v1.Channel`, which
/// is also the order deliveries are listed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// 우리동네TV: KT neighbourhood video spot through the partner contract.
    UridongneTv,
    /// 링고비즈: KT business ring-back tone through the partner contract.
    RingoBiz,
    /// 지니TV: KT IPTV ad through the partner contract.
    GenieTv,
    /// Instagram feed post through the Graph API content publishing flow.
    Instagram,
    /// Naver Blog (assisted publishing) or a Naver Cafe article.
    NaverBlog,
    /// Kakao Channel business message through an official dealer (NAVER Cloud SENS).
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

    /// The stored name (the proto enum value without its `CHANNEL_` prefix).
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::UridongneTv => "URIDONGNE_TV",
            Channel::RingoBiz => "RINGO_BIZ",
            Channel::GenieTv => "GENIE_TV",
            Channel::Instagram => "INSTAGRAM",
            Channel::NaverBlog => "NAVER_BLOG",
            Channel::KakaoChannel => "KAKAO_CHANNEL",
        }
    }

    /// The lower-case name used in message ids (`dist:<event>:<channel>:<seq>`) and metric labels.
    pub fn slug(self) -> &'static str {
        match self {
            Channel::UridongneTv => "uridongne_tv",
            Channel::RingoBiz => "ringo_biz",
            Channel::GenieTv => "genie_tv",
            Channel::Instagram => "instagram",
            Channel::NaverBlog => "naver_blog",
            Channel::KakaoChannel => "kakao_channel",
        }
    }

    /// Reads a stored name.
    pub fn parse(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The `kem.common.v1.Channel` number.
    pub fn number(self) -> i32 {
        match self {
            Channel::UridongneTv => 1,
            Channel::RingoBiz => 2,
            Channel::GenieTv => 3,
            Channel::Instagram => 4,
            Channel::NaverBlog => 5,
            Channel::KakaoChannel => 6,
        }
    }

    /// The channel of a `kem.common.v1.Channel` number (`None` for UNSPECIFIED and unknown values).
    pub fn from_number(number: i32) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.number() == number)
    }

    /// Whether the channel goes through the KT partner contract (`partner/v1`).
    pub fn is_partner(self) -> bool {
        matches!(self, Channel::UridongneTv | Channel::RingoBiz | Channel::GenieTv)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
            assert_eq!(channel.number(), i as i32 + 1);
            assert_eq!(channel.slug(), channel.as_str().to_ascii_lowercase());
        }
        assert_eq!(Channel::from_number(0), None);
        assert_eq!(Channel::from_number(7), None);
        assert_eq!(Channel::parse("instagram"), None);
    }

    #[test]
    fn the_names_are_the_published_enum_values() {
        let pool = kem_proto::descriptor_pool();
        let channels = pool.get_enum_by_name("kem.common.v1.Channel").expect("Channel enum");
        for channel in Channel::ALL {
            let value = channels.get_value(channel.number()).expect("value");
            assert_eq!(value.name(), format!("CHANNEL_{}", channel.as_str()));
        }
    }
}
