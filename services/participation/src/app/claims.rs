//! Prize claims: the claim codes and notices every draw gives its winners, ClaimPrize,
//! RedrawUnclaimed, and the current winners with their claim and notification states.

use std::time::Duration;

use super::{DrawOutcome, ParticipationCore, ParticipationError, Result, Winner, random_bytes};
use crate::domain::claim::{self, ClaimCode, ClaimState, FAILURE_WINDOW_MS, MAX_CLAIM_FAILURES};
use crate::domain::draw::{ALGORITHM_VERSION, DrawRecord, Procedure, SEED_LEN, snapshot_sha256};
use crate::domain::event::{EventFacts, Millis};
use crate::domain::notice;
use crate::domain::phone::MobileNumber;
use crate::domain::violation::{FieldViolation, Violations};
use crate::infra::messages;
use crate::infra::pii::{CodeLabel, PiiField};
use crate::infra::repository::{DrawSession, EntrySplit, NewClaim, NewNotification, Retire, StoredClaim, StoredNotice};
use crate::infra::sms::carrier_text;

/// `NotificationChannel` SMS.
pub const CHANNEL_SMS: i32 = 1;

/// A winner's claim as the owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WinnerClaim {
    /// Where the winner stands.
    pub state: ClaimState,
    /// The deadline.
    pub deadline_ms: Millis,
    /// The first claim.
    pub claimed_at_ms: Option<Millis>,
}

/// One message telling a winner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WinnerNotice {
    /// `NotificationChannel` number.
    pub channel: i32,
    /// `NotificationState` number: 1 pending, 2 sent, 3 delivered, 4 failed.
    pub state: i32,
    /// Sends tried.
    pub attempts: u32,
    /// Why the last try failed.
    pub last_error: String,
    /// When the state last changed.
    pub updated_at_ms: Millis,
    /// Who carries it (`ProviderKind` number, name).
    pub provider: (i32, String),
}

fn notice_view(n: &StoredNotice) -> WinnerNotice {
    use crate::infra::repository::NoticeState;
    WinnerNotice {
        channel: n.channel,
        state: match n.state {
            NoticeState::Pending => 1,
            NoticeState::Sent => 2,
            NoticeState::Delivered => 3,
            NoticeState::Failed => 4,
        },
        attempts: n.attempts,
        last_error: n.last_error.clone(),
        updated_at_ms: n.updated_at_ms,
        provider: n.provider.clone(),
    }
}

/// What ClaimPrize answers.
#[derive(Debug, Clone)]
pub struct ClaimedPrize {
    /// Rank in the draw.
    pub rank: u32,
    /// The winner's masked name.
    pub masked_name: String,
    /// The prize's name.
    pub prize_name: String,
    /// The prize's winner count and unit value, as the event says.
    pub winner_count: Option<u32>,
    /// Unit value in KRW.
    pub prize_unit_value_krw: Option<i64>,
    /// The first claim.
    pub claimed_at_ms: Millis,
}

/// Up to `now` from `until`, at least a second (RetryInfo).
fn wait_until(until: Millis, now: Millis) -> Duration {
    Duration::from_millis(u64::try_from(until.saturating_sub(now)).unwrap_or(0).max(1_000))
}

impl ParticipationCore {
    /// The claims and notices of a draw's `winners` (entry ids by rank): a fresh claim code for
    /// each, its tag (bound to the event and the winner's phone), the deadline (draw time + the
    /// event's claim days), and the SMS text sealed for the notifier. Winners whose phone was
    /// erased get a claim nobody can make and no notice.
    pub(super) async fn new_claims(
        &self,
        session: &mut DrawSession,
        event: &EventFacts,
        record: &DrawRecord,
        winners: &[String],
    ) -> Result<(Vec<NewClaim>, Vec<NewNotification>)> {
        let deadline_ms = claim::deadline(record.drawn_at_ms, event.claim_days());
        let provider = self.sms.info();
        let mut claims = Vec::with_capacity(winners.len());
        let mut notices = Vec::with_capacity(winners.len());
        for (i, (entry_id, stored)) in winners.iter().zip(session.entries(winners).await?).enumerate() {
            let rank = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let entry = self.decrypt(stored)?;
            let code = ClaimCode::from_random(random_bytes()?);
            let phone = entry.phone_e164.clone().unwrap_or_default();
            claims.push(NewClaim {
                draw_id: record.draw_id.clone(),
                rank,
                entry_id: entry_id.clone(),
                code_hash: self.keys.phones.code_tag(CodeLabel::Claim, &event.id, &phone, code.as_str()),
                deadline_ms,
            });
            if phone.is_empty() {
                continue;
            }
            let id = uuid::Uuid::new_v4().to_string();
            let text = carrier_text(&notice::winner_text(
                &event.store_name,
                &event.title,
                &code,
                deadline_ms,
                &event.entry_url,
            ));
            notices.push(NewNotification {
                message_sealed: self.keys.cipher.seal(&id, PiiField::Message, &text)?,
                id,
                draw_id: record.draw_id.clone(),
                rank,
                entry_id: entry_id.clone(),
                channel: CHANNEL_SMS,
                provider: (provider.kind, provider.name.clone()),
            });
        }
        Ok((claims, notices))
    }

