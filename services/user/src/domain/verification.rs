//! The result of looking a business number up at NTS, as stored, cached and returned.

use serde::{Deserialize, Serialize};

/// Business status derived from the NTS status code `b_stt_cd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BusinessStatus {
    /// 계속사업자 (`01`): may register.
    Active,
    /// 휴업자 (`02`).
    Suspended,
    /// 폐업자 (`03`).
    Closed,
    /// NTS does not know the number (empty `b_stt_cd`).
    Unregistered,
}

impl BusinessStatus {
    /// From `b_stt_cd`; `None` for a code outside the contract.
    pub fn from_nts_code(code: &str) -> Option<BusinessStatus> {
        match code.trim() {
            "01" => Some(BusinessStatus::Active),
            "02" => Some(BusinessStatus::Suspended),
            "03" => Some(BusinessStatus::Closed),
            "" => Some(BusinessStatus::Unregistered),
            _ => None,
        }
    }
}

/// Who answered a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderSource {
    /// `true` for the built-in local stand-in (deterministic demo data, not NTS).
    pub local: bool,
    /// `nts` for the real API, `local:nts` for the stand-in.
    pub name: String,
    /// The API version asked (`nts-businessman/v1`), empty for the stand-in.
    pub model: String,
}

/// One NTS answer about one business number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// The 10 digits looked up.
    pub business_number: String,
    /// Derived status.
    pub status: BusinessStatus,
    /// Raw `b_stt_cd` (`01`, `02`, `03`, or empty).
    pub nts_status_code: String,
    /// Raw `b_stt` (e.g. `계속사업자`).
    pub nts_status_text: String,
    /// Raw `tax_type`.
    pub tax_type: String,
    /// Raw `tax_type_cd`.
    pub tax_type_code: String,
    /// Raw `end_dt` (`YYYYMMDD`), closure date of a closed business.
    pub end_date: String,
    /// `utcc_yn == "Y"`.
    pub unit_taxation_closure: bool,
    /// When NTS was queried (ms since the epoch).
    pub verified_at_ms: i64,
    /// Who answered.
    pub source: ProviderSource,
    /// Whether this answer was served from the verification cache (set per answer, not stored
    /// in the cache itself).
    #[serde(default, skip_serializing)]
    pub cached: bool,
}

impl Verification {
    /// `end_date` as ISO 8601 `YYYY-MM-DD`, empty unless closed with a well-formed date.
    pub fn closed_date(&self) -> String {
        let d = self.end_date.trim();
        if self.status != BusinessStatus::Closed || d.len() != 8 || !d.bytes().all(|b| b.is_ascii_digit()) {
            return String::new();
        }
        format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nts_codes_map_to_statuses() {
        assert_eq!(BusinessStatus::from_nts_code("01"), Some(BusinessStatus::Active));
        assert_eq!(BusinessStatus::from_nts_code("02"), Some(BusinessStatus::Suspended));
        assert_eq!(BusinessStatus::from_nts_code("03"), Some(BusinessStatus::Closed));
        assert_eq!(BusinessStatus::from_nts_code(""), Some(BusinessStatus::Unregistered));
        assert_eq!(BusinessStatus::from_nts_code("04"), None);
    }

    #[test]
    fn closed_date_is_iso_only_for_closed_businesses() {
        let mut v = Verification {
            business_number: "1248100998".into(),
            status: BusinessStatus::Closed,
            nts_status_code: "03".into(),
            nts_status_text: "폐업자".into(),
            tax_type: String::new(),
            tax_type_code: String::new(),
            end_date: "20240131".into(),
            unit_taxation_closure: false,
            verified_at_ms: 0,
            source: ProviderSource { local: true, name: "local:nts".into(), model: String::new() },
            cached: true,
        };
        assert_eq!(v.closed_date(), "2024-01-31");
        let json = serde_json::to_string(&v).expect("json");
        assert!(!json.contains("cached"), "the per-answer flag is not stored");
        v.status = BusinessStatus::Active;
        assert_eq!(v.closed_date(), "");
    }
}
