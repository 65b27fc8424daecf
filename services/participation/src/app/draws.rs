//! DrawWinners, DrawWinnersOnSchedule, ListWinners and GetPublicWinners.

use std::collections::HashSet;

use super::{ParticipationCore, ParticipationError, Result, random_bytes, required_event_id};
use crate::domain::draw::{ALGORITHM_VERSION, DrawRecord, Procedure, SEED_LEN, snapshot_sha256};
use crate::domain::entry::Entry;
use crate::domain::event::{EventFacts, EventStatus, Method};
use crate::domain::violation::{FieldViolation, Violations};
use crate::infra::messages;
use crate::infra::repository::{EntrySplit, Retire};

use super::claims::{WinnerClaim, WinnerNotice};

/// Most entries one draw may exclude.
pub const MAX_EXCLUSIONS: usize = 10_000;

/// A DrawWinners request.
#[derive(Debug, Clone, Default)]
pub struct DrawRequest {
    /// The event.
    pub event_id: String,
    /// Winners wanted; 0 = the prize's winner count.
    pub count: i32,
    /// Caller's 32-byte seed; empty = generated.
    pub seed: Vec<u8>,
    /// Replace an existing draw.
    pub redraw: bool,
    /// Entries to leave out.
    pub exclude_entry_ids: Vec<String>,
}

/// A winner.
#[derive(Debug, Clone)]
pub struct Winner {
    /// 1-based rank.
    pub rank: u32,
    /// The draw that chose it.
    pub draw_id: String,
    /// The winning entry (personal data decrypted, absent after anonymization).
    pub entry: Entry,
    /// The claim (`None` only for a winner no longer current).
    pub claim: Option<WinnerClaim>,
    /// The messages telling the winner.
    pub notices: Vec<WinnerNotice>,
}

/// A draw and its winners.
#[derive(Debug, Clone)]
pub struct DrawOutcome {
    /// The audit record.
    pub record: DrawRecord,
    /// Winners by rank.
    pub winners: Vec<Winner>,
    /// Every draw of the event, oldest first (ListWinners, GetPublicWinners; empty otherwise).
    pub draws: Vec<DrawRecord>,
}

/// What DrawWinnersOnSchedule did.
#[derive(Debug, Clone)]
pub struct ScheduledDraw {
    /// The audit of the event's current draw.
    pub record: DrawRecord,
    /// Whether this call made it (`false`: it existed already).
    pub drawn_now: bool,
}

/// What a draw does when the event already has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IfDrawn {
    /// Refuse (ALREADY_DRAWN): DrawWinners without redraw.
    Refuse,
    /// Replace it: DrawWinners with redraw.
    Redraw,
    /// Keep it and answer with it: DrawWinnersOnSchedule.
    Keep,
}

/// How a draw ended.
enum Drawn {
    /// This call recorded a new draw.
    New(DrawRecord),
    /// The event's existing draw was kept ([`IfDrawn::Keep`]).
    Existing(DrawRecord),
}

/// What the request asks for, checked.
struct Checked {
    count: Option<u32>,
    seed: Option<[u8; SEED_LEN]>,
    excluded: Vec<String>,
}

fn check(request: &DrawRequest) -> Result<Checked, Violations> {
    let mut violations = Violations::default();
    if request.event_id.trim().is_empty() {
        violations.push(FieldViolation::new("eventId", "the event id is required"));
    }
    let count = match u32::try_from(request.count) {
        Err(_) => {
            violations.push(FieldViolation::new("count", "must not be negative (0 means the prize's winner count)"));
            None
        }
        Ok(0) => None,
        Ok(n) => Some(n),
    };
    let seed = match request.seed.len() {
        0 => None,
        SEED_LEN => request.seed.as_slice().try_into().ok(),
        n => {
            violations.push(FieldViolation::new("seed", format!("must be exactly 32 bytes (got {n})")));
            None
        }
    };
    if request.exclude_entry_ids.len() > MAX_EXCLUSIONS {
        violations.push(FieldViolation::new("excludeEntryIds", "at most 10,000 entries can be excluded"));
    }
    let mut excluded: Vec<String> = Vec::new();
    for (i, id) in request.exclude_entry_ids.iter().enumerate() {
        let id = id.trim();
        if id.is_empty() {
            violations.push(FieldViolation::new(&format!("excludeEntryIds[{i}]"), "must be an entry id"));
        } else {
            excluded.push(id.to_owned());
        }
    }
    excluded.sort_unstable();
    excluded.dedup();
    violations.into_result().map(|()| Checked { count, seed, excluded })
}

/// The owner's exclusions and the blocked entries, ascending and distinct (what the audit
/// records).
fn with_blocked(mut excluded: Vec<String>, blocked: Vec<String>) -> Vec<String> {
    excluded.extend(blocked);
    excluded.sort_unstable();
    excluded.dedup();
    excluded
}

