//! The local stand-in's generator: trend analyses and three recommendations, picked from the
//! [`tables`](super::tables) with a random source seeded by the input hash, the copy written by
//! [`copy`](super::copy).

use crate::domain::channel::hashtag_from;
use crate::domain::input::{EventBrief, NATIONWIDE, PrizeHint, TrendQuery};
use crate::domain::output::{KrwRange, Prize, RECOMMENDATIONS, Recommendation, TrendAnalysis};
use crate::domain::values::{Channel, Day, Method, Weekday};

use super::copy::CopyContext;
use super::tables::{ARCHETYPES, Archetype, FALLBACK_CHANNELS, PrizeIdea, Profile, SEASONS, profile};

/// The generator's version (the `model` of local results).
pub const GENERATOR: &str = "kem-local-v1";

/// splitmix64 seeded from a hash: small, fast, and identical on every platform.
struct Rng(u64);

impl Rng {
    fn seeded(input_hash: &str, salt: &str) -> Rng {
        let digest = ring::digest::digest(&ring::digest::SHA256, format!("{input_hash}:{salt}").as_bytes());
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&digest.as_ref()[..8]);
        Rng(u64::from_le_bytes(seed))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// A number in `low..=high`.
    fn between(&mut self, low: i64, high: i64) -> i64 {
        let span = u64::try_from(high - low + 1).unwrap_or(1).max(1);
        low + i64::try_from(self.next() % span).unwrap_or(0)
    }
}

/// The trend analysis of `query`, as of Korea-time day `today`.
pub fn trends(query: &TrendQuery, today: Day) -> TrendAnalysis {
    let month = today.date().month;
    let mut rng = Rng::seeded(&query.input_hash(), &format!("trends:{month}"));
    let profile = profile(query.category);
    // The top type stays first; the area reorders the rest.
    let mut types: Vec<&str> = profile.event_types.to_vec();
    for i in (2..types.len()).rev() {
        let j = 1 + rng.below(i);
        types.swap(i, j);
    }
    types.truncate(4);
    let mut days = profile.best_days.to_vec();
    if rng.below(2) == 1 {
        days.swap(1, 2);
    }
    let mut hours = profile.best_hours.to_vec();
    if rng.below(2) == 1 {
        hours.swap(1, 2);
    }
    // Prize expectations are higher in the capital area.
    let metro = query.region.starts_with("서울") || query.region.starts_with("경기");
    let scale = |v: i64| if metro { (v * 12 / 10 + 250) / 500 * 500 } else { v };
    let range = KrwRange { min: scale(profile.prize_range.0), max: scale(profile.prize_range.1) };
    let season = SEASONS[usize::try_from(month.saturating_sub(1)).unwrap_or(0) % 12];
    let area = if query.region == NATIONWIDE { "전국".to_owned() } else { query.region.clone() };
    let summary = format!(
        "{area} {noun} 손님들은 요즘 '{t0}', '{t1}' 같은 이벤트에 반응이 좋아요. {season} \
         {d0}·{d1}요일 {h0}시 전후에 홍보하고, 경품은 1인당 {min}~{max}원 선이 알맞아요.",
        noun = profile.noun,
        t0 = types[0],
        t1 = types[1],
        d0 = days[0].korean(),
        d1 = days[1].korean(),
        h0 = hours[0],
        min = won(range.min),
        max = won(range.max),
    );
    TrendAnalysis {
        seasonality: season.to_owned(),
        popular_event_types: types.into_iter().map(str::to_owned).collect(),
        best_days: days,
        best_hours: hours,
        suggested_prize_range_krw: range,
        summary,
    }
}

/// `12,000`.
fn won(amount: i64) -> String {
    let digits = amount.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if amount < 0 { format!("-{out}") } else { out }
}

