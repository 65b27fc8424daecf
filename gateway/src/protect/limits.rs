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
    /// Participant entry: public, per event and IP against bulk bot entries.
    pub const ENTER_EVENT: &str = "POST /api/v1/events/{id}/participants";
    /// One-time codes (phone verification, entry lookup): public, and every one costs an SMS.
    pub const SEND_CODE: &str = "POST /api/v1/public/events/{id}/codes";
    /// Prize claims: public, per IP against claim-code guessing.
    pub const CLAIM_PRIZE: &str = "POST /api/v1/public/events/{id}/claims";
    /// Entry lookup by receipt code or phone and one-time code: public, per IP against guessing.
    pub const LOOKUP_ENTRY: &str = "POST /api/v1/public/events/{id}/entries:lookup";
    /// Entry withdrawal (phone and one-time code): public, per IP like the lookup.
    pub const WITHDRAW_ENTRY: &str = "POST /api/v1/public/events/{id}/entries:withdraw";
}

/// What a route's limit counts requests per.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKey {
    /// The client IP (for anonymous routes).
    ClientIp,
    /// The verified owner (JWT `sub`); anonymous callers of such a route are counted per IP.
    Owner,
    /// The event (the route's `event_id` path variable) and the client IP together: each event
    /// has its own budget per address, so one shop's busy Wi-Fi (or a bot hammering one event)
    /// never uses up another event's. Counted per IP alone when no usable event id is given.
    EventAndClientIp,
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
        const ROWS: [(&str, RouteLimit); 9] = [
            (route::LOGIN, row(30, MINUTE, 10, LimitKey::ClientIp)),
            (route::REFRESH, row(60, MINUTE, 20, LimitKey::ClientIp)),
            (route::REGISTER, row(20, HOUR, 5, LimitKey::ClientIp)),
            (route::VERIFY_BUSINESS_NUMBER, row(10, MINUTE, 5, LimitKey::ClientIp)),
            // Entries: a shop's customers enter one after another on its Wi-Fi (one address), and a
            // carrier's NAT puts thousands of phones behind a few addresses. 20 a minute per address
            // turned away a shop's 21st customer. Per event and address, 60 at once (a queue at the
            // counter scanning the QR code together) and then 2 a second (120 a minute) is more than
            // a till serves, and still caps a bot on one address at 120 entries a minute to an event
            // (one entry per phone per event is the service's rule; the per-address limit
            // `entry_rules.max_entries_per_address` is the owner's).
            (route::ENTER_EVENT, row(120, MINUTE, 60, LimitKey::EventAndClientIp)),
            // Codes cost an SMS each, so this is the strictest public route, and per address over all
            // events (a per-event key would let one address multiply its SMS budget by the number of
            // events). Not the 10 an hour first planned: on an event that verifies phones every
            // customer asks for a code, and 10 an hour would turn away a shop's 11th customer on its
            // Wi-Fi. 10 at once and 30 an hour serves a busy hour at one shop while capping SMS
            // pumping from one address at 30 an hour; the service stops bombing one number (one code
            // a minute, five a day per phone and event).
            (route::SEND_CODE, row(30, HOUR, 10, LimitKey::ClientIp)),
            // Claims and lookups check a code the caller must hold (claim codes have 40 bits,
            // receipts 50; one-time codes 5 tries each): per address, 10 at once and one every two
            // seconds makes guessing hopeless and never bothers a winner who mistypes.
            (route::CLAIM_PRIZE, row(30, MINUTE, 10, LimitKey::ClientIp)),
            (route::LOOKUP_ENTRY, row(30, MINUTE, 10, LimitKey::ClientIp)),
            (route::WITHDRAW_ENTRY, row(30, MINUTE, 10, LimitKey::ClientIp)),
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
    /// A client address for one event.
    EventIp(Box<str>, IpAddr),
}

