//! What can be wrong with settings read from the environment, and the list of all of it.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// A variable as a message shows it: name, where the value came from, and the value itself —
/// quoted, or redacted when it is a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    var: String,
    /// The file the value was read from (`<var>_FILE`), if any.
    file: Option<PathBuf>,
    /// The value as shown: quoted, or redacted for a secret; `None` when unset.
    shown: Option<String>,
}

impl Setting {
    pub(crate) fn unset(var: &str) -> Setting {
        Setting { var: var.to_owned(), file: None, shown: None }
    }

    pub(crate) fn new(var: &str, value: &str, file: Option<PathBuf>, secret: bool) -> Setting {
        let shown = if secret { crate::Secret::new(value).redacted() } else { format!("{value:?}") };
        Setting { var: var.to_owned(), file, shown: Some(shown) }
    }

    /// The variable's name (without `_FILE`).
    pub fn var(&self) -> &str {
        &self.var
    }

    /// Whether the variable (or its `_FILE` form) was set.
    pub fn is_set(&self) -> bool {
        self.shown.is_some()
    }
}

impl fmt::Display for Setting {
    /// `NAME="value"`, `NAME=***`, `NAME_FILE="/path" (holding "value")` or `NAME (unset)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.shown, &self.file) {
            (None, _) => write!(f, "{} (unset)", self.var),
            (Some(shown), None) => write!(f, "{}={shown}", self.var),
            (Some(shown), Some(path)) => write!(f, "{}_FILE={:?} (holding {shown})", self.var, path.display()),
        }
    }
}

/// One thing wrong with the environment. Every message starts with the variable it is about.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Problem {
    /// The value does not parse or is out of range.
    #[error("{setting} is invalid: {reason}")]
    Invalid {
        /// The variable and its value (redacted for a secret).
        setting: Setting,
        /// Why, usually `expected …`.
        reason: String,
    },
    /// Both `NAME` and `NAME_FILE` are set, so which one is meant is unclear.
    #[error("{var} and {var}_FILE are both set: set only one (the _FILE form names a file holding the value)")]
    Conflict {
        /// The variable (without `_FILE`).
        var: String,
    },
    /// `NAME_FILE` names a file that cannot be read.
    #[error("{var}_FILE={path:?} cannot be read ({source}): fix the path or the mount, or unset {var}_FILE")]
    Unreadable {
        /// The variable (without `_FILE`).
        var: String,
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A variable that another one needs is not set.
    #[error("{var} is not set: {because}")]
    Missing {
        /// The variable that must be set.
        var: String,
        /// Why it is needed (which variable needs it).
        because: String,
    },
    /// Each value parses, but a rule over the settings is broken (a range, an order between two
    /// values).
    #[error("{setting}: {rule}")]
    Broken {
        /// The variable the rule is about, and its value (or `unset` when the default broke it).
        setting: Setting,
        /// The rule and the value that broke it.
        rule: String,
    },
}

impl Problem {
    /// The variable this problem is about.
    pub fn var(&self) -> &str {
        match self {
            Problem::Invalid { setting, .. } | Problem::Broken { setting, .. } => setting.var(),
            Problem::Conflict { var } | Problem::Unreadable { var, .. } | Problem::Missing { var, .. } => var,
        }
    }
}

/// Every problem found in the environment, in the order the variables were read; never empty.
///
/// Each [`Problem`] keeps its own cause (an unreadable file's I/O error); the list itself reports
/// no single `source`, since it has many.
#[derive(Debug, Clone)]
pub struct ConfigError {
    problems: Vec<Problem>,
}

impl ConfigError {
    /// The error of `problems`, or `None` when there are none.
    pub fn from_problems(problems: Vec<Problem>) -> Option<ConfigError> {
        (!problems.is_empty()).then_some(ConfigError { problems })
    }

    /// Every problem, in reading order.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// Whether every variable parsed and only rules over the values are broken — the settings are
    /// well-formed but inconsistent.
    pub fn only_rules_broken(&self) -> bool {
        self.problems.iter().all(|p| matches!(p, Problem::Broken { .. }))
    }
}

impl fmt::Display for ConfigError {
    /// The problems joined by `; `, so the message of a single problem starts with its variable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl From<Problem> for ConfigError {
    fn from(problem: Problem) -> Self {
        ConfigError { problems: vec![problem] }
    }
}
