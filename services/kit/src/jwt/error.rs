//! Why a token, a key or a key set was refused.

/// Why [`Verifier::verify`](super::Verifier::verify) rejected an access token.
///
/// Every variant maps to HTTP 401 at the edge; they are distinct so logs and metrics say which
/// check failed, and so the gateway can react to [`JwtError::UnknownKid`] by refreshing its JWKS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not a JWS compact token: wrong number of parts, bad base64url, bad JSON, missing claims.
    #[error("malformed token: {reason}")]
    Malformed {
        /// What was wrong with it.
        reason: String,
    },
    /// The header names an algorithm other than ES256 (`none`, `HS256`, `RS256`, …).
    #[error("token algorithm `{alg}` is not accepted (only ES256 is)")]
    UnsupportedAlgorithm {
        /// The `alg` the token claimed.
        alg: String,
    },
    /// The header has no `kid`, so the signing key cannot be chosen.
    #[error("token header has no `kid`; cannot tell which key signed it")]
    MissingKid,
    /// The `kid` is not in the verifier's key set (rotated in after the last JWKS refresh, or forged).
    #[error("token signed with unknown key id `{kid}` (JWKS may need a refresh)")]
    UnknownKid {
        /// The `kid` the token claimed.
        kid: String,
    },
    /// The signature does not verify with the named key: forged or tampered with.
    #[error("token signature does not verify with key `{kid}`")]
    BadSignature {
        /// The key that was tried.
        kid: String,
    },
    /// `exp + leeway < now`.
    #[error("token expired at {exp} (now {now}, Unix seconds)")]
    Expired {
        /// The token's `exp`.
        exp: u64,
        /// The verifier's clock.
        now: u64,
    },
    /// `nbf - leeway > now`.
    #[error("token not valid before {nbf} (now {now}, Unix seconds)")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: u64,
        /// The verifier's clock.
        now: u64,
    },
    /// `iat - leeway > now`: the token claims to be minted in the future.
    #[error("token issued at {iat}, after now ({now}, Unix seconds)")]
    IssuedInFuture {
        /// The token's `iat`.
        iat: u64,
        /// The verifier's clock.
        now: u64,
    },
    /// A time claim is not a plausible `NumericDate`: later than year 9999
    /// ([`MAX_NUMERIC_DATE`](super::MAX_NUMERIC_DATE)), or `exp` before `iat`. (Negative,
    /// fractional and out-of-`u64` values never parse and are [`JwtError::Malformed`].)
    #[error("token claim `{claim}` = {value} is out of range: {reason}")]
    ClaimOutOfRange {
        /// `exp`, `nbf` or `iat`.
        claim: &'static str,
        /// Its value.
        value: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The `iss` is not the configured issuer.
    #[error("token issuer `{found}` is not the expected `{expected}`")]
    WrongIssuer {
        /// The issuer this verifier trusts.
        expected: String,
        /// The token's `iss`.
        found: String,
    },
    /// The `aud` (string or array) does not contain the configured audience.
    #[error("token audience {found:?} does not include `{expected}`")]
    WrongAudience {
        /// The audience this verifier serves.
        expected: String,
        /// The token's `aud` values.
        found: Vec<String>,
    },
}

impl JwtError {
    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        JwtError::Malformed { reason: reason.into() }
    }
}

/// Why a signing key, a JWK or a JWKS could not be created, loaded or parsed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The system random source failed while generating a key pair.
    #[error("could not generate an ES256 key pair: the system random source failed")]
    Generate,
    /// The DER is not a PKCS#8 P-256 ECDSA private key that ring accepts.
    #[error("PKCS#8 document is not a usable P-256 ECDSA private key: {reason}")]
    Rejected {
        /// ring's description of the problem.
        reason: String,
    },
    /// The PEM text holds no `-----BEGIN PRIVATE KEY-----` (PKCS#8) block.
    #[error("PEM is not a PKCS#8 `PRIVATE KEY` block: {reason}")]
    Pem {
        /// The PEM parser's description of the problem.
        reason: String,
    },
    /// A JWK is not an EC P-256 ES256 signature key.
    #[error("JWK `{kid}` is not an ES256 P-256 signature key: {reason}")]
    InvalidJwk {
        /// The JWK's `kid`.
        kid: String,
        /// Which field is wrong.
        reason: &'static str,
    },
    /// Two keys of one JWKS share a `kid`, so tokens could not say which one signed them.
    #[error("JWKS has key id `{kid}` more than once")]
    DuplicateKid {
        /// The repeated `kid`.
        kid: String,
    },
    /// The JWKS document is not valid JSON of the `{"keys":[...]}` shape.
    #[error("JWKS document is not valid JSON of the form {{\"keys\":[...]}}: {0}")]
    Json(#[from] serde_json::Error),
}

/// Why [`Issuer::issue`](super::Issuer::issue) could not mint a token.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// An extra claim used a registered name (`iss`, `sub`, `exp`, …) the issuer sets itself.
    #[error("extra claim `{name}` would override a registered claim the issuer sets")]
    ReservedClaim {
        /// The offending claim name.
        name: String,
    },
    /// ECDSA signing failed (the system random source failed).
    #[error("signing with key `{kid}` failed: the system random source failed")]
    Sign {
        /// The current key's `kid`.
        kid: String,
    },
    /// The header or claims could not be encoded as JSON.
    #[error("token could not be encoded as JSON: {0}")]
    Encode(#[from] serde_json::Error),
}
