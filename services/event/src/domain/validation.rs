//! Validation of what an owner sends: the editable fields of an event, as one set of rules for
//! CreateEvent and UpdateEvent.
//!
//! Input arrives as [`EventInput`] (every field optional, enums possibly unknown numbers, times
//! possibly malformed) and leaves as an [`EventSpec`] whose invariants hold, or as a
//! [`ValidationError`] listing every problem at once with its field path in the JSON (camelCase)
//! spelling clients see, e.g. `event.period.endTime`.

use std::fmt;

use kem_kit::validate::{Text, check_text};

use super::values::{Channel, EntryRules, Millis, Money, Objective, ParticipationMethod, Period, Prize};

/// Longest title, in characters.
pub const TITLE_MAX: usize = 100;
/// Longest description, in characters.
pub const DESCRIPTION_MAX: usize = 2_000;
/// Longest target audience, in characters.
pub const TARGET_AUDIENCE_MAX: usize = 500;
/// Longest prize name, in characters.
pub const PRIZE_NAME_MAX: usize = 100;
/// Longest prize description, in characters.
pub const PRIZE_DESCRIPTION_MAX: usize = 1_000;
/// Most winners of one prize.
pub const WINNER_COUNT_MAX: i32 = 10_000;
/// Largest budget or prize value accepted: ₩1,000,000,000,000 (1조). Keeps cost and ROI arithmetic
/// far from overflow and catches unit mistakes (e.g. an amount sent in 1/100 won).
pub const MONEY_MAX_KRW: i64 = 1_000_000_000_000;
/// Longest event period, in days: a marketing event runs for at most a year (the AI service plans
/// within the same bound).
pub const PERIOD_MAX_DAYS: i64 = 366;
/// Most channels an event can use (there are six).
pub const CHANNELS_MAX: usize = 6;
/// Fewest days participants' data is kept after the draw.
pub const RETENTION_DAYS_MIN: i32 = 1;
/// Most days participants' data is kept after the draw.
pub const RETENTION_DAYS_MAX: i32 = 365;
/// Days kept when the owner does not say (`retention_days` 0 or unset).
pub const RETENTION_DAYS_DEFAULT: i32 = 30;
/// Fewest days winners have to claim their prize after the draw.
pub const CLAIM_DAYS_MIN: i32 = 1;
/// Most days winners have to claim their prize after the draw.
pub const CLAIM_DAYS_MAX: i32 = 90;
/// Claim days when the owner does not say (`claim_days` 0 or unset), capped by the retention
/// days: a claim needs the winner's phone, which is not kept longer.
pub const CLAIM_DAYS_DEFAULT: i32 = 7;
/// Largest per-address entry limit (0 means no limit).
pub const MAX_ENTRIES_PER_ADDRESS_MAX: i32 = 100_000;

/// One invalid field: where (camelCase path) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON path of the field, e.g. `event.prize.winnerCount`.
    pub field: String,
    /// What is wrong, in words a person understands.
    pub description: String,
}

/// Every invalid field of one request (INVALID_ARGUMENT with BadRequest field violations).
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
pub struct ValidationError {
    /// The violations, in field order.
    pub violations: Vec<Violation>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid request: ")?;
        for (i, v) in self.violations.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", v.field, v.description)?;
        }
        Ok(())
    }
}

impl ValidationError {
    /// A single violation.
    pub fn one(field: impl Into<String>, description: impl Into<String>) -> ValidationError {
        let mut error = ValidationError::default();
        error.push(field, description);
        error
    }

    /// Adds a violation.
    pub fn push(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.violations.push(Violation { field: field.into(), description: description.into() });
    }

    /// `Ok(value)` when nothing was pushed.
    pub fn into_result<T>(self, value: T) -> Result<T, ValidationError> {
        if self.violations.is_empty() { Ok(value) } else { Err(self) }
    }

