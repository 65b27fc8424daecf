//! End-user access tokens: ES256 JWS compact tokens (RFC 7515/7519) and opaque refresh tokens.
//!
//! The user service holds an [`Issuer`] (a current [`SigningKey`] plus the public halves of
//! rotated-out keys) and publishes its [`Jwks`] at `/.well-known/jwks.json`; the gateway holds a
//! [`Verifier`] built from that JWKS and checks every access token at the edge.
//!
//! Design choices, and why:
//! - **One algorithm, fixed by the verifier.** Only ES256 (ECDSA P-256 / SHA-256, `ring`) is
//!   accepted. The token's `alg` header is *checked*, never *used* to pick an algorithm, so
//!   `alg: none` and the HS256-with-the-public-key confusion attack cannot work. Header fields that
//!   point at keys (`jku`, `jwk`, `x5u`, `x5c`) are ignored: keys come only from the configured JWKS.
//! - **`kid` is mandatory.** Rotation keeps several keys valid at once; the `kid` says which one
//!   signed, and an unknown `kid` is reported as such ([`JwtError::UnknownKid`]) so the gateway can
//!   refresh its JWKS before rejecting.
//! - **Refresh tokens are not JWTs**: they are random, opaque, and stored only as a SHA-256 hash
//!   ([`refresh_token`]), so they can be revoked and rotated server-side.
//!
//! Time is passed in (`now: SystemTime`) so expiry and rotation are testable without sleeping;
//! [`Issuer::issue`] and [`Verifier::verify_now`] are the conveniences that read the system clock.

mod claims;
mod error;
mod issuer;
mod key;
mod refresh;
mod verifier;

#[cfg(test)]
mod tests;

pub use claims::{Audience, Claims, MAX_NUMERIC_DATE, REGISTERED_CLAIMS};
pub use error::{IssueError, JwtError, KeyError};
pub use issuer::{DEFAULT_ACCESS_TTL, Issuer, PreviousKey};
pub use key::{Jwk, Jwks, SigningKey};
pub use refresh::{refresh_token, refresh_token_hash};
pub use verifier::{DEFAULT_LEEWAY, Verifier};

/// The only JWS algorithm kem signs and accepts.
pub const ALGORITHM: &str = "ES256";

/// `now + wait` without the panic of `SystemTime + Duration` on overflow: a wait too long for the
/// clock ends at the latest time a token may name ([`MAX_NUMERIC_DATE`]), which is "never" for
/// every practical purpose.
pub fn later(now: std::time::SystemTime, wait: std::time::Duration) -> std::time::SystemTime {
    now.checked_add(wait).or_else(|| claims::numeric_date(MAX_NUMERIC_DATE)).unwrap_or(now)
}

/// Seconds since the Unix epoch (a JWT `NumericDate`); times before 1970 count as 0.
pub(crate) fn unix_seconds(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Base64url without padding, the JWS encoding; decoding is strict (no padding, no stray bits).
pub(crate) mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    pub(crate) fn encode(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub(crate) fn decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
        URL_SAFE_NO_PAD.decode(text)
    }
}
