//! Sign-in throttling that cannot be used against the owner: a lock per (account, client
//! address), a progressive per-account delay answered at once with RetryInfo, exact limits under
//! concurrency, and resets on success.

use std::net::IpAddr;
use std::time::Duration;

use kem_kit::clock::ManualClock;
use kem_kit::runtime::with_client_ip;
use kem_proto::kem::user::v1 as pb;
use kem_proto::kem::user::v1::user_service_server::UserService;
use kem_user::{LoginThrottle, UserApi, UserConfig};
use tonic::{Code, Request};

use crate::support::*;

const EMAIL: &str = "owner@example.com";
const WRONG: &str = "wrong-horse-7";

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an IP address")
}

/// Signs in as the edge would forward it: with the client's address.
async fn login_from(api: &UserApi, email: &str, password: &str, client: &str) -> Result<pb::TokenPair, tonic::Status> {
    let request = pb::LoginRequest { email: email.to_owned(), password: password.to_owned() };
    api.login(with_client_ip(Request::new(request), ip(client)))
        .await
        .map(|r| r.into_inner().token_pair.expect("token pair"))
}

fn assert_throttled(status: &tonic::Status) -> Duration {
    assert_eq!((status.code(), reason(status).as_str()), (Code::ResourceExhausted, "TOO_MANY_ATTEMPTS"), "{status:?}");
    retry_delay(status).unwrap_or_else(|| panic!("RESOURCE_EXHAUSTED without RetryInfo: {status:?}"))
}

fn assert_wrong(result: Result<pb::TokenPair, tonic::Status>) {
    let status = result.expect_err("a wrong password must not sign in");
    assert_eq!((status.code(), reason(&status).as_str()), (Code::Unauthenticated, "INVALID_CREDENTIALS"));
}

/// Per-address lockout only (the per-account delay is out of reach).
fn per_address(max_failures: u32, lockout: Duration) -> UserConfig {
    let login = LoginThrottle {
        address_max_failures: max_failures,
        address_lockout: lockout,
        account_free_failures: 1000,
        ..LoginThrottle::default()
    };
    UserConfig { login, ..config() }
}

async fn signed_up(config: UserConfig) -> Harness {
    let h = Harness::start(config).await;
    register(&h.api, EMAIL, ACTIVE).await;
    h
}

#[tokio::test]
async fn failures_from_one_address_lock_that_address_only() {
    let lockout = Duration::from_secs(600);
    let settings = per_address(5, lockout);
    let h = signed_up(settings.clone()).await;
    for _ in 0..5 {
        assert_wrong(login_from(&h.api, EMAIL, WRONG, "203.0.113.7").await);
    }
    // The attacker's address is locked for the account, even with the right password, and the
    // answer says for how long.
    let locked = login_from(&h.api, EMAIL, PASSWORD, "203.0.113.7").await.expect_err("locked");
    let wait = assert_throttled(&locked);
    assert!(wait <= lockout && wait > lockout - Duration::from_secs(30), "the real remaining lock: {wait:?}");
    // The owner, anywhere else, is not locked out — on this replica or another.
    login_from(&h.api, EMAIL, PASSWORD, "198.51.100.20").await.expect("the owner signs in from their address");
    let replica = h.replica(settings).await;
    login_from(&replica, EMAIL, PASSWORD, "2001:db8:aa::1").await.expect("and from another one");
    let again = login_from(&replica, EMAIL, PASSWORD, "203.0.113.7").await.expect_err("the lock is in the database");
    assert_throttled(&again);
    // An IPv6 attacker cannot escape by rotating addresses inside their /64.
    for n in 0..5 {
        assert_wrong(login_from(&h.api, EMAIL, WRONG, &format!("2001:db8:bad:1::{n:x}")).await);
    }
    assert_throttled(&login_from(&h.api, EMAIL, PASSWORD, "2001:db8:bad:1::ffff").await.expect_err("same /64"));
    // Unknown emails are throttled the same way, so the lock reveals nothing.
    for _ in 0..5 {
        assert_wrong(login_from(&h.api, "ghost@example.com", PASSWORD, "203.0.113.8").await);
    }
    assert_throttled(&login_from(&h.api, "ghost@example.com", PASSWORD, "203.0.113.8").await.expect_err("locked"));
    h.cleanup().await;
}

#[tokio::test]
async fn a_success_resets_the_count_of_its_address() {
    let h = signed_up(per_address(3, Duration::from_secs(600))).await;
    let home = "198.51.100.20";
    for _ in 0..2 {
        assert_wrong(login_from(&h.api, EMAIL, WRONG, home).await);
    }
    login_from(&h.api, EMAIL, PASSWORD, home).await.expect("the third attempt is the right one");
    // Counting starts over: two more failures do not lock, the third does.
    for _ in 0..2 {
        assert_wrong(login_from(&h.api, EMAIL, WRONG, home).await);
    }
    login_from(&h.api, EMAIL, PASSWORD, home).await.expect("still below the limit");
    for _ in 0..3 {
        assert_wrong(login_from(&h.api, EMAIL, WRONG, home).await);
    }
    assert_throttled(&login_from(&h.api, EMAIL, PASSWORD, home).await.expect_err("three in a row lock"));
    h.cleanup().await;
}

