//! Participants' names: validated on entry, shown to owners masked (`김*수`).

/// Longest accepted name, in characters.
pub const MAX_NAME_CHARS: usize = 50;

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty or only spaces.
    #[error("name is required")]
    Missing,
    /// Longer than [`MAX_NAME_CHARS`].
    #[error("name must be at most 50 characters")]
    TooLong,
    /// Control characters (line breaks, NUL, …) have no place in a name.
    #[error("name must not contain control characters")]
    ControlCharacters,
}

/// The name as it is stored: trimmed, 1-50 characters, no control characters.
pub fn normalize_name(input: &str) -> Result<String, NameError> {
    let name = input.trim();
    if name.is_empty() {
        return Err(NameError::Missing);
    }
    if name.chars().any(char::is_control) {
        return Err(NameError::ControlCharacters);
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(NameError::TooLong);
    }
    Ok(name.to_owned())
}

/// First and last character kept, the others starred: `김민수` → `김*수`, `김수` → `김*`,
/// `남궁민수` → `남**수`; a single character becomes `*`. Spaces are masked like letters, so
/// the shape of a name does not leak its parts.
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    match chars.as_slice() {
        [] => String::new(),
        [_] => "*".to_owned(),
        [first, _] => format!("{first}*"),
        [first, middle @ .., last] => format!("{first}{}{last}", "*".repeat(middle.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(normalize_name("  김민수 "), Ok("김민수".to_owned()));
        assert_eq!(normalize_name(""), Err(NameError::Missing));
        assert_eq!(normalize_name(" \t "), Err(NameError::Missing));
        assert_eq!(normalize_name("김\n민수"), Err(NameError::ControlCharacters));
        assert_eq!(normalize_name(&"가".repeat(50)).map(|n| n.chars().count()), Ok(50));
        assert_eq!(normalize_name(&"가".repeat(51)), Err(NameError::TooLong));
    }

    #[test]
    fn masks_keep_the_first_and_last_character() {
        assert_eq!(mask_name("김민수"), "김*수");
        assert_eq!(mask_name("김수"), "김*");
        assert_eq!(mask_name("남궁민수"), "남**수");
        assert_eq!(mask_name("김"), "*");
        assert_eq!(mask_name("John Smith"), "J********h");
        assert_eq!(mask_name(""), "");
    }
}
