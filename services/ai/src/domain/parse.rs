//! The strict reader of model output: one JSON object (optionally inside a single Markdown code
//! fence), deserialized with unknown fields refused, then checked field by field against the
//! contract. Every problem is reported (not only the first), so a repair prompt can name them
//! all; nothing is ever returned half-parsed.

use std::collections::HashSet;

use super::channel::copy_problems;
use super::input::EventBrief;
use super::output::{RECOMMENDATIONS, Recommendation, RecommendationSet, TrendAnalysis};

/// Most problems listed in one error (the rest are summarised), keeping repair prompts short.
const MAX_LISTED: usize = 20;
/// Largest prize value per winner accepted (₩10 million).
pub const MAX_PRIZE_VALUE_KRW: i64 = 10_000_000;
/// Largest expected number of entries accepted.
pub const MAX_EXPECTED_PARTICIPANTS: i64 = 1_000_000;
/// Most channels one recommendation may name (best first): focused advice, and a bounded answer
/// (every channel adds its copy to the model's output).
pub const MAX_RECOMMENDED_CHANNELS: usize = 3;

/// Why model output was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the model output does not match the contract: {}", summary(.problems))]
pub struct OutputError {
    /// What is wrong, one entry per problem, with the JSON path.
    pub problems: Vec<String>,
}

fn summary(problems: &[String]) -> String {
    let mut text = problems.iter().take(MAX_LISTED).cloned().collect::<Vec<_>>().join("; ");
    if problems.len() > MAX_LISTED {
        text.push_str(&format!("; and {} more", problems.len() - MAX_LISTED));
    }
    text
}

impl OutputError {
    fn one(problem: impl Into<String>) -> OutputError {
        OutputError { problems: vec![problem.into()] }
    }

    fn check(problems: Vec<String>) -> Result<(), OutputError> {
        if problems.is_empty() { Ok(()) } else { Err(OutputError { problems }) }
    }
}

/// Reads a trend analysis.
pub fn parse_trends(text: &str) -> Result<TrendAnalysis, OutputError> {
    let analysis: TrendAnalysis = deserialize(text)?;
    OutputError::check(trend_problems(&analysis))?;
    Ok(analysis)
}

/// Reads exactly three recommendations for `brief`.
pub fn parse_recommendations(text: &str, brief: &EventBrief) -> Result<Vec<Recommendation>, OutputError> {
    let set: RecommendationSet = deserialize(text)?;
    OutputError::check(recommendation_problems(&set.recommendations, brief))?;
    Ok(set.recommendations)
}

/// The JSON inside `text`: the whole text, or the body of one Markdown code fence around it.
fn json_body(text: &str) -> Result<&str, OutputError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(OutputError::one("the answer is empty; a JSON object was expected"));
    }
    let Some(fenced) = text.strip_prefix("```") else { return Ok(text) };
    let body = fenced.strip_suffix("```").ok_or_else(|| OutputError::one("a code fence is opened but not closed"))?;
    // The fence may name a language on its first line (```json).
    let body = match body.split_once('\n') {
        Some((lang, rest)) if lang.trim().chars().all(|c| c.is_ascii_alphanumeric()) => rest,
        _ => body,
    };
    Ok(body.trim())
}

fn deserialize<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, OutputError> {
    let body = json_body(text)?;
    if !body.starts_with('{') {
        return Err(OutputError::one(
            "the answer must be a single JSON object and nothing else (it does not start with '{')",
        ));
    }
    serde_json::from_str(body).map_err(|e| OutputError::one(format!("invalid JSON for the schema: {e}")))
}

/// A required text field: not blank, at most `max` characters, no control characters but
/// line breaks.
fn text_problems(problems: &mut Vec<String>, path: &str, text: &str, max: usize) {
    if text.trim().is_empty() {
        problems.push(format!("{path}: must not be empty"));
    }
    let len = text.chars().count();
    if len > max {
        problems.push(format!("{path}: {len} characters; at most {max} are allowed"));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        problems.push(format!("{path}: contains control characters"));
    }
}

