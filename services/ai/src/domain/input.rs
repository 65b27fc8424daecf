//! What the ai service is asked: a trend query (category + region) or an event brief (the
//! inputs of three recommendations), validated and normalised so that requests meaning the same
//! thing hash the same (the cache key and `input_hash`).
//!
//! Normalisation: text is trimmed with whitespace runs collapsed to one space; a leading
//! province abbreviation is expanded (`서울 강남구` → `서울특별시 강남구`); channels are sorted and
//! deduplicated; the period is reduced to Korea-time days (the hour an event starts does not change
//! what to recommend).

use std::fmt;

use kem_kit::hex;
use kem_kit::validate::{Text, check_text};
use serde::Serialize;

use super::values::{Category, Channel, Day, Method, Objective};

/// Longest region accepted (GetTrends contract: 1-100 characters).
pub const MAX_REGION_CHARS: usize = 100;
/// Longest owner instructions accepted.
pub const MAX_INSTRUCTIONS_CHARS: usize = 500;
/// Longest target audience accepted.
pub const MAX_AUDIENCE_CHARS: usize = 500;
/// Longest store name accepted.
pub const MAX_STORE_NAME_CHARS: usize = 100;
/// Longest working title accepted.
pub const MAX_TITLE_CHARS: usize = 100;
/// Longest description accepted.
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
/// Largest budget accepted: ₩1조, the event service's bound (far above any small-business event).
pub const MAX_BUDGET_KRW: i64 = 1_000_000_000_000;
/// Longest event period accepted, in days.
pub const MAX_PERIOD_DAYS: i64 = 366;
/// The region used when the store's region is unknown.
pub const NATIONWIDE: &str = "전국";

/// One problem with a request field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// The field, as named in the request (`store.region`, `period`).
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

/// Every problem found in a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidInput(pub Vec<FieldProblem>);

impl InvalidInput {
    /// One problem.
    pub fn one(field: &str, problem: impl Into<String>) -> InvalidInput {
        InvalidInput(vec![FieldProblem { field: field.to_owned(), problem: problem.into() }])
    }
}

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|p| format!("{}: {}", p.field, p.problem)).collect();
        write!(f, "invalid request: {}", parts.join("; "))
    }
}

/// Collects field problems while a request is validated.
#[derive(Debug, Default)]
pub struct Problems(Vec<FieldProblem>);

impl Problems {
    /// Records a problem.
    pub fn add(&mut self, field: &str, problem: impl Into<String>) {
        self.0.push(FieldProblem { field: field.to_owned(), problem: problem.into() });
    }

    /// Adds everything `other` found.
    pub fn extend(&mut self, other: InvalidInput) {
        self.0.extend(other.0);
    }

    /// `Ok(value)` when nothing was found.
    pub fn finish<T>(self, value: T) -> Result<T, InvalidInput> {
        if self.0.is_empty() { Ok(value) } else { Err(InvalidInput(self.0)) }
    }

    /// `result`, with the problems found so far added to its own.
    pub fn finish_with<T>(mut self, result: Result<T, InvalidInput>) -> Result<T, InvalidInput> {
        match result {
            Ok(value) => self.finish(value),
            Err(invalid) => {
                self.0.extend(invalid.0);
                Err(InvalidInput(self.0))
            }
        }
    }

    /// Normalised `text`, recording a problem when the text as sent breaks the platform's text
    /// rule (`kem_kit::validate`: length in characters; NUL, control characters — but line
    /// breaks and tabs in prose — line separators and bidi controls).
    fn text(&mut self, field: &str, text: &str, rule: Text) -> String {
        if let Err(e) = check_text(text, rule) {
            self.add(field, e.to_string());
        }
        normalize_text(text)
    }

    /// Records a problem when a region has characters the platform refuses (its length is judged
    /// after normalisation, which spells provinces out).
    fn region_characters(&mut self, field: &str, region: &str) {
        if let Err(e) = check_text(region, Text::line(usize::MAX)) {
            self.add(field, e.to_string());
        }
    }
}