    /// The current winners of `event_id` (claimed winners of earlier draws, then the latest
    /// draw's) with their claims and notices.
    pub(super) async fn current_winners(&self, event_id: &str) -> Result<Vec<Winner>> {
        let claims = self.repo.current_claims(event_id).await?;
        let mut winners = Vec::with_capacity(claims.len());
        for c in claims {
            let Some(stored) = self.repo.entry(event_id, &c.entry_id).await? else { continue };
            winners.push(Winner {
                rank: c.rank,
                draw_id: c.draw_id.clone(),
                entry: self.decrypt(stored)?,
                claim: None,
                notices: Vec::new(),
            });
        }
        self.with_claims(event_id, &mut winners).await?;
        Ok(winners)
    }

    /// Fills in the claims and notices of `winners` of `event_id`.
    pub(super) async fn with_claims(&self, event_id: &str, winners: &mut [Winner]) -> Result<()> {
        let now = self.clock.now_ms();
        let claims = self.repo.current_claims(event_id).await?;
        let notices = self.repo.notices_of_event(event_id).await?;
        for w in winners.iter_mut() {
            w.claim = claims.iter().find(|c| c.draw_id == w.draw_id && c.rank == w.rank).map(|c| WinnerClaim {
                state: c.claim.state(now),
                deadline_ms: c.claim.deadline_ms,
                claimed_at_ms: c.claim.claimed_at_ms,
            });
            w.notices =
                notices.iter().filter(|n| n.draw_id == w.draw_id && n.rank == w.rank).map(notice_view).collect();
        }
        Ok(())
    }

    /// ClaimPrize: the winner of the published event with `phone` and `code` claims the prize.
    /// Every mismatch is the same CLAIM_NOT_FOUND and counts against the phone (5 per hour lock
    /// it out); codes are compared in constant time. A repeated claim answers the first.
    pub async fn claim_prize(&self, event_id: &str, phone: &str, code: &str) -> Result<ClaimedPrize> {
        let mut violations = Violations::default();
        let phone =
            MobileNumber::parse(phone).map_err(|e| violations.push(FieldViolation::new("phone", e.to_string())));
        let code = ClaimCode::parse(code).ok_or_else(|| {
            violations.push(FieldViolation::new(
                "claimCode",
                "must be the 8 characters of the claim code from the SMS, e.g. ABCD-2345",
            ))
        });
        let (Ok(phone), Ok(code)) = (phone, code) else { return Err(violations.into()) };
        let event = self.public_event(event_id).await?;
        let now = self.clock.now_ms();
        let e164 = phone.e164();
        let phone_hash = self.keys.phones.hash(&event.id, &e164);
        let window_after = now - FAILURE_WINDOW_MS;
        // Counted before the comparison, atomically: concurrent guesses cannot slip past the limit.
        let (attempts, start) = self.repo.count_claim_attempt(&event.id, &phone_hash, now, window_after).await?;
        if attempts > MAX_CLAIM_FAILURES {
            return Err(ParticipationError::TooManyAttempts {
                retry_after: wait_until(start + FAILURE_WINDOW_MS, now),
            });
        }
        let claims = self.repo.claims_of_phone(&event.id, &phone_hash).await?;
        let matched: Option<StoredClaim> = claims.into_iter().find(|c| {
            c.code_hash.as_deref().is_some_and(|tag| {
                self.keys.phones.code_matches(CodeLabel::Claim, &event.id, &e164, code.as_str(), tag)
            })
        });
        let Some(matched) = matched else {
            tracing::info!(event_id = %event.id, "prize claim with no matching winner");
            return Err(ParticipationError::ClaimNotFound);
        };
        self.repo.forgive_claim_attempt(&event.id, &phone_hash).await?;
        let claimed_at_ms = match matched.claim.state(now) {
            ClaimState::Claimed => matched.claim.claimed_at_ms.unwrap_or(now),
            ClaimState::Redrawn => return Err(ParticipationError::PrizeRedrawn),
            ClaimState::Expired => {
                return Err(ParticipationError::ClaimExpired { deadline_ms: matched.claim.deadline_ms });
            }
            ClaimState::Unclaimed => self
                .repo
                .claim_prize(&matched.draw_id, matched.rank, now)
                .await?
                // Retired between the read and the claim: a redraw took it.
                .ok_or(ParticipationError::PrizeRedrawn)?,
        };
        let entry = match self.repo.entry(&event.id, &matched.entry_id).await? {
            Some(stored) => self.decrypt(stored)?,
            None => return Err(ParticipationError::internal("a claimed winner's entry is gone")),
        };
        tracing::info!(event_id = %event.id, draw_id = %matched.draw_id, rank = matched.rank, "prize claimed");
        Ok(ClaimedPrize {
            rank: matched.rank,
            masked_name: entry.masked_name(),
            prize_name: event.prize_name.clone(),
            winner_count: event.winner_count,
            prize_unit_value_krw: event.prize_unit_value_krw,
            claimed_at_ms,
        })
    }

