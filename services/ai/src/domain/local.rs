//! The built-in local stand-in for Claude (`local:claude`): deterministic trend analyses and
//! recommendations for `kem up` and tests without an API key.
//!
//! The output depends on every input — category, area, objective, budget, period, channels,
//! prize, audience — and is seeded by the input hash, so the same request always gets the same
//! answer and a different request a different one. It is demo data, not analysis: results are
//! labelled `PROVIDER_KIND_LOCAL` / `local:claude` in responses and logs. The copy is written
//! from Korean templates per category and event type, sized to each channel's limits.

use super::channel::{ChannelCopy, copy_problems, hashtag_from};
use super::input::{EventBrief, NATIONWIDE, TrendQuery};
use super::output::{KrwRange, Prize, RECOMMENDATIONS, Recommendation, TrendAnalysis};
use super::values::{Category, Channel, Day, Method, Objective, Weekday, with_object_particle};

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

/// A prize idea of a category.
struct PrizeIdea {
    name: &'static str,
    value_krw: i64,
    description: &'static str,
}

/// What the generator knows about a category.
struct Profile {
    /// How customers call such a store (`카페`, `빵집`).
    noun: &'static str,
    /// Popular event types, most popular first.
    event_types: [&'static str; 5],
    best_days: [Weekday; 3],
    best_hours: [u8; 3],
    prize_range: (i64, i64),
    prizes: [PrizeIdea; 3],
    /// Customers on an ordinary day (drives the participation estimate).
    daily_customers: i64,
}

const fn idea(name: &'static str, value_krw: i64, description: &'static str) -> PrizeIdea {
    PrizeIdea { name, value_krw, description }
}

fn profile(category: Category) -> Profile {
    use Weekday::*;
    match category {
        Category::Restaurant => Profile {
            noun: "식당",
            event_types: [
                "SNS 인증샷 이벤트",
                "리뷰 작성 이벤트",
                "점심 세트 선착순 할인",
                "스탬프 적립",
                "단체 방문 경품 추첨",
            ],
            best_days: [Friday, Saturday, Thursday],
            best_hours: [12, 18, 19],
            prize_range: (10_000, 50_000),
            prizes: [
                idea("식사권 1만원권", 10_000, "매장에서 식사할 때 현금처럼 쓸 수 있어요."),
                idea("대표 메뉴 1인분", 15_000, "방문하실 때 당첨 문자를 보여 주세요."),
                idea("2인 식사권", 40_000, "대표 메뉴 2인분으로 교환해 드려요."),
            ],
            daily_customers: 40,
        },
        Category::Cafe => Profile {
            noun: "카페",
            event_types: [
                "SNS 인증샷 이벤트",
                "스탬프 적립",
                "신메뉴 시음 이벤트",
                "리뷰 작성 이벤트",
                "친구 동반 1+1",
            ],
            best_days: [Saturday, Sunday, Friday],
            best_hours: [14, 15, 12],
            prize_range: (4_500, 30_000),
            prizes: [
                idea("아메리카노 1잔", 4_500, "매장에서 당첨 문자를 보여 주시면 바로 드려요."),
                idea("조각 케이크 세트", 12_000, "조각 케이크와 음료 1잔으로 교환해 드려요."),
                idea("원두 200g", 18_000, "매장에서 고른 원두 200g을 드려요."),
            ],
            daily_customers: 60,
        },
        Category::Bakery => Profile {
            noun: "빵집",
            event_types: ["오픈런 선착순 증정", "SNS 인증샷 이벤트", "스탬프 적립", "시식 이벤트", "리뷰 작성 이벤트"],
            best_days: [Saturday, Sunday, Friday],
            best_hours: [8, 11, 16],
            prize_range: (4_000, 30_000),
            prizes: [
                idea("시그니처 빵 1개", 4_000, "당일 구운 시그니처 빵으로 드려요."),
                idea("식빵 교환권", 6_000, "원하는 날 식빵 1개로 교환해 드려요."),
                idea("홀케이크 교환권", 30_000, "하루 전에 예약하시면 홀케이크로 교환해 드려요."),
            ],
            daily_customers: 50,
        },
        Category::Bar => Profile {
            noun: "주점",
            event_types: [
                "SNS 인증샷 이벤트",
                "단체 방문 경품 추첨",
                "해피아워 선착순",
                "리뷰 작성 이벤트",
                "스탬프 적립",
            ],
            best_days: [Friday, Saturday, Thursday],
            best_hours: [18, 20, 21],
            prize_range: (8_000, 50_000),
            prizes: [
                idea("안주 1개 서비스", 15_000, "다음 방문 때 인기 안주 1개를 서비스로 드려요."),
                idea("음료 1병", 8_000, "다음 방문 때 음료 1병을 드려요."),
                idea("2인 이용권", 50_000, "두 분이 5만원까지 이용하실 수 있어요."),
            ],
            daily_customers: 30,
        },
        Category::Beauty => Profile {
            noun: "미용실",
            event_types: [
                "첫 방문 할인 추첨",
                "리뷰 작성 이벤트",
                "친구 추천 이벤트",
                "SNS 비포·애프터 인증",
                "재방문 쿠폰",
            ],
            best_days: [Saturday, Friday, Wednesday],
            best_hours: [11, 14, 19],
            prize_range: (10_000, 60_000),
            prizes: [
                idea("헤어 클리닉 1회", 30_000, "다음 예약 때 클리닉을 무료로 해 드려요."),
                idea("커트 이용권", 20_000, "원하는 날 예약하고 사용하세요."),
                idea("홈케어 제품 세트", 25_000, "샴푸와 트리트먼트 세트를 드려요."),
            ],
            daily_customers: 15,
        },
        Category::Retail => Profile {
            noun: "가게",
            event_types: [
                "구매 금액별 경품 추첨",
                "선착순 사은품 증정",
                "SNS 인증샷 이벤트",
                "스탬프 적립",
                "리뷰 작성 이벤트",
            ],
            best_days: [Saturday, Sunday, Friday],
            best_hours: [11, 17, 19],
            prize_range: (5_000, 30_000),
            prizes: [
                idea("5천원 상품권", 5_000, "매장에서 현금처럼 쓸 수 있어요."),
                idea("인기 상품 1개", 10_000, "매장 인기 상품 중 하나를 골라 가세요."),
                idea("3만원 상품권", 30_000, "매장에서 현금처럼 쓸 수 있어요."),
            ],
            daily_customers: 50,
        },
        Category::Fitness => Profile {
            noun: "운동 센터",
            event_types: [
                "무료 체험 수업 추첨",
                "친구 추천 이벤트",
                "운동 챌린지 인증",
                "SNS 인증샷 이벤트",
                "등록 선착순 할인",
            ],
            best_days: [Monday, Tuesday, Wednesday],
            best_hours: [7, 12, 20],
            prize_range: (20_000, 100_000),
            prizes: [
                idea("1일 체험권", 20_000, "원하는 날 모든 수업을 체험할 수 있어요."),
                idea("PT 1회 이용권", 50_000, "트레이너와 1:1 수업을 한 번 받을 수 있어요."),
                idea("1개월 이용권", 100_000, "등록하실 때 한 달을 무료로 더해 드려요."),
            ],
            daily_customers: 20,
        },
        Category::Education => Profile {
            noun: "학원",
            event_types: [
                "무료 체험 수업 추첨",
                "설명회 참석 경품",
                "친구 추천 이벤트",
                "수강 후기 이벤트",
                "등록 선착순 할인",
            ],
            best_days: [Saturday, Tuesday, Wednesday],
            best_hours: [16, 19, 20],
            prize_range: (10_000, 100_000),
            prizes: [
                idea("문화상품권 1만원", 10_000, "당첨자에게 문자로 보내 드려요."),
                idea("교재 세트", 25_000, "수강 과목 교재 세트를 드려요."),
                idea("1개월 수강료 할인권", 100_000, "등록하실 때 한 달 수강료를 할인해 드려요."),
            ],
            daily_customers: 10,
        },
        Category::Healthcare => Profile {
            noun: "병원·약국",
            event_types: [
                "건강 상식 퀴즈 이벤트",
                "리뷰 작성 이벤트",
                "방문 고객 사은품 증정",
                "SNS 공유 이벤트",
                "건강 캠페인 참여",
            ],
            best_days: [Monday, Tuesday, Saturday],
            best_hours: [9, 13, 18],
            prize_range: (5_000, 20_000),
            prizes: [
                idea("건강 음료 세트", 10_000, "방문하실 때 받아 가세요."),
                idea("손 소독제 세트", 5_000, "방문하실 때 받아 가세요."),
                idea("텀블러", 15_000, "방문하실 때 받아 가세요."),
            ],
            daily_customers: 25,
        },
        Category::LocalService => Profile {
            noun: "가게",
            event_types: [
                "첫 이용 할인 추첨",
                "리뷰 작성 이벤트",
                "친구 추천 이벤트",
                "스탬프 적립",
                "선착순 사은품 증정",
            ],
            best_days: [Monday, Saturday, Wednesday],
            best_hours: [10, 13, 18],
            prize_range: (5_000, 30_000),
            prizes: [
                idea("1회 이용권", 10_000, "다음 이용 때 한 번 무료로 해 드려요."),
                idea("5천원 할인 쿠폰", 5_000, "다음 이용 때 바로 할인해 드려요."),
                idea("3만원 이용권", 30_000, "3만원까지 이용하실 수 있어요."),
            ],
            daily_customers: 15,
        },
        Category::Other => Profile {
            noun: "가게",
            event_types: [
                "SNS 인증샷 이벤트",
                "리뷰 작성 이벤트",
                "선착순 사은품 증정",
                "스탬프 적립",
                "친구 추천 이벤트",
            ],
            best_days: [Saturday, Friday, Sunday],
            best_hours: [12, 18, 20],
            prize_range: (5_000, 30_000),
            prizes: [
                idea("모바일 상품권 5천원", 5_000, "당첨자에게 문자로 보내 드려요."),
                idea("모바일 상품권 1만원", 10_000, "당첨자에게 문자로 보내 드려요."),
                idea("모바일 상품권 3만원", 30_000, "당첨자에게 문자로 보내 드려요."),
            ],
            daily_customers: 20,
        },
    }
}

/// The seasonal context of each month.
const SEASONS: [&str; 12] = [
    "새해 다짐과 설 연휴를 앞두고 선물·건강 관련 관심이 높아지는 시기예요.",
    "설 연휴 뒤 졸업과 입학 준비로 가족 단위 방문이 늘어나는 시기예요.",
    "개학과 새 출발의 달이라 새로운 가게를 찾아보는 손님이 늘어요.",
    "벚꽃과 나들이 철이라 야외 활동 뒤 동네 가게를 찾는 발길이 늘어요.",
    "가정의 달이라 어린이날·어버이날 선물과 가족 모임 수요가 커요.",
    "초여름 더위가 시작되어 시원한 메뉴와 저녁 시간 방문이 늘어요.",
    "장마와 여름휴가 준비로 실내 활동과 포장 수요가 늘어나는 시기예요.",
    "휴가철 한여름이라 저녁 시간과 주말 방문이 몰리는 시기예요.",
    "추석 연휴를 앞두고 선물과 모임 수요가 늘어나는 시기예요.",
    "선선한 가을 나들이 철이라 주말 방문과 SNS 사진 공유가 활발해요.",
    "빼빼로데이와 수능이 있는 달이라 선물·응원 이벤트 반응이 좋아요.",
    "연말 모임과 크리스마스 수요로 단체 방문과 선물 구매가 늘어요.",
];

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

/// A kind of event the generator can propose.
struct Archetype {
    /// Title; `{noun}`, `{prize}`, `{day}`, `{hour}` are filled in.
    title: &'static str,
    /// Title when the filled-in one is too long.
    short_title: &'static str,
    /// How scripts call it (`인증샷 이벤트`).
    label: &'static str,
    method: Method,
    /// `{tag}`, `{n}`, `{day}`, `{hour}` are filled in.
    mechanic: &'static str,
    concept: &'static str,
    objectives: &'static [Objective],
    channels: &'static [Channel],
    /// Entries per day per 1,000 ordinary customers.
    rate_permille: i64,
    hashtag: &'static str,
}

const ARCHETYPES: [Archetype; 9] = {
    use Channel::*;
    use Objective::*;
    [
        Archetype {
            title: "{noun} 인증샷 이벤트",
            short_title: "인증샷 이벤트",
            label: "인증샷 이벤트",
            method: Method::Draw,
            mechanic: "매장에서 찍은 사진을 인스타그램에 올리고 #{tag} 해시태그를 달아 주세요. 게시물 링크로 응모하면 기간이 끝난 뒤 추첨해요.",
            concept: "손님이 직접 찍은 사진이 SNS에 퍼지면서 자연스럽게 가게가 알려져요.",
            objectives: &[NewCustomers, Awareness],
            channels: &[Instagram, NaverBlog, KakaoChannel],
            rate_permille: 120,
            hashtag: "인증샷이벤트",
        },
        Archetype {
            title: "첫 방문 선착순 {prize} 증정",
            short_title: "첫 방문 선착순 증정 이벤트",
            label: "첫 방문 선착순 이벤트",
            method: Method::FirstCome,
            mechanic: "처음 방문한 손님이 계산할 때 매장의 QR 코드로 응모하면 선착순 {n}명에게 경품을 드려요.",
            concept: "처음 오는 손님에게 확실한 혜택을 줘서 첫 방문의 문턱을 낮춰요.",
            objectives: &[NewCustomers],
            channels: &[KakaoChannel, UridongneTv, Instagram],
            rate_permille: 250,
            hashtag: "첫방문이벤트",
        },
        Archetype {
            title: "친구랑 함께 오면 경품 추첨",
            short_title: "친구 동반 경품 추첨",
            label: "친구 동반 이벤트",
            method: Method::Draw,
            mechanic: "친구와 함께 방문한 영수증을 찍어 응모하면 기간이 끝난 뒤 추첨해요.",
            concept: "기존 손님이 친구를 데려오게 해서 새 손님을 함께 모아요.",
            objectives: &[NewCustomers, Sales],
            channels: &[KakaoChannel, Instagram, NaverBlog],
            rate_permille: 150,
            hashtag: "친구랑이벤트",
        },
        Archetype {
            title: "스탬프 3개 모으고 경품 받기",
            short_title: "스탬프 이벤트",
            label: "스탬프 이벤트",
            method: Method::Draw,
            mechanic: "기간 안에 세 번 방문해 스탬프 3개를 모은 뒤 응모하면 추첨해요.",
            concept: "여러 번 방문해야 완성되는 스탬프로 재방문 습관을 만들어요.",
            objectives: &[Revisits],
            channels: &[KakaoChannel, RingoBiz, NaverBlog],
            rate_permille: 100,
            hashtag: "스탬프이벤트",
        },
        Archetype {
            title: "단골 감사 선착순 {prize} 증정",
            short_title: "단골 감사 선착순 이벤트",
            label: "단골 감사 이벤트",
            method: Method::FirstCome,
            mechanic: "지난 방문 영수증이나 적립 내역을 보여 주고 응모하면 선착순 {n}명에게 드려요.",
            concept: "자주 오는 손님에게 감사를 전해 단골 관계를 더 단단하게 해요.",
            objectives: &[Revisits],
            channels: &[KakaoChannel, RingoBiz, Instagram],
            rate_permille: 200,
            hashtag: "단골감사",
        },
        Archetype {
            title: "영수증 인증 경품 추첨",
            short_title: "영수증 경품 추첨",
            label: "영수증 이벤트",
            method: Method::Draw,
            mechanic: "기간 중 구매한 영수증 사진을 올려 응모하면 기간이 끝난 뒤 추첨해요.",
            concept: "구매 영수증으로 응모하게 해서 이벤트 기간의 매출로 바로 이어져요.",
            objectives: &[Sales],
            channels: &[KakaoChannel, UridongneTv, GenieTv],
            rate_permille: 220,
            hashtag: "영수증이벤트",
        },
        Archetype {
            title: "방문 리뷰 이벤트",
            short_title: "리뷰 이벤트",
            label: "리뷰 이벤트",
            method: Method::Draw,
            mechanic: "방문 후 네이버 지도나 블로그에 솔직한 리뷰를 남기고 링크로 응모하면 추첨해요. 리뷰에는 이벤트 참여 글임을 꼭 밝혀 주세요.",
            concept: "실제 방문 후기가 쌓이면 검색하는 새 손님에게 믿음을 줘요.",
            objectives: &[Awareness, NewCustomers],
            channels: &[NaverBlog, Instagram, KakaoChannel],
            rate_permille: 80,
            hashtag: "리뷰이벤트",
        },
        Archetype {
            title: "우리 동네 {noun} 알리기 이벤트",
            short_title: "동네 알리기 이벤트",
            label: "동네 알리기 이벤트",
            method: Method::Draw,
            mechanic: "광고에서 들은 이벤트 암호를 계산할 때 말하고 응모하면 기간이 끝난 뒤 추첨해요.",
            concept: "동네 TV와 전화 연결음으로 가까운 주민에게 가게를 알려요.",
            objectives: &[Awareness],
            channels: &[UridongneTv, GenieTv, RingoBiz],
            rate_permille: 90,
            hashtag: "우리동네이벤트",
        },
        Archetype {
            title: "{day}요일 {hour}시 선착순 이벤트",
            short_title: "시간 한정 선착순 이벤트",
            label: "시간 한정 선착순 이벤트",
            method: Method::FirstCome,
            mechanic: "매주 {day}요일 {hour}시부터 방문한 손님 중 선착순 {n}명에게 경품을 드려요.",
            concept: "손님이 적은 시간대에 방문을 모아 매출의 빈틈을 채워요.",
            objectives: &[Sales, Revisits],
            channels: &[KakaoChannel, Instagram, RingoBiz],
            rate_permille: 300,
            hashtag: "선착순이벤트",
        },
    ]
};

/// Channels tried, in order, when an event type's own channels are not available.
const FALLBACK_CHANNELS: [Channel; 6] = [
    Channel::KakaoChannel,
    Channel::Instagram,
    Channel::NaverBlog,
    Channel::UridongneTv,
    Channel::RingoBiz,
    Channel::GenieTv,
];

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
    owner_prize: Option<&super::input::PrizeHint>,
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
    owner_prize: Option<&super::input::PrizeHint>,
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

/// What every channel's copy is made of.
struct CopyContext<'a> {
    store: Option<&'a str>,
    store_tag: Option<String>,
    noun: &'a str,
    area: Option<String>,
    title: &'a str,
    label: &'a str,
    mechanic: &'a str,
    prize: &'a Prize,
    method: Method,
    concept: &'a str,
    brief: &'a EventBrief,
    archetype_tag: &'a str,
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

    fn for_channel(&self, channel: Channel) -> ChannelCopy {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::input::{BriefInput, PrizeHint};
    use crate::domain::parse::{recommendation_problems, trend_problems};

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
