//! Owner profile fields: their rules and which of them UpdateMe may change.

use kem_kit::validate::{Text, check_text, excerpt};
use kem_proto::kem::common::v1::BusinessCategory;

use super::FieldViolation;

/// Longest owner name (대표자명), in characters.
pub const NAME_MAX: usize = 50;
/// Longest store name (상호), in characters.
pub const STORE_NAME_MAX: usize = 100;
/// Longest region text, in characters.
pub const REGION_MAX: usize = 200;

/// `value` trimmed, if it has `1..=max` characters and passes the platform's single-line text
/// rule (no control, separator or bidi formatting characters).
fn text(value: &str, what: &str, max: usize) -> Result<String, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(format!("{what} is required"));
    }
    check_text(trimmed, Text::line(max)).map_err(|e| format!("{what} {e}"))?;
    Ok(trimmed.to_owned())
}

/// The owner's name, 1–50 characters.
pub fn name(value: &str) -> Result<String, String> {
    text(value, "name", NAME_MAX)
}

/// The store name, 1–100 characters.
pub fn store_name(value: &str) -> Result<String, String> {
    text(value, "store name", STORE_NAME_MAX)
}

/// The human-readable region, 1–200 characters.
pub fn region(value: &str) -> Result<String, String> {
    text(value, "region", REGION_MAX)
}

/// The optional 10-digit 법정동 code: empty, or exactly 10 digits.
pub fn region_code(value: &str) -> Result<String, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() || (trimmed.len() == 10 && trimmed.bytes().all(|b| b.is_ascii_digit())) {
        Ok(trimmed.to_owned())
    } else {
        Err("region code must be the 10-digit 법정동 code, e.g. 1168010100".to_owned())
    }
}

/// A business category that is set and known to this version of the contract.
pub fn business_category(value: i32) -> Result<i32, String> {
    match BusinessCategory::try_from(value) {
        Ok(BusinessCategory::Unspecified) => Err("business category is required".to_owned()),
        Ok(_) => Ok(value),
        Err(_) => Err(format!("business category {value} is not a known value")),
    }
}

/// A profile field UpdateMe may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProfileField {
    /// `name`.
    Name,
    /// `phone`.
    Phone,
    /// `store_name`.
    StoreName,
    /// `business_category`.
    BusinessCategory,
    /// `region`.
    Region,
    /// `region_code`.
    RegionCode,
    /// `email` (re-checked for uniqueness).
    Email,
}

impl ProfileField {
    /// The camelCase JSON name (for field violations).
    pub fn json_name(self) -> &'static str {
        match self {
            ProfileField::Name => "name",
            ProfileField::Phone => "phone",
            ProfileField::StoreName => "storeName",
            ProfileField::BusinessCategory => "businessCategory",
            ProfileField::Region => "region",
            ProfileField::RegionCode => "regionCode",
            ProfileField::Email => "email",
        }
    }
}

/// `storeName` → `store_name` (FieldMask paths are snake_case over gRPC; a client that sends the
/// JSON names is forgiven).
fn snake_case(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 4);
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The fields named by an update mask, or a violation per path that names nothing updatable.
/// Violations are reported on `updateMask`.
pub fn parse_mask(paths: &[String]) -> Result<Vec<ProfileField>, Vec<FieldViolation>> {
    if paths.iter().all(|p| p.trim().is_empty()) {
        return Err(vec![FieldViolation::new(
            "updateMask",
            "update mask is required: name the fields to change, e.g. \"store_name,phone\"",
        )]);
    }
    let mut fields = Vec::new();
    let mut violations = Vec::new();
    for raw in paths.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let path = snake_case(raw);
        // Quoted back in violations: a short excerpt only, never the whole (maybe huge) path.
        let shown = excerpt(raw);
        let field = match path.as_str() {
            "name" => ProfileField::Name,
            "phone" => ProfileField::Phone,
            "store_name" => ProfileField::StoreName,
            "business_category" => ProfileField::BusinessCategory,
            "region" => ProfileField::Region,
            "region_code" => ProfileField::RegionCode,
            "email" => ProfileField::Email,
            "business_number" => {
                violations.push(FieldViolation::new(
                    "updateMask",
                    format!("\"{shown}\" cannot be changed: it is fixed at registration"),
                ));
                continue;
            }
            "owner_id" | "business_verification" | "create_time" | "update_time" => {
                violations.push(FieldViolation::new("updateMask", format!("\"{shown}\" is output only")));
                continue;
            }
            _ if path.starts_with("business_verification.") => {
                violations.push(FieldViolation::new("updateMask", format!("\"{shown}\" is output only")));
                continue;
            }
            _ => {
                violations.push(FieldViolation::new(
                    "updateMask",
                    format!(
                        "\"{shown}\" is not an owner field; updatable: email, name, phone, store_name, \
                         business_category, region, region_code"
                    ),
                ));
                continue;
            }
        };
        if !fields.contains(&field) {
            fields.push(field);
        }
    }
    if violations.is_empty() { Ok(fields) } else { Err(violations) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(paths: &[&str]) -> Result<Vec<ProfileField>, Vec<FieldViolation>> {
        parse_mask(&paths.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn updatable_paths_parse_in_either_case_without_duplicates() {
        assert_eq!(
            mask(&["store_name", "phone", "storeName", "region_code"]),
            Ok(vec![ProfileField::StoreName, ProfileField::Phone, ProfileField::RegionCode])
        );
        assert_eq!(mask(&["businessCategory"]), Ok(vec![ProfileField::BusinessCategory]));
    }

    #[test]
    fn empty_unknown_immutable_and_output_only_paths_are_violations() {
        assert_eq!(mask(&[]).expect_err("empty")[0].field, "updateMask");
        assert!(mask(&[" "]).is_err());
        for (path, reason) in [
            ("business_number", "fixed at registration"),
            ("businessNumber", "fixed at registration"),
            ("owner_id", "output only"),
            ("create_time", "output only"),
            ("business_verification.status", "output only"),
            ("password", "not an owner field"),
            ("*", "not an owner field"),
        ] {
            let violations = mask(&["name", path]).expect_err(path);
            assert_eq!(violations.len(), 1, "{path}");
            assert!(violations[0].description.contains(reason), "{path}: {}", violations[0].description);
        }
        let huge = "x".repeat(10_000);
        let violations = mask(&[huge.as_str()]).expect_err("unknown");
        assert!(violations[0].description.len() < 200, "the path is not echoed in full");
    }

    #[test]
    fn text_fields_are_trimmed_and_bounded() {
        assert_eq!(name("  김사장 "), Ok("김사장".to_owned()));
        assert!(name("").is_err());
        assert!(name(&"가".repeat(51)).is_err());
        assert!(name(&"가".repeat(50)).is_ok());
        assert!(store_name(&"a".repeat(101)).is_err());
        assert!(region("서울\u{0}").is_err());
        assert!(name("김\u{202E}사장").is_err(), "bidi override");
        assert!(store_name("행복\n카페").is_err(), "single line");
        assert_eq!(region_code(""), Ok(String::new()));
        assert_eq!(region_code("1168010100"), Ok("1168010100".to_owned()));
        assert!(region_code("11680").is_err());
    }

    #[test]
    fn business_category_must_be_a_known_value() {
        assert!(business_category(BusinessCategory::Cafe as i32).is_ok());
        assert!(business_category(0).is_err());
        assert!(business_category(999).is_err());
    }
}
