//! Field violations: which request field is wrong and why, named as REST clients see it
//! (camelCase, dotted paths, e.g. `privacyConsent.granted`).

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// camelCase field path.
    pub field: String,
    /// What is wrong, for the participant or owner.
    pub description: String,
    /// Whether it concerns the privacy consent (ErrorInfo reason CONSENT_REQUIRED).
    pub consent: bool,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: &str, description: impl Into<String>) -> FieldViolation {
        FieldViolation { field: field.to_owned(), description: description.into(), consent: false }
    }

    /// A missing or refused privacy consent.
    pub fn consent(field: &str, description: impl Into<String>) -> FieldViolation {
        FieldViolation { consent: true, ..FieldViolation::new(field, description) }
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

    /// Whether one is about the privacy consent.
    pub fn concerns_consent(&self) -> bool {
        self.0.iter().any(|v| v.consent)
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