/// Everything wrong with a trend analysis.
pub fn trend_problems(analysis: &TrendAnalysis) -> Vec<String> {
    let mut problems = Vec::new();
    text_problems(&mut problems, "seasonality", &analysis.seasonality, 300);
    text_problems(&mut problems, "summary", &analysis.summary, 500);
    let types = &analysis.popular_event_types;
    if types.is_empty() || types.len() > 10 {
        problems.push(format!("popular_event_types: {} entries; 1 to 10 are required", types.len()));
    }
    for (i, kind) in types.iter().enumerate() {
        text_problems(&mut problems, &format!("popular_event_types[{i}]"), kind, 100);
    }
    let days = &analysis.best_days;
    if days.is_empty() || days.iter().collect::<HashSet<_>>().len() != days.len() {
        problems.push("best_days: 1 to 7 distinct days are required".to_owned());
    }
    let hours = &analysis.best_hours;
    if hours.is_empty() || hours.len() > 24 || hours.iter().collect::<HashSet<_>>().len() != hours.len() {
        problems.push("best_hours: 1 to 24 distinct hours are required".to_owned());
    }
    if let Some(hour) = hours.iter().find(|h| **h > 23) {
        problems.push(format!("best_hours: {hour} is not an hour of the day (0-23)"));
    }
    let range = analysis.suggested_prize_range_krw;
    if range.min < 0 || range.max < range.min || range.max > MAX_PRIZE_VALUE_KRW {
        problems.push(format!(
            "suggested_prize_range_krw: min {} and max {} must satisfy 0 <= min <= max <= {MAX_PRIZE_VALUE_KRW}",
            range.min, range.max
        ));
    }
    problems
}

