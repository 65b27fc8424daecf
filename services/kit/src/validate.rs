//! Character, length and id-shape checks every service applies to caller input at its boundary,
//! before anything reaches a database, a cache key, a log line or a peer.
//!
//! Why one place: PostgreSQL refuses NUL in text (a request with one became a 500), line and
//! paragraph separators break line-oriented logs and inline scripts, and bidi controls make text
//! display differently from what it is ("Trojan Source" spoofing of names and titles). Each
//! service keeps its own rules (required fields, normalisation, business limits) and calls these
//! checks for the characters, the length in characters and the shape of ids.
//!
//! Descriptions never quote the value: a violation names the field and the first offending
//! character by code point and position. Messages that must mention caller input quote at most
//! [`EXCERPT_CHARS`] characters of it through [`excerpt`].
//!
//! ```
//! use kem_kit::validate::{self, IdShape, Text, Violations};
//!
//! let found = Violations::new()
//!     .text("event.title", "평일 점심\u{0}", Text::line(100))
//!     .id("eventId", "0b6f3a52-7c1e-4d8e-9a4f-2f1d5c6b7a80", IdShape::Uuid)
//!     .into_vec();
//! assert_eq!(found.len(), 1);
//! assert_eq!(found[0].field, "event.title");
//! assert!(validate::text("event.description", "첫 줄\n둘째 줄", Text::prose(2_000)).is_ok());
//! ```

use std::fmt;

/// How many characters of caller input a status message or log field may quote.
pub const EXCERPT_CHARS: usize = 32;

/// One invalid field: its path as the service names it (e.g. `event.title`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Field path, in the spelling the service's contract uses.
    pub field: String,
    /// What is wrong; never contains the value itself.
    pub description: String,
}

impl Violation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Violation {
        Violation { field: field.into(), description: description.into() }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// The rule of one text field: single line or prose, and its longest length in characters
/// (Unicode scalar values, so Korean text is not penalised for its UTF-8 width).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text {
    max_chars: usize,
    prose: bool,
}

impl Text {
    /// A single-line field (names, titles, phones, emails, regions): no control characters at all.
    pub const fn line(max_chars: usize) -> Text {
        Text { max_chars, prose: false }
    }

    /// A prose field (descriptions, copy, instructions): line feeds, tabs and CR LF pairs are
    /// allowed, every other control character is not.
    pub const fn prose(max_chars: usize) -> Text {
        Text { max_chars, prose: true }
    }

    /// The longest accepted length, in characters.
    pub const fn max_chars(self) -> usize {
        self.max_chars
    }
}

/// Why a text value was refused. The `Display` form is the violation's description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Longer than the field allows.
    #[error("must be at most {max} characters")]
    TooLong {
        /// The field's limit.
        max: usize,
    },
    /// A line break in a single-line field.
    #[error("must be a single line (line break U+{code:04X} at character {position})")]
    LineBreak {
        /// The code point.
        code: u32,
        /// 1-based character position.
        position: usize,
    },
    /// A control character (Unicode category Cc) the field does not allow.
    #[error("must not contain control characters (U+{code:04X} at character {position})")]
    Control {
        /// The code point.
        code: u32,
        /// 1-based character position.
        position: usize,
    },
    /// An invisible character that changes how text displays or splits: line/paragraph
    /// separators, bidi embeddings, overrides and isolates.
    #[error("must not contain invisible formatting characters (U+{code:04X} at character {position})")]
    Invisible {
        /// The code point.
        code: u32,
        /// 1-based character position.
        position: usize,
    },
}

/// Line and paragraph separators (break line-oriented logs and JavaScript string literals) and
/// the explicit bidi formatting characters (embeddings, overrides, isolates and the Arabic letter
/// mark): text containing them can render in an order other than the one it is stored in. Plain
/// marks (U+200E/U+200F) and joiners stay allowed: emoji sequences and some scripts need them.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{061C}')
}

