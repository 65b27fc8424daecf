//! Prize claims: the code a winner receives by SMS and where a winner stands with the prize.
//!
//! A claim code is eight characters of the receipt alphabet (40 bits, no look-alikes), shown as
//! `XXXX-XXXX`; the participant may type it in any case, with spaces or hyphens. It is stored
//! only as a keyed hash; five wrong codes per phone and event in an hour lock the phone out, so
//! guessing 2^40 codes is hopeless.

use super::event::Millis;
use super::receipt::ALPHABET;

/// Characters of a claim code (without the separator).
pub const CLAIM_CODE_CHARS: usize = 8;
/// Wrong claim codes one phone may try per event within [`FAILURE_WINDOW_MS`].
pub const MAX_CLAIM_FAILURES: u32 = 5;
/// The window wrong claim codes are counted in.
pub const FAILURE_WINDOW_MS: Millis = 3_600_000;
/// A day, in milliseconds.
pub const DAY_MS: Millis = 86_400_000;

/// A claim code in its stored form (eight alphabet characters, no separator).
#[derive(Clone, PartialEq, Eq)]
pub struct ClaimCode(String);

impl ClaimCode {
    /// The code `random` picks (each byte's low five bits index the alphabet). `random` must come
    /// from a CSPRNG.
    pub fn from_random(random: [u8; CLAIM_CODE_CHARS]) -> ClaimCode {
        ClaimCode(random.iter().map(|b| char::from(ALPHABET[usize::from(b & 0x1f)])).collect())
    }

    /// What a participant typed: case, spaces and hyphens ignored; `None` unless eight alphabet
    /// characters remain.
    pub fn parse(input: &str) -> Option<ClaimCode> {
        let code: String = input.chars().filter(|c| !matches!(c, ' ' | '-')).map(|c| c.to_ascii_uppercase()).collect();
        let valid = code.len() == CLAIM_CODE_CHARS && code.bytes().all(|b| ALPHABET.contains(&b));
        valid.then_some(ClaimCode(code))
    }

    /// The stored form, e.g. `7K3QZM8W`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// As the winner sees it: `XXXX-XXXX`.
    pub fn display(&self) -> String {
        let (first, second) = self.0.split_at(CLAIM_CODE_CHARS / 2);
        format!("{first}-{second}")
    }
}

impl std::fmt::Debug for ClaimCode {
    /// The winner's alone: kept out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClaimCode(..)")
    }
}

/// Where a winner stands with the prize (the contract's `ClaimState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimState {
    /// Notified (or being notified), before the deadline.
    Unclaimed,
    /// Claimed with phone and code.
    Claimed,
    /// The deadline passed without a claim.
    Expired,
    /// Expired, and the prize went to someone else (RedrawUnclaimed).
    Redrawn,
}

/// A winner's claim as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Until when (inclusive) the prize can be claimed.
    pub deadline_ms: Millis,
    /// The first claim.
    pub claimed_at_ms: Option<Millis>,
    /// When RedrawUnclaimed gave the prize away.
    pub redrawn_at_ms: Option<Millis>,
}

impl Claim {
    /// The state at `now`: a claim wins over everything; a redraw over the deadline.
    pub fn state(&self, now: Millis) -> ClaimState {
        match (self.claimed_at_ms, self.redrawn_at_ms) {
            (Some(_), _) => ClaimState::Claimed,
            (None, Some(_)) => ClaimState::Redrawn,
            (None, None) if now > self.deadline_ms => ClaimState::Expired,
            (None, None) => ClaimState::Unclaimed,
        }
    }
}

/// The deadline of a winner drawn at `drawn_at` with `claim_days` to claim.
pub fn deadline(drawn_at: Millis, claim_days: u32) -> Millis {
    drawn_at.saturating_add(i64::from(claim_days).saturating_mul(DAY_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_eight_alphabet_characters_typed_loosely() {
        let code = ClaimCode::from_random([0, 1, 7, 8, 31, 32, 63, 200]);
        assert_eq!(code.as_str(), "239AZ2ZA");
        assert_eq!(code.display(), "239A-Z2ZA");
        assert_eq!(ClaimCode::parse(" 239a-z2za "), Some(code.clone()));
        assert_eq!(format!("{code:?}"), "ClaimCode(..)");
        for bad in ["", "239AZ2Z", "239AZ2ZAA", "0390Z2ZA", "239AZ2Z\u{0}", "239AZ2ZÄ"] {
            assert_eq!(ClaimCode::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn states_follow_claims_redraws_and_the_deadline() {
        let claim = Claim { deadline_ms: 100, claimed_at_ms: None, redrawn_at_ms: None };
        assert_eq!(claim.state(100), ClaimState::Unclaimed, "the deadline itself still counts");
        assert_eq!(claim.state(101), ClaimState::Expired);
        let redrawn = Claim { redrawn_at_ms: Some(150), ..claim.clone() };
        assert_eq!(redrawn.state(200), ClaimState::Redrawn);
        let claimed = Claim { claimed_at_ms: Some(90), ..redrawn };
        assert_eq!(claimed.state(200), ClaimState::Claimed);
        assert_eq!(deadline(1_000, 7), 1_000 + 7 * DAY_MS);
    }
}
