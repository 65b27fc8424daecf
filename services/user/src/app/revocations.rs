//! ListRevocations: the access tokens the edge must refuse before they expire.
//!
//! The edge polls every few hundred milliseconds with the cursor of its last answer and merges
//! what it gets into an in-process set; an empty cursor returns every live revocation (the edge
//! starts with that, so a restarted edge enforces revocations at once).
//!
//! A cursor normally means "everything recorded since `now - OVERLAP`" rather than "after the
//! last row seen": rows are stamped with the writing replica's clock before their transaction
//! commits, so a row may become visible after rows stamped later, and replicas' clocks differ a
//! little. Re-sending the last few seconds of revocations is harmless (merging is idempotent)
//! and makes a late-committed row impossible to miss. Only when a page is full does the cursor
//! point after its last row, so a flood of revocations is read in pages, never as one message
//! that exceeds the transport's limit.

use std::time::{Duration, SystemTime};

use kem_kit::store::from_millis;

use super::{UserCore, UserError, ms};
use crate::infra::repository::{ListFrom, RevocationRow};

/// How far back a polling cursor reaches: longer than any user-service transaction takes to
/// commit plus the clock skew between user-service replicas.
pub const OVERLAP: Duration = Duration::from_secs(10);
/// Rows per answer at most.
pub const PAGE_SIZE: i64 = 2000;
/// Longest cursor accepted (ours are well below: a number and two UUIDs).
const MAX_CURSOR_LEN: usize = 256;

/// A revoked set of access tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// Every token of the owner issued (`iat`) before `issued_before`.
    Owner {
        /// Whose tokens.
        owner_id: String,
        /// The cut-off.
        issued_before: SystemTime,
        /// When every token it revokes has expired.
        expires_at: SystemTime,
    },
    /// Every token of one session (`sid` claim).
    Session {
        /// Whose session.
        owner_id: String,
        /// The session.
        session_id: String,
        /// When every token it revokes has expired.
        expires_at: SystemTime,
    },
}

/// One answer of ListRevocations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationPage {
    /// The revocations (possibly ones the caller already has).
    pub revocations: Vec<Revocation>,
    /// Where the next call continues.
    pub next_cursor: String,
    /// Whether more rows are waiting: call again at once rather than after the poll period.
    pub more: bool,
}

impl UserCore {
    /// ListRevocations from `cursor` (empty: every live revocation).
    pub async fn list_revocations(&self, cursor: &str) -> Result<RevocationPage, UserError> {
        let from = parse_cursor(cursor)?;
        let now_ms = self.now_ms();
        let rows = self.repo.revocations(&from, now_ms, PAGE_SIZE).await?;
        let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= PAGE_SIZE;
        let next_cursor = match rows.last() {
            Some(last) if more => format!("k{}|{}|{}", last.recorded_at_ms, last.owner_id, last.session_id),
            _ => format!("t{}", now_ms.saturating_sub(ms(OVERLAP))),
        };
        Ok(RevocationPage { revocations: rows.into_iter().map(revocation).collect(), next_cursor, more })
    }

    /// How long a revocation written now must be kept: until every token it can concern has
    /// expired at every verifier (access TTL, the verifiers' clock leeway, and a margin for
    /// clock differences and tokens issued up to a second ahead; see
    /// `infra::repository::sessions`).
    pub(crate) fn revocation_ttl(&self) -> Duration {
        self.config.tokens.access_ttl.saturating_add(kem_kit::jwt::DEFAULT_LEEWAY).saturating_add(REVOCATION_MARGIN)
    }
}

/// See [`UserCore::revocation_ttl`].
const REVOCATION_MARGIN: Duration = Duration::from_secs(60);

fn revocation(row: RevocationRow) -> Revocation {
    let expires_at = from_millis(row.expires_at_ms);
    if row.session_id.is_empty() {
        let seconds = u64::try_from(row.issued_before_s).unwrap_or(0);
        Revocation::Owner {
            owner_id: row.owner_id,
            issued_before: kem_kit::jwt::later(SystemTime::UNIX_EPOCH, Duration::from_secs(seconds)),
            expires_at,
        }
    } else {
        Revocation::Session { owner_id: row.owner_id, session_id: row.session_id, expires_at }
    }
}

fn parse_cursor(cursor: &str) -> Result<ListFrom, UserError> {
    let invalid =
        || UserError::field("cursor", "not a cursor this service returned; send an empty cursor to start over");
    if cursor.is_empty() {
        return Ok(ListFrom::RecordedSince(0));
    }
    if cursor.len() > MAX_CURSOR_LEN {
        return Err(invalid());
    }
    if let Some(since) = cursor.strip_prefix('t') {
        return since.parse::<i64>().map(ListFrom::RecordedSince).map_err(|_| invalid());
    }
    let mut parts = cursor.strip_prefix('k').ok_or_else(invalid)?.splitn(3, '|');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(at), Some(owner), Some(session)) => Ok(ListFrom::After {
            recorded_at_ms: at.parse().map_err(|_| invalid())?,
            owner_id: owner.to_owned(),
            session_id: session.to_owned(),
        }),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_invalid() {
        assert_eq!(parse_cursor("").ok(), Some(ListFrom::RecordedSince(0)));
        assert_eq!(parse_cursor("t1700000000000").ok(), Some(ListFrom::RecordedSince(1_700_000_000_000)));
        assert_eq!(
            parse_cursor("k5|owner-1|").ok(),
            Some(ListFrom::After { recorded_at_ms: 5, owner_id: "owner-1".into(), session_id: String::new() })
        );
        for bad in ["x", "t", "tabc", "k5|owner", "k|a|b", &"t1".repeat(200)] {
            assert!(matches!(parse_cursor(bad), Err(UserError::InvalidArgument { .. })), "{bad}");
        }
    }
}
