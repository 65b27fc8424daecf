//! The local stand-in's data: what it knows about each business category (how customers call
//! such a store, popular event types, best days and hours, prize ideas and ranges, ordinary
//! footfall), the seasonal context of each month, and the kinds of event it proposes. The
//! generator ([`super::generate`]) picks from these tables with a seeded random source; the
//! copy writer ([`super::copy`]) fills the event's words into per-channel templates.

use crate::domain::values::{Category, Channel, Method, Objective, Weekday};

/// A prize idea of a category.
pub(super) struct PrizeIdea {
    pub(super) name: &'static str,
    pub(super) value_krw: i64,
    pub(super) description: &'static str,
}

/// What the generator knows about a category.
pub(super) struct Profile {
    /// How customers call such a store (`카페`, `빵집`).
    pub(super) noun: &'static str,
    /// Popular event types, most popular first.
    pub(super) event_types: [&'static str; 5],
    pub(super) best_days: [Weekday; 3],
    pub(super) best_hours: [u8; 3],
    pub(super) prize_range: (i64, i64),
    pub(super) prizes: [PrizeIdea; 3],
    /// Customers on an ordinary day (drives the participation estimate).
    pub(super) daily_customers: i64,
}

const fn idea(name: &'static str, value_krw: i64, description: &'static str) -> PrizeIdea {
    PrizeIdea { name, value_krw, description }
}

pub(super) fn profile(category: Category) -> Profile {
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
pub(super) const SEASONS: [&str; 12] = [
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

/// A kind of event the generator can propose.
pub(super) struct Archetype {
    /// Title; `{noun}`, `{prize}`, `{day}`, `{hour}` are filled in.
    pub(super) title: &'static str,
    /// Title when the filled-in one is too long.
    pub(super) short_title: &'static str,
    /// How scripts call it (`인증샷 이벤트`).
    pub(super) label: &'static str,
    pub(super) method: Method,
    /// `{tag}`, `{n}`, `{day}`, `{hour}` are filled in.
    pub(super) mechanic: &'static str,
    pub(super) concept: &'static str,
    pub(super) objectives: &'static [Objective],
    pub(super) channels: &'static [Channel],
    /// Entries per day per 1,000 ordinary customers.
    pub(super) rate_permille: i64,
    pub(super) hashtag: &'static str,
}

pub(super) const ARCHETYPES: [Archetype; 9] = {
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
pub(super) const FALLBACK_CHANNELS: [Channel; 6] = [
    Channel::KakaoChannel,
    Channel::Instagram,
    Channel::NaverBlog,
    Channel::UridongneTv,
    Channel::RingoBiz,
    Channel::GenieTv,
];
