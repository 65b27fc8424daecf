//! Production never fakes: which built-in local stand-ins a service's settings would use, and
//! whether this process may use them.
//!
//! Every provider has a local stand-in so `kem up` runs on one machine with nothing configured.
//! In a production process that is a silent lie (a "PUBLISHED" Instagram post that went nowhere,
//! an SMS nobody received), so a process decides once, by how it was started, whether stand-ins
//! are allowed: `kem up` allows them (and every answer made by one is labelled local);
//! `kem serve` and `kem gateway` refuse to start a service whose settings still use one, naming
//! each stand-in and the variables that replace it, unless `KEM_ALLOW_LOCAL_PROVIDERS=1` says a
//! labelled demo deployment is intended.

use std::fmt;

/// The variable that lets `kem serve` / `kem gateway` start services on their local stand-ins.
pub const ALLOW_LOCAL_PROVIDERS: &str = "KEM_ALLOW_LOCAL_PROVIDERS";

/// One built-in local stand-in a service's settings select.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandIn {
    /// What is stood in for, e.g. "Instagram (local:instagram-graph)".
    pub what: String,
    /// The variables that put the real provider in its place (the credential first).
    pub variables: Vec<String>,
}

impl StandIn {
    /// A stand-in for `what`, replaced by setting `variables`.
    pub fn new(what: impl Into<String>, variables: impl IntoIterator<Item = impl Into<String>>) -> StandIn {
        StandIn { what: what.into(), variables: variables.into_iter().map(Into::into).collect() }
    }
}

impl fmt::Display for StandIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (set {})", self.what, self.variables.join(", "))
    }
}

/// Settings that can tell which local stand-ins they select. Settings of a service without
/// external providers implement it with the default (none).
pub trait StandIns {
    /// The stand-ins these settings would run on.
    fn stand_ins(&self) -> Vec<StandIn> {
        Vec::new()
    }
}

/// Whether a process may run services on local stand-ins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProviderPolicy {
    /// Stand-ins are allowed and labelled (`kem up`, tests, `KEM_ALLOW_LOCAL_PROVIDERS=1`).
    #[default]
    AllowLocal,
    /// Every provider must be real: a service on a stand-in does not start.
    RequireReal,
}

/// Why a service may not start under [`ProviderPolicy::RequireReal`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the {service} service would run on built-in local stand-ins, which a production process refuses: {}; \
     configure them, or set {ALLOW_LOCAL_PROVIDERS}=1 for a labelled demo deployment",
    .stand_ins.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
)]
pub struct StandInsRefused {
    /// The service.
    pub service: String,
    /// Every stand-in its settings select.
    pub stand_ins: Vec<StandIn>,
}

impl ProviderPolicy {
    /// The policy of `kem serve` / `kem gateway`: real providers unless the variable's value
    /// (`1`/`true`/`yes`, any case) allows stand-ins.
    pub fn for_production(allow_local: Option<&str>) -> ProviderPolicy {
        match allow_local.map(|v| v.trim().to_ascii_lowercase()) {
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes") => ProviderPolicy::AllowLocal,
            _ => ProviderPolicy::RequireReal,
        }
    }

    /// Checks `service`'s settings against the policy.
    pub fn check(self, service: &str, settings: &impl StandIns) -> Result<(), StandInsRefused> {
        let stand_ins = settings.stand_ins();
        if self == ProviderPolicy::RequireReal && !stand_ins.is_empty() {
            return Err(StandInsRefused { service: service.to_owned(), stand_ins });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Settings(Vec<StandIn>);
    impl StandIns for Settings {
        fn stand_ins(&self) -> Vec<StandIn> {
            self.0.clone()
        }
    }

    #[test]
    fn production_refuses_every_stand_in_by_name_and_variables() {
        let settings = Settings(vec![
            StandIn::new("Instagram (local:instagram-graph)", ["KEM_INSTAGRAM_APP_SECRET", "KEM_INSTAGRAM_APP_ID"]),
            StandIn::new("SMS (local:sens)", ["KEM_SENS_SECRET_KEY"]),
        ]);
        let refused = ProviderPolicy::RequireReal.check("distribution", &settings).expect_err("stand-ins");
        let text = refused.to_string();
        for named in [
            "distribution",
            "Instagram",
            "KEM_INSTAGRAM_APP_SECRET",
            "KEM_INSTAGRAM_APP_ID",
            "SMS",
            ALLOW_LOCAL_PROVIDERS,
        ] {
            assert!(text.contains(named), "{named} in {text}");
        }
        assert!(ProviderPolicy::AllowLocal.check("distribution", &settings).is_ok());
        assert!(ProviderPolicy::RequireReal.check("analytics", &Settings(Vec::new())).is_ok());
    }

    #[test]
    fn only_an_explicit_yes_allows_stand_ins_in_production() {
        for yes in ["1", "true", "TRUE", " yes "] {
            assert_eq!(ProviderPolicy::for_production(Some(yes)), ProviderPolicy::AllowLocal, "{yes}");
        }
        for no in [None, Some(""), Some("0"), Some("false"), Some("perhaps")] {
            assert_eq!(ProviderPolicy::for_production(no), ProviderPolicy::RequireReal, "{no:?}");
        }
    }
}
