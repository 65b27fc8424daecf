//! The one way kem reads settings from the environment: a [`Source`] of variables, a [`Reader`]
//! that applies typed [`parse`]rs and the `_FILE` convention, and a [`ConfigError`] that lists
//! every bad variable at once (linkerd's `parse_config`), so an operator fixes them in one go.
//!
//! Every variable `NAME` may instead be given as `NAME_FILE`, the path of a file holding the value
//! (how Kubernetes hands over secrets mounted from Key Vault by the CSI driver). The two are
//! mutually exclusive; a file that cannot be read is a problem, not a silent fallback. Values are
//! trimmed and a blank value counts as unset. Secret values never appear in a message: they are
//! redacted the way [`Secret`](crate::Secret) redacts them.
//!
//! A settings reader takes `&mut Reader`, asks for each variable, keeps its default when a
//! variable is unset or bad, and leaves the verdict to the caller's [`Reader::finish`]. Readers of
//! several components can therefore share one `Reader`, and a process reports every bad variable
//! of all of them together.
//!
//! ```
//! use std::time::Duration;
//! use kem_kit::config::{Parse, Reader, parse};
//!
//! let vars = [("KEM_DEMO_TIMEOUT", "250ms"), ("KEM_DEMO_WORKERS", "0"), ("KEM_DEMO_MODE", "fast")];
//! let mut env = Reader::new(&vars);
//! let timeout = env.get("KEM_DEMO_TIMEOUT", parse::duration()).unwrap_or(Duration::from_secs(5));
//! let workers = env.get("KEM_DEMO_WORKERS", parse::number::<u32>().within(1, 64)).unwrap_or(4);
//! let mode = env.get("KEM_DEMO_MODE", parse::one_of([("safe", 0), ("quick", 1)])).unwrap_or(0);
//! assert_eq!((timeout, workers, mode), (Duration::from_millis(250), 4, 0));
//!
//! let error = env.finish().expect_err("two bad variables");
//! assert_eq!(error.problems().len(), 2);
//! assert!(error.to_string().starts_with("KEM_DEMO_WORKERS=\"0\" is invalid"));
//! ```

mod error;
pub mod parse;
mod reader;

pub use error::{ConfigError, Problem, Setting};
pub use parse::Parse;
pub use reader::{Given, GivenFile, Reader};

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash};

/// Runs a settings reader over `source`: what `read` built when nothing was wrong, else every
/// problem it found. The usual body of a component's `from_env` / `from_lookup`.
pub fn read_from<T, S: Source>(source: &S, read: impl FnOnce(&mut Reader<'_>) -> T) -> Result<T, ConfigError> {
    let mut env = Reader::new(source);
    let value = read(&mut env);
    env.finish().map(|()| value)
}

/// Where variables come from: the process environment in production, a map or a closure in tests
/// (so no test mutates the process environment, which every thread shares).
pub trait Source {
    /// The raw value of `name`, `None` when unset.
    fn var(&self, name: &str) -> Option<String>;
}

/// The environment of this process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Source for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        // A value that is not UTF-8 cannot be any setting kem understands; it reads as unset, as
        // it always did.
        std::env::var(name).ok()
    }
}

impl<F: Fn(&str) -> Option<String>> Source for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

impl<K: std::borrow::Borrow<str> + Hash + Eq, V: AsRef<str>, S: BuildHasher> Source for HashMap<K, V, S> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| v.as_ref().to_owned())
    }
}

impl<K: std::borrow::Borrow<str> + Ord, V: AsRef<str>> Source for BTreeMap<K, V> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| v.as_ref().to_owned())
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> Source for [(K, V); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter().find(|(k, _)| k.as_ref() == name).map(|(_, v)| v.as_ref().to_owned())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Source for Vec<(K, V)> {
    fn var(&self, name: &str) -> Option<String> {
        self.iter().find(|(k, _)| k.as_ref() == name).map(|(_, v)| v.as_ref().to_owned())
    }
}

#[cfg(test)]
mod tests;
