//! The NTS business status API's wire contract (PROVIDERS.md §1) and how its answers are read.
//!
//! Two error layers exist: the NTS application answers `{"status_code": "<CODE>"}`, and the
//! data.go.kr / odcloud gateway in front of it answers `{"code": <int>, "msg": "…"}`, sometimes
//! with HTTP 200. So the verdict is decided on the body, not only on the status.

use kem_kit::external::{ProviderResponse, Verdict};
use serde::{Deserialize, Serialize};

/// Path of the status lookup, relative to the base URL (`https://api.odcloud.kr/api`).
pub const STATUS_PATH: &str = "nts-businessman/v1/status";

/// Most numbers one call may carry.
pub const MAX_NUMBERS_PER_CALL: usize = 100;

/// `tax_type` NTS returns for a number it does not know.
pub const UNREGISTERED_TAX_TYPE: &str = "국세청에 등록되지 않은 사업자등록번호입니다.";

/// Request body: `{"b_no": ["1248100998", …]}` (10 digits, no hyphens).
#[derive(Debug, Serialize)]
pub struct StatusRequest<'a> {
    /// The numbers to look up.
    pub b_no: &'a [&'a str],
}

/// Successful response body.
#[derive(Debug, Clone, Deserialize)]
pub struct StatusResponse {
    /// `OK` on success.
    pub status_code: String,
    /// Numbers asked.
    #[serde(default)]
    pub request_cnt: Option<i64>,
    /// Numbers NTS knows (fewer than asked when some are unregistered).
    #[serde(default)]
    pub match_cnt: Option<i64>,
    /// One entry per number asked, unregistered ones included.
    #[serde(default)]
    pub data: Vec<StatusEntry>,
}

/// One number's status. Every field is a string; unknown extra fields are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusEntry {
    /// The number.
    pub b_no: String,
    /// Status text (`계속사업자`, `휴업자`, `폐업자`; empty when unregistered).
    #[serde(deserialize_with = "string_or_null")]
    pub b_stt: String,
    /// Status code (`01`, `02`, `03`; empty when unregistered).
    #[serde(deserialize_with = "string_or_null")]
    pub b_stt_cd: String,
    /// Tax type text, or the "not registered" sentence.
    #[serde(deserialize_with = "string_or_null")]
    pub tax_type: String,
    /// Tax type code (`01`–`07`).
    #[serde(deserialize_with = "string_or_null")]
    pub tax_type_cd: String,
    /// Closure date `YYYYMMDD`.
    #[serde(deserialize_with = "string_or_null")]
    pub end_dt: String,
    /// `Y` when closed because of a switch to unit taxation.
    #[serde(deserialize_with = "string_or_null")]
    pub utcc_yn: String,
}

/// A missing or `null` string is empty (the contract says strings; gateways are not always
/// that careful).
fn string_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// Reads an NTS answer by its body (see the module docs); `None` leaves it to the status code.
pub fn classify(response: &ProviderResponse) -> Option<Verdict> {
    let body: serde_json::Value = serde_json::from_slice(response.body()).ok()?;
    let status = response.status().as_u16();
    // Gateway layer: {"code": <int>, "msg": "..."}; code 0 would be success.
    if let Some(code) = body.get("code").and_then(gateway_code) {
        if code == 0 {
            return None;
        }
        let msg = body.get("msg").and_then(serde_json::Value::as_str).unwrap_or_default();
        let detail = format!("gateway code {code}: {msg}");
        return Some(match code {
            // Unregistered/invalid key, unregistered service, service ended: our configuration.
            -401 | -4 | -3 | -9 => Verdict::Auth(detail),
            // Daily traffic quota of the key.
            -10 => Verdict::RateLimited { retry_after: response.retry_after(), detail },
            -2 => Verdict::Invalid(detail),
            -1 => Verdict::Transient { retry_after: None, detail },
            _ if status >= 500 => Verdict::Transient { retry_after: None, detail },
            _ => Verdict::Unexpected(format!("unknown {detail}")),
        });
    }
    // NTS layer: {"status_code": "<CODE>"}.
    let code = body.get("status_code").and_then(serde_json::Value::as_str)?;
    let detail = format!("NTS status_code {code}");
    Some(match code {
        "OK" if response.status().is_success() => Verdict::Success,
        "BAD_JSON_REQUEST" | "REQUEST_DATA_MALFORMED" | "TOO_LARGE_REQUEST" => Verdict::Invalid(detail),
        "INTERNAL_ERROR" => Verdict::Transient { retry_after: response.retry_after(), detail },
        // HTTP_ERROR and anything new: a server-side failure unless the status says otherwise.
        _ if status >= 500 || response.status().is_success() => {
            Verdict::Transient { retry_after: response.retry_after(), detail }
        }
        _ => Verdict::Invalid(detail),
    })
}

/// The gateway's `code` as an integer (it is a JSON number; tolerate a numeric string).
fn gateway_code(value: &serde_json::Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_decode_with_missing_null_and_extra_fields() {
        let json = r#"{"status_code":"OK","request_cnt":2,"match_cnt":1,"data":[
            {"b_no":"1248100998","b_stt":"계속사업자","b_stt_cd":"01","tax_type":"부가가치세 일반과세자",
             "tax_type_cd":"01","end_dt":"","utcc_yn":"N","tax_type_change_dt":"","invoice_apply_dt":"",
             "rbf_tax_type":"x","rbf_tax_type_cd":"01"},
            {"b_no":"1234567891","b_stt":"","b_stt_cd":null,
             "tax_type":"국세청에 등록되지 않은 사업자등록번호입니다."}]}"#;
        let response: StatusResponse = serde_json::from_str(json).expect("decodes");
        assert_eq!(response.match_cnt, Some(1));
        assert_eq!(response.data[0].b_stt_cd, "01");
        assert_eq!(response.data[1].b_stt_cd, "");
        assert_eq!(response.data[1].tax_type, UNREGISTERED_TAX_TYPE);
        assert_eq!(response.data[1].end_dt, "");
    }

    #[test]
    fn the_request_body_is_a_list_of_numbers() {
        let body = serde_json::to_string(&StatusRequest { b_no: &["1248100998"] }).expect("json");
        assert_eq!(body, r#"{"b_no":["1248100998"]}"#);
    }
}