#[tokio::test]
async fn twenty_parallel_wrong_passwords_from_one_address_check_exactly_five() {
    let h = signed_up(per_address(5, Duration::from_secs(600))).await;
    let attempts = (0..20).map(|_| login_from(&h.api, EMAIL, WRONG, "203.0.113.50"));
    let results = futures_util::future::join_all(attempts).await;
    let checked = results
        .iter()
        .filter(|r| r.as_ref().is_err_and(|s| s.code() == Code::Unauthenticated && reason(s) == "INVALID_CREDENTIALS"))
        .count();
    let refused = results.iter().filter_map(|r| r.as_ref().err()).filter(|s| s.code() == Code::ResourceExhausted);
    let refused: Vec<Duration> = refused.map(assert_throttled).collect();
    assert_eq!((checked, refused.len()), (5, 15), "exactly the limit is checked, the rest refused at once");
    assert!(refused.iter().all(|wait| *wait > Duration::from_secs(500)), "{refused:?}");
    assert_throttled(&login_from(&h.api, EMAIL, PASSWORD, "203.0.113.50").await.expect_err("locked"));
    login_from(&h.api, EMAIL, PASSWORD, "198.51.100.20").await.expect("another address is not locked");
    h.cleanup().await;
}

/// Attempts from `client` until the throttle admits one, honouring each RetryInfo (bounded) by
/// moving the service's clock forward by the advised wait.
async fn once_admitted(
    api: &UserApi,
    clock: &ManualClock,
    password: &str,
    client: &str,
) -> Result<pb::TokenPair, tonic::Status> {
    for _ in 0..50 {
        match login_from(api, EMAIL, password, client).await {
            Err(status) if status.code() == Code::ResourceExhausted => {
                clock.advance(assert_throttled(&status));
            }
            other => return other,
        }
    }
    panic!("{client} was never admitted");
}

#[tokio::test]
async fn failures_across_addresses_slow_the_account_with_a_bounded_doubling_delay() {
    let login = LoginThrottle {
        address_max_failures: 5,
        account_free_failures: 4,
        account_base_delay: Duration::from_millis(300),
        account_max_delay: Duration::from_millis(1200),
        ..LoginThrottle::default()
    };
    let clock = ManualClock::starting_now();
    let h = Harness::with_clock(UserConfig { login, ..config() }, clock.clone()).await;
    register(&h.api, EMAIL, ACTIVE).await;
    let home = "198.51.100.20";
    login_from(&h.api, EMAIL, PASSWORD, home).await.expect("the owner signs in at home");

    // A distributed attack: one guess per address, so no address lock ever triggers.
    let mut attacker = 0u32;
    let mut next_attacker = || {
        attacker += 1;
        format!("203.0.113.{attacker}")
    };
    for _ in 0..4 {
        assert_wrong(login_from(&h.api, EMAIL, WRONG, &next_attacker()).await);
    }
    // From now on every attempt from an unknown address must wait, answered at once with the
    // real remaining wait; each further failure doubles it, up to the bound.
    let mut waits = Vec::new();
    for _ in 0..4 {
        let status = login_from(&h.api, EMAIL, WRONG, &next_attacker()).await.expect_err("delayed");
        waits.push(assert_throttled(&status));
        assert_wrong(once_admitted(&h.api, &clock, WRONG, &next_attacker()).await);
    }
    // The clock stands still between a refusal and its wait: the advice is exact.
    let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
    assert_eq!(ms, [300, 600, 1200, 1200], "waits must double from 300 ms up to 1200 ms");

    // The owner at home (an address they signed in from before) is not slowed down at all...
    login_from(&h.api, EMAIL, PASSWORD, home).await.expect("a known address skips the account delay");
    // ...and from a new address is slowed, never locked out: after the wait, the password works.
    let status = login_from(&h.api, EMAIL, PASSWORD, "192.0.2.99").await.expect_err("delayed");
    assert!(assert_throttled(&status) <= Duration::from_millis(1200));
    once_admitted(&h.api, &clock, PASSWORD, "192.0.2.99").await.expect("the owner gets in after the wait");
    h.cleanup().await;
}

#[tokio::test]
async fn callers_without_a_client_address_share_one_bucket() {
    // A direct call (no edge) has no address; it is throttled like any one address.
    let h = signed_up(per_address(3, Duration::from_secs(60))).await;
    for _ in 0..3 {
        assert_wrong(login(&h.api, EMAIL, WRONG).await);
    }
    assert_throttled(&login(&h.api, EMAIL, PASSWORD).await.expect_err("locked"));
    login_from(&h.api, EMAIL, PASSWORD, "198.51.100.20").await.expect("an edge client is not affected");
    h.cleanup().await;
}