/// Trimmed, control characters removed, whitespace runs collapsed to one space.
pub fn normalize_text(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Province abbreviations owners type, and the official names they stand for.
const PROVINCES: [(&[&str], &str); 17] = [
    (&["서울", "서울시"], "서울특별시"),
    (&["부산", "부산시"], "부산광역시"),
    (&["대구", "대구시"], "대구광역시"),
    (&["인천", "인천시"], "인천광역시"),
    (&["광주", "광주시"], "광주광역시"),
    (&["대전", "대전시"], "대전광역시"),
    (&["울산", "울산시"], "울산광역시"),
    (&["세종", "세종시"], "세종특별자치시"),
    (&["경기"], "경기도"),
    (&["강원", "강원도"], "강원특별자치도"),
    (&["충북"], "충청북도"),
    (&["충남"], "충청남도"),
    (&["전북", "전라북도"], "전북특별자치도"),
    (&["전남"], "전라남도"),
    (&["경북"], "경상북도"),
    (&["경남"], "경상남도"),
    (&["제주", "제주도"], "제주특별자치도"),
];

/// A region with its province spelled out: `서울 강남구 역삼동` → `서울특별시 강남구 역삼동`.
pub fn normalize_region(region: &str) -> String {
    let region = normalize_text(region);
    let mut words: Vec<&str> = region.split(' ').filter(|w| !w.is_empty()).collect();
    if let Some(first) = words.first_mut()
        && let Some((_, official)) = PROVINCES.iter().find(|(short, _)| short.contains(first))
    {
        *first = official;
    }
    words.join(" ")
}

/// The area trends are analysed for: the province and the city/district (`서울특별시 강남구`),
/// since a neighbourhood is too fine-grained to have trends of its own.
pub fn trend_area(region: &str) -> String {
    let region = normalize_region(region);
    let area: Vec<&str> = region.split(' ').filter(|w| !w.is_empty()).take(2).collect();
    if area.is_empty() { NATIONWIDE.to_owned() } else { area.join(" ") }
}

/// Hex SHA-256 of a schema tag and the canonical JSON of `value`. The tag versions the key: a
/// change of what the inputs mean changes every hash.
fn input_hash<T: Serialize>(tag: &str, value: &T) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(tag.as_bytes());
    context.update(b"\n");
    // Serializing plain structs of strings and numbers cannot fail; an empty body still hashes
    // the tag, so the key stays well-formed.
    context.update(&serde_json::to_vec(value).unwrap_or_default());
    hex::encode(context.finish())
}

/// A trend analysis request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrendQuery {
    /// The business category.
    pub category: Category,
    /// The normalised area (`서울특별시 강남구`, or `전국`).
    pub region: String,
}

impl TrendQuery {
    /// Validates and normalises a GetTrends request: the region must be 1-100 characters.
    pub fn new(category: Category, region: &str) -> Result<TrendQuery, InvalidInput> {
        let mut problems = Problems::default();
        problems.region_characters("region", region);
        problems.finish(())?;
        let normalized = normalize_text(region);
        let len = normalized.chars().count();
        if len == 0 {
            return Err(InvalidInput::one("region", "must not be empty"));
        }
        if len > MAX_REGION_CHARS {
            return Err(InvalidInput::one(
                "region",
                format!("{len} characters; at most {MAX_REGION_CHARS} are allowed"),
            ));
        }
        Ok(TrendQuery { category, region: trend_area(&normalized) })
    }

    /// Hex SHA-256 of the normalised query.
    pub fn input_hash(&self) -> String {
        input_hash("kem.ai.trends.v1", self)
    }
}

/// A prize the owner already has in mind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrizeHint {
    /// Prize name.
    pub name: String,
    /// Longer description (may be empty).
    pub description: String,
    /// Number of winners (1-10,000).
    pub winner_count: i32,
    /// Value of one prize, when given.
    pub unit_value_krw: Option<i64>,
}

