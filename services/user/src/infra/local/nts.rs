//! The built-in local stand-in for the NTS status API, used by `kem up` (and tests) when no
//! `KEM_NTS_SERVICE_KEY` is configured. Deterministic, offline, and **not real data**: every
//! answer is labelled `local:nts` (ProviderInfo kind LOCAL) and a warning is logged at start.
//!
//! # Rules (for checksum-valid numbers; invalid ones never get here)
//!
//! Real tax-office codes (the first three digits) start at 101, so numbers beginning with `000`
//! can never belong to a real business; they select a scenario by their 4th–5th digits:
//!
//! | number          | answer                                   |
//! |-----------------|------------------------------------------|
//! | `000-00-xxxxx`  | not registered (empty `b_stt_cd`)        |
//! | `000-02-xxxxx`  | `02` 휴업자 (suspended)                  |
//! | `000-03-xxxxx`  | `03` 폐업자 (closed, `end_dt` 20241231)  |
//! | anything else   | `01` 계속사업자 (active, 일반과세자)     |
//!
//! Ready-made checksum-valid examples: active `124-81-00998`, `220-81-62517`; suspended
//! `000-02-00004`; closed `000-03-00001`; not registered `000-00-00000`
//! (see [`EXAMPLES`], checked by a test).

use crate::domain::BusinessNumber;
use crate::infra::nts::wire::{StatusEntry, UNREGISTERED_TAX_TYPE};

/// The closure date the stand-in reports for closed businesses.
pub const CLOSED_ON: &str = "20241231";

/// Checksum-valid example numbers per local answer: (number, `b_stt_cd`).
pub const EXAMPLES: [(&str, &str); 5] = [
    ("124-81-00998", "01"),
    ("220-81-62517", "01"),
    ("000-02-00004", "02"),
    ("000-03-00001", "03"),
    ("000-00-00000", ""),
];

/// The local stand-in.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalNts;

impl LocalNts {
    /// What the stand-in answers for `number` (the same wire entry the real API would send).
    pub fn status(&self, number: &BusinessNumber) -> StatusEntry {
        let b_no = number.as_str().to_owned();
        let scenario = if number.digits(0..3) == "000" { number.digits(3..5) } else { "" };
        let entry = |code: &str, text: &str| StatusEntry {
            b_no: b_no.clone(),
            b_stt: text.to_owned(),
            b_stt_cd: code.to_owned(),
            tax_type: "부가가치세 일반과세자".to_owned(),
            tax_type_cd: "01".to_owned(),
            end_dt: String::new(),
            utcc_yn: "N".to_owned(),
        };
        match scenario {
            "00" => StatusEntry { b_no, tax_type: UNREGISTERED_TAX_TYPE.to_owned(), ..StatusEntry::default() },
            "02" => entry("02", "휴업자"),
            "03" => StatusEntry { end_dt: CLOSED_ON.to_owned(), ..entry("03", "폐업자") },
            _ => entry("01", "계속사업자"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_examples_are_checksum_valid_and_answer_as_documented() {
        for (number, code) in EXAMPLES {
            let parsed = BusinessNumber::parse(number).unwrap_or_else(|e| panic!("{number}: {e}"));
            assert_eq!(LocalNts.status(&parsed).b_stt_cd, code, "{number}");
        }
    }

    #[test]
    fn closed_and_unregistered_answers_carry_their_details() {
        let closed = LocalNts.status(&BusinessNumber::parse("000-03-00001").expect("valid"));
        assert_eq!((closed.b_stt.as_str(), closed.end_dt.as_str()), ("폐업자", CLOSED_ON));
        let unknown = LocalNts.status(&BusinessNumber::parse("0000000000").expect("valid"));
        assert_eq!((unknown.b_stt.as_str(), unknown.tax_type.as_str()), ("", UNREGISTERED_TAX_TYPE));
    }
}