/// Checks `value` against `rule`: every character first (NUL anywhere is refused whatever the
/// length), then the length.
pub fn check_text(value: &str, rule: Text) -> Result<(), TextError> {
    let mut chars = value.chars().peekable();
    let mut count = 0usize;
    while let Some(c) = chars.next() {
        count += 1;
        let (code, position) = (u32::from(c), count);
        if c.is_control() {
            let allowed = rule.prose && (matches!(c, '\n' | '\t') || (c == '\r' && chars.peek() == Some(&'\n')));
            if allowed {
                continue;
            }
            if matches!(c, '\n' | '\r') {
                return Err(TextError::LineBreak { code, position });
            }
            return Err(TextError::Control { code, position });
        }
        if is_invisible(c) {
            return Err(TextError::Invisible { code, position });
        }
    }
    if count > rule.max_chars {
        return Err(TextError::TooLong { max: rule.max_chars });
    }
    Ok(())
}

/// [`check_text`] as a violation of `field`.
pub fn text(field: &str, value: &str, rule: Text) -> Result<(), Violation> {
    check_text(value, rule).map_err(|e| Violation::new(field, e.to_string()))
}

/// The characters an id of [`IdShape::Key`] may contain besides ASCII letters and digits.
const KEY_PUNCTUATION: &[char] = &['-', '_', '.', ':'];
/// URL-safe base64 (RFC 4648 §5), what page tokens are written in.
fn is_base64url(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// The accepted shape of an id. Pick the shape of whoever mints the id: the service's own ids
/// are checked strictly; a reference to another service's resource is checked for the shape all
/// kem ids share, so a peer's id format can evolve without breaking its callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdShape {
    /// A UUID in canonical lower-case hyphenated form (`8-4-4-4-12` hex digits), what every kem
    /// service mints for its own resources.
    Uuid,
    /// An opaque key minted elsewhere: 1..=`max` ASCII letters, digits and `-_.:`, starting
    /// with a letter or digit (UUIDs, `rec-<hex>-1`, `<delivery id>:<time>`).
    Key {
        /// Longest accepted length.
        max: usize,
    },
    /// A token this service issued (page tokens): 1..=`max` URL-safe base64 characters.
    Token {
        /// Longest accepted length.
        max: usize,
    },
}

impl IdShape {
    /// Whether `value` has this shape (empty never does).
    pub fn matches(self, value: &str) -> bool {
        match self {
            IdShape::Uuid => {
                value.len() == 36
                    && value.bytes().enumerate().all(|(i, b)| match i {
                        8 | 13 | 18 | 23 => b == b'-',
                        _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
                    })
            }
            IdShape::Key { max } => {
                (1..=max).contains(&value.len())
                    && value.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && value.chars().all(|c| c.is_ascii_alphanumeric() || KEY_PUNCTUATION.contains(&c))
            }
            IdShape::Token { max } => (1..=max).contains(&value.len()) && value.chars().all(is_base64url),
        }
    }

    fn expectation(self) -> String {
        match self {
            IdShape::Uuid => "must be a lower-case UUID such as 0b6f3a52-7c1e-4d8e-9a4f-2f1d5c6b7a80".to_owned(),
            IdShape::Key { max } => {
                format!("must be an id of at most {max} ASCII letters, digits and - _ . : (as the service returned it)")
            }
            IdShape::Token { max } => {
                format!("must be a token as a previous response returned it (at most {max} URL-safe characters)")
            }
        }
    }
}

/// Checks that `value` is a non-empty id of `shape`; the description says which shape is
/// expected and never quotes the value.
pub fn id(field: &str, value: &str, shape: IdShape) -> Result<(), Violation> {
    if value.is_empty() {
        return Err(Violation::new(field, "is required"));
    }
    if shape.matches(value) { Ok(()) } else { Err(Violation::new(field, shape.expectation())) }
}

