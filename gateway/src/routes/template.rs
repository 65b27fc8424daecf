//! `google.api.http` path templates: parsing and matching.
//!
//! ```text
//! Template = "/" Segments [ Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! Verb     = ":" LITERAL ;
//! ```
//! A variable without `=` matches one segment. `**` matches the rest of the path. The custom verb
//! (`:publish`) is split off the last request segment before matching.

use std::borrow::Cow;
use std::fmt;

/// One element of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    /// `*`: exactly one segment.
    Any,
    /// `**`: zero or more segments (must be last).
    Rest,
    /// Start of a variable capturing the pieces up to the matching `End`.
    Start(String),
    End,
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    pieces: Vec<Piece>,
    verb: Option<String>,
    source: String,
}

/// Why a template is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path template {template:?}: {reason}")]
pub struct TemplateError {
    template: String,
    reason: &'static str,
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Values captured by a match: field path → (decoded) value.
pub type Captures = Vec<(String, String)>;

impl PathTemplate {
    /// Parses a template such as `/api/v1/events/{event_id}:publish`.
    pub fn parse(template: &str) -> Result<PathTemplate, TemplateError> {
        let fail = |reason| TemplateError { template: template.to_owned(), reason };
        let body = template.strip_prefix('/').ok_or_else(|| fail("must start with '/'"))?;
        // The verb is a ':' after the last '}' or '/' (a ':' inside a variable is not a verb).
        let last_structural = body.rfind(['}', '/']).map(|i| i + 1).unwrap_or(0);
        let (path, verb) = match body[last_structural..].find(':') {
            Some(i) => {
                let at = last_structural + i;
                (&body[..at], Some(body[at + 1..].to_owned()))
            }
            None => (body, None),
        };
        if verb.as_deref().is_some_and(str::is_empty) {
            return Err(fail("empty custom verb"));
        }
        let mut pieces = Vec::new();
        let mut chars = path;
        let mut in_variable = false;
        while !chars.is_empty() {
            if let Some(rest) = chars.strip_prefix('{') {
                if in_variable {
                    return Err(fail("nested variables"));
                }
                let end = rest.find(['}', '=']).ok_or_else(|| fail("unclosed variable"))?;
                let field = &rest[..end];
                if field.is_empty()
                    || !field
                        .split('.')
                        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                {
                    return Err(fail("variable names must be field paths"));
                }
                pieces.push(Piece::Start(field.to_owned()));
                if rest.as_bytes()[end] == b'}' {
                    pieces.push(Piece::Any);
                    pieces.push(Piece::End);
                    chars = &rest[end + 1..];
                } else {
                    in_variable = true;
                    chars = &rest[end + 1..];
                    continue;
                }
            } else if let Some(rest) = chars.strip_prefix('}') {
                if !in_variable {
                    return Err(fail("unbalanced '}'"));
                }
                in_variable = false;
                pieces.push(Piece::End);
                chars = rest;
            } else {
                let end = chars.find(['/', '}', '{']).unwrap_or(chars.len());
                let segment = &chars[..end];
                match segment {
                    "" => {}
                    "*" => pieces.push(Piece::Any),
                    "**" => pieces.push(Piece::Rest),
                    literal => pieces.push(Piece::Literal(literal.to_owned())),
                }
                chars = &chars[end..];
            }
            if let Some(rest) = chars.strip_prefix('/') {
                chars = rest;
            }
        }
        if in_variable {
            return Err(fail("unclosed variable"));
        }
        if let Some(i) = pieces.iter().position(|p| *p == Piece::Rest)
            && pieces[i + 1..].iter().any(|p| *p != Piece::End)
        {
            return Err(fail("'**' must be the last segment"));
        }
        Ok(PathTemplate { pieces, verb, source: template.to_owned() })
    }

    /// The custom verb, if any.
    pub fn verb(&self) -> Option<&str> {
        self.verb.as_deref()
    }

    /// Field paths of the variables, in order.
    pub fn variables(&self) -> Vec<&str> {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Start(f) => Some(f.as_str()),
                _ => None,
            })
            .collect()
    }

    /// How many path segments the template matches, or `None` when it ends in `**` (any count).
    pub fn fixed_segments(&self) -> Option<usize> {
        let mut count = 0;
        for piece in &self.pieces {
            match piece {
                Piece::Literal(_) | Piece::Any => count += 1,
                Piece::Rest => return None,
                Piece::Start(_) | Piece::End => {}
            }
        }
        Some(count)
    }

    /// How specific the template is (literal segments count most), to prefer `/users/me` over
    /// `/users/{id}` when both match.
    pub fn specificity(&self) -> usize {
        self.pieces.iter().filter(|p| matches!(p, Piece::Literal(_))).count() * 4
            + self.pieces.iter().filter(|p| matches!(p, Piece::Any)).count()
    }

    /// Matches already split, percent-decoded path `segments` with `verb`.
    pub fn matches(&self, segments: &[Cow<'_, str>], verb: Option<&str>) -> Option<Captures> {
        if self.verb.as_deref() != verb {
            return None;
        }
        let mut captures = Vec::new();
        let mut open: Option<(String, usize)> = None;
        let mut i = 0;
        for piece in &self.pieces {
            match piece {
                Piece::Literal(lit) => {
                    if segments.get(i)?.as_ref() != lit.as_str() {
                        return None;
                    }
                    i += 1;
                }
                Piece::Any => {
                    if segments.get(i)?.is_empty() {
                        return None;
                    }
                    i += 1;
                }
                Piece::Rest => i = segments.len(),
                Piece::Start(field) => open = Some((field.clone(), i)),
                Piece::End => {
                    let (field, start) = open.take()?;
                    captures.push((field, segments[start..i].join("/")));
                }
            }
        }
        (i == segments.len()).then_some(captures)
    }
}

