//! Local stand-ins for external providers, used by `kem up` (and tests) when no credentials are
//! configured. Deterministic, offline, and labelled as such in every answer.

pub mod nts;