/// Longest event id a limit key holds; a longer one (never a real id) is counted per IP alone, so
/// a client can neither grow the key map with huge ids nor escape its address's budget.
const MAX_EVENT_KEY: usize = 128;

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
        self.check_event(route, None, client, owner, now)
    }

    /// [`EdgeLimiter::check`] for a request about `event` (the route's `event_id` path
    /// variable): routes keyed [`LimitKey::EventAndClientIp`] count it per event and address.
    pub fn check_event(
        &self,
        route: &str,
        event: Option<&str>,
        client: IpAddr,
        owner: Option<&str>,
        now: Instant,
    ) -> Decision {
        let per_ip = self.per_ip.check(&client, now);
        if !per_ip.allowed {
            return per_ip;
        }
        let event = event.filter(|e| !e.is_empty() && e.len() <= MAX_EVENT_KEY);
        let subject = |key: LimitKey| match (key, owner, event) {
            (LimitKey::Owner, Some(owner), _) => Subject::Owner(owner.to_owned()),
            (LimitKey::EventAndClientIp, _, Some(event)) => Subject::EventIp(event.into(), client),
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
        assert_eq!(limits.routes[route::ENTER_EVENT].key, LimitKey::EventAndClientIp);
        assert_eq!((limits.per_ip.rate(), limits.per_ip.burst()), (100, 200));
        // Each code costs an SMS: the strictest public row, per address over all events.
        let codes = limits.routes[route::SEND_CODE];
        assert_eq!((codes.key, codes.limit.burst()), (LimitKey::ClientIp, 10));
        assert!(codes.limit.interval() > limits.routes[route::CLAIM_PRIZE].limit.interval());
    }

    #[test]
    fn every_row_names_a_route_of_the_contracts() {
        let table = crate::routes::RouteTable::from_pool(kem_proto::descriptor_pool()).expect("routes");
        for name in EdgeLimits::default().routes.keys() {
            assert!(table.routes().iter().any(|r| r.limit_name == *name), "no route is called {name}");
        }
    }

    #[test]
    fn the_21st_customer_on_a_shops_address_enters_and_each_event_has_its_own_budget() {
        let limiter = EdgeLimiter::new(&EdgeLimits::default());
        let t0 = Instant::now();
        let (shop, other) = (Some("event-shop"), Some("event-other"));
        // A lunch rush on one Wi-Fi: 40 customers in 30 seconds (the old 20 a minute refused the 21st).
        for n in 0..40 {
            let at = t0 + Duration::from_millis(750 * n);
            assert!(limiter.check_event(route::ENTER_EVENT, shop, ip(1), None, at).allowed, "customer {}", n + 1);
        }
        // A bot on another address takes the whole burst of the event at once...
        let mut denied = None;
        for _ in 0..200 {
            let d = limiter.check_event(route::ENTER_EVENT, shop, ip(2), None, t0);
            if !d.allowed {
                denied = Some(d);
                break;
            }
        }
        let denied = denied.expect("the bot is limited");
        assert_eq!((denied.limit, denied.retry_after), (60, Some(Duration::from_millis(500))));
        // ...and another event still has its own budget on that address; so has another address.
        assert!(limiter.check_event(route::ENTER_EVENT, other, ip(2), None, t0).allowed);
        assert!(limiter.check_event(route::ENTER_EVENT, shop, ip(3), None, t0).allowed);
        // Without a usable event id the request is counted per address alone.
        let huge = "e".repeat(MAX_EVENT_KEY + 1);
        assert!(limiter.check_event(route::ENTER_EVENT, Some(&huge), ip(4), None, t0).allowed);
        assert_eq!(limiter.check(route::ENTER_EVENT, ip(4), None, t0).remaining, 58, "the same key as no event");
    }

    #[test]
    fn codes_are_limited_per_address_over_all_events() {
        let limiter = EdgeLimiter::new(&EdgeLimits::default());
        let t0 = Instant::now();
        for n in 0..10 {
            let event = format!("event-{n}");
            assert!(limiter.check_event(route::SEND_CODE, Some(&event), ip(1), None, t0).allowed);
        }
        let denied = limiter.check_event(route::SEND_CODE, Some("event-new"), ip(1), None, t0);
        assert!(!denied.allowed, "another event is no new SMS budget");
        assert_eq!(denied.retry_after, Some(Duration::from_secs(120)));
        assert!(limiter.check_event(route::SEND_CODE, Some("event-0"), ip(2), None, t0).allowed);
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
