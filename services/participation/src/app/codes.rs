//! One-time codes by SMS (SendParticipantCode), the phone verification Enter asks for on events
//! that verify phones, LookupEntry and WithdrawEntry.

use std::time::Duration;

use super::claims::WinnerClaim;
use super::{ParticipationCore, ParticipationError, Result, random_bytes};
use crate::domain::claim::DAY_MS;
use crate::domain::entry::Entry;
use crate::domain::event::Millis;
use crate::domain::notice;
use crate::domain::otp::{CODE_ATTEMPTS, CODE_TTL_MS, CODES_PER_DAY, OneTimeCode, Purpose, RESEND_SPACING_MS};
use crate::domain::phone::MobileNumber;
use crate::domain::receipt::ReceiptCode;
use crate::domain::violation::{FieldViolation, Violations};
use crate::infra::pii::CodeLabel;
use crate::infra::repository::{NewCode, Withdrawal};
use crate::infra::sms::{SmsError, SmsMessage, carrier_text};

/// When a sent code expires and when another may be asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeSent {
    /// When the code stops working.
    pub expire_ms: Millis,
    /// When another code may be asked for.
    pub resend_ms: Millis,
}

/// Where an entry stands, as its participant sees it.
#[derive(Debug, Clone)]
pub struct EntryStanding {
    /// The entry.
    pub entry: Entry,
    /// `EntryStanding` number: 1 entered, 2 won, 3 not won, 4 withdrawn.
    pub standing: i32,
    /// For a winner: rank and claim.
    pub won: Option<(u32, WinnerClaim)>,
}

fn label(purpose: Purpose) -> CodeLabel {
    match purpose {
        Purpose::Entry => CodeLabel::EntryOtp,
        Purpose::Lookup => CodeLabel::LookupOtp,
    }
}

fn phone_field(phone: &str, violations: &mut Violations) -> Option<MobileNumber> {
    MobileNumber::parse(phone).map_err(|e| violations.push(FieldViolation::new("phone", e.to_string()))).ok()
}

fn after(until: Millis, now: Millis) -> Duration {
    Duration::from_millis(u64::try_from(until.saturating_sub(now)).unwrap_or(0).max(1_000))
}

