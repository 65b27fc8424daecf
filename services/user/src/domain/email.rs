//! Sign-in email addresses: normalized (trimmed, lower-case) so that uniqueness is
//! case-insensitive, and checked against a practical subset of RFC 5322 `addr-spec`.

/// Longest address accepted (RFC 5321 path limit).
pub const MAX_LEN: usize = 254;
/// Longest local part (RFC 5321).
const MAX_LOCAL_LEN: usize = 64;
/// Longest domain label (RFC 1035).
const MAX_LABEL_LEN: usize = 63;

/// The normalized form of `input`, or why it is not an address we accept.
///
/// Accepted: a dot-atom local part (letters, digits and ``!#$%&'*+/=?^_`{|}~-``, dots not
/// leading, trailing or doubled) and a DNS domain of at least two labels (letters, digits,
/// inner hyphens; internationalized domains in their `xn--` form). Quoted local parts, IP
/// literals and comments are refused: real sign-up addresses do not use them, and they are a
/// classic source of parser disagreement between systems.
pub fn normalize(input: &str) -> Result<String, &'static str> {
    let email = input.trim().to_lowercase();
    if email.is_empty() {
        return Err("email is required");
    }
    if email.len() > MAX_LEN {
        return Err("email must be at most 254 characters");
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err("email must look like name@example.com");
    };
    if local.is_empty() || local.len() > MAX_LOCAL_LEN {
        return Err("the part before @ must be 1-64 characters");
    }
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
    if local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
        || !local.chars().all(|c| c == '.' || atext(c))
    {
        return Err("the part before @ contains characters that are not allowed");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err("the domain must have a dot, e.g. example.com");
    }
    for label in &labels {
        let ok = !label.is_empty()
            && label.len() <= MAX_LABEL_LEN
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err("the domain is not a valid host name (use the xn-- form for non-ASCII domains)");
        }
    }
    let tld = labels.last().copied().unwrap_or_default();
    if tld.len() < 2 || tld.chars().all(|c| c.is_ascii_digit()) {
        return Err("the domain must end in a top-level domain such as .com or .kr");
    }
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_lower_cased() {
        assert_eq!(normalize("  Owner.Kim+shop@Example.CO.KR "), Ok("owner.kim+shop@example.co.kr".into()));
        assert_eq!(normalize("a@xn--3e0b707e.kr"), Ok("a@xn--3e0b707e.kr".into()));
    }

    #[test]
    fn malformed_addresses_are_refused() {
        let too_long = format!("{}@example.com", "a".repeat(250));
        for bad in [
            "",
            "   ",
            "owner",
            "owner@",
            "@example.com",
            "owner@example",
            "owner@-example.com",
            "owner@example..com",
            ".owner@example.com",
            "ow..ner@example.com",
            "owner@example.c",
            "owner@1.2.3.4",
            "\"quoted\"@example.com",
            "owner name@example.com",
            "오너@example.com",
            "owner@예시.kr",
            too_long.as_str(),
        ] {
            assert!(normalize(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
