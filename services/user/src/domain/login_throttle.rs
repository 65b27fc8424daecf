//! Sign-in throttling that an attacker cannot turn against the owner (OWASP Authentication Cheat
//! Sheet, "Login Throttling" / "Account Lockout").
//!
//! Two counters, both kept per normalized email (known or not, so throttling says nothing about
//! which accounts exist):
//!
//! - **per (account, client address)**: `address_max_failures` failures within `address_window`
//!   lock that pair for `address_lockout`. Failures from one address never lock the account for
//!   any other address.
//! - **per account, across addresses**: after `account_free_failures` failures (none of them more
//!   than `account_quiet` apart) every further attempt must wait a delay that doubles from
//!   `account_base_delay` up to `account_max_delay`. An attempt inside the delay is refused at
//!   once (RESOURCE_EXHAUSTED with the remaining wait), never by sleeping. Addresses the owner
//!   signed in from successfully within `known_address_ttl` skip this delay, so a distributed
//!   guessing campaign slows the attackers, not the owner at their usual places.
//!
//! An admitted attempt is counted as a failure *before* the password is checked (and un-counted
//! when it succeeds): that is what makes the limits exact under concurrency — of 20 parallel
//! wrong passwords from one address exactly `address_max_failures` are ever checked.
//!
//! Times are epoch milliseconds (the repository's representation); all arithmetic saturates.

use std::net::IpAddr;
use std::time::Duration;

/// The throttle's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginThrottle {
    /// Failures from one address within `address_window` that lock that (account, address) pair.
    pub address_max_failures: u32,
    /// The window the per-address failures are counted in (from the first failure).
    pub address_window: Duration,
    /// How long a locked (account, address) pair stays locked.
    pub address_lockout: Duration,
    /// Failures across all addresses before the per-account delay starts.
    pub account_free_failures: u32,
    /// The first per-account delay; each further failure doubles it.
    pub account_base_delay: Duration,
    /// The longest per-account delay.
    pub account_max_delay: Duration,
    /// The per-account count restarts after this long without a failure.
    pub account_quiet: Duration,
    /// How long an address stays "known" (exempt from the per-account delay) after a successful
    /// sign-in from it; zero disables the exemption.
    pub known_address_ttl: Duration,
}

impl Default for LoginThrottle {
    /// 5 failures per address and 15 minutes lock the pair for 15 minutes; from the 10th failure
    /// across addresses, delays of 1 s, 2 s, 4 s … up to 60 s; known addresses for 30 days.
    fn default() -> Self {
        LoginThrottle {
            address_max_failures: 5,
            address_window: Duration::from_secs(15 * 60),
            address_lockout: Duration::from_secs(15 * 60),
            account_free_failures: 10,
            account_base_delay: Duration::from_secs(1),
            account_max_delay: Duration::from_secs(60),
            account_quiet: Duration::from_secs(15 * 60),
            known_address_ttl: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// The per-(account, address) counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddressCounter {
    /// Failed (or in-flight) attempts in the current window.
    pub failures: u32,
    /// When the current window started (0: no window).
    pub window_start_ms: i64,
    /// Attempts are refused until then (0: not locked).
    pub locked_until_ms: i64,
    /// The last successful sign-in from this address (0: never).
    pub last_success_ms: i64,
}

/// The per-account counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountCounter {
    /// Failed (or in-flight) attempts since the account was last quiet for `account_quiet`.
    pub failures: u32,
    /// The last counted attempt (0: none).
    pub last_failure_ms: i64,
    /// Attempts from addresses that are not known are refused until then (0: no delay).
    pub next_attempt_ms: i64,
}

/// Which limit refused an attempt (for logs and metrics; the client sees the same answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The (account, address) pair is locked.
    Address,
    /// The account's progressive delay has not passed.
    Account,
}

/// What to do with a sign-in attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Check the password; store these counters first (the attempt counted as a failure).
    Admit {
        /// The new per-address counter.
        address: AddressCounter,
        /// The new per-account counter.
        account: AccountCounter,
    },
    /// Refuse without checking the password; nothing changes.
    Refuse {
        /// How long until an attempt can be admitted (at least 1 ms).
        wait: Duration,
        /// Which limit.
        limit: Limit,
    },
}

