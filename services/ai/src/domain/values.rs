//! The closed vocabularies of the ai domain (business categories, objectives, participation
//! methods, channels, weekdays) and the Korea-time calendar the prompts and the local generator
//! reason in.
//!
//! Each enum has one wire name (`SCREAMING_SNAKE_CASE`, the same spelling as the proto enum value
//! without its prefix): the model is asked to answer with exactly these names, so serde rejects
//! anything else. Channels are the platform's vocabulary ([`kem_kit::channel`]), whose stable
//! names are those wire names.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Declares a closed enum whose variants have a wire name (the JSON the model writes) and a
/// Korean label (what prompts and generated copy show).
macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $wire:literal, $korean:literal;)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $wire)] $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name in the model's JSON.
            pub fn wire(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)+
                }
            }

            /// The Korean label.
            pub fn korean(self) -> &'static str {
                match self {
                    $($name::$variant => $korean,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.wire())
            }
        }
    };
}

vocabulary!(
    /// The kind of business a store runs.
    Category {
        /// 음식점.
        Restaurant = "RESTAURANT", "음식점";
        /// 카페/디저트.
        Cafe = "CAFE", "카페";
        /// 베이커리.
        Bakery = "BAKERY", "베이커리";
        /// 주점.
        Bar = "BAR", "주점";
        /// 미용.
        Beauty = "BEAUTY", "미용실";
        /// 소매점.
        Retail = "RETAIL", "소매점";
        /// 운동.
        Fitness = "FITNESS", "운동 센터";
        /// 학원/교육.
        Education = "EDUCATION", "학원";
        /// 의료/약국.
        Healthcare = "HEALTHCARE", "병원·약국";
        /// 생활서비스.
        LocalService = "LOCAL_SERVICE", "생활서비스";
        /// 기타.
        Other = "OTHER", "가게";
    }
);

vocabulary!(
    /// What the owner wants an event to achieve.
    Objective {
        /// 신규 고객 유치.
        NewCustomers = "NEW_CUSTOMERS", "신규 고객 유치";
        /// 재방문 유도.
        Revisits = "REVISITS", "재방문 유도";
        /// 매출 증대.
        Sales = "SALES", "매출 증대";
        /// 인지도 향상.
        Awareness = "AWARENESS", "인지도 향상";
    }
);

vocabulary!(
    /// How participants take part and winners are chosen.
    Method {
        /// 응모 후 추첨.
        Draw = "DRAW", "응모 후 추첨";
        /// 선착순.
        FirstCome = "FIRST_COME", "선착순";
    }
);

/// A distribution channel: the platform's one vocabulary (stable names = wire names, Korean
/// names, proto numbers). See [`super::channel`] for what copy each one takes.
pub use kem_kit::channel::Channel;

vocabulary!(
    /// A day of the week (Korea time).
    Weekday {
        /// 월.
        Monday = "MONDAY", "월";
        /// 화.
        Tuesday = "TUESDAY", "화";
        /// 수.
        Wednesday = "WEDNESDAY", "수";
        /// 목.
        Thursday = "THURSDAY", "목";
        /// 금.
        Friday = "FRIDAY", "금";
        /// 토.
        Saturday = "SATURDAY", "토";
        /// 일.
        Sunday = "SUNDAY", "일";
    }
);

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;
/// Korea Standard Time is UTC+9 all year (no daylight saving).
const KST_OFFSET_MS: i64 = 9 * 3_600_000;

/// A day in Korea time, counted from 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Day(pub i64);

/// A calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date {
    /// Year.
    pub year: i64,
    /// Month, 1-12.
    pub month: u32,
    /// Day of the month, 1-31.
    pub day: u32,
}

impl Day {
    /// The Korea-time day containing `millis` (since the Unix epoch).
    pub fn of_millis(millis: i64) -> Day {
        Day((millis + KST_OFFSET_MS).div_euclid(DAY_MS))
    }