impl ParticipationCore {
    /// DrawWinners: selects the winners of the owner's ENDED event and records the audit, in one
    /// transaction that also closes the event's entries and queues the analytics fact. The
    /// candidates are exactly the entries accepted before the close: the transaction holds the
    /// event's gate lock exclusively (see [`gate`](crate::infra::repository::gate)).
    pub async fn draw_winners(&self, owner: &str, request: DrawRequest) -> Result<DrawOutcome> {
        let checked = check(&request)?;
        // The status must be current: the owner may have ended the event a moment ago.
        let event = self.owned_event(owner, &request.event_id, true).await?;
        let if_drawn = if request.redraw { IfDrawn::Redraw } else { IfDrawn::Refuse };
        let record = match self.draw(&event, &request, checked, if_drawn).await? {
            Drawn::New(record) | Drawn::Existing(record) => record,
        };
        let mut winners = self.winners_of(&record.draw_id).await?;
        self.with_claims(&record.event_id, &mut winners).await?;
        Ok(DrawOutcome { record, winners, draws: Vec::new() })
    }

    /// DrawWinnersOnSchedule (the event service's scheduler, for an owner who chose auto_draw):
    /// a DrawWinners of `event_id` with the prize's winner count and a server seed, on behalf of
    /// the event's owner — unless the event has a draw already, which is returned untouched. Under
    /// the same gate lock as every draw, so concurrent calls (scheduler replicas, retries) make
    /// exactly one draw.
    pub async fn draw_on_schedule(&self, event_id: &str) -> Result<ScheduledDraw> {
        let event_id = required_event_id(event_id)?;
        let event = self.events.fresh_facts(event_id).await?.ok_or(ParticipationError::EventNotFound)?;
        // The usual case of a repeated call, answered without taking the lock.
        if let Some(record) = self.repo.current_draw(&event.id).await? {
            return Ok(ScheduledDraw { record, drawn_now: false });
        }
        let request = DrawRequest { event_id: event.id.clone(), ..DrawRequest::default() };
        let checked = check(&request)?;
        Ok(match self.draw(&event, &request, checked, IfDrawn::Keep).await? {
            Drawn::New(record) => ScheduledDraw { record, drawn_now: true },
            Drawn::Existing(record) => ScheduledDraw { record, drawn_now: false },
        })
    }

    /// Draws the winners of `event` as `request` asks (already `checked`), doing `if_drawn` when
    /// it has a draw: the one procedure of DrawWinners and DrawWinnersOnSchedule.
    async fn draw(
        &self,
        event: &EventFacts,
        request: &DrawRequest,
        checked: Checked,
        if_drawn: IfDrawn,
    ) -> Result<Drawn> {
        // EndEvent answers only after it closed the entries here, so that record is proof the
        // event ended even when the event service's answer lags (its per-replica read cache).
        if event.status != EventStatus::Ended && self.repo.gate(&event.id).await?.ended_at_ms.is_none() {
            return Err(ParticipationError::EventNotEnded(event.status));
        }
        let now = self.clock.now_ms();
        // From here on, every other draw of the event waits for this one (the gate lock).
        let mut session = self.repo.begin_draw(&event.id, now).await?;
        let current = session.current().await?;
        if let Some(current) = current.clone() {
            match if_drawn {
                IfDrawn::Refuse => return Err(ParticipationError::AlreadyDrawn { draw_id: current.draw_id }),
                // Dropping the session rolls it back: nothing changes.
                IfDrawn::Keep => return Ok(Drawn::Existing(current)),
                IfDrawn::Redraw => {}
            }
        }
        // Blocked entries are not in `entries`; the owner may still name them, and the audit
        // lists them with the exclusions, so it replays over all of the event's entries.
        let EntrySplit { eligible: entries, ineligible: blocked } = session.entries_by_eligibility().await?;
        let known: HashSet<&str> = entries.iter().chain(&blocked).map(String::as_str).collect();
        let unknown: Vec<&String> = checked.excluded.iter().filter(|x| !known.contains(x.as_str())).collect();
        if !unknown.is_empty() {
            let mut violations = Violations::default();
            for id in unknown {
                let position = request.exclude_entry_ids.iter().position(|x| x.trim() == id).unwrap_or_default();
                violations.push(FieldViolation::new(
                    &format!("excludeEntryIds[{position}]"),
                    "is not an entry of this event",
                ));
            }
            return Err(violations.into());
        }
        let eligible: Vec<&str> = entries
            .iter()
            .map(String::as_str)
            .filter(|id| checked.excluded.binary_search_by(|x| x.as_str().cmp(id)).is_err())
            .collect();
        if eligible.is_empty() {
            return Err(ParticipationError::NoEntries);
        }
        let wanted = match checked.count {
            Some(n) if n as usize > eligible.len() => {
                return Err(ParticipationError::field(
                    "count",
                    format!("asks for {n} winners but the event has only {} eligible entries", eligible.len()),
                ));
            }
            Some(n) => n,
            // The prize's winner count; if fewer entered, everyone wins.
            None => event.winner_count.ok_or_else(|| {
                ParticipationError::field("count", "the event's prize has no winner count: give the number of winners")
            })?,
        };
        let seed_supplied = checked.seed.is_some() && event.method == Method::Draw;
        let seed = match checked.seed {
            Some(seed) => seed,
            None => random_bytes::<SEED_LEN>()?,
        };
        let procedure = Procedure::for_method(event.method, seed);
        let winners = procedure.select(&eligible, wanted as usize);
        let record = DrawRecord {
            draw_id: uuid::Uuid::new_v4().to_string(),
            event_id: event.id.clone(),
            seed: procedure.seed(),
            seed_supplied,
            algorithm: procedure.algorithm().to_owned(),
            algorithm_version: ALGORITHM_VERSION.to_owned(),
            entry_snapshot_sha256: snapshot_sha256(&eligible),
            entry_count: i64::try_from(eligible.len()).unwrap_or(i64::MAX),
            winner_count: u32::try_from(winners.len()).unwrap_or(u32::MAX),
            excluded_entry_ids: with_blocked(checked.excluded, blocked),
            drawn_at_ms: now,
            redraw_of: current.map(|c| c.draw_id),
        };
        // The winners' claims and notices commit with the draw (the outbox of winner SMS).
        let (claims, notices) = self.new_claims(&mut session, event, &record, &winners).await?;
        session.add_claims(&claims, &notices, Retire::All, now).await?;
        session.record(&record, &winners, messages::draw_completed(event, &record), &self.repo).await?;
        tracing::info!(
            event_id = %event.id, draw_id = %record.draw_id, algorithm = %record.algorithm,
            entries = record.entry_count, winners = record.winner_count, redraw_of = ?record.redraw_of,
            scheduled = if_drawn == IfDrawn::Keep, "winners drawn"
        );
        Ok(Drawn::New(record))
    }

