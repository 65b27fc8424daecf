//! Field violations: which request field is wrong and why, named as REST clients see it
//! (camelCase, dotted paths, e.g. `privacyConsent.granted`).

/// What a violation is about when the contract gives it a reason of its own (the ErrorInfo reason
/// of the whole INVALID_ARGUMENT). Declared in precedence order: when one request has several,
/// the first one here names the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Concern {
    /// The privacy consent is missing or refused (reason CONSENT_REQUIRED).
    Consent,
    /// The participant did not confirm being 14 or older (reason AGE_CONFIRMATION_REQUIRED).
    Age,
    /// The privacy consent names terms that are not the event's (reason TERMS_OUTDATED).
    TermsOutdated,
}

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// camelCase field path.
    pub field: String,
    /// What is wrong, for the participant or owner.
    pub description: String,
    /// What it is about, when the contract names a reason for it.
    pub concern: Option<Concern>,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: &str, description: impl Into<String>) -> FieldViolation {
        FieldViolation { field: field.to_owned(), description: description.into(), concern: None }
    }

    /// A missing or refused privacy consent.
    pub fn consent(field: &str, description: impl Into<String>) -> FieldViolation {
        FieldViolation { concern: Some(Concern::Consent), ..FieldViolation::new(field, description) }
    }

    /// A missing confirmation of the participant's age.
    pub fn age(field: &str, description: impl Into<String>) -> FieldViolation {
        FieldViolation { concern: Some(Concern::Age), ..FieldViolation::new(field, description) }
    }

    /// A consent to terms the event no longer (or never) showed.
    pub fn terms_outdated(field: &str, description: impl Into<String>) -> FieldViolation {
        FieldViolation { concern: Some(Concern::TermsOutdated), ..FieldViolation::new(field, description) }
    }
}

/// The violations of one request, in field order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// Records one.
    pub fn push(&mut self, violation: FieldViolation) {
        self.0.push(violation);
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The violations in order.
    pub fn iter(&self) -> impl Iterator<Item = &FieldViolation> {
        self.0.iter()
    }

    /// What the violations are about, by [`Concern`] precedence; `None` when no violation has a
    /// reason of its own.
    pub fn concern(&self) -> Option<Concern> {
        self.0.iter().filter_map(|v| v.concern).min()
    }

    /// `Err(self)` when anything was recorded.
    pub fn into_result(self) -> Result<(), Violations> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl From<FieldViolation> for Violations {
    fn from(violation: FieldViolation) -> Self {
        Violations(vec![violation])
    }
}

impl IntoIterator for Violations {
    type Item = FieldViolation;
    type IntoIter = std::vec::IntoIter<FieldViolation>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