/// The event period in Korea-time days, both inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EventPeriod {
    /// First day.
    pub first_day: Day,
    /// Last day (the day of the exclusive end's previous millisecond).
    pub last_day: Day,
}

impl EventPeriod {
    /// The period `[start, end)` in milliseconds; `end` must be after `start`.
    pub fn from_millis(start_ms: i64, end_ms: i64) -> Result<EventPeriod, InvalidInput> {
        if end_ms <= start_ms {
            return Err(InvalidInput::one("period", "end_time must be after start_time"));
        }
        let period = EventPeriod { first_day: Day::of_millis(start_ms), last_day: Day::of_millis(end_ms - 1) };
        if period.days() > MAX_PERIOD_DAYS {
            return Err(InvalidInput::one(
                "period",
                format!("{} days; at most {MAX_PERIOD_DAYS} are allowed", period.days()),
            ));
        }
        Ok(period)
    }

    /// Number of days, at least 1.
    pub fn days(&self) -> i64 {
        self.last_day.0 - self.first_day.0 + 1
    }

    /// `11월 1일(토) ~ 11월 14일(금)`.
    pub fn korean(&self) -> String {
        if self.first_day == self.last_day {
            self.first_day.korean()
        } else {
            format!("{} ~ {}", self.first_day.korean(), self.last_day.korean())
        }
    }
}

/// The raw inputs of an event brief, already decoded from the wire.
#[derive(Debug, Clone, Default)]
pub struct BriefInput {
    /// Objective (required).
    pub objective: Option<Objective>,
    /// Store name (may be empty).
    pub store_name: String,
    /// Business category (`Other` when unknown).
    pub category: Option<Category>,
    /// Store region in free text (may be empty: nationwide).
    pub region: String,
    /// Total budget; `None`: no budget given.
    pub budget_krw: Option<i64>,
    /// Period start and end, milliseconds since the Unix epoch.
    pub period_ms: Option<(i64, i64)>,
    /// Target audience (may be empty).
    pub target_audience: String,
    /// Channels the owner can use (empty: all six).
    pub channels: Vec<Channel>,
    /// Owner instructions (may be empty).
    pub additional_instructions: String,
    /// The owner's working title (may be empty).
    pub title: String,
    /// The owner's description (may be empty).
    pub description: String,
    /// The prize the owner has in mind.
    pub prize: Option<PrizeHint>,
    /// The participation method the owner prefers.
    pub method: Option<Method>,
}

/// Validated, normalised inputs of three recommendations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventBrief {
    /// What the owner wants to achieve.
    pub objective: Objective,
    /// Store name (may be empty).
    pub store_name: String,
    /// Business category.
    pub category: Category,
    /// Normalised store region (`전국` when unknown).
    pub region: String,
    /// Total budget, when given.
    pub budget_krw: Option<i64>,
    /// The event period.
    pub period: EventPeriod,
    /// Target audience (may be empty).
    pub target_audience: String,
    /// Channels the owner can use, sorted, unique; empty means all six.
    pub channels: Vec<Channel>,
    /// Owner instructions (may be empty).
    pub additional_instructions: String,
    /// The owner's working title (may be empty).
    pub title: String,
    /// The owner's description (may be empty).
    pub description: String,
    /// The prize the owner has in mind.
    pub prize: Option<PrizeHint>,
    /// The participation method the owner prefers.
    pub method: Option<Method>,
}