    /// RedrawUnclaimed: once every unclaimed winner's deadline has passed, a new draw of as many
    /// winners over the eligible entries that never won (the documented procedure, with its own
    /// audit: `redraw_of` the previous draw, every earlier winner excluded); the expired winners
    /// become REDRAWN, claimed winners stay, and the new ones are notified like the first. Under
    /// the event's gate lock like every draw.
    pub async fn redraw_unclaimed(&self, owner: &str, event_id: &str, seed: &[u8]) -> Result<DrawOutcome> {
        let seed: Option<[u8; SEED_LEN]> = match seed.len() {
            0 => None,
            SEED_LEN => seed.try_into().ok(),
            n => return Err(ParticipationError::field("seed", format!("must be exactly 32 bytes (got {n})"))),
        };
        let event = self.owned_event(owner, event_id, true).await?;
        if self.repo.current_draw(&event.id).await?.is_none() {
            return Err(ParticipationError::NotDrawn);
        }
        if self.repo.has_erased_entries(&event.id).await? {
            return Err(ParticipationError::DataErased);
        }
        let now = self.clock.now_ms();
        let mut session = self.repo.begin_draw(&event.id, now).await?;
        let Some(current) = session.current().await? else { return Err(ParticipationError::NotDrawn) };
        let unclaimed: Vec<StoredClaim> =
            session.current_claims().await?.into_iter().filter(|c| c.claim.claimed_at_ms.is_none()).collect();
        if unclaimed.is_empty() {
            return Err(ParticipationError::NothingToRedraw);
        }
        if let Some(open) = unclaimed.iter().map(|c| c.claim.deadline_ms).filter(|d| *d >= now).max() {
            return Err(ParticipationError::ClaimPeriodOpen { deadline_ms: open });
        }
        let EntrySplit { eligible: entries, ineligible } = session.entries_by_eligibility().await?;
        let previous = session.previous_winner_ids().await?;
        let eligible: Vec<&str> = entries
            .iter()
            .map(String::as_str)
            .filter(|id| previous.binary_search_by(|p| p.as_str().cmp(id)).is_err())
            .collect();
        if eligible.is_empty() {
            return Err(ParticipationError::NoEntries);
        }
        let seed_supplied = seed.is_some() && event.method == crate::domain::event::Method::Draw;
        let procedure = Procedure::for_method(event.method, seed.map_or_else(random_bytes::<SEED_LEN>, Ok)?);
        let winners = procedure.select(&eligible, unclaimed.len());
        let mut excluded: Vec<String> = previous.iter().chain(&ineligible).cloned().collect();
        excluded.sort_unstable();
        excluded.dedup();
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
            excluded_entry_ids: excluded,
            drawn_at_ms: now,
            redraw_of: Some(current.draw_id.clone()),
        };
        let (claims, notices) = self.new_claims(&mut session, &event, &record, &winners).await?;
        session.add_claims(&claims, &notices, Retire::Expired { now }, now).await?;
        session.record(&record, &winners, messages::draw_completed(&event, &record), &self.repo).await?;
        tracing::info!(
            event_id = %event.id, draw_id = %record.draw_id, redraw_of = %current.draw_id,
            redrawn = unclaimed.len(), winners = record.winner_count, "unclaimed prizes redrawn"
        );
        let winners = self.current_winners(&event.id).await?;
        Ok(DrawOutcome { record, winners, draws: Vec::new() })
    }
}