/// Three recommendations for `brief`, building on `trend`.
pub fn recommendations(brief: &EventBrief, trend: &TrendAnalysis) -> Vec<Recommendation> {
    let mut rng = Rng::seeded(&brief.input_hash(), "recommendations");
    let profile = profile(brief.category);
    // Event types that fit the objective first, in a seeded order; the owner's preferred method
    // leads when given.
    let mut ranked: Vec<(u8, u8, u64, &Archetype)> = ARCHETYPES
        .iter()
        .map(|a| {
            let fit = u8::from(!a.objectives.contains(&brief.objective));
            let method = u8::from(brief.method.is_some_and(|m| m != a.method));
            (fit, method, rng.next(), a)
        })
        .collect();
    ranked.sort_by_key(|(fit, method, key, _)| (*fit, *method, *key));
    let slow_day = pick_slow_day(trend, &mut rng);
    let prize_offset = rng.below(profile.prizes.len());
    ranked
        .into_iter()
        .take(RECOMMENDATIONS)
        .enumerate()
        .map(|(i, (_, _, _, archetype))| {
            let prize_idea = &profile.prizes[(prize_offset + i) % profile.prizes.len()];
            let owner_prize = if i == 0 { brief.prize.as_ref() } else { None };
            build(brief, trend, &profile, archetype, prize_idea, owner_prize, slow_day, &mut rng)
        })
        .collect()
}

/// A quieter day and hour for time-limited events: the trend's least good listed day.
fn pick_slow_day(trend: &TrendAnalysis, rng: &mut Rng) -> (Weekday, u8) {
    let busy = &trend.best_days;
    let quiet: Vec<Weekday> =
        [Weekday::Monday, Weekday::Tuesday, Weekday::Wednesday].into_iter().filter(|d| !busy.contains(d)).collect();
    let day = if quiet.is_empty() { Weekday::Tuesday } else { quiet[rng.below(quiet.len())] };
    let hour = [14u8, 15, 16][rng.below(3)];
    (day, hour)
}

#[allow(clippy::too_many_arguments)]
fn build(
    brief: &EventBrief,
    trend: &TrendAnalysis,
    profile: &Profile,
    archetype: &Archetype,
    prize_idea: &PrizeIdea,
    owner_prize: Option<&PrizeHint>,
    (slow_day, slow_hour): (Weekday, u8),
    rng: &mut Rng,
) -> Recommendation {
    let prize = prize_for(brief, profile, archetype.method, prize_idea, owner_prize, rng);
    let channels = channels_for(brief, archetype);
    let store = (!brief.store_name.is_empty()).then_some(brief.store_name.as_str());
    let store_tag = store.and_then(hashtag_from);
    let fill = |template: &str| {
        template
            .replace("{noun}", profile.noun)
            .replace("{prize}", &prize.name)
            .replace("{day}", slow_day.korean())
            .replace("{hour}", &slow_hour.to_string())
            .replace("{n}", &prize.winner_count.to_string())
            .replace("{tag}", store_tag.as_deref().unwrap_or(archetype.hashtag))
    };
    let title =
        Some(fill(archetype.title)).filter(|t| t.chars().count() <= 100).unwrap_or_else(|| fill(archetype.short_title));
    let mechanic = fill(archetype.mechanic);
    let area = area_of(brief);
    let trend_type = trend.popular_event_types.first().map_or("SNS 인증샷 이벤트", String::as_str);
    let best_day = trend.best_days.first().map_or("토", |d| d.korean());
    let best_hour = trend.best_hours.first().copied().unwrap_or(12);
    let mut concept = format!(
        "{objective}에 초점을 맞춘 {label}입니다. {concept} 요즘 {area} {noun} 손님들은 '{trend_type}' 같은 이벤트에 \
         반응이 좋고, {best_day}요일 {best_hour}시 전후 홍보가 효과적이에요.",
        objective = brief.objective.korean(),
        label = archetype.label,
        concept = archetype.concept,
        area = area.as_deref().unwrap_or("우리 동네"),
        noun = profile.noun,
    );
    if !brief.target_audience.is_empty() {
        concept.push_str(&format!(" 주요 대상인 '{}' 손님에게 맞춰 구성했어요.", brief.target_audience));
    }
    let participants = expected_participants(brief, profile, archetype, &prize, &channels, rng);
    let copy = CopyContext {
        store,
        store_tag,
        noun: profile.noun,
        area,
        title: &title,
        label: archetype.label,
        mechanic: &mechanic,
        prize: &prize,
        method: archetype.method,
        concept: &concept,
        brief,
        archetype_tag: archetype.hashtag,
    };
    let channel_copies = channels.iter().map(|c| copy.for_channel(*c)).collect();
    Recommendation {
        title,
        concept,
        participation_method: archetype.method,
        participation_mechanic: mechanic,
        prize,
        expected_participants: participants,
        recommended_channels: channels,
        channel_copies,
    }
}

