//! The edge's rate limits in one table, and the limiter that applies them.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::limiter::{DEFAULT_MAX_KEYS, Decision, RateLimit, RateLimiter};

/// Route pattern names with their own limits: `METHOD path-template`, as in DESIGN.md's REST table.
pub mod route {
    /// Login: anonymous, per IP, against credential stuffing (the user service also locks accounts).
    pub const LOGIN: &str = "POST /api/v1/auth:login";
    /// Refresh: carries no access token, so per IP.
    pub const REFRESH: &str = "POST /api/v1/auth:refresh";
    /// Sign-up: anonymous and calls the National Tax Service, so per IP and strict.
    pub const REGISTER: &str = "POST /api/v1/users:register";
    /// Business-number check: anonymous, each cache miss costs an NTS call; the strictest.
    pub const VERIFY_BUSINESS_NUMBER: &str = "POST /api/v1/business-numbers:verify";
    /// Participant entry: public, per IP against bulk bot entries.
    pub const ENTER_EVENT: &str = "POST /api/v1/events/{id}/participants";
}

/// What a route's limit counts requests per.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKey {
    /// The client IP (for anonymous routes).
    ClientIp,
    /// The verified owner (JWT `sub`); anonymous callers of such a route are counted per IP.
    Owner,
}

/// One row of the table: a limit and what it counts per.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteLimit {
    /// The rate.
    pub limit: RateLimit,
    /// Counted per client IP or per owner.
    pub key: LimitKey,
}

/// Every edge rate limit: one per-client-IP limit over all routes, then one limit per route
/// (from [`EdgeLimits::routes`] by route pattern name, else [`EdgeLimits::default_route`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeLimits {
    /// Applied to every request, per client IP.
    pub per_ip: RateLimit,
    /// Applied per owner per route for routes not in [`EdgeLimits::routes`].
    pub default_route: RouteLimit,
    /// Route pattern name (see [`route`]) → its limit.
    pub routes: BTreeMap<String, RouteLimit>,
    /// Keys each limiter holds at most.
    pub max_keys: usize,
}

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(60 * 60);

impl Default for EdgeLimits {
    /// The production defaults. Korean mobile carriers put many users behind one address (CGNAT)
    /// and a store's customers often share its Wi-Fi, so per-IP limits are generous except where a
    /// request costs an external call; per-account abuse is the services' job (login lockout,
    /// one entry per phone per event).
    fn default() -> Self {
        const fn row(rate: u32, per: Duration, burst: u32, key: LimitKey) -> RouteLimit {
            RouteLimit { limit: RateLimit::checked(rate, per, burst), key }
        }
        const ROWS: [(&str, RouteLimit); 5] = [
            (route::LOGIN, row(30, MINUTE, 10, LimitKey::ClientIp)),
            (route::REFRESH, row(60, MINUTE, 20, LimitKey::ClientIp)),
            (route::REGISTER, row(20, HOUR, 5, LimitKey::ClientIp)),
            (route::VERIFY_BUSINESS_NUMBER, row(10, MINUTE, 5, LimitKey::ClientIp)),
            (route::ENTER_EVENT, row(20, MINUTE, 20, LimitKey::ClientIp)),
        ];
        const PER_IP: RateLimit = RateLimit::checked(100, SECOND, 200);
        const DEFAULT_ROUTE: RouteLimit = row(20, SECOND, 40, LimitKey::Owner);
        Self {
            per_ip: PER_IP,
            default_route: DEFAULT_ROUTE,
            routes: ROWS.into_iter().map(|(name, limit)| (name.to_owned(), limit)).collect(),
            max_keys: DEFAULT_MAX_KEYS,
        }
    }
}

/// Who a route limit counts a request against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A verified owner id.
    Owner(String),
    /// A client address.
    Ip(IpAddr),
}

/// Applies [`EdgeLimits`]: one limiter per client IP, one per listed route, one shared by the rest.
#[derive(Debug)]
pub struct EdgeLimiter {
    per_ip: RateLimiter<IpAddr>,
    /// Routes not listed share one limiter, keyed by route name too so each route has its own quota.
    default_route: (LimitKey, RateLimiter<(String, Subject)>),
    routes: HashMap<String, (LimitKey, RateLimiter<Subject>)>,
}

impl EdgeLimiter {
    /// Limiters for `limits`.
    pub fn new(limits: &EdgeLimits) -> Self {
        let max_keys = limits.max_keys;
        Self {
            per_ip: RateLimiter::with_max_keys(limits.per_ip, max_keys),
            default_route: (limits.default_route.key, RateLimiter::with_max_keys(limits.default_route.limit, max_keys)),
            routes: limits
                .routes
                .iter()
                .map(|(name, row)| (name.clone(), (row.key, RateLimiter::with_max_keys(row.limit, max_keys))))
                .collect(),
        }
    }

