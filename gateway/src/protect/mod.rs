//! Edge protection: per-client and per-route rate limits, and finding the real client address.
//!
//! - [`limiter`]: a keyed, memory-bounded GCRA rate limiter with injected time;
//! - [`limits`]: the one table of edge limits (per client IP, per owner per route) and the
//!   [`EdgeLimiter`] that applies it;
//! - [`admission`]: adaptive concurrency limits per backend service, refusing overload with 503;
//! - [`headers`]: the `429` response and the `RateLimit-*` / `Retry-After` headers;
//! - [`client_ip`](mod@client_ip): the client address from the socket, or from `X-Forwarded-For` when (and only
//!   when) the peer is a trusted proxy (Azure Application Gateway).
//!
//! Wiring (done in the router): resolve the client IP, pick the route pattern name and the verified
//! owner (if any), call [`EdgeLimiter::check`] with `tokio::time::Instant::now()`, answer
//! [`too_many_requests`] when denied, else add [`rate_limit_headers`] to the response.

pub mod admission;
pub mod client_ip;
pub mod headers;
pub mod limiter;
pub mod limits;

pub use admission::EdgeAdmission;
pub use client_ip::{TrustedProxies, TrustedProxyError, client_ip};
pub use headers::{rate_limit_headers, too_many_requests};
pub use limiter::{Decision, RateLimit, RateLimitError, RateLimiter};
pub use limits::{EdgeLimiter, EdgeLimits, LimitKey, RouteLimit, Subject};