/// Collects every violation of one request, so a caller learns about all its problems at once.
/// Field paths are only allocated for violations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(Vec<Violation>);

impl Violations {
    /// None yet.
    pub fn new() -> Violations {
        Violations::default()
    }

    /// Records a violation.
    pub fn push(&mut self, violation: Violation) {
        self.0.push(violation);
    }

    /// Checks a text field ([`text`]).
    #[must_use]
    pub fn text(mut self, field: &str, value: &str, rule: Text) -> Self {
        if let Err(v) = text(field, value, rule) {
            self.0.push(v);
        }
        self
    }

    /// Checks a required id ([`id`]).
    #[must_use]
    pub fn id(mut self, field: &str, value: &str, shape: IdShape) -> Self {
        if let Err(v) = id(field, value, shape) {
            self.0.push(v);
        }
        self
    }

    /// Checks an id that may be left empty.
    #[must_use]
    pub fn optional_id(self, field: &str, value: &str, shape: IdShape) -> Self {
        if value.is_empty() { self } else { self.id(field, value, shape) }
    }

    /// Checks each id of a list; violations name `field[i]`. More than `max_items` ids is one
    /// violation of `field` (and the items are not looked at).
    #[must_use]
    pub fn ids(mut self, field: &str, values: &[String], shape: IdShape, max_items: usize) -> Self {
        if values.len() > max_items {
            self.0.push(Violation::new(field, format!("at most {max_items} ids per request")));
            return self;
        }
        for (i, value) in values.iter().enumerate() {
            if let Err(v) = id("", value, shape) {
                self.0.push(Violation::new(format!("{field}[{i}]"), v.description));
            }
        }
        self
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The violations, in the order they were found.
    pub fn into_vec(self) -> Vec<Violation> {
        self.0
    }

    /// `Ok(())` when nothing was recorded, else every violation.
    pub fn into_result(self) -> Result<(), Vec<Violation>> {
        if self.0.is_empty() { Ok(()) } else { Err(self.0) }
    }
}

impl IntoIterator for Violations {
    type Item = Violation;
    type IntoIter = std::vec::IntoIter<Violation>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// At most [`EXCERPT_CHARS`] characters of caller input, cut at a character boundary with `…`
/// when longer, control and invisible formatting characters escaped (`\u{0}`), for status
/// messages, `ErrorInfo` metadata and log fields that mention what the caller sent. A 16,000
/// character id in a trailer breaks HTTP/2 streams; an excerpt cannot.
pub fn excerpt(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(EXCERPT_CHARS * 4) + 3);
    for (i, c) in value.chars().enumerate() {
        if i == EXCERPT_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() || is_invisible(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const LINE: Text = Text::line(20);
    const PROSE: Text = Text::prose(20);

    #[test]
    fn ordinary_text_passes_and_lengths_count_characters() {
        assert_eq!(check_text("", LINE), Ok(()));
        assert_eq!(check_text("평일 점심 아메리카노 🎉", LINE), Ok(()));
        assert_eq!(check_text(&"가".repeat(20), LINE), Ok(()), "60 bytes, 20 characters");
        assert_eq!(check_text(&"가".repeat(21), LINE), Err(TextError::TooLong { max: 20 }));
        // Joiners and plain marks are text, not formatting tricks.
        assert_eq!(check_text("👩\u{200D}💻 \u{200E}a", LINE), Ok(()));
    }

    #[test]
    fn nul_and_other_controls_are_refused_with_their_position() {
        assert_eq!(check_text("ab\u{0}", LINE), Err(TextError::Control { code: 0, position: 3 }));
        assert_eq!(check_text("\u{7f}", PROSE), Err(TextError::Control { code: 0x7f, position: 1 }));
        assert_eq!(check_text("a\u{85}", PROSE), Err(TextError::Control { code: 0x85, position: 2 }));
        assert_eq!(check_text("\u{1b}[31m", PROSE), Err(TextError::Control { code: 0x1b, position: 1 }));
        // NUL is reported even when the value is also too long.
        let long = format!("{}\u{0}", "a".repeat(100));
        assert!(matches!(check_text(&long, LINE), Err(TextError::Control { code: 0, .. })));
    }

    #[test]
    fn line_breaks_and_tabs_only_in_prose() {
        assert_eq!(check_text("a\nb", LINE), Err(TextError::LineBreak { code: 0x0a, position: 2 }));
        assert_eq!(check_text("a\tb", LINE), Err(TextError::Control { code: 0x09, position: 2 }));
        assert_eq!(check_text("첫 줄\n\t둘째 줄\r\n셋째", PROSE), Ok(()));
        assert_eq!(check_text("a\rb", PROSE), Err(TextError::LineBreak { code: 0x0d, position: 2 }), "lone CR");
        assert_eq!(check_text("a\r", PROSE), Err(TextError::LineBreak { code: 0x0d, position: 2 }));
    }

    #[test]
    fn separators_and_bidi_controls_are_refused_everywhere() {
        for c in ['\u{2028}', '\u{2029}', '\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}', '\u{061C}'] {
            let value = format!("ok{c}");
            let expected = Err(TextError::Invisible { code: u32::from(c), position: 3 });
            assert_eq!(check_text(&value, LINE), expected, "{:?}", c);
            assert_eq!(check_text(&value, PROSE), expected, "{:?}", c);
        }
    }

    #[test]
    fn descriptions_name_the_code_point_not_the_value() {
        let v = text("event.title", "secret\u{0}", LINE).expect_err("NUL");
        assert_eq!(v.field, "event.title");
        assert_eq!(v.description, "must not contain control characters (U+0000 at character 7)");
        assert!(!v.description.contains("secret"));
    }

    #[test]
    fn uuids_are_canonical_lower_case() {
        assert!(IdShape::Uuid.matches("0b6f3a52-7c1e-4d8e-9a4f-2f1d5c6b7a80"));
        for bad in [
            "",
            "0B6F3A52-7C1E-4D8E-9A4F-2F1D5C6B7A80",
            "0b6f3a52-7c1e-4d8e-9a4f-2f1d5c6b7a8",
            "0b6f3a527c1e4d8e9a4f2f1d5c6b7a80",
            "0b6f3a52-7c1e-4d8e-9a4f-2f1d5c6b7a8g",
            "0b6f3a52_7c1e-4d8e-9a4f-2f1d5c6b7a80",
            "0b6f3a52-7c1e-4d8e-9a4f-2f1d5c6b7a80\u{0}",
            "가b6f3a52-7c1e-4d8e-9a4f-2f1d5c6b7a",
        ] {
            assert!(!IdShape::Uuid.matches(bad), "{bad:?}");
        }
    }

    #[test]
    fn keys_and_tokens_bound_length_and_charset() {
        let key = IdShape::Key { max: 16 };
        for good in ["rec-abc123-1", "evt-wire", "a.b:c_d", "0b6f3a52"] {
            assert!(key.matches(good), "{good}");
        }
        for bad in ["", "-leading", "a b", "a/b", "%00", "a\u{0}", "키", &"a".repeat(17)] {
            assert!(!key.matches(bad), "{bad:?}");
        }
        let token = IdShape::Token { max: 8 };
        assert!(token.matches("AQID-_x9"));
        for bad in ["", "a+b", "a=", "a.b", &"A".repeat(9)] {
            assert!(!token.matches(bad), "{bad:?}");
        }
    }

    #[test]
    fn id_violations_never_quote_the_value() {
        let huge = "x".repeat(16_000);
        let v = id("eventId", &huge, IdShape::Uuid).expect_err("not a UUID");
        assert_eq!(v.field, "eventId");
        assert!(v.description.len() < 120, "{}", v.description);
        assert_eq!(id("jobId", "", IdShape::Uuid).expect_err("empty").description, "is required");
    }

    #[test]
    fn violations_collect_in_order_with_indexed_list_paths() {
        let violations = Violations::new()
            .text("name", "ok", LINE)
            .text("title", "a\u{0}", LINE)
            .id("eventId", "nope", IdShape::Uuid)
            .optional_id("pageToken", "", IdShape::Token { max: 8 })
            .ids("eventIds", &["a".into(), "b c".into()], IdShape::Key { max: 8 }, 10);
        let fields: Vec<String> = violations.clone().into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["title", "eventId", "eventIds[1]"]);
        let many = Violations::new().ids("eventIds", &vec!["a".to_owned(); 3], IdShape::Key { max: 8 }, 2);
        assert_eq!(many.into_result().expect_err("too many")[0].field, "eventIds");
        assert_eq!(Violations::new().into_result(), Ok(()));
    }

    #[test]
    fn excerpts_are_short_escaped_and_cut_at_char_boundaries() {
        assert_eq!(excerpt("abc"), "abc");
        assert_eq!(excerpt(&"가".repeat(EXCERPT_CHARS)), "가".repeat(EXCERPT_CHARS));
        assert_eq!(excerpt(&"가".repeat(EXCERPT_CHARS + 1)), format!("{}…", "가".repeat(EXCERPT_CHARS)));
        assert_eq!(excerpt("a\u{0}\u{202E}b"), "a\\u{0}\\u{202e}b");
        assert!(excerpt(&"\u{0}".repeat(16_000)).len() < 300);
    }

    /// Code points the validator refuses in a prose field, whatever surrounds them.
    fn refused_in_prose() -> impl Strategy<Value = char> {
        prop_oneof![
            (0u32..0x20).prop_filter("prose allows LF and tab", |c| *c != 0x0a && *c != 0x09),
            0x7fu32..0xa0,
            Just(0x2028u32),
            Just(0x2029),
            0x202au32..=0x202e,
            0x2066u32..=0x2069,
        ]
        .prop_filter_map("a scalar value", char::from_u32)
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics(value in any::<String>(), max in 0usize..64) {
            let _ = check_text(&value, Text::line(max));
            let _ = check_text(&value, Text::prose(max));
            for shape in [IdShape::Uuid, IdShape::Key { max }, IdShape::Token { max }] {
                let _ = id("f", &value, shape);
            }
            prop_assert!(excerpt(&value).chars().count() <= EXCERPT_CHARS * 10 + 1);
        }

        #[test]
        fn a_refused_control_character_anywhere_is_refused(
            before in any::<String>(),
            after in any::<String>(),
            bad in refused_in_prose(),
        ) {
            // A CR right before an LF is the one allowed CR; keep `bad` from forming that pair.
            let after = if bad == '\r' { after.trim_start_matches('\n').to_owned() } else { after };
            let value = format!("{before}{bad}{after}");
            prop_assert!(check_text(&value, Text::prose(usize::MAX)).is_err());
            prop_assert!(check_text(&value, Text::line(usize::MAX)).is_err());
        }

        #[test]
        fn any_control_character_is_refused_in_a_line(
            before in any::<String>(),
            after in any::<String>(),
            bad in prop_oneof![0u32..0x20, 0x7fu32..0xa0].prop_filter_map("scalar", char::from_u32),
        ) {
            let value = format!("{before}{bad}{after}");
            prop_assert!(check_text(&value, Text::line(usize::MAX)).is_err());
        }

        #[test]
        fn accepted_text_has_only_allowed_characters(value in any::<String>()) {
            if check_text(&value, Text::prose(usize::MAX)).is_ok() {
                let mut chars = value.chars().peekable();
                while let Some(c) = chars.next() {
                    let crlf = c == '\r' && chars.peek() == Some(&'\n');
                    prop_assert!(!c.is_control() || c == '\n' || c == '\t' || crlf);
                    prop_assert!(!is_invisible(c));
                }
            }
        }
    }
}