    /// Whether nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.violations.is_empty()
    }

    /// Checks a text field by the platform's character and length rules (`kem_kit::validate`):
    /// NUL, other control characters (but line breaks and tabs in prose), line separators and
    /// bidi controls are refused, so they never reach storage, logs or other services.
    pub fn text(&mut self, field: impl Into<String>, value: &str, rule: Text) {
        if let Err(e) = check_text(value, rule) {
            self.push(field, e.to_string());
        }
    }
}

/// An enum field as received: not set, a known value, or a number this build does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EnumInput<T> {
    /// Zero (`*_UNSPECIFIED`).
    #[default]
    Unset,
    /// A known value.
    Known(T),
    /// A number outside the enum.
    Unknown(i32),
}

impl<T> EnumInput<T> {
    /// `Some(value)` for a known value.
    pub fn known(self) -> Option<T> {
        match self {
            EnumInput::Known(v) => Some(v),
            _ => None,
        }
    }
}

/// A timestamp as received: milliseconds, or why it cannot be one.
pub type TimeInput = Result<Millis, &'static str>;

/// A period as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeriodInput {
    /// Start, if set.
    pub start: Option<TimeInput>,
    /// End, if set.
    pub end: Option<TimeInput>,
}

/// A prize as received.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrizeInput {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Winners.
    pub winner_count: i32,
    /// Unit value in KRW, if set.
    pub unit_value: Option<i64>,
}

/// The owner-editable fields of an event as received (CreateEvent, UpdateEvent).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventInput {
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Objective.
    pub objective: EnumInput<Objective>,
    /// Target audience.
    pub target_audience: String,
    /// Budget in KRW, if set.
    pub budget: Option<i64>,
    /// Period, if set.
    pub period: Option<PeriodInput>,
    /// Prize, if set.
    pub prize: Option<PrizeInput>,
    /// Participation method (unset means DRAW).
    pub participation_method: EnumInput<ParticipationMethod>,
    /// Planned channels.
    pub channels: Vec<EnumInput<Channel>>,
    /// Draw winners automatically after the end.
    pub auto_draw: bool,
    /// Days the participants' data is kept after the draw; 0 means the default.
    pub retention_days: i32,
    /// Entry rules as received (an absent message reads as the defaults).
    pub entry_rules: EntryRules,
    /// Days winners have to claim their prize; 0 means the default.
    pub claim_days: i32,
}

/// The owner-editable fields of an event, valid.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EventSpec {
    /// 1-100 characters, not blank.
    pub title: String,
    /// Up to 2,000 characters.
    pub description: String,
    /// Required.
    pub objective: Objective,
    /// Up to 500 characters.
    pub target_audience: String,
    /// Non-negative, if given.
    pub budget: Option<Money>,
    /// End after start.
    pub period: Period,
    /// Valid, if given.
    pub prize: Option<Prize>,
    /// DRAW unless chosen otherwise.
    pub participation_method: ParticipationMethod,
    /// Unique, at most six.
    pub channels: Vec<Channel>,
    /// Winners are drawn automatically after the end.
    #[serde(default)]
    pub auto_draw: bool,
    /// Days the participants' data is kept after the draw, 1-365.
    #[serde(default = "default_retention_days")]
    pub retention_days: i32,
    /// How entries are checked (defaults for events stored before entry rules existed).
    #[serde(default)]
    pub entry_rules: EntryRules,
    /// Days winners have to claim their prize after the draw, 1-90 and at most
    /// `retention_days`.
    #[serde(default = "default_claim_days")]
    pub claim_days: i32,
}

fn default_retention_days() -> i32 {
    RETENTION_DAYS_DEFAULT
}

fn default_claim_days() -> i32 {
    CLAIM_DAYS_DEFAULT
}