/// Decides an attempt at `now_ms` given the current counters.
pub fn admit(policy: &LoginThrottle, address: AddressCounter, account: AccountCounter, now_ms: i64) -> Admission {
    if address.locked_until_ms > now_ms {
        return Admission::Refuse { wait: wait_until(address.locked_until_ms, now_ms), limit: Limit::Address };
    }
    if account.next_attempt_ms > now_ms && !is_known(policy, &address, now_ms) {
        return Admission::Refuse { wait: wait_until(account.next_attempt_ms, now_ms), limit: Limit::Account };
    }

    // An expired lock or window starts a fresh count.
    let fresh = address.failures == 0
        || address.locked_until_ms != 0
        || address.window_start_ms.saturating_add(ms(policy.address_window)) <= now_ms;
    let mut next_address = address;
    if fresh {
        next_address.failures = 1;
        next_address.window_start_ms = now_ms;
        next_address.locked_until_ms = 0;
    } else {
        next_address.failures = address.failures.saturating_add(1);
    }
    if next_address.failures >= policy.address_max_failures {
        next_address.locked_until_ms = now_ms.saturating_add(ms(policy.address_lockout));
    }

    let quiet = account.last_failure_ms.saturating_add(ms(policy.account_quiet)) <= now_ms;
    let failures = if quiet { 1 } else { account.failures.saturating_add(1) };
    let next_account = AccountCounter {
        failures,
        last_failure_ms: now_ms,
        next_attempt_ms: match account_delay(policy, failures) {
            Some(delay) => now_ms.saturating_add(ms(delay)),
            None => 0,
        },
    };
    Admission::Admit { address: next_address, account: next_account }
}

/// The counters after an admitted attempt succeeded: the pair's count is reset and the address
/// becomes known; the attempt no longer counts against the account (earlier failures still do —
/// a success of the owner must not give a distributed attacker a fresh budget).
pub fn succeeded(policy: &LoginThrottle, account: AccountCounter, now_ms: i64) -> (AddressCounter, AccountCounter) {
    let address = AddressCounter { failures: 0, window_start_ms: 0, locked_until_ms: 0, last_success_ms: now_ms };
    let failures = account.failures.saturating_sub(1);
    let next_attempt_ms = if account_delay(policy, failures).is_some() { account.next_attempt_ms } else { 0 };
    (address, AccountCounter { failures, next_attempt_ms, ..account })
}

/// The wait imposed after the `failures`-th failure of an account, if any: none below
/// `account_free_failures`, then `base · 2^(failures − free)`, at most `account_max_delay`.
pub fn account_delay(policy: &LoginThrottle, failures: u32) -> Option<Duration> {
    if policy.account_free_failures == 0 || failures < policy.account_free_failures {
        return None;
    }
    let doublings = failures - policy.account_free_failures;
    let factor = 1u32.checked_shl(doublings).unwrap_or(u32::MAX);
    Some(policy.account_base_delay.saturating_mul(factor).min(policy.account_max_delay))
}

fn is_known(policy: &LoginThrottle, address: &AddressCounter, now_ms: i64) -> bool {
    address.last_success_ms > 0 && address.last_success_ms.saturating_add(ms(policy.known_address_ttl)) > now_ms
}

/// The key counters of `client` are kept under: the IPv4 address, or the /64 network of an IPv6
/// address (one subscriber usually holds a whole /64, so single v6 addresses would cost an
/// attacker nothing to rotate). `-` when the address is unknown (a caller that is not the edge).
pub fn client_key(client: Option<IpAddr>) -> String {
    match client.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => "-".to_owned(),
    }
}