impl EventBrief {
    /// Validates and normalises `input`, reporting every problem at once.
    pub fn new(input: BriefInput) -> Result<EventBrief, InvalidInput> {
        let mut problems = Problems::default();
        let objective = input.objective;
        if objective.is_none() {
            problems.add("objective", "is required");
        }
        let period = match input.period_ms {
            Some((start, end)) => match EventPeriod::from_millis(start, end) {
                Ok(period) => Some(period),
                Err(invalid) => {
                    problems.extend(invalid);
                    None
                }
            },
            None => {
                problems.add("period", "is required (start_time and end_time)");
                None
            }
        };
        if let Some(budget) = input.budget_krw
            && !(0..=MAX_BUDGET_KRW).contains(&budget)
        {
            problems.add("budget.amount_krw", format!("{budget} is not in 0..={MAX_BUDGET_KRW}"));
        }
        let store_name = problems.text("store.store_name", &input.store_name, Text::line(MAX_STORE_NAME_CHARS));
        problems.region_characters("store.region", &input.region);
        let region = normalize_region(&input.region);
        if region.chars().count() > MAX_REGION_CHARS {
            problems.add("store.region", format!("at most {MAX_REGION_CHARS} characters are allowed"));
        }
        let target_audience = problems.text("target_audience", &input.target_audience, Text::line(MAX_AUDIENCE_CHARS));
        let additional_instructions = problems.text(
            "additional_instructions",
            &input.additional_instructions,
            Text::prose(MAX_INSTRUCTIONS_CHARS),
        );
        let title = problems.text("title", &input.title, Text::line(MAX_TITLE_CHARS));
        let description = problems.text("description", &input.description, Text::prose(MAX_DESCRIPTION_CHARS));
        let prize = input.prize.map(|hint| {
            let name = problems.text("prize.name", &hint.name, Text::line(100));
            if name.is_empty() {
                problems.add("prize.name", "must not be empty");
            }
            if !(1..=10_000).contains(&hint.winner_count) {
                problems.add("prize.winner_count", format!("{} is not in 1..=10000", hint.winner_count));
            }
            if hint.unit_value_krw.is_some_and(|v| !(0..=MAX_BUDGET_KRW).contains(&v)) {
                problems.add("prize.unit_value", "must be between 0 and the largest budget");
            }
            PrizeHint {
                name,
                description: problems.text("prize.description", &hint.description, Text::prose(1_000)),
                winner_count: hint.winner_count,
                unit_value_krw: hint.unit_value_krw,
            }
        });
        let mut channels = input.channels;
        channels.sort();
        channels.dedup();
        let (Some(objective), Some(period)) = (objective, period) else {
            return Err(InvalidInput(problems.0));
        };
        problems.finish(EventBrief {
            objective,
            store_name,
            category: input.category.unwrap_or(Category::Other),
            region: if region.is_empty() { NATIONWIDE.to_owned() } else { region },
            budget_krw: input.budget_krw,
            period,
            target_audience,
            channels,
            additional_instructions,
            title,
            description,
            prize,
            method: input.method,
        })
    }

    /// Hex SHA-256 of the normalised brief (the contract's `input_hash`).
    pub fn input_hash(&self) -> String {
        input_hash("kem.ai.recommendations.v1", self)
    }

    /// Channels the recommendations may use: the owner's, or all six.
    pub fn available_channels(&self) -> Vec<Channel> {
        if self.channels.is_empty() { Channel::ALL.to_vec() } else { self.channels.clone() }
    }

