//! The local stand-in's copy writing: Korean text for each channel, from the event's title,
//! mechanic, prize and period, written the way a small store would write it and sized to the
//! channel's limits ([`crate::domain::channel`]) — several templates per channel, longest first,
//! and the first that passes the strict checks wins.

use crate::domain::channel::{ChannelCopy, copy_problems, hashtag_from};
use crate::domain::input::EventBrief;
use crate::domain::output::Prize;
use crate::domain::values::{Channel, Day, Method, with_object_particle};

/// What every channel's copy is made of.
pub(super) struct CopyContext<'a> {
    pub(super) store: Option<&'a str>,
    pub(super) store_tag: Option<String>,
    pub(super) noun: &'a str,
    pub(super) area: Option<String>,
    pub(super) title: &'a str,
    pub(super) label: &'a str,
    pub(super) mechanic: &'a str,
    pub(super) prize: &'a Prize,
    pub(super) method: Method,
    pub(super) concept: &'a str,
    pub(super) brief: &'a EventBrief,
    pub(super) archetype_tag: &'a str,
}

impl CopyContext<'_> {
    /// `카페 온기에서` or `저희 카페에서`.
    fn at_store(&self) -> String {
        match self.store {
            Some(store) => format!("{store}에서"),
            None => format!("저희 {}에서", self.noun),
        }
    }

    fn greeting(&self) -> String {
        match self.store {
            Some(store) => format!("안녕하세요, {store}입니다."),
            None => "안녕하세요!".to_owned(),
        }
    }

    /// `아메리카노 1잔 (20명 추첨)` or `(선착순 20명)`.
    fn prize_line(&self) -> String {
        match self.method {
            Method::Draw => format!("{} ({}명 추첨)", self.prize.name, self.prize.winner_count),
            Method::FirstCome => format!("{} (선착순 {}명)", self.prize.name, self.prize.winner_count),
        }
    }

    /// `11월 1일부터 11월 14일까지` (spoken, no weekdays).
    fn spoken_period(&self) -> String {
        let spoken = |day: Day| {
            let date = day.date();
            format!("{}월 {}일", date.month, date.day)
        };
        let period = self.brief.period;
        if period.first_day == period.last_day {
            format!("{} 하루", spoken(period.first_day))
        } else {
            format!("{}부터 {}까지", spoken(period.first_day), spoken(period.last_day))
        }
    }

    fn hashtags(&self, max: usize) -> Vec<String> {
        let mut tags: Vec<String> = Vec::new();
        let mut push = |tag: Option<String>| {
            if let Some(tag) = tag
                && !tags.iter().any(|t| t.eq_ignore_ascii_case(&tag))
            {
                tags.push(tag);
            }
        };
        push(self.store_tag.clone());
        push(Some(self.archetype_tag.to_owned()));
        if let Some(area) = &self.area {
            push(hashtag_from(area));
            push(hashtag_from(&format!("{area}{}", self.noun)));
        }
        push(hashtag_from(&format!("{}이벤트", self.noun)));
        push(Some("이벤트".to_owned()));
        push(Some("경품이벤트".to_owned()));
        tags.truncate(max);
        tags
    }

    /// The copy of `channel`: the first of its templates (longest first) within the channel's
    /// limits.
    pub(super) fn for_channel(&self, channel: Channel) -> ChannelCopy {
        let candidates: Vec<(String, Vec<String>)> = match channel {
            Channel::Instagram => vec![(self.instagram(), self.hashtags(10))],
            Channel::KakaoChannel => vec![(self.kakao(), Vec::new())],
            Channel::NaverBlog => vec![(self.blog(), self.hashtags(10))],
            Channel::RingoBiz => self.ring_back().into_iter().map(|t| (t, Vec::new())).collect(),
            Channel::UridongneTv => self.short_spot().into_iter().map(|t| (t, Vec::new())).collect(),
            Channel::GenieTv => self.long_spot().into_iter().map(|t| (t, Vec::new())).collect(),
        };
        let mut fallback = None;
        for (text, hashtags) in candidates {
            let copy = ChannelCopy { channel, text, hashtags };
            if copy_problems("", &copy).is_empty() {
                return copy;
            }
            fallback = Some(copy);
        }
        // Only reachable with inputs near their maximum lengths: the last (shortest) candidate.
        fallback.unwrap_or(ChannelCopy { channel, text: "이벤트 진행 중".to_owned(), hashtags: Vec::new() })
    }

    fn instagram(&self) -> String {
        let mut text = format!(
            "✨ {title} ✨\n\n{at_store} {period} 동안 이벤트를 열어요!\n\n🎁 경품: {prize}\n📝 참여 방법: {mechanic}",
            title = self.title,
            at_store = self.at_store(),
            period = self.brief.period.korean(),
            prize = self.prize_line(),
            mechanic = self.mechanic,
        );
        if let Some(area) = &self.area {
            text.push_str(&format!("\n📍 {area}"));
        }
        text.push_str("\n\n많은 참여 부탁드려요 😊");
        text
    }

    fn kakao(&self) -> String {
        let name = self.store.unwrap_or(self.noun);
        format!(
            "(광고) [{name}] {title}\n\n{greeting}\n{period} 동안 {label} 진행합니다.\n\n\
             ■ 참여 방법: {mechanic}\n■ 경품: {prize}\n■ 당첨 방식: {method}\n\n\
             많은 참여 부탁드립니다!\n수신거부: 채널 홈 > 채널 차단",
            title = self.title,
            greeting = self.greeting(),
            period = self.brief.period.korean(),
            label = with_object_particle(&format!("'{}'", self.label)),
            mechanic = self.mechanic,
            prize = self.prize_line(),
            method = self.method.korean(),
        )
    }

    fn blog(&self) -> String {
        let heading = match &self.area {
            Some(area) => format!("[{area} {}] {}", self.noun, self.title),
            None => self.title.to_owned(),
        };
        let description =
            if self.prize.description.is_empty() { String::new() } else { format!(" - {}", self.prize.description) };
        format!(
            "{heading}\n\n{greeting} {period} 동안 특별한 이벤트를 준비했어요.\n\n{concept}\n\n\
             ■ 이벤트 기간: {period}\n■ 참여 방법: {mechanic}\n■ 경품: {prize}{description}\n■ 당첨 방식: {method}\n\
             ■ 당첨자 안내: 이벤트가 끝나면 개별로 연락드려요.\n\n궁금한 점은 매장으로 편하게 문의해 주세요. 감사합니다!",
            greeting = self.greeting(),
            period = self.brief.period.korean(),
            concept = self.concept,
            mechanic = self.mechanic,
            prize = self.prize_line(),
            method = self.method.korean(),
        )
    }

    /// 링고비즈: what callers hear while the call connects (≤ 15 s), longest first.
    fn ring_back(&self) -> Vec<String> {
        let label = with_object_particle(self.label);
        vec![
            format!(
                "{} 지금 {label} 진행 중이에요. {}의 주인공이 되어 보세요. 곧 연결해 드릴게요.",
                self.greeting(),
                self.prize.name
            ),
            format!("{} 지금 {label} 진행 중이에요. 곧 연결해 드릴게요.", self.greeting()),
            "안녕하세요. 지금 이벤트 진행 중이에요. 곧 연결해 드릴게요.".to_owned(),
        ]
    }

    /// 우리동네TV: a 15-second spot, longest first.
    fn short_spot(&self) -> Vec<String> {
        let label = with_object_particle(self.label);
        let neighbours = self.area.as_ref().map_or("이웃 여러분!".to_owned(), |a| format!("{a} 주민 여러분!"));
        vec![
            format!("{neighbours} {} {label} 엽니다. {}의 주인공이 되어 보세요.", self.at_store(), self.prize.name),
            format!("{} {label} 엽니다. 지금 참여하세요!", self.at_store()),
            "우리 동네 이벤트 소식! 지금 매장에서 확인하세요.".to_owned(),
        ]
    }

    /// 지니TV: a 30-second spot, longest first.
    fn long_spot(&self) -> Vec<String> {
        let label = with_object_particle(self.label);
        let neighbours = self.area.as_ref().map_or("시청자 여러분,".to_owned(), |a| format!("{a} 주민 여러분,"));
        vec![
            format!(
                "{neighbours} 반갑습니다. {} {} {label} 엽니다. {} {}의 주인공이 되어 보세요. 지금 바로 참여하세요!",
                self.at_store(),
                self.spoken_period(),
                self.mechanic,
                self.prize.name
            ),
            format!(
                "{neighbours} 반갑습니다. {} {} {label} 엽니다. {}의 주인공이 되어 보세요!",
                self.at_store(),
                self.spoken_period(),
                self.prize.name
            ),
            format!("{} {label} 엽니다. 지금 바로 참여하세요!", self.at_store()),
            "우리 동네 이벤트 소식! 지금 매장에서 확인하세요.".to_owned(),
        ]
    }
}