impl ParticipationCore {
    /// SendParticipantCode: a new six-digit code for `phone` and `purpose` (replacing the last),
    /// at most one a minute and five a day. For LOOKUP the answer is the same whether or not the
    /// phone entered, and no SMS goes to a phone that did not.
    pub async fn send_code(&self, event_id: &str, phone: &str, purpose: i32) -> Result<CodeSent> {
        let mut violations = Violations::default();
        let phone = phone_field(phone, &mut violations);
        let purpose = Purpose::from_number(purpose);
        if purpose.is_none() {
            violations.push(FieldViolation::new("purpose", "must be CODE_PURPOSE_ENTRY or CODE_PURPOSE_LOOKUP"));
        }
        let (Some(phone), Some(purpose)) = (phone, purpose) else { return Err(violations.into()) };
        let event = self.public_event(event_id).await?;
        if purpose == Purpose::Entry && !event.entry_rules.verify_phone {
            return Err(ParticipationError::VerificationNotRequired);
        }
        let now = self.clock.now_ms();
        let e164 = phone.e164();
        let phone_hash = self.keys.phones.hash(&event.id, &e164);
        let previous = self.repo.code(&event.id, &phone_hash, purpose.number()).await?;
        let (day_start, day_count) = match &previous {
            Some(p) if now < p.sent_at_ms + RESEND_SPACING_MS => {
                return Err(ParticipationError::CodeRateLimited {
                    retry_after: after(p.sent_at_ms + RESEND_SPACING_MS, now),
                });
            }
            Some(p) if now < p.day_start_ms + DAY_MS && p.day_count >= CODES_PER_DAY => {
                return Err(ParticipationError::CodeRateLimited { retry_after: after(p.day_start_ms + DAY_MS, now) });
            }
            Some(p) if now < p.day_start_ms + DAY_MS => (p.day_start_ms, p.day_count + 1),
            _ => (now, 1),
        };
        let mut random = [0u8; 4];
        random.copy_from_slice(&random_bytes::<4>()?);
        let code = OneTimeCode::from_random(u32::from_le_bytes(random));
        let row = NewCode {
            event_id: event.id.clone(),
            phone_hash: phone_hash.clone(),
            purpose: purpose.number(),
            code_hash: self.keys.phones.code_tag(label(purpose), &event.id, &e164, code.as_str()),
            expires_at_ms: now + CODE_TTL_MS,
            attempts: CODE_ATTEMPTS,
            sent_at_ms: now,
            day_start_ms: day_start,
            day_count,
        };
        if !self.repo.put_code(&row, previous.as_ref().map(|p| p.sent_at_ms)).await? {
            // Another send for this phone won the race a moment ago.
            return Err(ParticipationError::CodeRateLimited { retry_after: after(now + RESEND_SPACING_MS, now) });
        }
        let sent = CodeSent { expire_ms: now + CODE_TTL_MS, resend_ms: now + RESEND_SPACING_MS };
        let entered = purpose == Purpose::Entry || self.repo.entry_of_phone(&event.id, &phone_hash).await?.is_some();
        if !entered {
            return Ok(sent);
        }
        let message = SmsMessage { to_e164: e164, text: carrier_text(&notice::code_text(&event.store_name, &code)) };
        match self.sms.send(&message).await {
            Ok(_) => Ok(sent),
            // Codes are short-lived: not worth searching for; the participant asks again.
            Err(error @ (SmsError::Refused { .. } | SmsError::Unknown { .. })) => {
                Err(ParticipationError::SmsUnavailable(error))
            }
            Err(error) => Err(ParticipationError::internal(error)),
        }
    }

    /// Checks `code` for (`event_id`, `e164`, `purpose`): spends an attempt on a wrong one.
    /// `Ok(false)` for a wrong, expired or missing code; TOO_MANY_ATTEMPTS once used up.
    async fn check_code(&self, event_id: &str, e164: &str, purpose: Purpose, code: &OneTimeCode) -> Result<bool> {
        let now = self.clock.now_ms();
        let phone_hash = self.keys.phones.hash(event_id, e164);
        let Some(stored) = self.repo.code(event_id, &phone_hash, purpose.number()).await? else { return Ok(false) };
        if stored.attempts_left == 0 {
            return Err(ParticipationError::TooManyAttempts { retry_after: after(stored.expires_at_ms, now) });
        }
        let Some(tag) = stored.code_hash.as_deref() else { return Ok(false) };
        if now <= stored.expires_at_ms
            && self.keys.phones.code_matches(label(purpose), event_id, e164, code.as_str(), tag)
        {
            return Ok(true);
        }
        self.repo.spend_code_attempt(event_id, &phone_hash, purpose.number()).await?;
        Ok(false)
    }

    /// Enter's phone verification on events that verify phones: the ENTRY code sent to the
    /// phone, checked (not consumed: [`consume_entry_code`](Self::consume_entry_code) does that
    /// once the entry is stored).
    pub(super) async fn verify_entry_code(&self, event_id: &str, e164: &str, code: &str) -> Result<()> {
        if code.trim().is_empty() {
            return Err(ParticipationError::VerificationRequired);
        }
        let Some(code) = OneTimeCode::parse(code) else { return Err(ParticipationError::VerificationFailed) };
        match self.check_code(event_id, e164, Purpose::Entry, &code).await {
            Ok(true) => Ok(()),
            Ok(false) | Err(ParticipationError::TooManyAttempts { .. }) => Err(ParticipationError::VerificationFailed),
            Err(error) => Err(error),
        }
    }

    /// Consumes the ENTRY code of a phone whose entry was stored.
    pub(super) async fn consume_entry_code(&self, event_id: &str, e164: &str) -> Result<()> {
        let phone_hash = self.keys.phones.hash(event_id, e164);
        Ok(self.repo.consume_code(event_id, &phone_hash, Purpose::Entry.number()).await?)
    }