    /// ListWinners: the current draw of the owner's event and its winners (`None` before any).
    pub async fn list_winners(&self, owner: &str, event_id: &str) -> Result<Option<DrawOutcome>> {
        let event = self.owned_event(owner, event_id, false).await?;
        let Some(record) = self.repo.current_draw(&event.id).await? else { return Ok(None) };
        let winners = self.current_winners(&event.id).await?;
        let draws = self.repo.draws_of(&event.id).await?;
        Ok(Some(DrawOutcome { record, winners, draws }))
    }

    /// GetPublicWinners: the current draw of an event the public may see (PUBLISHED or ENDED;
    /// anything else is NOT_FOUND) and its winners (`None` before any draw). The record leaves out
    /// the excluded entry ids: no entry id is public (the snapshot hash covers them).
    pub async fn public_winners(&self, event_id: &str) -> Result<Option<DrawOutcome>> {
        let event = self.public_event(event_id).await?;
        let Some(mut record) = self.repo.current_draw(&event.id).await? else { return Ok(None) };
        let winners = self.current_winners(&event.id).await?;
        record.excluded_entry_ids.clear();
        let mut draws = self.repo.draws_of(&event.id).await?;
        for draw in &mut draws {
            draw.excluded_entry_ids.clear();
        }
        Ok(Some(DrawOutcome { record, winners, draws }))
    }

    async fn winners_of(&self, draw_id: &str) -> Result<Vec<Winner>> {
        self.repo
            .winners(draw_id)
            .await?
            .into_iter()
            .map(|w| {
                Ok(Winner {
                    rank: w.rank,
                    draw_id: draw_id.to_owned(),
                    entry: self.decrypt(w.entry)?,
                    claim: None,
                    notices: Vec::new(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_field_by_field() {
        let bad = DrawRequest {
            event_id: String::new(),
            count: -1,
            seed: vec![0; 31],
            redraw: false,
            exclude_entry_ids: vec!["a".into(), " ".into(), "a".into()],
        };
        let violations = check(&bad).err().unwrap_or_default();
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["eventId", "count", "seed", "excludeEntryIds[1]"]);
        let good = DrawRequest {
            event_id: "e".into(),
            count: 3,
            seed: vec![1; 32],
            redraw: true,
            exclude_entry_ids: vec!["b".into(), "a".into(), "b".into()],
        };
        let checked = check(&good).expect("valid");
        assert_eq!(
            (checked.count, checked.seed, checked.excluded),
            (Some(3), Some([1; 32]), vec!["a".into(), "b".into()])
        );
    }
}
