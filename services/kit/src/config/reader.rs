//! [`Reader`]: variables from a [`Source`], through the `_FILE` convention and a parser, with
//! every problem kept until [`Reader::finish`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::Source;
use super::error::{ConfigError, Problem, Setting};
use super::parse::{self, Parse};
use crate::Secret;

/// Reads typed settings from a [`Source`] and collects every problem instead of stopping at the
/// first.
///
/// A getter returns `None` both when the variable is unset and when it is bad; in the second case
/// a [`Problem`] is recorded, so a caller simply keeps its default and [`finish`](Self::finish)
/// fails at the end, listing every bad variable with its value (redacted for secrets) and what is
/// expected. Each variable is looked up once: reading it again gives the same answer and never
/// reports the same problem twice.
pub struct Reader<'a> {
    source: &'a dyn Source,
    problems: Vec<Problem>,
    /// The variables found set, in reading order, one entry each.
    set: Vec<Setting>,
    /// What each variable looked up so far resolved to (after `_FILE`).
    resolved: HashMap<String, Option<Raw>>,
}

#[derive(Debug, Clone)]
struct Raw {
    text: String,
    file: Option<PathBuf>,
}

/// `NAME` and `NAME_FILE` as given, before the `_FILE` convention judges them (see
/// [`Reader::given`]).
#[derive(Debug, Default)]
pub struct Given {
    /// `NAME` (trimmed), when set and not blank.
    pub value: Option<String>,
    /// `NAME_FILE`, when set and not blank.
    pub file: Option<GivenFile>,
}

/// The file `NAME_FILE` names, and what reading it gave.
#[derive(Debug)]
pub struct GivenFile {
    /// The file.
    pub path: PathBuf,
    /// Its contents (trimmed), or why they cannot be read.
    pub contents: Result<String, Arc<std::io::Error>>,
}

impl<'a> Reader<'a> {
    /// A reader of `source` with no problem found yet.
    pub fn new<S: Source>(source: &'a S) -> Reader<'a> {
        Reader { source, problems: Vec::new(), set: Vec::new(), resolved: HashMap::new() }
    }

    /// `name` parsed by `parser`; `None` when unset or bad (then a problem is recorded).
    pub fn get<P: Parse>(&mut self, name: &str, parser: P) -> Option<P::Output> {
        self.read(name, &parser, false)
    }

    /// Like [`get`](Self::get) for a secret: the value is redacted in every message and listing.
    pub fn get_secret<P: Parse>(&mut self, name: &str, parser: P) -> Option<P::Output> {
        self.read(name, &parser, true)
    }

    /// A secret as text (a key, a token, a URL with credentials).
    pub fn secret(&mut self, name: &str) -> Option<Secret> {
        self.get_secret(name, parse::text()).map(Secret::new)
    }

    /// Like [`get`](Self::get), and records that `name` is missing when it is unset, `because`
    /// saying which setting needs it.
    pub fn require<P: Parse>(&mut self, name: &str, parser: P, because: &str) -> Option<P::Output> {
        let value = self.get(name, parser);
        if value.is_none() {
            self.missing(name, because);
        }
        value
    }

    /// `name` and `name_FILE` as given, with no verdict: both may be set and an unreadable file
    /// is not a problem. Only for a pair whose documented meaning differs from the convention —
    /// such as a key whose file is also a setting of its own, read again by its component, which
    /// reports an unreadable file itself. Judge the value chosen with
    /// [`check_secret`](Self::check_secret).
    pub fn given(&mut self, name: &str) -> Given {
        let var = |name: &str| self.source.var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let value = var(name);
        let file = var(&format!("{name}_FILE")).map(|path| {
            let path = PathBuf::from(path);
            let contents = std::fs::read_to_string(&path).map(|c| c.trim().to_owned()).map_err(Arc::new);
            GivenFile { path, contents }
        });
        Given { value, file }
    }

    /// Parses `text`, the secret value of `name` a component obtained through
    /// [`given`](Self::given) (read from `file`, if so), recording a problem — value redacted —
    /// when `parser` refuses it.
    pub fn check_secret<P: Parse>(
        &mut self,
        name: &str,
        text: &str,
        file: Option<PathBuf>,
        parser: P,
    ) -> Option<P::Output> {
        self.parse_noted(Setting::new(name, text, file, true), text, &parser)
    }

    /// Records that `name`'s value (as read, or its default when unset) breaks `rule`, e.g.
    /// `"job_timeout must be at least 1s, got 10ms"`.
    pub fn broken(&mut self, name: &str, rule: impl Into<String>) {
        let setting = self.set.iter().find(|s| s.var() == name).cloned().unwrap_or_else(|| Setting::unset(name));
        self.record(Problem::Broken { setting, rule: rule.into() });
    }

    /// Records that `name` must be set, `because` saying which setting needs it — unless `name`
    /// already has a problem (set, but bad), which says more.
    pub fn missing(&mut self, name: &str, because: impl Into<String>) {
        if self.problems.iter().any(|p| p.var() == name) {
            return;
        }
        self.record(Problem::Missing { var: name.to_owned(), because: because.into() });
    }

    /// The problems found so far.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// The variables found set so far, in reading order (secrets redacted when shown): what the
    /// settings read from this source actually depend on.
    pub fn set_variables(&self) -> &[Setting] {
        &self.set
    }

    /// `Ok` when nothing was wrong, else every problem at once.
    pub fn finish(self) -> Result<(), ConfigError> {
        match ConfigError::from_problems(self.problems) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn read<P: Parse>(&mut self, name: &str, parser: &P, secret: bool) -> Option<P::Output> {
        let raw = self.resolve(name)?;
        self.parse_noted(Setting::new(name, &raw.text, raw.file, secret), &raw.text, parser)
    }

    fn parse_noted<P: Parse>(&mut self, setting: Setting, text: &str, parser: &P) -> Option<P::Output> {
        self.note(setting.clone());
        match parser.parse(text) {
            Ok(value) => Some(value),
            Err(reason) => {
                self.record(Problem::Invalid { setting, reason });
                None
            }
        }
    }

    /// `name` after the `_FILE` convention, once per variable: `NAME` and `NAME_FILE` are
    /// mutually exclusive, the file must be readable, and an empty file reads as unset.
    fn resolve(&mut self, name: &str) -> Option<Raw> {
        if let Some(resolved) = self.resolved.get(name) {
            return resolved.clone();
        }
        let raw = match self.given(name) {
            Given { value: None, file: None } => None,
            Given { value: Some(text), file: None } => Some(Raw { text, file: None }),
            Given { value: None, file: Some(GivenFile { path, contents: Ok(text) }) } => {
                (!text.is_empty()).then_some(Raw { text, file: Some(path) })
            }
            Given { value: None, file: Some(GivenFile { path, contents: Err(source) }) } => {
                self.record(Problem::Unreadable { var: name.to_owned(), path, source });
                None
            }
            Given { value: Some(_), file: Some(_) } => {
                self.record(Problem::Conflict { var: name.to_owned() });
                None
            }
        };
        self.resolved.insert(name.to_owned(), raw.clone());
        raw
    }

    fn note(&mut self, setting: Setting) {
        if !self.set.iter().any(|s| s.var() == setting.var()) {
            self.set.push(setting);
        }
    }

    fn record(&mut self, problem: Problem) {
        let message = problem.to_string();
        if !self.problems.iter().any(|p| p.to_string() == message) {
            self.problems.push(problem);
        }
    }
}

impl std::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").field("problems", &self.problems).field("set", &self.set).finish_non_exhaustive()
    }
}