fn wait_until(until_ms: i64, now_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(until_ms.saturating_sub(now_ms)).unwrap_or(0).max(1))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> LoginThrottle {
        LoginThrottle {
            address_max_failures: 3,
            address_window: Duration::from_secs(60),
            address_lockout: Duration::from_secs(30),
            account_free_failures: 5,
            account_base_delay: Duration::from_secs(1),
            account_max_delay: Duration::from_secs(8),
            account_quiet: Duration::from_secs(60),
            known_address_ttl: Duration::from_secs(3600),
        }
    }

    fn admitted(a: Admission) -> (AddressCounter, AccountCounter) {
        match a {
            Admission::Admit { address, account } => (address, account),
            Admission::Refuse { .. } => panic!("expected admission, got {a:?}"),
        }
    }

    #[test]
    fn the_nth_failure_locks_the_pair_and_the_lock_expires() {
        let p = policy();
        let (mut address, mut account) = (AddressCounter::default(), AccountCounter::default());
        for i in 0..3 {
            (address, account) = admitted(admit(&p, address, account, 1_000 + i));
        }
        assert_eq!(address.locked_until_ms, 1_002 + 30_000, "the 3rd attempt locks");
        assert_eq!(
            admit(&p, address, account, 2_000),
            Admission::Refuse { wait: Duration::from_millis(29_002), limit: Limit::Address }
        );
        let (after, _) = admitted(admit(&p, address, account, 31_002));
        assert_eq!((after.failures, after.locked_until_ms), (1, 0), "a fresh count after the lock");
    }

    #[test]
    fn the_window_restarts_the_count() {
        let p = policy();
        let (address, account) = admitted(admit(&p, AddressCounter::default(), AccountCounter::default(), 0));
        let (address, account) = admitted(admit(&p, address, account, 1));
        let (address, _) = admitted(admit(&p, address, account, 60_000));
        assert_eq!((address.failures, address.window_start_ms), (1, 60_000));
    }

    #[test]
    fn account_delays_double_up_to_the_bound() {
        let p = policy();
        let delays: Vec<_> = (1..=10).map(|n| account_delay(&p, n).map(|d| d.as_secs())).collect();
        assert_eq!(delays, [None, None, None, None, Some(1), Some(2), Some(4), Some(8), Some(8), Some(8)]);
        assert_eq!(account_delay(&p, u32::MAX), Some(Duration::from_secs(8)), "no overflow");
    }

    #[test]
    fn the_account_delay_refuses_unknown_addresses_but_not_known_ones() {
        let p = policy();
        let account = AccountCounter { failures: 7, last_failure_ms: 10_000, next_attempt_ms: 14_000 };
        let stranger = AddressCounter::default();
        assert_eq!(
            admit(&p, stranger, account, 11_000),
            Admission::Refuse { wait: Duration::from_secs(3), limit: Limit::Account }
        );
        let home = AddressCounter { last_success_ms: 5_000, ..AddressCounter::default() };
        let (_, next) = admitted(admit(&p, home, account, 11_000));
        assert_eq!(next.failures, 8);
        // Known no longer: the last success is older than `known_address_ttl`.
        let later = 5_000 + 3_600_000;
        let still_delayed = AccountCounter { next_attempt_ms: later + 3_000, ..account };
        assert!(matches!(admit(&p, home, still_delayed, later), Admission::Refuse { limit: Limit::Account, .. }));
        // After the wait, the next failure doubles the delay.
        let (_, next) = admitted(admit(&p, stranger, account, 14_000));
        assert_eq!(next.next_attempt_ms, 14_000 + 8_000);
    }

    #[test]
    fn success_resets_the_pair_and_uncounts_only_itself() {
        let p = policy();
        let account = AccountCounter { failures: 5, last_failure_ms: 9, next_attempt_ms: 1_009 };
        let (address, account) = succeeded(&p, account, 10);
        assert_eq!(address, AddressCounter { last_success_ms: 10, ..AddressCounter::default() });
        assert_eq!((account.failures, account.next_attempt_ms), (4, 0));
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_bit_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("ip");
        assert_eq!(client_key(Some(a)), client_key(Some(b)));
        assert_eq!(client_key(Some(a)), "2001:db8:1:2::/64");
        let mapped: IpAddr = "::ffff:203.0.113.9".parse().expect("ip");
        assert_eq!(client_key(Some(mapped)), "203.0.113.9");
        assert_eq!(client_key(None), "-");
    }
}
