//! The password policy of owner accounts.
//!
//! Length first (10–128 characters, counted as Unicode scalar values so Korean passphrases are
//! not penalized), then a light composition rule and a check against the most common choices:
//! NIST SP 800-63B favours length and blocklists over composition rules, while Korean guidance
//! (KISA) expects at least two character kinds at this length; both are met.

/// Fewest characters accepted.
pub const MIN_CHARS: usize = 10;
/// Most characters accepted (argon2 takes any length; this bounds the work per request).
pub const MAX_CHARS: usize = 128;

/// Passwords people pick most often (lower-cased), refused whatever their composition.
const COMMON: [&str; 16] = [
    "1234567890",
    "0123456789",
    "qwertyuiop",
    "1q2w3e4r5t",
    "q1w2e3r4t5",
    "password12",
    "password123",
    "password1!",
    "p@ssw0rd12",
    "qwerty1234",
    "1234qwer!@",
    "abcd123456",
    "asdf123456",
    "iloveyou12",
    "admin12345",
    "letmein123",
];

/// Checks `password` against the policy; the error says what to change. `email` is the account's
/// (normalized) address: a password containing its local part is refused.
pub fn check(password: &str, email: &str) -> Result<(), &'static str> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err("password must be at least 10 characters");
    }
    if chars > MAX_CHARS {
        return Err("password must be at most 128 characters");
    }
    if kem_kit::validate::check_text(password, kem_kit::validate::Text::line(MAX_CHARS)).is_err() {
        return Err("password must not contain control or invisible formatting characters");
    }
    let letters = password.chars().any(char::is_alphabetic);
    let digits = password.chars().any(|c| c.is_ascii_digit());
    let others = password.chars().any(|c| !c.is_alphanumeric());
    if [letters, digits, others].iter().filter(|kind| **kind).count() < 2 {
        return Err("password must mix at least two of: letters, digits, symbols");
    }
    let distinct: std::collections::HashSet<char> = password.chars().collect();
    if distinct.len() < 4 {
        return Err("password repeats too few different characters");
    }
    let lower = password.to_lowercase();
    if COMMON.contains(&lower.as_str()) {
        return Err("password is too common; choose another");
    }
    let local = email.split('@').next().unwrap_or_default();
    if local.chars().count() >= 4 && lower.contains(local) {
        return Err("password must not contain the email address");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasonable_passwords_pass() {
        for good in ["correct-horse-battery", "Str0ngPassw0rd", "우리가게 1호점 화이팅", "lunch2025!!", "9x!9x!9x!Za"]
        {
            assert_eq!(check(good, "owner@example.com"), Ok(()), "{good}");
        }
    }

    #[test]
    fn weak_passwords_are_refused_with_a_reason() {
        let cases = [
            ("short1!", "at least 10"),
            ("onlyletterslong", "two of"),
            ("12345678901", "two of"),
            ("aaaaaaaaaa1", "too few different"),
            ("Password123", "too common"),
            ("1q2w3e4r5t", "too common"),
            ("kimowner2025", "email"),
            ("tab\tinside12", "control"),
        ];
        for (password, reason) in cases {
            let error = check(password, "kimowner@example.com").expect_err(password);
            assert!(error.contains(reason), "{password}: {error}");
        }
        let longest = "ab1!".repeat(32);
        assert_eq!(check(&longest, "x@example.com"), Ok(()), "128 chars");
        assert!(check(&format!("{longest}x"), "x@example.com").expect_err("129 chars").contains("at most 128"));
    }
}