impl EventSpec {
    /// The input that validates back to this spec (the starting point of a partial update).
    pub fn to_input(&self) -> EventInput {
        EventInput {
            title: self.title.clone(),
            description: self.description.clone(),
            objective: EnumInput::Known(self.objective),
            target_audience: self.target_audience.clone(),
            budget: self.budget.map(|m| m.amount_krw),
            period: Some(PeriodInput { start: Some(Ok(self.period.start)), end: Some(Ok(self.period.end)) }),
            prize: self.prize.as_ref().map(|p| PrizeInput {
                name: p.name.clone(),
                description: p.description.clone(),
                winner_count: p.winner_count,
                unit_value: p.unit_value.map(|m| m.amount_krw),
            }),
            participation_method: EnumInput::Known(self.participation_method),
            channels: self.channels.iter().copied().map(EnumInput::Known).collect(),
            auto_draw: self.auto_draw,
            retention_days: self.retention_days,
            entry_rules: self.entry_rules,
            claim_days: self.claim_days,
        }
    }
}

/// Validates `input`; field paths start with `prefix` (`event`).
pub fn validate_event(input: &EventInput, prefix: &str) -> Result<EventSpec, ValidationError> {
    let mut errors = ValidationError::default();
    let at = |field: &str| format!("{prefix}.{field}");

    let title = input.title.trim();
    if title.is_empty() {
        errors.push(at("title"), "is required");
    } else {
        errors.text(at("title"), title, Text::line(TITLE_MAX));
    }
    errors.text(at("description"), &input.description, Text::prose(DESCRIPTION_MAX));
    let objective = match input.objective {
        EnumInput::Known(o) => Some(o),
        EnumInput::Unset => {
            errors.push(at("objective"), "is required: NEW_CUSTOMERS, REVISITS, SALES or AWARENESS");
            None
        }
        EnumInput::Unknown(n) => {
            errors.push(at("objective"), format!("{n} is not a known objective"));
            None
        }
    };
    errors.text(at("targetAudience"), &input.target_audience, Text::line(TARGET_AUDIENCE_MAX));
    let budget = input.budget.and_then(|amount| check_money(amount, &at("budget.amountKrw"), &mut errors));
    let period = validate_period(input.period.as_ref(), &at("period"), &mut errors);
    let prize = input.prize.as_ref().and_then(|p| validate_prize(p, &at("prize"), &mut errors));
    let participation_method = match input.participation_method {
        EnumInput::Known(m) => m,
        EnumInput::Unset => ParticipationMethod::Draw,
        EnumInput::Unknown(n) => {
            errors.push(at("participationMethod"), format!("{n} is not a known participation method"));
            ParticipationMethod::Draw
        }
    };
    let channels = validate_channels(&input.channels, &at("channels"), false, &mut errors);
    let retention_days = match input.retention_days {
        0 => RETENTION_DAYS_DEFAULT,
        days if (RETENTION_DAYS_MIN..=RETENTION_DAYS_MAX).contains(&days) => days,
        _ => {
            let rule = format!(
                "must be between {RETENTION_DAYS_MIN} and {RETENTION_DAYS_MAX} days (0 or unset means {RETENTION_DAYS_DEFAULT})"
            );
            errors.push(at("retentionDays"), rule);
            RETENTION_DAYS_DEFAULT
        }
    };
    let retention_valid = input.retention_days == 0 || retention_days == input.retention_days;
    let claim_days =
        validate_claim_days(input.claim_days, retention_days, retention_valid, &at("claimDays"), &mut errors);
    let entry_rules = validate_entry_rules(input.entry_rules, &at("entryRules"), &mut errors);

    match (objective, period) {
        (Some(objective), Some(period)) if errors.is_empty() => Ok(EventSpec {
            title: title.to_owned(),
            description: input.description.clone(),
            objective,
            target_audience: input.target_audience.trim().to_owned(),
            budget,
            period,
            prize,
            participation_method,
            channels,
            auto_draw: input.auto_draw,
            retention_days,
            entry_rules,
            claim_days,
        }),
        _ => Err(errors),
    }
}