    /// The calendar date (proleptic Gregorian; H. Hinnant's `civil_from_days`).
    pub fn date(self) -> Date {
        let z = self.0 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        // Both are in range by construction (1-31, 1-12).
        Date { year, month: u32::try_from(month).unwrap_or(1), day: u32::try_from(day).unwrap_or(1) }
    }

    /// The day of the week (1970-01-01 was a Thursday).
    pub fn weekday(self) -> Weekday {
        let index = usize::try_from((self.0 + 3).rem_euclid(7)).unwrap_or(0);
        Weekday::ALL[index]
    }

    /// `11월 1일(토)`.
    pub fn korean(self) -> String {
        let date = self.date();
        format!("{}월 {}일({})", date.month, date.day, self.weekday().korean())
    }

    /// `11/1`.
    pub fn short(self) -> String {
        let date = self.date();
        format!("{}/{}", date.month, date.day)
    }

    /// `2025-11-01`.
    pub fn iso(self) -> String {
        let date = self.date();
        format!("{:04}-{:02}-{:02}", date.year, date.month, date.day)
    }
}

/// Whether the last syllable of `word` has a final consonant (받침), which picks the Korean
/// particle (`을`/`를`, `이`/`가`). Trailing punctuation (quotes) is skipped; words not ending in
/// a Hangul syllable count as without one.
pub fn has_final_consonant(word: &str) -> bool {
    word.chars()
        .rev()
        .find(|c| c.is_alphanumeric())
        .map(u32::from)
        .filter(|c| (0xAC00..=0xD7A3).contains(c))
        .is_some_and(|c| (c - 0xAC00) % 28 != 0)
}

/// `word` followed by the object particle `을` or `를`.
pub fn with_object_particle(word: &str) -> String {
    format!("{word}{}", if has_final_consonant(word) { "을" } else { "를" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn korea_time_days_and_weekdays() {
        // 2025-11-01T00:00:00+09:00 is 2025-10-31T15:00:00Z.
        let start = Day::of_millis(1_761_922_800_000);
        assert_eq!(start.date(), Date { year: 2025, month: 11, day: 1 });
        assert_eq!(start.weekday(), Weekday::Saturday);
        assert_eq!(start.korean(), "11월 1일(토)");
        assert_eq!(start.iso(), "2025-11-01");
        // One millisecond earlier is still 31 October in Korea.
        assert_eq!(Day::of_millis(1_761_922_799_999).date(), Date { year: 2025, month: 10, day: 31 });
        assert_eq!(Day(0).date(), Date { year: 1970, month: 1, day: 1 });
        assert_eq!(Day(0).weekday(), Weekday::Thursday);
        assert_eq!(Day(-1).date(), Date { year: 1969, month: 12, day: 31 });
        // Leap day.
        assert_eq!(Day(19_782).date(), Date { year: 2024, month: 2, day: 29 });
    }

    #[test]
    fn particles_follow_the_final_consonant() {
        assert_eq!(with_object_particle("인증샷 이벤트"), "인증샷 이벤트를");
        assert_eq!(with_object_particle("스탬프 적립"), "스탬프 적립을");
        assert_eq!(with_object_particle("Cafe K"), "Cafe K를");
        assert_eq!(with_object_particle("'스탬프 적립'"), "'스탬프 적립'을");
        assert!(!has_final_consonant(""));
    }

    #[test]
    fn wire_names_round_trip_through_serde() {
        for channel in Channel::ALL {
            let json = serde_json::to_string(&channel).expect("serialize");
            assert_eq!(json, format!("\"{}\"", channel.as_str()));
            assert_eq!(serde_json::from_str::<Channel>(&json).expect("deserialize"), channel);
        }
        assert!(serde_json::from_str::<Channel>("\"TIKTOK\"").is_err());
        assert!(serde_json::from_str::<Weekday>("\"monday\"").is_err());
    }
}
