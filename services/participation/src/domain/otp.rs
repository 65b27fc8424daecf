//! One-time codes sent by SMS (SendParticipantCode): six digits, valid five minutes, five
//! attempts, at most one per minute and five per day for a phone and event.

use super::event::Millis;

/// How long a code works.
pub const CODE_TTL_MS: Millis = 5 * 60_000;
/// Attempts a code allows.
pub const CODE_ATTEMPTS: u32 = 5;
/// Least time between two codes for the same phone and event.
pub const RESEND_SPACING_MS: Millis = 60_000;
/// Most codes for the same phone and event per day.
pub const CODES_PER_DAY: u32 = 5;

/// What a code is for (the contract's `CodePurpose` numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Verifying the phone before Enter.
    Entry,
    /// LookupEntry and WithdrawEntry.
    Lookup,
}

impl Purpose {
    /// The stored (and contract) number.
    pub fn number(self) -> i32 {
        match self {
            Purpose::Entry => 1,
            Purpose::Lookup => 2,
        }
    }

    /// From the contract's number; `None` for unspecified or unknown.
    pub fn from_number(n: i32) -> Option<Purpose> {
        match n {
            1 => Some(Purpose::Entry),
            2 => Some(Purpose::Lookup),
            _ => None,
        }
    }
}

/// A six-digit code.
#[derive(Clone, PartialEq, Eq)]
pub struct OneTimeCode(String);

impl OneTimeCode {
    /// The code of `random` (a CSPRNG's u32): uniform enough, the bias of 2^32 mod 10^6 is under
    /// one in four thousand.
    pub fn from_random(random: u32) -> OneTimeCode {
        OneTimeCode(format!("{:06}", random % 1_000_000))
    }

    /// What a participant typed: spaces and hyphens ignored; `None` unless six digits remain.
    pub fn parse(input: &str) -> Option<OneTimeCode> {
        let code: String = input.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        (code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())).then_some(OneTimeCode(code))
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for OneTimeCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OneTimeCode(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits() {
        assert_eq!(OneTimeCode::from_random(42).as_str(), "000042");
        assert_eq!(OneTimeCode::from_random(u32::MAX).as_str().len(), 6);
        assert_eq!(OneTimeCode::parse(" 123-456 ").map(|c| c.as_str().to_owned()).as_deref(), Some("123456"));
        for bad in ["", "12345", "1234567", "12345a", "１２３４５６"] {
            assert_eq!(OneTimeCode::parse(bad), None, "{bad:?}");
        }
        assert_eq!((Purpose::from_number(1), Purpose::from_number(0)), (Some(Purpose::Entry), None));
    }
}