/// A request path split for matching: percent-decoded segments and the custom verb.
pub type SplitPath<'a> = (Vec<Cow<'a, str>>, Option<Cow<'a, str>>);

/// Splits a request path into percent-decoded segments and the custom verb (`:publish` after
/// the last segment). Borrows from `path` unless a segment needs decoding.
pub fn split_path(path: &str) -> Option<SplitPath<'_>> {
    let path = path.strip_prefix('/')?;
    let last = path.rfind('/').map_or(0, |i| i + 1);
    let (path, verb) = match path[last..].find(':') {
        Some(i) => (&path[..last + i], Some(&path[last + i + 1..])),
        None => (path, None),
    };
    // A trailing slash leaves an empty last segment; templates never match it.
    let segments = path
        .split('/')
        .map(|raw| percent_encoding::percent_decode_str(raw).decode_utf8().ok())
        .collect::<Option<_>>()?;
    Some((segments, verb.map(|v| percent_encoding::percent_decode_str(v).decode_utf8_lossy())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(template: &str, path: &str) -> Option<Captures> {
        let (segments, verb) = split_path(path).expect("path");
        PathTemplate::parse(template).expect("template").matches(&segments, verb.as_deref())
    }

    #[test]
    fn literals_variables_and_verbs() {
        assert_eq!(m("/api/v1/events", "/api/v1/events"), Some(vec![]));
        assert_eq!(m("/api/v1/events/{event_id}", "/api/v1/events/e-1"), Some(vec![("event_id".into(), "e-1".into())]));
        assert_eq!(
            m("/api/v1/events/{event_id}:publish", "/api/v1/events/e-1:publish"),
            Some(vec![("event_id".into(), "e-1".into())])
        );
        assert_eq!(m("/api/v1/events/{event_id}:publish", "/api/v1/events/e-1:end"), None);
        assert_eq!(
            m("/api/v1/events/{event_id}", "/api/v1/events/e-1:publish"),
            None,
            "a verb never matches a verb-less template"
        );
        assert_eq!(m("/api/v1/users:register", "/api/v1/users:register"), Some(vec![]));
        assert_eq!(m("/api/v1/events/{event_id}", "/api/v1/events"), None);
        assert_eq!(m("/api/v1/events/{event_id}", "/api/v1/events/"), None);
    }

    #[test]
    fn multi_segment_variables_and_wildcards() {
        assert_eq!(
            m("/v1/{name=shelves/*/books/*}", "/v1/shelves/s1/books/b2"),
            Some(vec![("name".into(), "shelves/s1/books/b2".into())])
        );
        assert_eq!(m("/v1/{name=shelves/*/books/*}", "/v1/shelves/s1/books"), None);
        assert_eq!(m("/v1/files/{path=**}", "/v1/files/a/b/c.txt"), Some(vec![("path".into(), "a/b/c.txt".into())]));
        assert_eq!(m("/v1/{a.b}/x/*", "/v1/one/x/two"), Some(vec![("a.b".into(), "one".into())]));
    }

    #[test]
    fn verbs_split_off_the_last_segment_only() {
        let (segments, verb) = split_path("/api/v1/a:b/events/e-1:publish").expect("path");
        assert_eq!(segments, ["api", "v1", "a:b", "events", "e-1"]);
        assert_eq!(verb.as_deref(), Some("publish"));
        let (segments, verb) = split_path("/users:register").expect("path");
        assert_eq!((segments, verb.as_deref()), (vec![Cow::Borrowed("users")], Some("register")));
        assert!(split_path("no-leading-slash").is_none());
        assert!(split_path("/bad/%FF").is_none(), "not UTF-8 once decoded");
    }

    #[test]
    fn segments_are_percent_decoded() {
        assert_eq!(m("/v1/items/{id}", "/v1/items/a%20b"), Some(vec![("id".into(), "a b".into())]));
    }

    #[test]
    fn bad_templates_are_rejected() {
        for bad in ["api/v1", "/v1/{id", "/v1/{id=**}/x", "/v1/{}", "/v1/x:", "/v1/}"] {
            assert!(PathTemplate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fixed_segment_counts() {
        let count = |t: &str| PathTemplate::parse(t).expect("t").fixed_segments();
        assert_eq!(count("/api/v1/events/{event_id}:publish"), Some(4));
        assert_eq!(count("/v1/{name=shelves/*/books/*}"), Some(5));
        assert_eq!(count("/v1/files/{path=**}"), None);
    }

    #[test]
    fn specificity_prefers_literals() {
        let me = PathTemplate::parse("/api/v1/users/me").expect("t");
        let var = PathTemplate::parse("/api/v1/users/{id}").expect("t");
        assert!(me.specificity() > var.specificity());
    }
}