/// Claim days: 0 means [`CLAIM_DAYS_DEFAULT`] (or the retention days when fewer, so an owner who
/// shortened the retention is not refused for a value they never sent), else 1-90 and at most
/// `retention_days` — a claim is checked against the winner's phone, which is erased after the
/// retention. The comparison is skipped while the retention itself is invalid (already reported).
fn validate_claim_days(
    claim_days: i32,
    retention_days: i32,
    retention_valid: bool,
    field: &str,
    errors: &mut ValidationError,
) -> i32 {
    match claim_days {
        0 => CLAIM_DAYS_DEFAULT.min(retention_days),
        days if !(CLAIM_DAYS_MIN..=CLAIM_DAYS_MAX).contains(&days) => {
            errors.push(
                field,
                format!(
                    "must be between {CLAIM_DAYS_MIN} and {CLAIM_DAYS_MAX} days (0 or unset means {CLAIM_DAYS_DEFAULT})"
                ),
            );
            CLAIM_DAYS_DEFAULT
        }
        days if retention_valid && days > retention_days => {
            errors.push(
                field,
                format!(
                    "must be at most retentionDays ({retention_days}): winners claim with their phone number, which is \
                     deleted after the retention period"
                ),
            );
            days
        }
        days => days,
    }
}

/// Entry rules: the per-address limit is 0 (none) or 1-100,000.
fn validate_entry_rules(input: EntryRules, field: &str, errors: &mut ValidationError) -> EntryRules {
    let limit = input.max_entries_per_address;
    if !(0..=MAX_ENTRIES_PER_ADDRESS_MAX).contains(&limit) {
        errors.push(
            format!("{field}.maxEntriesPerAddress"),
            format!("must be 0 (no limit) or between 1 and {MAX_ENTRIES_PER_ADDRESS_MAX}"),
        );
    }
    input
}

fn check_money(amount: i64, field: &str, errors: &mut ValidationError) -> Option<Money> {
    if amount < 0 {
        errors.push(field, "must not be negative (whole won, KRW)");
        None
    } else if amount > MONEY_MAX_KRW {
        errors.push(field, format!("must be at most {MONEY_MAX_KRW} won"));
        None
    } else {
        Some(Money { amount_krw: amount })
    }
}

fn validate_period(input: Option<&PeriodInput>, field: &str, errors: &mut ValidationError) -> Option<Period> {
    let Some(input) = input else {
        errors.push(field, "is required (startTime and endTime)");
        return None;
    };
    let mut time = |value: Option<TimeInput>, name: &str| match value {
        None => {
            errors.push(format!("{field}.{name}"), "is required");
            None
        }
        Some(Err(why)) => {
            errors.push(format!("{field}.{name}"), why);
            None
        }
        Some(Ok(ms)) => Some(ms),
    };
    let start = time(input.start, "startTime");
    let end = time(input.end, "endTime");
    let (start, end) = (start?, end?);
    if end <= start {
        errors.push(format!("{field}.endTime"), "must be after startTime");
        return None;
    }
    if end - start > PERIOD_MAX_DAYS * 24 * 3600 * 1000 {
        errors.push(format!("{field}.endTime"), format!("the period may last at most {PERIOD_MAX_DAYS} days"));
        return None;
    }
    Some(Period { start, end })
}

/// Validates a prize; field paths start with `field` (`event.prize`).
pub fn validate_prize(input: &PrizeInput, field: &str, errors: &mut ValidationError) -> Option<Prize> {
    let before = errors.violations.len();
    let name = input.name.trim();
    if name.is_empty() {
        errors.push(format!("{field}.name"), "is required");
    } else {
        errors.text(format!("{field}.name"), name, Text::line(PRIZE_NAME_MAX));
    }
    errors.text(format!("{field}.description"), &input.description, Text::prose(PRIZE_DESCRIPTION_MAX));
    if !(1..=WINNER_COUNT_MAX).contains(&input.winner_count) {
        errors.push(format!("{field}.winnerCount"), format!("must be between 1 and {WINNER_COUNT_MAX}"));
    }
    let unit_value = input.unit_value.and_then(|v| check_money(v, &format!("{field}.unitValue.amountKrw"), errors));
    (errors.violations.len() == before).then(|| Prize {
        name: name.to_owned(),
        description: input.description.clone(),
        winner_count: input.winner_count,
        unit_value,
    })
}