    /// Counts one request to `route` (a route pattern name) from `client` by `owner` (the verified
    /// JWT subject, if any) at `now`; the decision to act on and to report in the headers.
    ///
    /// The per-IP limit is checked first; a request it denies does not count against the route.
    pub fn check(&self, route: &str, client: IpAddr, owner: Option<&str>, now: Instant) -> Decision {
        let per_ip = self.per_ip.check(&client, now);
        if !per_ip.allowed {
            return per_ip;
        }
        let subject = |key: LimitKey| match (key, owner) {
            (LimitKey::Owner, Some(owner)) => Subject::Owner(owner.to_owned()),
            _ => Subject::Ip(client),
        };
        let per_route = match self.routes.get(route) {
            Some((key, limiter)) => limiter.check(&subject(*key), now),
            None => {
                let (key, limiter) = &self.default_route;
                limiter.check(&(route.to_owned(), subject(*key)), now)
            }
        };
        per_ip.most_restrictive(per_route)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([203, 0, 113, last])
    }

    #[test]
    fn defaults_make_public_costly_routes_stricter_than_the_rest() {
        let limits = EdgeLimits::default();
        let verify = limits.routes[route::VERIFY_BUSINESS_NUMBER];
        assert_eq!(verify.key, LimitKey::ClientIp);
        assert!(verify.limit.interval() > limits.default_route.limit.interval());
        assert!(verify.limit.burst() < limits.default_route.limit.burst());
        assert_eq!(limits.routes[route::ENTER_EVENT].key, LimitKey::ClientIp);
        assert_eq!((limits.per_ip.rate(), limits.per_ip.burst()), (100, 200));
    }

    #[test]
    fn business_number_verification_is_limited_per_ip() {
        let limiter = EdgeLimiter::new(&EdgeLimits::default());
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(limiter.check(route::VERIFY_BUSINESS_NUMBER, ip(1), None, t0).allowed);
        }
        let denied = limiter.check(route::VERIFY_BUSINESS_NUMBER, ip(1), None, t0);
        assert!(!denied.allowed);
        assert_eq!(denied.retry_after, Some(Duration::from_secs(6)));
        assert!(limiter.check(route::VERIFY_BUSINESS_NUMBER, ip(2), None, t0).allowed, "another client");
        assert!(limiter.check("GET /api/v1/trends", ip(1), Some("o1"), t0).allowed, "another route");
    }

    #[test]
    fn owner_routes_count_per_owner_per_route() {
        let mut limits = EdgeLimits::default();
        limits.default_route.limit = RateLimit::per_minute(1, 1).expect("limit");
        let limiter = EdgeLimiter::new(&limits);
        let t0 = Instant::now();
        assert!(limiter.check("GET /api/v1/events", ip(1), Some("owner-1"), t0).allowed);
        assert!(!limiter.check("GET /api/v1/events", ip(2), Some("owner-1"), t0).allowed, "same owner, new IP");
        assert!(limiter.check("GET /api/v1/events", ip(1), Some("owner-2"), t0).allowed, "same IP, other owner");
        assert!(limiter.check("GET /api/v1/jobs/{id}", ip(1), Some("owner-1"), t0).allowed, "other route");
        assert!(limiter.check("GET /api/v1/events", ip(3), None, t0).allowed, "anonymous: per IP");
        assert!(!limiter.check("GET /api/v1/events", ip(3), None, t0).allowed);
    }

    #[test]
    fn the_per_ip_limit_applies_across_routes_and_is_reported_when_tighter() {
        let limits = EdgeLimits { per_ip: RateLimit::per_second(1, 3).expect("limit"), ..EdgeLimits::default() };
        let limiter = EdgeLimiter::new(&limits);
        let t0 = Instant::now();
        let first = limiter.check("GET /api/v1/events", ip(1), Some("o"), t0);
        assert_eq!((first.limit, first.remaining), (3, 2), "the per-IP quota is the tighter one");
        assert!(limiter.check("GET /api/v1/users/me", ip(1), Some("o"), t0).allowed);
        assert!(limiter.check("GET /api/v1/trends", ip(1), Some("o"), t0).allowed);
        assert!(!limiter.check("GET /api/v1/jobs/{id}", ip(1), Some("o"), t0).allowed);
    }
}
