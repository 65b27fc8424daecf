//! The guestbook's settings, read with the kit's reader ([`kem_kit::config`]): every bad
//! variable is reported at once, and each may be given as `<NAME>_FILE` instead.

use kem_kit::config::{self, ConfigError, Parse, ProcessEnv, Reader, parse};

/// Environment variables [`GuestbookConfig::from_env`] reads.
pub mod env {
    /// Longest message, in characters (default 500, 1 to 10000).
    pub const MAX_MESSAGE_CHARS: &str = "KEM_GUESTBOOK_MAX_MESSAGE_CHARS";
}

/// Everything [`Guestbook::start`](crate::Guestbook) needs besides the platform context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestbookConfig {
    /// Longest accepted message, in characters (Unicode scalar values, not bytes).
    pub max_message_chars: usize,
}

impl Default for GuestbookConfig {
    fn default() -> Self {
        GuestbookConfig { max_message_chars: 500 }
    }
}

impl GuestbookConfig {
    /// Settings from the process environment; anything unset keeps its [`Default`].
    pub fn from_env() -> Result<GuestbookConfig, ConfigError> {
        config::read_from(&ProcessEnv, GuestbookConfig::read)
    }

    /// Like [`from_env`](Self::from_env) with variables from `lookup` (tests never touch the
    /// process environment, which every thread shares).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<GuestbookConfig, ConfigError> {
        config::read_from(&lookup, GuestbookConfig::read)
    }

    /// Reads the [`env`](mod@env) variables from `vars`, keeping the default for a bad one and
    /// leaving the verdict to the caller's `finish`, so a process that reads several services'
    /// settings reports all their problems together.
    pub fn read(vars: &mut Reader<'_>) -> GuestbookConfig {
        let mut config = GuestbookConfig::default();
        if let Some(max) = vars.get(env::MAX_MESSAGE_CHARS, parse::number::<usize>().within(1, 10_000)) {
            config.max_message_chars = max;
        }
        config
    }
}

/// The guestbook calls no external provider.
impl kem_kit::external::StandIns for GuestbookConfig {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_keeps_the_default_and_bad_values_are_reported() {
        assert_eq!(GuestbookConfig::from_lookup(|_| None).ok(), Some(GuestbookConfig::default()));
        let set = GuestbookConfig::from_lookup(|name| (name == env::MAX_MESSAGE_CHARS).then(|| "80".to_owned()));
        assert_eq!(set.ok().map(|c| c.max_message_chars), Some(80));
        for bad in ["0", "10001", "many"] {
            let error = GuestbookConfig::from_lookup(|_| Some(bad.to_owned())).expect_err(bad);
            assert!(error.to_string().contains(env::MAX_MESSAGE_CHARS), "{error}");
        }
    }
}