/// Validates a channel list: no UNSPECIFIED or unknown values, no duplicates, at most six; with
/// `required`, at least one.
pub fn validate_channels(
    input: &[EnumInput<Channel>],
    field: &str,
    required: bool,
    errors: &mut ValidationError,
) -> Vec<Channel> {
    let mut channels = Vec::with_capacity(input.len());
    for (i, value) in input.iter().enumerate() {
        match value {
            EnumInput::Known(channel) if channels.contains(channel) => {
                errors.push(format!("{field}[{i}]"), format!("{channel} is listed twice"));
            }
            EnumInput::Known(channel) => channels.push(*channel),
            EnumInput::Unset => errors.push(format!("{field}[{i}]"), "CHANNEL_UNSPECIFIED is not a channel"),
            EnumInput::Unknown(n) => errors.push(format!("{field}[{i}]"), format!("{n} is not a known channel")),
        }
    }
    if required && input.is_empty() {
        errors.push(field, "at least one channel is required");
    }
    if input.len() > CHANNELS_MAX {
        errors.push(field, format!("at most {CHANNELS_MAX} channels"));
    }
    channels
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn valid_input() -> EventInput {
        EventInput {
            title: "  평일 점심 아메리카노 이벤트 ".into(),
            description: "점심 손님 모으기".into(),
            objective: EnumInput::Known(Objective::NewCustomers),
            target_audience: "인근 직장인 20-30대".into(),
            budget: Some(150_000),
            period: Some(PeriodInput { start: Some(Ok(1_000)), end: Some(Ok(2_000)) }),
            prize: Some(PrizeInput { name: "아메리카노 1잔".into(), winner_count: 10, ..Default::default() }),
            participation_method: EnumInput::Unset,
            channels: vec![EnumInput::Known(Channel::Instagram), EnumInput::Known(Channel::KakaoChannel)],
            auto_draw: false,
            retention_days: 0,
            entry_rules: EntryRules::default(),
            claim_days: 0,
        }
    }

    fn fields(error: &ValidationError) -> Vec<&str> {
        error.violations.iter().map(|v| v.field.as_str()).collect()
    }

    #[test]
    fn a_valid_event_is_normalized() {
        let spec = validate_event(&valid_input(), "event").expect("valid");
        assert_eq!(spec.title, "평일 점심 아메리카노 이벤트");
        assert_eq!(spec.participation_method, ParticipationMethod::Draw, "unset means DRAW");
        assert_eq!(spec.budget, Some(Money { amount_krw: 150_000 }));
        assert_eq!(spec.channels, vec![Channel::Instagram, Channel::KakaoChannel]);
        assert_eq!((spec.auto_draw, spec.retention_days), (false, RETENTION_DAYS_DEFAULT), "0 means 30 days");
        assert_eq!(validate_event(&spec.to_input(), "event"), Ok(spec), "to_input round-trips");
    }

    #[test]
    fn an_empty_event_names_every_required_field() {
        let error = validate_event(&EventInput::default(), "event").expect_err("invalid");
        assert_eq!(fields(&error), vec!["event.title", "event.objective", "event.period"]);
    }

    #[test]
    fn every_rule_reports_its_camel_case_field() {
        let mut input = valid_input();
        input.title = "x".repeat(TITLE_MAX + 1);
        input.description = "d".repeat(DESCRIPTION_MAX + 1);
        input.objective = EnumInput::Unknown(42);
        input.target_audience = "a".repeat(TARGET_AUDIENCE_MAX + 1);
        input.budget = Some(-1);
        input.period = Some(PeriodInput { start: Some(Ok(2_000)), end: Some(Ok(2_000)) });
        input.prize = Some(PrizeInput {
            name: " ".into(),
            description: "p".repeat(PRIZE_DESCRIPTION_MAX + 1),
            winner_count: 0,
            unit_value: Some(-5),
        });
        input.participation_method = EnumInput::Unknown(9);
        input.retention_days = 366;
        input.claim_days = 91;
        input.entry_rules.max_entries_per_address = -1;
        input.channels = vec![
            EnumInput::Known(Channel::Instagram),
            EnumInput::Unset,
            EnumInput::Known(Channel::Instagram),
            EnumInput::Unknown(77),
        ];
        let error = validate_event(&input, "event").expect_err("invalid");
        assert_eq!(
            fields(&error),
            vec![
                "event.title",
                "event.description",
                "event.objective",
                "event.targetAudience",
                "event.budget.amountKrw",
                "event.period.endTime",
                "event.prize.name",
                "event.prize.description",
                "event.prize.winnerCount",
                "event.prize.unitValue.amountKrw",
                "event.participationMethod",
                "event.channels[1]",
                "event.channels[2]",
                "event.channels[3]",
                "event.retentionDays",
                "event.claimDays",
                "event.entryRules.maxEntriesPerAddress",
            ]
        );
    }

    #[test]
    fn budget_is_whole_won_between_zero_and_the_cap() {
        for (amount, ok) in [(0, true), (MONEY_MAX_KRW, true), (-1, false), (MONEY_MAX_KRW + 1, false)] {
            let mut input = valid_input();
            input.budget = Some(amount);
            assert_eq!(validate_event(&input, "event").is_ok(), ok, "budget {amount}");
        }
        let mut input = valid_input();
        input.budget = None;
        assert_eq!(validate_event(&input, "event").map(|s| s.budget), Ok(None), "no budget is allowed");
    }

    #[test]
    fn period_needs_both_ends_and_a_positive_length() {
        let mut input = valid_input();
        input.period = Some(PeriodInput { start: None, end: Some(Err("nanos must be in [0, 1e9)")) });
        let error = validate_event(&input, "event").expect_err("invalid");
        assert_eq!(fields(&error), vec!["event.period.startTime", "event.period.endTime"]);
        assert_eq!(error.violations[1].description, "nanos must be in [0, 1e9)");
        input.period = Some(PeriodInput { start: Some(Ok(5)), end: Some(Ok(4)) });
        assert_eq!(
            fields(&validate_event(&input, "event").expect_err("end before start")),
            vec!["event.period.endTime"]
        );
        let day = 24 * 3600 * 1000;
        input.period = Some(PeriodInput { start: Some(Ok(0)), end: Some(Ok(PERIOD_MAX_DAYS * day)) });
        assert!(validate_event(&input, "event").is_ok(), "a year is fine");
        input.period = Some(PeriodInput { start: Some(Ok(0)), end: Some(Ok(PERIOD_MAX_DAYS * day + 1)) });
        assert_eq!(fields(&validate_event(&input, "event").expect_err("too long")), vec!["event.period.endTime"]);
    }

    #[test]
    fn prize_winner_count_bounds() {
        for (count, ok) in [(1, true), (WINNER_COUNT_MAX, true), (0, false), (WINNER_COUNT_MAX + 1, false), (-3, false)]
        {
            let mut input = valid_input();
            input.prize = Some(PrizeInput { name: "쿠폰".into(), winner_count: count, ..Default::default() });
            assert_eq!(validate_event(&input, "event").is_ok(), ok, "winner_count {count}");
        }
    }

    #[test]
    fn channel_lists_are_bounded_and_optionally_required() {
        let mut errors = ValidationError::default();
        assert!(validate_channels(&[], "channels", true, &mut errors).is_empty());
        assert_eq!(fields(&errors), vec!["channels"]);
        let all: Vec<_> = Channel::ALL.iter().copied().map(EnumInput::Known).collect();
        let mut errors = ValidationError::default();
        assert_eq!(validate_channels(&all, "channels", true, &mut errors).len(), 6);
        assert!(errors.is_empty());
    }

    #[test]
    fn control_and_bidi_characters_are_refused_line_breaks_only_in_prose() {
        let mut input = valid_input();
        input.title = "점심\u{0}이벤트".into();
        input.description = "첫 줄\n둘째 줄\t끝".into();
        input.target_audience = "직장인\u{202E}".into();
        input.prize = Some(PrizeInput { name: "커피\n한 잔".into(), winner_count: 1, ..Default::default() });
        let error = validate_event(&input, "event").expect_err("invalid");
        assert_eq!(fields(&error), vec!["event.title", "event.targetAudience", "event.prize.name"]);
        input.description = "설명\u{1b}[2J".into();
        let error = validate_event(&input, "event").expect_err("invalid");
        assert!(fields(&error).contains(&"event.description"));
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let mut input = valid_input();
        input.title = "가".repeat(TITLE_MAX); // 300 bytes, 100 characters
        assert!(validate_event(&input, "event").is_ok());
    }

    #[test]
    fn retention_is_one_to_365_days_and_defaults_to_30() {
        for (days, want) in [(0, Some(30)), (1, Some(1)), (30, Some(30)), (365, Some(365)), (366, None), (-1, None)] {
            let mut input = valid_input();
            input.retention_days = days;
            input.auto_draw = true;
            match (validate_event(&input, "event"), want) {
                (Ok(spec), Some(want)) => assert_eq!((spec.retention_days, spec.auto_draw), (want, true), "{days}"),
                (Err(error), None) => assert_eq!(fields(&error), vec!["event.retentionDays"], "{days}"),
                (got, want) => panic!("retention {days}: {got:?}, expected {want:?}"),
            }
        }
    }

    #[test]
    fn claim_days_are_one_to_ninety_within_the_retention_and_default_to_seven() {
        for (retention, claim, want) in [
            (0, 0, Some(7)),
            (30, 1, Some(1)),
            (90, 90, Some(90)),
            (365, 90, Some(90)),
            (3, 0, Some(3)),
            (30, 30, Some(30)),
            (30, 31, None),
            (10, 11, None),
            (365, 91, None),
            (30, -1, None),
            (30, i32::MAX, None),
            (30, i32::MIN, None),
        ] {
            let mut input = valid_input();
            input.retention_days = retention;
            input.claim_days = claim;
            match (validate_event(&input, "event"), want) {
                (Ok(spec), Some(want)) => assert_eq!(spec.claim_days, want, "{retention}/{claim}"),
                (Err(error), None) => assert_eq!(fields(&error), vec!["event.claimDays"], "{retention}/{claim}"),
                (got, want) => panic!("retention {retention}, claim {claim}: {got:?}, expected {want:?}"),
            }
        }
        // An invalid retention is reported alone, not as a claim problem too.
        let mut input = valid_input();
        input.retention_days = 400;
        input.claim_days = 60;
        assert_eq!(fields(&validate_event(&input, "event").expect_err("invalid")), vec!["event.retentionDays"]);
    }

    #[test]
    fn the_address_limit_is_none_or_one_to_a_hundred_thousand() {
        for (limit, ok) in [
            (0, true),
            (1, true),
            (MAX_ENTRIES_PER_ADDRESS_MAX, true),
            (MAX_ENTRIES_PER_ADDRESS_MAX + 1, false),
            (-1, false),
            (i32::MAX, false),
            (i32::MIN, false),
        ] {
            let mut input = valid_input();
            input.entry_rules = EntryRules { verify_phone: true, max_entries_per_address: limit };
            match validate_event(&input, "event") {
                Ok(spec) if ok => assert_eq!(spec.entry_rules, input.entry_rules, "{limit}"),
                Err(error) if !ok => {
                    assert_eq!(fields(&error), vec!["event.entryRules.maxEntriesPerAddress"], "{limit}")
                }
                got => panic!("limit {limit}: {got:?}"),
            }
        }
    }
}
