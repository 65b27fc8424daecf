//! Value types of the event domain: objectives, channels, money, periods, prizes and the AI
//! recommendation an owner selects.
//!
//! Times are milliseconds since the Unix epoch ([`Millis`]): the representation the store uses on
//! both backends, and fine-grained enough for event periods.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch (UTC).
pub type Millis = i64;

/// Declares a closed enum with a stable storage name per variant.
macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable name stored in the database and shown in messages.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value stored as `text`, if any.
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// What the owner wants an event to achieve.
    Objective {
        /// Attract first-time customers.
        NewCustomers => "NEW_CUSTOMERS",
        /// Bring existing customers back.
        Revisits => "REVISITS",
        /// Increase sales during the period.
        Sales => "SALES",
        /// Raise awareness of the store or a product.
        Awareness => "AWARENESS",
    }
);

named_enum!(
    /// How participants take part and winners are chosen.
    ParticipationMethod {
        /// Random draw after the event (the default).
        Draw => "DRAW",
        /// The first N valid entries win.
        FirstCome => "FIRST_COME",
    }
);

/// A distribution channel: the platform's one vocabulary (stable names, serde, proto numbers).
pub use kem_kit::channel::Channel;

named_enum!(
    /// Visual style of a generated image.
    ImageStyle {
        /// Simple.
        Simple => "SIMPLE",
        /// Fancy.
        Fancy => "FANCY",
        /// Trendy.
        Trendy => "TRENDY",
    }
);

named_enum!(
    /// Whether a result came from a real provider or a local one.
    ProviderKind {
        /// Not reported.
        Unspecified => "UNSPECIFIED",
        /// A real external provider.
        External => "EXTERNAL",
        /// A built-in local provider (demo data).
        Local => "LOCAL",
    }
);

named_enum!(
    /// The kind of business a store runs.
    BusinessCategory {
        /// 음식점.
        Restaurant => "RESTAURANT",
        /// 카페/디저트.
        Cafe => "CAFE",
        /// 베이커리.
        Bakery => "BAKERY",
        /// 주점.
        Bar => "BAR",
        /// 미용.
        Beauty => "BEAUTY",
        /// 소매점.
        Retail => "RETAIL",
        /// 운동.
        Fitness => "FITNESS",
        /// 학원/교육.
        Education => "EDUCATION",
        /// 의료/약국.
        Healthcare => "HEALTHCARE",
        /// 생활서비스.
        LocalService => "LOCAL_SERVICE",
        /// Anything else.
        Other => "OTHER",
    }
);

/// The store an event belongs to, as the owner registered it (owned by the user service; the
/// event service only passes it on to the AI and content workers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreProfile {
    /// Store name (상호).
    pub store_name: String,
    /// Kind of business, if known.
    pub business_category: Option<BusinessCategory>,
    /// Region as registered, e.g. "서울특별시 강남구 역삼동".
    pub region: String,
}

/// An amount in whole Korean won (KRW has no minor unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// Whole won.
    pub amount_krw: i64,
}

/// A time range, start inclusive, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// Inclusive start.
    pub start: Millis,
    /// Exclusive end.
    pub end: Millis,
}

impl Period {
    /// Whether the period is over at `now` (the end is exclusive).
    pub fn is_over(&self, now: Millis) -> bool {
        now >= self.end
    }
}

/// A prize for winners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prize {
    /// Short name, 1-100 characters.
    pub name: String,
    /// Optional longer description, up to 1,000 characters.
    pub description: String,
    /// Number of winners, 1-10,000.
    pub winner_count: i32,
    /// Value of one prize, if given.
    pub unit_value: Option<Money>,
}

/// How an event's entries are checked against abuse (kem.event.v1.EntryRules), valid: there is
/// no address limit unless the owner sets one, since a store's customers share its Wi-Fi and
/// carriers put many phones behind one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EntryRules {
    /// Participants confirm their phone with a one-time SMS code before entering.
    pub verify_phone: bool,
    /// Most entries one client address may make, 0 for no limit, else 1-100,000.
    pub max_entries_per_address: i32,
}

/// Channel-specific promotional copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelCopy {
    /// The channel it is written for.
    pub channel: Channel,
    /// The text.
    pub text: String,
    /// Hashtags without `#`.
    pub hashtags: Vec<String>,
}

/// One AI recommendation, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recommendation {
    /// Unique within its job result.
    pub id: String,
    /// Proposed title.
    pub title: String,
    /// Concept (becomes the event description when selected).
    pub concept: String,
    /// Proposed participation method, if any.
    pub participation_method: Option<ParticipationMethod>,
    /// The mechanic in words.
    pub participation_mechanic: String,
    /// Proposed prize, if any.
    pub prize_suggestion: Option<Prize>,
    /// Expected entries.
    pub expected_participants: i64,
    /// Expected cost per entry, if estimated.
    pub expected_cost_per_entry: Option<Money>,
    /// Suggested channels, best first.
    pub recommended_channels: Vec<Channel>,
    /// Copy per channel.
    pub channel_copies: Vec<ChannelCopy>,
}

impl Recommendation {
    /// The copy written for `channel`, if the recommendation has one.
    pub fn copy_for(&self, channel: Channel) -> Option<&ChannelCopy> {
        self.channel_copies.iter().find(|c| c.channel == channel)
    }
}

/// Which provider produced a job result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// Real or local.
    pub kind: ProviderKind,
    /// Provider name, e.g. `anthropic-claude`, `local`.
    pub name: String,
    /// Model or API version.
    pub model: String,
    /// Provider request id.
    pub request_id: String,
    /// Served from a cache.
    pub cached: bool,
}

/// Counts characters (not bytes): limits are in characters, and Korean text is multi-byte.
pub fn char_len(text: &str) -> usize {
    text.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_names_round_trip_for_every_value() {
        for v in Objective::ALL {
            assert_eq!(Objective::parse(v.as_str()), Some(*v));
        }
        for v in ParticipationMethod::ALL {
            assert_eq!(ParticipationMethod::parse(v.as_str()), Some(*v));
        }
        for v in &Channel::ALL {
            assert_eq!(Channel::parse(v.as_str()), Some(*v));
            let json = serde_json::to_string(v).expect("json");
            assert_eq!(json, format!("\"{}\"", v.as_str()));
        }
        for v in ImageStyle::ALL {
            assert_eq!(ImageStyle::parse(v.as_str()), Some(*v));
        }
        assert_eq!(Channel::parse("instagram"), None);
    }

    #[test]
    fn period_end_is_exclusive() {
        let period = Period { start: 10, end: 20 };
        assert!(!period.is_over(19));
        assert!(period.is_over(20));
    }

    #[test]
    fn korean_text_is_measured_in_characters() {
        assert_eq!(char_len("아메리카노 1잔"), 8);
    }
}
