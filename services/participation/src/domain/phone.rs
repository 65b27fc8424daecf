//! Participants' Korean mobile numbers: parsed from what people type, kept as E.164
//! (`+821012345678`) and shown to owners masked (`010-****-5678`).

use std::fmt;

/// A Korean mobile number. The subscriber part (after the trunk `0`) is `10` + 8 digits, or a
/// legacy `11/16/17/18/19` prefix + 7 or 8 digits.
#[derive(Clone, PartialEq, Eq)]
pub struct MobileNumber {
    /// National significant number without the trunk zero, e.g. `1012345678`.
    subscriber: String,
}

/// Why a phone number was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Nothing was given.
    #[error("phone is required, e.g. 010-1234-5678")]
    Missing,
    /// A character that never appears in a phone number.
    #[error("phone may contain only digits, spaces, hyphens, dots, parentheses and a leading +")]
    Characters,
    /// A country code other than Korea's.
    #[error("phone must be a Korean mobile number (+82)")]
    Foreign,
    /// Not a mobile prefix, or the wrong number of digits.
    #[error("phone must be a Korean mobile number such as 010-1234-5678")]
    NotMobile,
}

impl MobileNumber {
    /// Parses `010-1234-5678`, `01012345678`, `+82 10 1234 5678`, `+82 (0)10-1234-5678`,
    /// `0082…` and `+821012345678`.
    pub fn parse(input: &str) -> Result<MobileNumber, PhoneError> {
        let text = input.trim();
        if text.is_empty() {
            return Err(PhoneError::Missing);
        }
        let international = text.starts_with('+');
        let mut digits = String::with_capacity(text.len());
        for c in text.chars().skip(usize::from(international)) {
            if c.is_ascii_digit() {
                digits.push(c);
            } else if !matches!(c, ' ' | '-' | '.' | '(' | ')') {
                return Err(PhoneError::Characters);
            }
        }
        let after_country_code = if international {
            Some(digits.strip_prefix("82").ok_or(PhoneError::Foreign)?)
        } else {
            digits.strip_prefix("0082")
        };
        let subscriber = match after_country_code {
            // "+82 (0)10 …" and "+82 010 …": the trunk zero is often written out of habit.
            Some(rest) => rest.strip_prefix('0').unwrap_or(rest),
            None => digits.strip_prefix('0').ok_or(PhoneError::NotMobile)?,
        };
        let length_ok = match subscriber.get(..2) {
            Some("10") => subscriber.len() == 10,
            Some("11" | "16" | "17" | "18" | "19") => (9..=10).contains(&subscriber.len()),
            _ => false,
        };
        if !length_ok {
            return Err(PhoneError::NotMobile);
        }
        Ok(MobileNumber { subscriber: subscriber.to_owned() })
    }

    /// The E.164 form, e.g. `+821012345678` (what uniqueness is decided on).
    pub fn e164(&self) -> String {
        format!("+82{}", self.subscriber)
    }

    /// The national form, e.g. `010-1234-5678` (`011-123-4567` for a 10-digit legacy number):
    /// what an owner dials, in revealed winner exports.
    pub fn national(&self) -> String {
        let national = format!("0{}", self.subscriber);
        let (prefix, rest) = national.split_at(3);
        let (middle, last) = rest.split_at(rest.len() - 4);
        format!("{prefix}-{middle}-{last}")
    }

    /// The national form in digits only, e.g. `01012345678`: what Kakao 친구톡 deliveries address
    /// (ListMarketingRecipients).
    pub fn national_digits(&self) -> String {
        format!("0{}", self.subscriber)
    }

    /// The national form with the middle group masked and the last four digits kept, e.g.
    /// `010-****-5678` (`011-***-4567` for a 10-digit legacy number).
    pub fn masked(&self) -> String {
        let national = format!("0{}", self.subscriber);
        let (prefix, rest) = national.split_at(3);
        let (middle, last) = rest.split_at(rest.len() - 4);
        format!("{prefix}-{}-{last}", "*".repeat(middle.len()))
    }
}

impl fmt::Debug for MobileNumber {
    /// Personal data: only the masked form reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MobileNumber({})", self.masked())
    }
}

/// The masked national form of a stored E.164 number; a value this version cannot parse is
/// fully masked rather than shown.
pub fn mask_e164(e164: &str) -> String {
    MobileNumber::parse(e164).map(|n| n.masked()).unwrap_or_else(|_| "***-****-****".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_people_type_normalizes_to_e164() {
        for input in [
            "010-1234-5678",
            "01012345678",
            "  010 1234 5678 ",
            "010.1234.5678",
            "(010) 1234-5678",
            "+82 10-1234-5678",
            "+821012345678",
            "+82 (0)10 1234 5678",
            "+82 010-1234-5678",
            "0082 10 1234 5678",
        ] {
            assert_eq!(MobileNumber::parse(input).map(|n| n.e164()), Ok("+821012345678".to_owned()), "{input}");
        }
        assert_eq!(MobileNumber::parse("011-123-4567").map(|n| n.e164()), Ok("+82111234567".to_owned()));
        assert_eq!(MobileNumber::parse("019-1234-5678").map(|n| n.e164()), Ok("+821912345678".to_owned()));
    }

    #[test]
    fn landlines_foreign_and_malformed_numbers_are_refused() {
        for (input, error) in [
            ("", PhoneError::Missing),
            ("   ", PhoneError::Missing),
            ("02-123-4567", PhoneError::NotMobile),
            ("031-123-4567", PhoneError::NotMobile),
            ("010-123-4567", PhoneError::NotMobile),
            ("010-1234-56789", PhoneError::NotMobile),
            ("1012345678", PhoneError::NotMobile),
            ("0010-1234-5678", PhoneError::NotMobile),
            ("+1 415 555 0100", PhoneError::Foreign),
            ("+82 2 123 4567", PhoneError::NotMobile),
            ("010-1234-567a", PhoneError::Characters),
            ("010+1234+5678", PhoneError::Characters),
            ("０１０-1234-5678", PhoneError::Characters),
        ] {
            assert_eq!(MobileNumber::parse(input), Err(error), "{input:?}");
        }
    }

    #[test]
    fn masks_keep_the_prefix_and_the_last_four_digits() {
        let masked = |s: &str| MobileNumber::parse(s).map(|n| n.masked());
        assert_eq!(masked("010-1234-5678"), Ok("010-****-5678".to_owned()));
        assert_eq!(masked("011-123-4567"), Ok("011-***-4567".to_owned()));
        assert_eq!(mask_e164("+821098765432"), "010-****-5432");
        assert_eq!(mask_e164("garbage"), "***-****-****");
        let debug = format!("{:?}", MobileNumber::parse("010-1234-5678"));
        assert!(!debug.contains("1234"), "{debug}");
    }
}