/// Everything wrong with a set of recommendations for `brief`.
pub fn recommendation_problems(recommendations: &[Recommendation], brief: &EventBrief) -> Vec<String> {
    let mut problems = Vec::new();
    if recommendations.len() != RECOMMENDATIONS {
        problems
            .push(format!("recommendations: {} given; exactly {RECOMMENDATIONS} are required", recommendations.len()));
    }
    let available = brief.available_channels();
    let mut titles = HashSet::new();
    for (i, rec) in recommendations.iter().enumerate() {
        let path = format!("recommendations[{i}]");
        text_problems(&mut problems, &format!("{path}.title"), &rec.title, 100);
        if !titles.insert(rec.title.trim()) {
            problems.push(format!("{path}.title: the same title as another recommendation"));
        }
        text_problems(&mut problems, &format!("{path}.concept"), &rec.concept, 1_000);
        text_problems(&mut problems, &format!("{path}.participation_mechanic"), &rec.participation_mechanic, 500);
        let prize = &rec.prize;
        text_problems(&mut problems, &format!("{path}.prize.name"), &prize.name, 100);
        if prize.description.chars().count() > 1_000 {
            problems.push(format!("{path}.prize.description: at most 1000 characters are allowed"));
        }
        if !(1..=10_000).contains(&prize.winner_count) {
            problems.push(format!("{path}.prize.winner_count: {} is not in 1..=10000", prize.winner_count));
        }
        if !(0..=MAX_PRIZE_VALUE_KRW).contains(&prize.unit_value_krw) {
            problems.push(format!(
                "{path}.prize.unit_value_krw: {} is not in 0..={MAX_PRIZE_VALUE_KRW}",
                prize.unit_value_krw
            ));
        }
        if let Some(budget) = brief.budget_krw
            && prize.total_krw() > budget
        {
            problems.push(format!(
                "{path}.prize: {} winners x {} KRW = {} KRW exceeds the budget of {budget} KRW",
                prize.winner_count,
                prize.unit_value_krw,
                prize.total_krw()
            ));
        }
        if !(1..=MAX_EXPECTED_PARTICIPANTS).contains(&rec.expected_participants) {
            problems.push(format!(
                "{path}.expected_participants: {} is not in 1..={MAX_EXPECTED_PARTICIPANTS}",
                rec.expected_participants
            ));
        } else if rec.expected_participants < i64::from(prize.winner_count) {
            problems.push(format!(
                "{path}.expected_participants: {} is fewer than the {} winners",
                rec.expected_participants, prize.winner_count
            ));
        }
        let channels = &rec.recommended_channels;
        if channels.is_empty() || channels.len() > MAX_RECOMMENDED_CHANNELS {
            problems.push(format!(
                "{path}.recommended_channels: {} given; 1 to {MAX_RECOMMENDED_CHANNELS} channels are required",
                channels.len()
            ));
        }
        let unique: HashSet<_> = channels.iter().collect();
        if unique.len() != channels.len() {
            problems.push(format!("{path}.recommended_channels: channels are repeated"));
        }
        for channel in channels.iter().filter(|c| !available.contains(c)) {
            problems.push(format!(
                "{path}.recommended_channels: {channel} is not among the owner's channels ({})",
                available.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
        let copied: Vec<_> = rec.channel_copies.iter().map(|c| c.channel).collect();
        for channel in channels.iter().filter(|c| !copied.contains(c)) {
            problems.push(format!("{path}.channel_copies: no copy for {channel}"));
        }
        let mut seen = HashSet::new();
        for (j, copy) in rec.channel_copies.iter().enumerate() {
            let copy_path = format!("{path}.channel_copies[{j}]");
            if !unique.contains(&copy.channel) {
                problems.push(format!("{copy_path}: {} is not a recommended channel", copy.channel));
            }
            if !seen.insert(copy.channel) {
                problems.push(format!("{copy_path}: a second copy for {}", copy.channel));
            }
            problems.extend(copy_problems(&copy_path, copy));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::domain::input::{BriefInput, EventBrief};
    use crate::domain::values::{Category, Channel, Objective};

    /// A change to a valid answer.
    type Mutation = Box<dyn Fn(&mut Value)>;

    fn brief(channels: Vec<Channel>, budget: Option<i64>) -> EventBrief {
        EventBrief::new(BriefInput {
            objective: Some(Objective::NewCustomers),
            category: Some(Category::Cafe),
            region: "서울 강남구".into(),
            budget_krw: budget,
            period_ms: Some((1_761_922_800_000, 1_761_922_800_000 + 14 * 86_400_000)),
            channels,
            ..BriefInput::default()
        })
        .expect("valid brief")
    }

    fn recommendation(title: &str) -> Value {
        json!({
            "title": title,
            "concept": "첫 방문 손님이 사진을 올리면 추첨해 커피를 드립니다.",
            "participation_method": "DRAW",
            "participation_mechanic": "매장 사진을 인스타그램에 올리고 링크로 응모",
            "prize": {"name": "아메리카노 1잔", "description": "매장에서 교환", "winner_count": 20, "unit_value_krw": 4500},
            "expected_participants": 200,
            "recommended_channels": ["INSTAGRAM", "KAKAO_CHANNEL"],
            "channel_copies": [
                {"channel": "INSTAGRAM", "text": "사진 올리고 커피 받아 가세요!", "hashtags": ["카페", "이벤트"]},
                {"channel": "KAKAO_CHANNEL", "text": "(광고) 카페 온기 인증샷 이벤트", "hashtags": []}
            ]
        })
    }

    fn valid() -> Value {
        json!({"recommendations": [recommendation("인증샷 이벤트"), recommendation("스탬프 이벤트"), recommendation("리뷰 이벤트")]})
    }

    fn problems_of(value: &Value, brief: &EventBrief) -> Vec<String> {
        parse_recommendations(&value.to_string(), brief).expect_err("must be refused").problems
    }

    #[test]
    fn valid_recommendations_are_accepted_plain_or_fenced() {
        let brief = brief(Vec::new(), Some(300_000));
        let recs = parse_recommendations(&valid().to_string(), &brief).expect("valid");
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].prize.winner_count, 20);
        let fenced = format!("```json\n{}\n```", serde_json::to_string_pretty(&valid()).expect("json"));
        assert_eq!(parse_recommendations(&fenced, &brief).expect("fenced"), recs);
        let bare_fence = format!("```\n{}\n```", valid());
        assert!(parse_recommendations(&bare_fence, &brief).is_ok());
    }

    #[test]
    fn each_malformation_is_refused() {
        let brief = brief(Vec::new(), Some(300_000));
        let text_cases = [
            ("", "empty"),
            ("Here are your recommendations: {}", "does not start with '{'"),
            ("```json\n{\"recommendations\": []}", "not closed"),
            ("{\"recommendations\": [", "invalid JSON"),
            ("[1, 2, 3]", "does not start with '{'"),
        ];
        for (text, expected) in text_cases {
            let error = parse_recommendations(text, &brief).expect_err(text);
            assert!(error.to_string().contains(expected), "{text:?}: {error}");
        }
        let mut trailing = valid().to_string();
        trailing.push_str(" Hope this helps!");
        assert!(parse_recommendations(&trailing, &brief).expect_err("trailing").to_string().contains("trailing"));

        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|v| v["recommendations"].as_array_mut().expect("array").truncate(2)), "exactly 3"),
            (Box::new(|v| v["extra"] = json!(1)), "unknown field `extra`"),
            (Box::new(|v| v["recommendations"][0]["score"] = json!(1)), "unknown field `score`"),
            (
                Box::new(|v| {
                    v["recommendations"][0].as_object_mut().expect("object").remove("title");
                }),
                "missing field `title`",
            ),
            (Box::new(|v| v["recommendations"][0]["participation_method"] = json!("LOTTERY")), "unknown variant"),
            (Box::new(|v| v["recommendations"][0]["recommended_channels"][0] = json!("TIKTOK")), "unknown variant"),
            (Box::new(|v| v["recommendations"][0]["expected_participants"] = json!("many")), "invalid type"),
            (Box::new(|v| v["recommendations"][0]["title"] = json!("  ")), "title: must not be empty"),
            (Box::new(|v| v["recommendations"][0]["title"] = json!("가".repeat(101))), "title: 101 characters"),
            (Box::new(|v| v["recommendations"][1]["title"] = json!("인증샷 이벤트")), "same title"),
            (Box::new(|v| v["recommendations"][0]["prize"]["winner_count"] = json!(0)), "winner_count: 0"),
            (Box::new(|v| v["recommendations"][0]["prize"]["winner_count"] = json!(100)), "exceeds the budget"),
            (Box::new(|v| v["recommendations"][0]["expected_participants"] = json!(5)), "fewer than the 20 winners"),
            (Box::new(|v| v["recommendations"][0]["recommended_channels"] = json!([])), "0 given; 1 to 3 channels"),
            (
                Box::new(|v| {
                    v["recommendations"][0]["recommended_channels"] =
                        json!(["INSTAGRAM", "KAKAO_CHANNEL", "NAVER_BLOG", "GENIE_TV"])
                }),
                "4 given; 1 to 3 channels",
            ),
            (
                Box::new(|v| v["recommendations"][0]["recommended_channels"] = json!(["INSTAGRAM", "INSTAGRAM"])),
                "repeated",
            ),
            (
                Box::new(|v| v["recommendations"][0]["recommended_channels"] = json!(["INSTAGRAM"])),
                "KAKAO_CHANNEL is not a recommended channel",
            ),
            (
                Box::new(|v| {
                    v["recommendations"][0]["channel_copies"].as_array_mut().expect("array").pop();
                }),
                "no copy for KAKAO_CHANNEL",
            ),
            (
                Box::new(|v| v["recommendations"][0]["channel_copies"][1]["text"] = json!("가".repeat(1_001))),
                "exceed the KAKAO_CHANNEL limit",
            ),
            (
                Box::new(|v| v["recommendations"][0]["channel_copies"][0]["hashtags"] = json!(["#카페"])),
                "without the leading '#'",
            ),
        ];
        for (mutate, expected) in cases {
            let mut value = valid();
            mutate(&mut value);
            let problems = problems_of(&value, &brief);
            assert!(problems.iter().any(|p| p.contains(expected)), "expected {expected:?} in {problems:?}");
        }
    }

    #[test]
    fn channels_must_be_the_owners() {
        let only_kakao = brief(vec![Channel::KakaoChannel], None);
        let problems = problems_of(&valid(), &only_kakao);
        assert!(
            problems.iter().any(|p| p.contains("INSTAGRAM is not among the owner's channels (KAKAO_CHANNEL)")),
            "{problems:?}"
        );
        // Without a budget any prize total is fine.
        let mut big = valid();
        big["recommendations"][0]["prize"]["winner_count"] = json!(100);
        assert!(parse_recommendations(&big.to_string(), &brief(Vec::new(), None)).is_ok());
    }

    #[test]
    fn every_problem_is_listed_with_a_cap() {
        let mut value = valid();
        for i in 0..3 {
            value["recommendations"][i]["title"] = json!("");
            value["recommendations"][i]["concept"] = json!("");
            value["recommendations"][i]["participation_mechanic"] = json!("");
            value["recommendations"][i]["prize"]["name"] = json!("");
            value["recommendations"][i]["prize"]["unit_value_krw"] = json!(-1);
            value["recommendations"][i]["expected_participants"] = json!(0);
            value["recommendations"][i]["channel_copies"][0]["text"] = json!("");
            value["recommendations"][i]["channel_copies"][1]["hashtags"] = json!(["x"]);
        }
        let error = parse_recommendations(&value.to_string(), &brief(Vec::new(), Some(300_000))).expect_err("bad");
        assert!(error.problems.len() > MAX_LISTED, "{}", error.problems.len());
        assert!(error.to_string().contains("more"), "{error}");
    }

    fn trend() -> Value {
        json!({
            "seasonality": "연말 모임 수요 증가",
            "popular_event_types": ["SNS 인증샷 이벤트", "스탬프 적립"],
            "best_days": ["FRIDAY", "SATURDAY"],
            "best_hours": [12, 18],
            "suggested_prize_range_krw": {"min": 5000, "max": 30000},
            "summary": "강남구 카페는 연말 모임 수요가 늘고 있어요."
        })
    }

    #[test]
    fn trends_are_parsed_strictly() {
        let analysis = parse_trends(&trend().to_string()).expect("valid");
        assert_eq!(analysis.best_hours, [12, 18]);
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|v| v["best_hours"] = json!([25])), "not an hour"),
            (Box::new(|v| v["best_hours"] = json!([-1])), "invalid value"),
            (Box::new(|v| v["best_days"] = json!(["FRIDAY", "FRIDAY"])), "distinct days"),
            (Box::new(|v| v["best_days"] = json!(["FRI"])), "unknown variant"),
            (Box::new(|v| v["popular_event_types"] = json!([])), "1 to 10"),
            (Box::new(|v| v["suggested_prize_range_krw"] = json!({"min": 9, "max": 1})), "min <= max"),
            (Box::new(|v| v["summary"] = json!("가".repeat(501))), "summary: 501 characters"),
            (Box::new(|v| v["mood"] = json!("good")), "unknown field `mood`"),
        ];
        for (mutate, expected) in cases {
            let mut value = trend();
            mutate(&mut value);
            let error = parse_trends(&value.to_string()).expect_err(expected);
            assert!(error.to_string().contains(expected), "expected {expected:?}: {error}");
        }
    }
}