/// The prize: the owner's for the first recommendation when given, otherwise a category idea,
/// with as many winners as about half the budget pays for (all prizes always fit the budget).
fn prize_for(
    brief: &EventBrief,
    profile: &Profile,
    method: Method,
    prize_idea: &PrizeIdea,
    owner_prize: Option<&PrizeHint>,
    rng: &mut Rng,
) -> Prize {
    let (mut name, mut description, mut unit) = match owner_prize {
        Some(hint) => {
            (hint.name.clone(), hint.description.clone(), hint.unit_value_krw.unwrap_or(prize_idea.value_krw))
        }
        None => (prize_idea.name.to_owned(), prize_idea.description.to_owned(), prize_idea.value_krw),
    };
    let default_winners = match method {
        Method::FirstCome => 20 + rng.between(0, 4) * 5,
        Method::Draw => 5 + rng.between(0, 3) * 5,
    };
    let wanted = owner_prize.map_or(default_winners, |hint| i64::from(hint.winner_count));
    let winners = match brief.budget_krw {
        None => wanted,
        Some(budget) => {
            let share = match method {
                Method::FirstCome => 6,
                Method::Draw => 5,
            };
            let pool = budget * share / 10;
            if unit > pool {
                // Too dear for the budget: the category's cheapest idea, or a token gift.
                let cheapest = profile.prizes.iter().min_by_key(|p| p.value_krw).unwrap_or(prize_idea);
                if owner_prize.is_none() && cheapest.value_krw <= pool {
                    name = cheapest.name.to_owned();
                    description = cheapest.description.to_owned();
                    unit = cheapest.value_krw;
                } else if unit > budget {
                    name = "감사 선물".to_owned();
                    description = "예산에 맞춘 작은 감사 선물을 드려요.".to_owned();
                    unit = pool.max(0);
                }
            }
            let affordable = if unit > 0 { (pool.max(unit) / unit).min(budget / unit) } else { wanted };
            if owner_prize.is_some() { wanted.min(affordable) } else { affordable.min(wanted.max(1) * 4) }
        }
    };
    let winner_count = i32::try_from(winners.clamp(1, 1_000)).unwrap_or(1);
    Prize { name, description, winner_count, unit_value_krw: unit }
}

/// Up to three channels: the event type's preferred ones the owner has, topped up to two.
fn channels_for(brief: &EventBrief, archetype: &Archetype) -> Vec<Channel> {
    let available = brief.available_channels();
    let mut chosen: Vec<Channel> =
        archetype.channels.iter().copied().filter(|c| available.contains(c)).take(3).collect();
    for channel in FALLBACK_CHANNELS {
        if chosen.len() >= 2 {
            break;
        }
        if available.contains(&channel) && !chosen.contains(&channel) {
            chosen.push(channel);
        }
    }
    chosen
}

fn expected_participants(
    brief: &EventBrief,
    profile: &Profile,
    archetype: &Archetype,
    prize: &Prize,
    channels: &[Channel],
    rng: &mut Rng,
) -> i64 {
    let days = brief.period.days().clamp(1, 60);
    let broadcast = channels.iter().filter(|c| matches!(c, Channel::UridongneTv | Channel::GenieTv)).count();
    let channel_permille = 1_000 + 150 * (channels.len() as i64 - 1) + 100 * broadcast as i64;
    let base = profile.daily_customers * days * archetype.rate_permille / 1_000;
    let estimate = base * channel_permille / 1_000 * rng.between(850, 1_150) / 1_000;
    let floor = match archetype.method {
        Method::FirstCome => i64::from(prize.winner_count),
        Method::Draw => i64::from(prize.winner_count) * 3,
    };
    estimate.max(floor).clamp(1, 1_000_000)
}