    /// The trend query the recommendations build on.
    pub fn trend_query(&self) -> TrendQuery {
        TrendQuery { category: self.category, region: trend_area(&self.region) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2025-11-01T00:00:00+09:00.
    const NOV_1: i64 = 1_761_922_800_000;
    const DAY: i64 = 86_400_000;

    pub(crate) fn input() -> BriefInput {
        BriefInput {
            objective: Some(Objective::NewCustomers),
            store_name: "  카페   온기 ".to_owned(),
            category: Some(Category::Cafe),
            region: "서울 강남구  역삼동".to_owned(),
            budget_krw: Some(300_000),
            period_ms: Some((NOV_1, NOV_1 + 14 * DAY)),
            ..BriefInput::default()
        }
    }

    #[test]
    fn text_and_regions_are_normalised() {
        assert_eq!(normalize_text("  a \n\t b  "), "a b");
        assert_eq!(normalize_region("서울 강남구"), "서울특별시 강남구");
        assert_eq!(normalize_region("경기 성남시 분당구"), "경기도 성남시 분당구");
        assert_eq!(normalize_region("서울특별시  강남구"), "서울특별시 강남구");
        assert_eq!(trend_area("서울 강남구 역삼동"), "서울특별시 강남구");
        assert_eq!(trend_area(""), NATIONWIDE);
    }

    #[test]
    fn trend_queries_validate_the_region_and_hash_the_normalised_form() {
        let a = TrendQuery::new(Category::Cafe, "서울 강남구").expect("valid");
        let b = TrendQuery::new(Category::Cafe, " 서울특별시   강남구 역삼동 ").expect("valid");
        assert_eq!(a, b);
        assert_eq!(a.input_hash(), b.input_hash());
        assert_eq!(a.input_hash().len(), 64);
        assert_ne!(a.input_hash(), TrendQuery::new(Category::Bakery, "서울 강남구").expect("valid").input_hash());
        assert_eq!(TrendQuery::new(Category::Cafe, "  ").expect_err("empty").0[0].field, "region");
        assert!(TrendQuery::new(Category::Cafe, &"가".repeat(101)).is_err());
        for hostile in ["서울\u{0}", "서울\n강남구", "서울\u{202E}"] {
            assert_eq!(TrendQuery::new(Category::Cafe, hostile).expect_err(hostile).0[0].field, "region");
        }
    }

    #[test]
    fn briefs_normalise_and_hash_stably() {
        let brief = EventBrief::new(input()).expect("valid");
        assert_eq!(brief.store_name, "카페 온기");
        assert_eq!(brief.region, "서울특별시 강남구 역삼동");
        assert_eq!(brief.period.days(), 14);
        assert_eq!(brief.period.korean(), "11월 1일(토) ~ 11월 14일(금)");
        assert_eq!(brief.trend_query().region, "서울특별시 강남구");
        // The same event starting an hour later, channels in another order: the same request.
        let mut later = input();
        later.period_ms = Some((NOV_1 + 3_600_000, NOV_1 + 14 * DAY));
        later.channels = vec![Channel::KakaoChannel, Channel::Instagram, Channel::KakaoChannel];
        let mut ordered = input();
        ordered.channels = vec![Channel::Instagram, Channel::KakaoChannel];
        assert_eq!(
            EventBrief::new(later).expect("valid").input_hash(),
            EventBrief::new(ordered).expect("valid").input_hash()
        );
        let mut other = input();
        other.budget_krw = Some(500_000);
        assert_ne!(EventBrief::new(other).expect("valid").input_hash(), brief.input_hash());
        assert_eq!(brief.available_channels().len(), 6);
    }

    #[test]
    fn every_problem_is_reported() {
        let invalid = EventBrief::new(BriefInput {
            budget_krw: Some(-1),
            additional_instructions: "가".repeat(501),
            ..BriefInput::default()
        })
        .expect_err("invalid");
        let fields: Vec<&str> = invalid.0.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["objective", "period", "budget.amount_krw", "additional_instructions"]);
        let mut backwards = input();
        backwards.period_ms = Some((NOV_1, NOV_1));
        assert_eq!(EventBrief::new(backwards).expect_err("invalid").0[0].field, "period");
        let mut long = input();
        long.period_ms = Some((NOV_1, NOV_1 + 400 * DAY));
        assert!(EventBrief::new(long).is_err());
    }

    #[test]
    fn unknown_store_means_nationwide_other() {
        let mut unknown = input();
        unknown.category = None;
        unknown.region = String::new();
        let brief = EventBrief::new(unknown).expect("valid");
        assert_eq!((brief.category, brief.region.as_str()), (Category::Other, NATIONWIDE));
        assert_eq!(brief.trend_query().region, NATIONWIDE);
    }
}
