//! A configuration value that must never reach a log line in clear.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A secret string (password, token, key, or a URL with credentials in it).
///
/// `Debug` and `Display` redact it: URLs keep scheme, host, port and path so an operator can
/// still see *where* a connection goes; anything else prints as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The clear value, for the one place that needs it (a connection, a signature).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The redacted form used by `Debug` and `Display`.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }
}

fn redact(value: &str) -> String {
    // `scheme://user:password@host:port/path?query` → `scheme://***@host:port/path`
    if let Some((scheme, rest)) = value.split_once("://") {
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        return match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => format!("{scheme}://{rest}"),
        };
    }
    "***".to_owned()
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.redacted())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_their_destination_but_lose_credentials_and_query() {
        let s = Secret::new("postgres://kem:hunter2@db.internal:5432/user?sslmode=require&password=x");
        assert_eq!(s.to_string(), "postgres://***@db.internal:5432/user");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(Secret::new("redis://127.0.0.1:6379").to_string(), "redis://127.0.0.1:6379");
    }

    #[test]
    fn plain_secrets_are_fully_hidden() {
        let s = Secret::new("sk-ant-very-secret");
        assert_eq!(s.to_string(), "***");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.expose(), "sk-ant-very-secret");
    }

    #[test]
    fn deserializes_from_a_plain_string() {
        let s: Secret = serde_json::from_str("\"p@ss\"").expect("json string");
        assert_eq!(s.expose(), "p@ss");
    }
}
