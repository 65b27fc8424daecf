//! Korean mobile numbers, normalized to E.164 (`+821012345678`).

/// The E.164 form of a Korean mobile number given as `010-1234-5678`, `01012345678`,
/// `+82 10-1234-5678`, `+82 (0)10 1234 5678`, `+821012345678` or `0082…`; spaces, hyphens,
/// dots and parentheses are ignored.
///
/// Accepted numbers: `010` + 8 digits, and the legacy `011/016/017/018/019` + 7 or 8 digits.
pub fn normalize(input: &str) -> Result<String, &'static str> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err("phone is required, e.g. 010-1234-5678");
    }
    let mut compact = String::with_capacity(trimmed.len());
    for (i, c) in trimmed.chars().enumerate() {
        match c {
            '0'..='9' => compact.push(c),
            '+' if i == 0 => compact.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return Err("phone may contain only digits, spaces, hyphens and a leading +"),
        }
    }
    let national = if let Some(rest) = compact.strip_prefix("+82").or_else(|| compact.strip_prefix("0082")) {
        // "+82 (0)10 …" and "+82 010 …" are common ways of writing it: drop the trunk zero.
        rest.strip_prefix('0').unwrap_or(rest).to_owned()
    } else if compact.starts_with('+') {
        return Err("phone must be a Korean mobile number (+82)");
    } else if let Some(rest) = compact.strip_prefix('0') {
        rest.to_owned()
    } else {
        return Err("phone must start with 010 (or +82 10)");
    };
    let valid = match national.get(..2) {
        Some("10") => national.len() == 10,
        Some("11" | "16" | "17" | "18" | "19") => national.len() == 9 || national.len() == 10,
        _ => false,
    };
    if !valid || !national.bytes().all(|b| b.is_ascii_digit()) {
        return Err("phone must be a Korean mobile number such as 010-1234-5678");
    }
    Ok(format!("+82{national}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_ways_of_writing_a_mobile_number_normalize_to_e164() {
        for input in [
            "010-1234-5678",
            "01012345678",
            " 010 1234 5678 ",
            "010.1234.5678",
            "+82 10-1234-5678",
            "+821012345678",
            "+82 (0)10 1234 5678",
            "+82 010-1234-5678",
            "0082-10-1234-5678",
        ] {
            assert_eq!(normalize(input), Ok("+821012345678".into()), "{input}");
        }
        assert_eq!(normalize("011-123-4567"), Ok("+82111234567".into()));
        assert_eq!(normalize("019-1234-5678"), Ok("+821912345678".into()));
    }

    #[test]
    fn landlines_foreign_and_malformed_numbers_are_refused() {
        for bad in [
            "",
            "02-123-4567",
            "031-123-4567",
            "010-123-4567",
            "010-1234-56789",
            "+1 415 555 0100",
            "+82 2 123 4567",
            "1012345678",
            "010-1234-567a",
            "010+1234+5678",
            "０１０-1234-5678",
        ] {
            assert!(normalize(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