/// The area as owners say it: the last word of the trend area (`강남구`), or none nationwide.
fn area_of(brief: &EventBrief) -> Option<String> {
    let area = brief.trend_query().region;
    if area == NATIONWIDE { None } else { area.split(' ').next_back().map(str::to_owned) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::input::BriefInput;
    use crate::domain::parse::{recommendation_problems, trend_problems};
    use crate::domain::values::{Category, Objective};

    const NOV_1: i64 = 1_761_922_800_000;
    const DAY: i64 = 86_400_000;

    /// A change to the base input.
    type Change = Box<dyn Fn(&mut BriefInput)>;

    fn input() -> BriefInput {
        BriefInput {
            objective: Some(Objective::NewCustomers),
            store_name: "카페 온기".into(),
            category: Some(Category::Cafe),
            region: "서울 강남구 역삼동".into(),
            budget_krw: Some(300_000),
            period_ms: Some((NOV_1, NOV_1 + 14 * DAY)),
            ..BriefInput::default()
        }
    }

    fn generate(input: BriefInput) -> (EventBrief, Vec<Recommendation>) {
        let brief = EventBrief::new(input).expect("valid brief");
        let trend = trends(&brief.trend_query(), brief.period.first_day);
        let recs = recommendations(&brief, &trend);
        (brief, recs)
    }

    #[test]
    fn output_is_deterministic() {
        let (_, a) = generate(input());
        let (_, b) = generate(input());
        assert_eq!(a, b);
        let query = TrendQuery::new(Category::Cafe, "서울 강남구").expect("valid");
        assert_eq!(trends(&query, Day(20_400)), trends(&query, Day(20_400)));
    }

    #[test]
    fn output_depends_on_every_input() {
        let (_, base) = generate(input());
        let variants: Vec<(&str, Change)> = vec![
            ("objective", Box::new(|i| i.objective = Some(Objective::Revisits))),
            ("category", Box::new(|i| i.category = Some(Category::Restaurant))),
            ("region", Box::new(|i| i.region = "부산 해운대구".into())),
            ("budget", Box::new(|i| i.budget_krw = Some(1_000_000))),
            ("period", Box::new(|i| i.period_ms = Some((NOV_1 + 30 * DAY, NOV_1 + 37 * DAY)))),
            ("store", Box::new(|i| i.store_name = "빈티지 커피".into())),
            ("channels", Box::new(|i| i.channels = vec![Channel::RingoBiz, Channel::GenieTv])),
            (
                "prize",
                Box::new(|i| {
                    i.prize = Some(PrizeHint {
                        name: "쿠키 세트".into(),
                        description: String::new(),
                        winner_count: 7,
                        unit_value_krw: Some(8_000),
                    })
                }),
            ),
        ];
        for (what, change) in variants {
            let mut changed = input();
            change(&mut changed);
            let (_, recs) = generate(changed);
            assert_ne!(recs, base, "changing the {what} must change the recommendations");
        }
        let q = |c, r| TrendQuery::new(c, r).expect("valid");
        let today = Day(20_400);
        assert_ne!(trends(&q(Category::Cafe, "서울 강남구"), today), trends(&q(Category::Bar, "서울 강남구"), today));
        assert_ne!(
            trends(&q(Category::Cafe, "서울 강남구"), today).summary,
            trends(&q(Category::Cafe, "대전 유성구"), today).summary
        );
    }

    #[test]
    fn objectives_pick_fitting_events_and_the_owners_prize_and_method_lead() {
        let (_, revisits) = generate(BriefInput { objective: Some(Objective::Revisits), ..input() });
        assert!(revisits[0].concept.starts_with("재방문 유도에 초점을 맞춘"), "{}", revisits[0].concept);
        let mut with_prize = input();
        with_prize.prize = Some(PrizeHint {
            name: "쿠키 세트".into(),
            description: "매장에서 교환".into(),
            winner_count: 7,
            unit_value_krw: Some(8_000),
        });
        with_prize.method = Some(Method::FirstCome);
        let (_, recs) = generate(with_prize);
        assert_eq!((recs[0].prize.name.as_str(), recs[0].prize.winner_count), ("쿠키 세트", 7));
        assert_eq!(recs[0].participation_method, Method::FirstCome);
    }

    #[test]
    fn every_generated_result_passes_the_strict_parser() {
        let categories = Category::ALL;
        let objectives = Objective::ALL;
        let budgets = [None, Some(0), Some(3_000), Some(50_000), Some(300_000), Some(100_000_000)];
        let channel_sets: [&[Channel]; 5] = [
            &[],
            &[Channel::RingoBiz],
            &[Channel::GenieTv, Channel::UridongneTv],
            &[Channel::Instagram, Channel::NaverBlog],
            &[Channel::KakaoChannel],
        ];
        let long_name = "아주 긴 이름을 가진 동네 가게 ".repeat(3);
        let stores = ["", "카페 온기", long_name.trim()];
        let mut checked = 0;
        for (i, category) in categories.iter().enumerate() {
            for (j, objective) in objectives.iter().enumerate() {
                let budget = budgets[(i + j) % budgets.len()];
                let channels = channel_sets[(i * 3 + j) % channel_sets.len()];
                let store = stores[(i + 2 * j) % stores.len()];
                let region = ["서울 마포구 연남동", "", "제주 서귀포시"][(i + j) % 3];
                let days = [1, 7, 30, 366][j % 4];
                let (brief, recs) = generate(BriefInput {
                    objective: Some(*objective),
                    category: Some(*category),
                    store_name: store.to_owned(),
                    region: region.to_owned(),
                    budget_krw: budget,
                    period_ms: Some((NOV_1, NOV_1 + days * DAY)),
                    channels: channels.to_vec(),
                    target_audience: if j % 2 == 0 { "인근 직장인 20-30대".into() } else { String::new() },
                    ..BriefInput::default()
                });
                let problems = recommendation_problems(&recs, &brief);
                assert!(problems.is_empty(), "{category:?}/{objective:?}/{budget:?}/{channels:?}: {problems:?}");
                let trend = trends(&brief.trend_query(), brief.period.first_day);
                assert!(trend_problems(&trend).is_empty(), "{:?}", trend_problems(&trend));
                // Round trip through the wire format the parser reads.
                let wire = serde_json::json!({ "recommendations": recs }).to_string();
                assert_eq!(crate::domain::parse::parse_recommendations(&wire, &brief).expect("parses"), recs);
                checked += 1;
            }
        }
        assert_eq!(checked, 44);
    }

    #[test]
    fn korean_copy_reads_like_a_small_store_wrote_it() {
        let (brief, recs) = generate(BriefInput {
            channels: vec![Channel::KakaoChannel, Channel::RingoBiz, Channel::Instagram],
            ..input()
        });
        let first = &recs[0];
        let kakao = first.channel_copies.iter().find(|c| c.channel == Channel::KakaoChannel);
        if let Some(kakao) = kakao {
            assert!(kakao.text.starts_with("(광고) [카페 온기]"), "{}", kakao.text);
            assert!(kakao.text.contains("11월 1일(토) ~ 11월 14일(금) 동안"), "{}", kakao.text);
            assert!(kakao.text.contains("안녕하세요, 카페 온기입니다."), "{}", kakao.text);
        }
        for rec in &recs {
            assert!(rec.recommended_channels.iter().all(|c| brief.available_channels().contains(c)));
            for copy in &rec.channel_copies {
                if copy.channel == Channel::RingoBiz {
                    assert!(crate::domain::channel::speech_seconds(&copy.text) <= 15, "{}", copy.text);
                    assert!(copy.text.contains("곧 연결해 드릴게요"), "{}", copy.text);
                }
                if copy.channel == Channel::Instagram {
                    assert!(copy.hashtags.contains(&"카페온기".to_owned()), "{:?}", copy.hashtags);
                    assert!(copy.hashtags.contains(&"강남구카페".to_owned()), "{:?}", copy.hashtags);
                }
            }
        }
        let titles: Vec<&str> = recs.iter().map(|r| r.title.as_str()).collect();
        assert!(titles.iter().all(|t| !t.contains('{')), "{titles:?}");
    }

    #[test]
    fn won_groups_thousands() {
        assert_eq!((won(0), won(4_500), won(1_234_567)), ("0".into(), "4,500".into(), "1,234,567".into()));
    }
}
