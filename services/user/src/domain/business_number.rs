//! Korean business registration numbers (사업자등록번호): 10 digits whose last digit is a checksum.

use std::fmt;

/// A business registration number that is 10 digits and passes the NTS checksum. A valid
/// checksum does not prove the business exists: NTS decides that.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BusinessNumber(String);

/// Why a string is not a business registration number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BusinessNumberError {
    /// Nothing was given.
    #[error("business number is required (10 digits, e.g. 124-81-00998)")]
    Empty,
    /// Not 10 digits once hyphens are removed (or other characters present).
    #[error("business number must be 10 digits; hyphens are allowed (e.g. 124-81-00998)")]
    Format,
    /// The 10th digit is not the checksum of the first nine.
    #[error("business number check digit is wrong; re-check the number (사업자등록번호를 확인해 주세요)")]
    Checksum,
}

/// Weights of digits 1–9 in the NTS checksum.
const WEIGHTS: [u32; 9] = [1, 3, 7, 1, 3, 7, 1, 3, 5];

/// The check digit (10th digit) of the first nine digits, per the NTS rule: the weighted sum
/// of digits 1–9 with weights 1,3,7,1,3,7,1,3,5, plus the tens digit of `d9 × 5`, then
/// `(10 − sum mod 10) mod 10`.
pub fn check_digit(first_nine: &[u8; 9]) -> u8 {
    let mut sum: u32 = first_nine.iter().zip(WEIGHTS).map(|(d, w)| u32::from(*d) * w).sum();
    sum += u32::from(first_nine[8]) * 5 / 10;
    // The value is in 0..=9, so the cast cannot truncate.
    ((10 - sum % 10) % 10) as u8
}

impl BusinessNumber {
    /// Parses `input`: surrounding whitespace and hyphens anywhere are ignored, then exactly 10
    /// ASCII digits must remain and the last must be the checksum of the others.
    pub fn parse(input: &str) -> Result<BusinessNumber, BusinessNumberError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(BusinessNumberError::Empty);
        }
        let digits: String = trimmed.chars().filter(|c| *c != '-').collect();
        if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BusinessNumberError::Format);
        }
        let d: Vec<u8> = digits.bytes().map(|b| b - b'0').collect();
        let mut first_nine = [0u8; 9];
        first_nine.copy_from_slice(&d[..9]);
        if check_digit(&first_nine) != d[9] {
            return Err(BusinessNumberError::Checksum);
        }
        Ok(BusinessNumber(digits))
    }

    /// The 10 digits, no hyphens (what NTS takes and what is stored).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Digits `i..j` (0-based) as text.
    pub fn digits(&self, range: std::ops::Range<usize>) -> &str {
        self.0.get(range).unwrap_or_default()
    }
}

impl fmt::Display for BusinessNumber {
    /// The usual `3-2-5` form, e.g. `124-81-00998`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.digits(0..3), self.digits(3..5), self.digits(5..10))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_valid_numbers_pass() {
        // Worked examples of PROVIDERS.md §1 (Samsung Electronics and a second published number).
        for valid in ["1248100998", "124-81-00998", " 220-81-62517 ", "2208162517"] {
            assert!(BusinessNumber::parse(valid).is_ok(), "{valid}");
        }
        assert_eq!(BusinessNumber::parse("124-81-00998").map(|n| n.as_str().to_owned()), Ok("1248100998".into()));
        assert_eq!(BusinessNumber::parse("1248100998").map(|n| n.to_string()), Ok("124-81-00998".into()));
    }

    #[test]
    fn the_checksum_follows_the_worked_example() {
        // 124-81-00998: S = 118, carry ⌊45/10⌋ = 4 → 122 → (10 − 2) mod 10 = 8.
        assert_eq!(check_digit(&[1, 2, 4, 8, 1, 0, 0, 9, 9]), 8);
        // 220-81-62517: S = 83, carry 0 → check 7.
        assert_eq!(check_digit(&[2, 2, 0, 8, 1, 6, 2, 5, 1]), 7);
        // A sum that is a multiple of 10 gives 0, not 10.
        assert_eq!(check_digit(&[0; 9]), 0);
    }

    #[test]
    fn every_wrong_check_digit_is_rejected() {
        for last in 0..=9u8 {
            let number = format!("124810099{last}");
            let expected = if last == 8 { Ok(()) } else { Err(BusinessNumberError::Checksum) };
            assert_eq!(BusinessNumber::parse(&number).map(drop), expected, "{number}");
        }
    }

    #[test]
    fn malformed_input_is_named() {
        assert_eq!(BusinessNumber::parse("  "), Err(BusinessNumberError::Empty));
        for bad in ["124810099", "12481009988", "124 81 00998", "12481009a8", "１２４８１００９９８", "124_81_00998"]
        {
            assert_eq!(BusinessNumber::parse(bad), Err(BusinessNumberError::Format), "{bad}");
        }
    }
}