    /// The entry of `phone` holding a valid LOOKUP `code` (ENTRY_NOT_FOUND for any mismatch).
    async fn entry_by_code(&self, event_id: &str, phone: &str, code: &str) -> Result<Entry> {
        let mut violations = Violations::default();
        let phone = phone_field(phone, &mut violations);
        let code = OneTimeCode::parse(code);
        if code.is_none() {
            violations.push(FieldViolation::new("code", "must be the 6-digit code from the SMS"));
        }
        let (Some(phone), Some(code)) = (phone, code) else { return Err(violations.into()) };
        let e164 = phone.e164();
        if !self.check_code(event_id, &e164, Purpose::Lookup, &code).await? {
            return Err(ParticipationError::EntryNotFound);
        }
        let phone_hash = self.keys.phones.hash(event_id, &e164);
        let stored = self.repo.entry_of_phone(event_id, &phone_hash).await?.ok_or(ParticipationError::EntryNotFound)?;
        self.decrypt(stored)
    }

    /// LookupEntry: by receipt code, or by phone and LOOKUP code.
    pub async fn lookup_entry(&self, event_id: &str, receipt: &str, phone: &str, code: &str) -> Result<EntryStanding> {
        let by_receipt = !receipt.trim().is_empty();
        if !by_receipt && (phone.trim().is_empty() || code.trim().is_empty()) {
            let mut violations = Violations::default();
            violations.push(FieldViolation::new("receiptCode", "give the receipt code, or a phone with its code"));
            return Err(violations.into());
        }
        let event = self.public_event(event_id).await?;
        let entry = if by_receipt {
            let normalized: String =
                receipt.chars().filter(|c| !matches!(c, ' ' | '-')).map(|c| c.to_ascii_uppercase()).collect();
            let Some(receipt) = ReceiptCode::parse(&normalized) else {
                return Err(ParticipationError::field("receiptCode", "must be the 10-character receipt, XXXXX-XXXXX"));
            };
            let stored = self.repo.entry_of_receipt(&event.id, receipt.as_str()).await?;
            self.decrypt(stored.ok_or(ParticipationError::EntryNotFound)?)?
        } else {
            self.entry_by_code(&event.id, phone, code).await?
        };
        let now = self.clock.now_ms();
        if entry.withdrawn_at_ms.is_some() {
            return Ok(EntryStanding { entry, standing: 4, won: None });
        }
        let claims = self.repo.claims_of_entry(&event.id, &entry.id).await?;
        if let Some(c) = claims.first() {
            let claim = WinnerClaim {
                state: c.claim.state(now),
                deadline_ms: c.claim.deadline_ms,
                claimed_at_ms: c.claim.claimed_at_ms,
            };
            return Ok(EntryStanding { entry, standing: 2, won: Some((c.rank, claim)) });
        }
        let drawn = self.repo.current_draw(&event.id).await?.is_some();
        Ok(EntryStanding { entry, standing: if drawn { 3 } else { 1 }, won: None })
    }

    /// WithdrawEntry: before the draw, with phone and LOOKUP code; idempotent.
    pub async fn withdraw_entry(&self, event_id: &str, phone: &str, code: &str) -> Result<Millis> {
        let event = self.public_event(event_id).await?;
        let entry = self.entry_by_code(&event.id, phone, code).await?;
        if let Some(at) = entry.withdrawn_at_ms {
            return Ok(at);
        }
        match self.repo.withdraw(&event.id, &entry.id, self.clock.now_ms()).await? {
            Withdrawal::Withdrawn(at) => {
                tracing::info!(event_id = %event.id, entry_id = %entry.id, "entry withdrawn: name and phone erased");
                Ok(at)
            }
            Withdrawal::AlreadyDrawn => Err(ParticipationError::WithdrawAfterDraw),
        }
    }
}
