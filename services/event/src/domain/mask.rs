//! UpdateEvent's field mask: which paths exist, which an owner may change, and how a partial
//! update is merged into the current fields before the whole result is validated again.

use kem_kit::validate::excerpt;

use super::validation::{EventInput, PeriodInput, PrizeInput, ValidationError};

/// A field an owner may update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpdatePath {
    /// `title`
    Title,
    /// `description`
    Description,
    /// `objective`
    Objective,
    /// `target_audience`
    TargetAudience,
    /// `budget` (the whole message; absent clears it)
    Budget,
    /// `budget.amount_krw`
    BudgetAmount,
    /// `period` (the whole message)
    Period,
    /// `period.start_time`
    PeriodStart,
    /// `period.end_time`
    PeriodEnd,
    /// `prize` (the whole message; absent clears it)
    Prize,
    /// `prize.name`
    PrizeName,
    /// `prize.description`
    PrizeDescription,
    /// `prize.winner_count`
    PrizeWinnerCount,
    /// `prize.unit_value` (absent clears it)
    PrizeUnitValue,
    /// `prize.unit_value.amount_krw`
    PrizeUnitValueAmount,
    /// `participation_method`
    ParticipationMethod,
    /// `channels` (replaces the list)
    Channels,
    /// `auto_draw`
    AutoDraw,
    /// `retention_days` (0 means the default, 30)
    RetentionDays,
    /// `entry_rules` (the whole message; absent means the defaults)
    EntryRules,
    /// `entry_rules.verify_phone`
    EntryRulesVerifyPhone,
    /// `entry_rules.max_entries_per_address`
    EntryRulesMaxEntriesPerAddress,
    /// `claim_days` (0 means the default, 7)
    ClaimDays,
}

/// Paths `*` expands to: every top-level updatable field (full replacement).
const WILDCARD: [UpdatePath; 13] = [
    UpdatePath::Title,
    UpdatePath::Description,
    UpdatePath::Objective,
    UpdatePath::TargetAudience,
    UpdatePath::Budget,
    UpdatePath::Period,
    UpdatePath::Prize,
    UpdatePath::ParticipationMethod,
    UpdatePath::Channels,
    UpdatePath::AutoDraw,
    UpdatePath::RetentionDays,
    UpdatePath::EntryRules,
    UpdatePath::ClaimDays,
];

/// Fields of `Event` that exist but only the server sets.
const OUTPUT_ONLY: [&str; 14] = [
    "event_id",
    "owner_id",
    "status",
    "selected_recommendation",
    "selected_image_id",
    "create_time",
    "update_time",
    "publish_time",
    "end_time",
    "etag",
    "recommendations_job_id",
    "images_job_id",
    "terms",
    "anonymize_time",
];

impl UpdatePath {
    fn parse(path: &str) -> Option<UpdatePath> {
        Some(match path {
            "title" => UpdatePath::Title,
            "description" => UpdatePath::Description,
            "objective" => UpdatePath::Objective,
            "target_audience" => UpdatePath::TargetAudience,
            "budget" => UpdatePath::Budget,
            "budget.amount_krw" => UpdatePath::BudgetAmount,
            "period" => UpdatePath::Period,
            "period.start_time" => UpdatePath::PeriodStart,
            "period.end_time" => UpdatePath::PeriodEnd,
            "prize" => UpdatePath::Prize,
            "prize.name" => UpdatePath::PrizeName,
            "prize.description" => UpdatePath::PrizeDescription,
            "prize.winner_count" => UpdatePath::PrizeWinnerCount,
            "prize.unit_value" => UpdatePath::PrizeUnitValue,
            "prize.unit_value.amount_krw" => UpdatePath::PrizeUnitValueAmount,
            "participation_method" => UpdatePath::ParticipationMethod,
            "channels" => UpdatePath::Channels,
            "auto_draw" => UpdatePath::AutoDraw,
            "retention_days" => UpdatePath::RetentionDays,
            "entry_rules" => UpdatePath::EntryRules,
            "entry_rules.verify_phone" => UpdatePath::EntryRulesVerifyPhone,
            "entry_rules.max_entries_per_address" => UpdatePath::EntryRulesMaxEntriesPerAddress,
            "claim_days" => UpdatePath::ClaimDays,
            _ => return None,
        })
    }
}

