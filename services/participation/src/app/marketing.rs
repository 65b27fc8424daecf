//! ListMarketingRecipients: the numbers that agreed to an owner's marketing messages, for the
//! distribution service's Kakao 친구톡 deliveries (mesh only; the mesh admits the distribution
//! workload alone, by the contract's `callers`).
//!
//! Phone hashes are scoped to their event, so "one per number over all of the owner's events"
//! cannot be decided in SQL: each page reads the owner's entries that still hold a number, opens
//! the numbers and applies [`marketing_recipients`] (one decision per number, ordered by number),
//! then keeps the part after the page token. That is linear in the owner's entries per page —
//! what a batch delivery job can afford (a store's events gather thousands of entries, and AES-GCM
//! opens a million values a second) — and in exchange the contract's order by number holds and no
//! owner-wide link between one person's entries is ever stored.
//!
//! Page tokens are the last number of the previous page, sealed with the personal-data key
//! (AES-256-GCM) and bound to the owner: opaque, unreadable in a log, and refused when edited,
//! truncated or presented for another owner. A number consenting while the caller pages appears on
//! this listing if it sorts after the page the caller is at, on the next listing otherwise.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{ParticipationCore, ParticipationError, Result};
use crate::domain::marketing::{MarketingCandidate, MarketingRecipient, marketing_recipients};
use crate::domain::phone::MobileNumber;
use crate::infra::pii::PiiField;

/// Recipients per page when the caller gives no size.
pub const DEFAULT_MARKETING_PAGE_SIZE: u32 = 500;
/// Largest page; larger requests are refused (the contract says so, unlike ListParticipants).
pub const MAX_MARKETING_PAGE_SIZE: u32 = 1000;
/// Longest token worth opening: a sealed national number (at most 11 digits) in base64url is
/// about 60 characters; anything far longer was never issued.
const MAX_TOKEN_CHARS: usize = 128;
/// Longest number a token may carry (national digits).
const MAX_CURSOR_DIGITS: usize = 11;

/// One page of an owner's marketing recipients.
#[derive(Debug, Clone)]
pub struct MarketingPage {
    /// Recipients in ascending order of their number.
    pub recipients: Vec<MarketingRecipient>,
    /// Token of the next page; empty on the last.
    pub next_page_token: String,
}

/// The page size asked for: 500 for 0; INVALID_ARGUMENT (`pageSize`) outside 0..=1000.
fn marketing_page_size(requested: i32) -> Result<u32> {
    match u32::try_from(requested) {
        Ok(0) => Ok(DEFAULT_MARKETING_PAGE_SIZE),
        Ok(n) if n <= MAX_MARKETING_PAGE_SIZE => Ok(n),
        _ => Err(ParticipationError::field("pageSize", "must be between 0 (for 500) and 1000")),
    }
}

impl ParticipationCore {
    /// ListMarketingRecipients: a page of the numbers that may receive `owner_id`'s marketing
    /// messages (see the [module](self) for the rules and their cost).
    pub async fn list_marketing_recipients(
        &self,
        owner_id: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<MarketingPage> {
        let owner_id = owner_id.trim();
        if owner_id.is_empty() {
            return Err(ParticipationError::field("ownerId", "the owner id is required"));
        }
        let size = marketing_page_size(page_size)? as usize;
        let after = match page_token.trim() {
            "" => None,
            token => Some(self.open_marketing_token(owner_id, token).ok_or_else(|| {
                ParticipationError::field(
                    "pageToken",
                    "is not a page token ListMarketingRecipients returned for this owner: start again with an empty \
                     one",
                )
            })?),
        };
        let rows = self.repo.marketing_rows(owner_id).await?;
        let mut candidates = Vec::with_capacity(rows.len());
        for row in rows {
            let e164 = self.keys.cipher.open(&row.id, PiiField::Phone, &row.phone_sealed)?;
            let number = MobileNumber::parse(&e164).map_err(|_| {
                ParticipationError::internal(format!("entry {} holds a phone that is not a mobile number", row.id))
            })?;
            candidates.push(MarketingCandidate {
                phone: number.national_digits(),
                entry_id: row.id,
                granted: row.marketing_consent_granted,
                consented_at_ms: row.consented_at_ms,
                created_at_ms: row.created_at_ms,
                blocked: row.blocked,
            });
        }
        let all = marketing_recipients(candidates);
        let start = after.map_or(0, |after| all.partition_point(|r| r.phone.as_str() <= after.as_str()));
        let rest = &all[start..];
        let recipients: Vec<MarketingRecipient> = rest.iter().take(size).cloned().collect();
        let next_page_token = match recipients.last() {
            Some(last) if rest.len() > size => self.seal_marketing_token(owner_id, &last.phone)?,
            _ => String::new(),
        };
        Ok(MarketingPage { recipients, next_page_token })
    }

    /// The token continuing after `phone` in `owner_id`'s listing.
    fn seal_marketing_token(&self, owner_id: &str, phone: &str) -> Result<String> {
        Ok(URL_SAFE_NO_PAD.encode(self.keys.cipher.seal(owner_id, PiiField::MarketingCursor, phone)?))
    }

    /// The number `token` continues after, if it is a token issued for `owner_id`.
    fn open_marketing_token(&self, owner_id: &str, token: &str) -> Option<String> {
        if token.len() > MAX_TOKEN_CHARS {
            return None;
        }
        let sealed = URL_SAFE_NO_PAD.decode(token).ok()?;
        let phone = self.keys.cipher.open(owner_id, PiiField::MarketingCursor, &sealed).ok()?;
        let digits = !phone.is_empty() && phone.len() <= MAX_CURSOR_DIGITS && phone.bytes().all(|b| b.is_ascii_digit());
        digits.then_some(phone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_follow_the_contract() {
        assert_eq!(marketing_page_size(0).ok(), Some(500));
        assert_eq!(marketing_page_size(1).ok(), Some(1));
        assert_eq!(marketing_page_size(1000).ok(), Some(1000));
        for bad in [-1, 1001, i32::MIN, i32::MAX] {
            assert!(marketing_page_size(bad).is_err(), "{bad}");
        }
    }
}