/// `targetAudience` → `target_audience` (a JSON-spelled mask that reached us over gRPC).
fn snake_case(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 4);
    for ch in path.chars() {
        if ch.is_ascii_uppercase() {
            out.push('_');
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// Parses mask paths. Empty masks, unknown and output-only paths are field violations of
/// `updateMask`. Duplicates are harmless and kept once.
pub fn parse_mask(paths: &[String]) -> Result<Vec<UpdatePath>, ValidationError> {
    let mut errors = ValidationError::default();
    let mut parsed = Vec::new();
    if paths.is_empty() {
        errors.push("updateMask", "is required: name the fields to update, e.g. \"title,prize.winner_count\"");
    }
    for raw in paths {
        let path = snake_case(raw.trim());
        if path == "*" {
            parsed.extend(WILDCARD);
            continue;
        }
        match UpdatePath::parse(&path) {
            Some(p) => parsed.push(p),
            None if OUTPUT_ONLY.iter().any(|o| path == *o || path.starts_with(&format!("{o}."))) => {
                errors.push("updateMask", format!("\"{}\" is output only and cannot be updated", excerpt(raw)));
            }
            None => errors.push("updateMask", format!("\"{}\" is not an updatable field of Event", excerpt(raw))),
        }
    }
    let mut unique = Vec::with_capacity(parsed.len());
    for p in parsed {
        if !unique.contains(&p) {
            unique.push(p);
        }
    }
    errors.into_result(unique)
}

/// `current` with the masked fields taken from `update` (the result still needs validating).
pub fn merge(current: &EventInput, update: &EventInput, paths: &[UpdatePath]) -> EventInput {
    let mut out = current.clone();
    for path in paths {
        match path {
            UpdatePath::Title => out.title = update.title.clone(),
            UpdatePath::Description => out.description = update.description.clone(),
            UpdatePath::Objective => out.objective = update.objective,
            UpdatePath::TargetAudience => out.target_audience = update.target_audience.clone(),
            UpdatePath::Budget => out.budget = update.budget,
            // A sub-path of an absent message reads as its default: amount 0.
            UpdatePath::BudgetAmount => out.budget = Some(update.budget.unwrap_or(0)),
            UpdatePath::Period => out.period = update.period,
            UpdatePath::PeriodStart => {
                out.period.get_or_insert_with(PeriodInput::default).start = update.period.and_then(|p| p.start);
            }
            UpdatePath::PeriodEnd => {
                out.period.get_or_insert_with(PeriodInput::default).end = update.period.and_then(|p| p.end);
            }
            UpdatePath::Prize => out.prize = update.prize.clone(),
            UpdatePath::PrizeName => {
                prize_of(&mut out).name = update.prize.as_ref().map(|p| p.name.clone()).unwrap_or_default();
            }
            UpdatePath::PrizeDescription => {
                prize_of(&mut out).description =
                    update.prize.as_ref().map(|p| p.description.clone()).unwrap_or_default();
            }
            UpdatePath::PrizeWinnerCount => {
                prize_of(&mut out).winner_count = update.prize.as_ref().map(|p| p.winner_count).unwrap_or_default();
            }
            UpdatePath::PrizeUnitValue => {
                prize_of(&mut out).unit_value = update.prize.as_ref().and_then(|p| p.unit_value);
            }
            UpdatePath::PrizeUnitValueAmount => {
                prize_of(&mut out).unit_value = Some(update.prize.as_ref().and_then(|p| p.unit_value).unwrap_or(0));
            }
            UpdatePath::ParticipationMethod => out.participation_method = update.participation_method,
            UpdatePath::Channels => out.channels = update.channels.clone(),
            UpdatePath::AutoDraw => out.auto_draw = update.auto_draw,
            UpdatePath::RetentionDays => out.retention_days = update.retention_days,
            UpdatePath::EntryRules => out.entry_rules = update.entry_rules,
            UpdatePath::EntryRulesVerifyPhone => out.entry_rules.verify_phone = update.entry_rules.verify_phone,
            UpdatePath::EntryRulesMaxEntriesPerAddress => {
                out.entry_rules.max_entries_per_address = update.entry_rules.max_entries_per_address;
            }
            UpdatePath::ClaimDays => out.claim_days = update.claim_days,
        }
    }
    out
}

fn prize_of(input: &mut EventInput) -> &mut PrizeInput {
    input.prize.get_or_insert_with(PrizeInput::default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::validation::{EnumInput, validate_event};
    use crate::domain::values::{Channel, Objective};

    fn paths(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn current() -> EventInput {
        EventInput {
            title: "old".into(),
            objective: EnumInput::Known(Objective::Sales),
            period: Some(PeriodInput { start: Some(Ok(10)), end: Some(Ok(20)) }),
            prize: Some(PrizeInput { name: "커피".into(), winner_count: 5, ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn known_paths_parse_in_snake_or_camel_case() {
        let parsed = parse_mask(&paths(&["title", "prize.winnerCount", "target_audience", "title"])).expect("valid");
        assert_eq!(parsed, vec![UpdatePath::Title, UpdatePath::PrizeWinnerCount, UpdatePath::TargetAudience]);
        assert_eq!(parse_mask(&paths(&["*"])).expect("wildcard").len(), WILDCARD.len());
    }

    #[test]
    fn empty_unknown_and_output_only_paths_are_rejected() {
        let error = parse_mask(&[]).expect_err("empty");
        assert_eq!(error.violations[0].field, "updateMask");
        let error = parse_mask(&paths(&["status", "nope", "selected_recommendation.title", "etag"])).expect_err("bad");
        let descriptions: Vec<&str> = error.violations.iter().map(|v| v.description.as_str()).collect();
        assert!(descriptions[0].contains("output only"), "{descriptions:?}");
        assert!(descriptions[1].contains("not an updatable field"), "{descriptions:?}");
        assert!(descriptions[2].contains("output only"), "{descriptions:?}");
        assert!(descriptions[3].contains("output only"), "{descriptions:?}");
    }

    #[test]
    fn only_masked_fields_change() {
        let update = EventInput {
            title: "new".into(),
            description: "ignored".into(),
            prize: Some(PrizeInput { name: "ignored".into(), winner_count: 50, ..Default::default() }),
            ..Default::default()
        };
        let merged = merge(&current(), &update, &[UpdatePath::Title, UpdatePath::PrizeWinnerCount]);
        assert_eq!(merged.title, "new");
        assert_eq!(merged.description, "");
        let prize = merged.prize.expect("prize kept");
        assert_eq!((prize.name.as_str(), prize.winner_count), ("커피", 50));
    }

    #[test]
    fn whole_messages_can_be_cleared_and_sub_paths_revalidate() {
        let cleared = merge(&current(), &EventInput::default(), &[UpdatePath::Prize, UpdatePath::Budget]);
        assert_eq!(cleared.prize, None);
        assert!(validate_event(&cleared, "event").is_ok());
        // Moving the end before the start fails on the merged event.
        let update = EventInput { period: Some(PeriodInput { start: None, end: Some(Ok(5)) }), ..Default::default() };
        let merged = merge(&current(), &update, &[UpdatePath::PeriodEnd]);
        let error = validate_event(&merged, "event").expect_err("end before start");
        assert_eq!(error.violations[0].field, "event.period.endTime");
        // Clearing the objective is not allowed: it is required.
        let merged = merge(&current(), &EventInput::default(), &[UpdatePath::Objective]);
        assert_eq!(validate_event(&merged, "event").expect_err("required").violations[0].field, "event.objective");
    }

    #[test]
    fn auto_draw_and_retention_are_updatable_and_terms_are_output_only() {
        let parsed = parse_mask(&paths(&["autoDraw", "retention_days"])).expect("valid");
        assert_eq!(parsed, vec![UpdatePath::AutoDraw, UpdatePath::RetentionDays]);
        let update = EventInput { auto_draw: true, retention_days: 90, title: "ignored".into(), ..Default::default() };
        let merged = merge(&current(), &update, &parsed);
        assert_eq!((merged.auto_draw, merged.retention_days, merged.title.as_str()), (true, 90, "old"));
        let error = parse_mask(&paths(&["terms.version"])).expect_err("output only");
        assert!(error.violations[0].description.contains("output only"));
    }

    #[test]
    fn entry_rules_and_claim_days_are_updatable_by_message_or_field() {
        let parsed = parse_mask(&paths(&["entryRules.maxEntriesPerAddress", "claim_days"])).expect("valid");
        assert_eq!(parsed, vec![UpdatePath::EntryRulesMaxEntriesPerAddress, UpdatePath::ClaimDays]);
        let mut current = current();
        current.entry_rules.verify_phone = true;
        let update = EventInput {
            entry_rules: crate::domain::values::EntryRules { verify_phone: false, max_entries_per_address: 5 },
            claim_days: 14,
            ..Default::default()
        };
        let merged = merge(&current, &update, &parsed);
        assert_eq!((merged.entry_rules.verify_phone, merged.entry_rules.max_entries_per_address), (true, 5));
        assert_eq!(merged.claim_days, 14);
        let merged = merge(&current, &update, &[UpdatePath::EntryRules]);
        assert_eq!(merged.entry_rules, update.entry_rules, "the whole message is replaced");
        let error = parse_mask(&paths(&["anonymizeTime"])).expect_err("output only");
        assert!(error.violations[0].description.contains("output only"));
    }

    #[test]
    fn channels_are_replaced() {
        let update = EventInput { channels: vec![EnumInput::Known(Channel::GenieTv)], ..Default::default() };
        assert_eq!(merge(&current(), &update, &[UpdatePath::Channels]).channels, update.channels);
    }
}
