//! Access tokens revoked before they expire (logout, logout everywhere, refresh-token reuse), as
//! the user service lists them (`ListRevocations`, mesh-internal, callable only by the gateway).
//!
//! Every gateway replica polls the user service every [`POLL_PERIOD`] into an in-process set and
//! checks each request's token against it — verified-token cache hits included. Why polling into
//! memory rather than a shared cache or a lookup per request: it works the same with Redis,
//! without Redis (`kem up`), and with any number of gateway replicas; a request never waits on
//! the network for it; and revocations reach every replica within one poll period plus one call.
//!
//! Failure behaviour ("fail safe but available"):
//! - at start (a fresh edge, or a restarted one) the full list is loaded first; until it has been
//!   loaded once, tokens are not accepted (as without signing keys, which come from the same
//!   service) — so a restart never forgets a revocation;
//! - afterwards, when the user service cannot be reached the last list stays in force, the edge
//!   keeps serving, and the failure is logged (once when it starts, then once a minute, and when
//!   it ends).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use futures_util::future::BoxFuture;

/// How often the edge asks for new revocations: well inside the one-second promise.
pub const POLL_PERIOD: Duration = Duration::from_millis(250);
/// How long one `ListRevocations` call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Pages read back to back in one poll at most (a flood is read over several polls).
const MAX_PAGES_PER_POLL: usize = 64;
/// How long a revocation without an expiry is kept (longer than any access token lives).
const DEFAULT_KEEP: Duration = Duration::from_secs(3600);
/// How often a persisting poll failure is logged again.
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(60);

/// A set of revoked access tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// Tokens of `owner_id` with `iat` below `issued_before` (Unix seconds).
    Owner {
        /// The token subject.
        owner_id: String,
        /// The cut-off.
        issued_before: u64,
        /// When every token it concerns has expired.
        expires: SystemTime,
    },
    /// Tokens whose `sid` is `session_id`.
    Session {
        /// The session.
        session_id: String,
        /// When every token it concerns has expired.
        expires: SystemTime,
    },
}

/// One answer of a [`RevocationSource`].
#[derive(Debug, Clone, Default)]
pub struct RevocationPage {
    /// Revocations (possibly already known).
    pub revocations: Vec<Revocation>,
    /// Where the next call continues.
    pub next_cursor: String,
    /// Whether more are waiting right now.
    pub more: bool,
}

/// Where revocations come from.
pub trait RevocationSource: Send + Sync {
    /// Revocations from `cursor` (empty: all live ones).
    fn list<'a>(&'a self, cursor: &'a str) -> BoxFuture<'a, Result<RevocationPage, String>>;
}

/// The revoked tokens one edge knows of.
#[derive(Debug, Default)]
struct RevokedSet {
    /// Owner → (cut-off in Unix seconds, until when it matters).
    owners: HashMap<String, (u64, SystemTime)>,
    /// Session id → until when it matters.
    sessions: HashMap<String, SystemTime>,
}

impl RevokedSet {
    fn is_revoked(&self, subject: &str, session: Option<&str>, issued_at: u64) -> bool {
        if self.owners.get(subject).is_some_and(|(before, _)| issued_at < *before) {
            return true;
        }
        session.is_some_and(|sid| self.sessions.contains_key(sid))
    }

    /// Whether merging `page` would change nothing (the usual case: polls re-send the last
    /// seconds of revocations).
    fn covers(&self, page: &[Revocation]) -> bool {
        page.iter().all(|r| match r {
            Revocation::Owner { owner_id, issued_before, expires } => {
                self.owners.get(owner_id).is_some_and(|(before, until)| before >= issued_before && until >= expires)
            }
            Revocation::Session { session_id, expires } => {
                self.sessions.get(session_id).is_some_and(|until| until >= expires)
            }
        })
    }

    /// A copy with `page` merged in (cut-offs and expiries only ever grow) and everything
    /// expired by `now` left out.
    fn merged(&self, page: Vec<Revocation>, now: SystemTime) -> RevokedSet {
        let mut owners: HashMap<String, (u64, SystemTime)> =
            self.owners.iter().filter(|(_, (_, until))| *until > now).map(|(k, v)| (k.clone(), *v)).collect();
        let mut sessions: HashMap<String, SystemTime> =
            self.sessions.iter().filter(|(_, until)| **until > now).map(|(k, v)| (k.clone(), *v)).collect();
        for revocation in page {
            match revocation {
                Revocation::Owner { expires, .. } | Revocation::Session { expires, .. } if expires <= now => {}
                Revocation::Owner { owner_id, issued_before, expires } => {
                    let entry = owners.entry(owner_id).or_insert((issued_before, expires));
                    entry.0 = entry.0.max(issued_before);
                    entry.1 = entry.1.max(expires);
                }
                Revocation::Session { session_id, expires } => {
                    let entry = sessions.entry(session_id).or_insert(expires);
                    *entry = (*entry).max(expires);
                }
            }
        }
        RevokedSet { owners, sessions }
    }

    fn len(&self) -> usize {
        self.owners.len() + self.sessions.len()
    }
}

/// The revocations one edge enforces, kept current by [`RevocationList::spawn_sync`].
pub struct RevocationList {
    source: Option<Arc<dyn RevocationSource>>,
    set: ArcSwap<RevokedSet>,
    /// Whether the full list has been loaded once (always true without a source).
    loaded: AtomicBool,
    /// The cursor of the next poll; held across the call, so polls never overlap.
    cursor: tokio::sync::Mutex<String>,
    /// Since when polls fail, and when that was last logged.
    failing: parking_lot::Mutex<Option<(tokio::time::Instant, tokio::time::Instant)>>,
}

impl std::fmt::Debug for RevocationList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationList")
            .field("revoked", &self.set.load().len())
            .field("loaded", &self.is_ready())
            .finish_non_exhaustive()
    }
}

impl RevocationList {
    /// Revocations from `source`; nothing is accepted until the first [`RevocationList::sync`]
    /// succeeded.
    pub fn new(source: Arc<dyn RevocationSource>) -> Arc<RevocationList> {
        Arc::new(Self::with_source(Some(source)))
    }

    /// No revocations at all (tests and benchmarks with static keys, deployments whose tokens are
    /// never revoked early).
    pub fn disabled() -> Arc<RevocationList> {
        Arc::new(Self::with_source(None))
    }

    fn with_source(source: Option<Arc<dyn RevocationSource>>) -> RevocationList {
        RevocationList {
            loaded: AtomicBool::new(source.is_none()),
            source,
            set: ArcSwap::from_pointee(RevokedSet::default()),
            cursor: tokio::sync::Mutex::new(String::new()),
            failing: parking_lot::Mutex::new(None),
        }
    }

    /// Whether tokens may be accepted: the list has been loaded once (or there is no source).
    pub fn is_ready(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Whether a token of `subject`, session `session` (its `sid`), issued at `issued_at` (its
    /// `iat`), is revoked. No I/O, no lock: one atomic load and at most two hash lookups.
    pub fn is_revoked(&self, subject: &str, session: Option<&str>, issued_at: u64) -> bool {
        let set = self.set.load();
        set.len() > 0 && set.is_revoked(subject, session, issued_at)
    }

    /// How many revocations are in force.
    pub fn len(&self) -> usize {
        self.set.load().len()
    }

    /// Whether none is in force.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Merges `revocations` (what a poll does with an answer; tests use it directly).
    pub fn apply(&self, revocations: Vec<Revocation>) {
        let now = SystemTime::now();
        let current = self.set.load();
        if revocations.is_empty() || current.covers(&revocations) {
            return;
        }
        let merged = current.merged(revocations, now);
        self.set.store(Arc::new(merged));
    }

    /// Forgets revocations whose tokens have all expired.
    fn prune(&self) {
        let now = SystemTime::now();
        let current = self.set.load();
        let stale = current.owners.values().any(|(_, until)| *until <= now)
            || current.sessions.values().any(|until| *until <= now);
        if stale {
            self.set.store(Arc::new(current.merged(Vec::new(), now)));
        }
    }

    /// Polls the source once (reading pages back to back while it says more are waiting);
    /// returns how many revocations the answers carried. On error the list is unchanged.
    pub async fn sync(&self) -> Result<usize, String> {
        let Some(source) = &self.source else { return Ok(0) };
        let mut cursor = self.cursor.lock().await;
        let mut seen = 0;
        for _ in 0..MAX_PAGES_PER_POLL {
            let page = match tokio::time::timeout(CALL_TIMEOUT, source.list(&cursor)).await {
                Ok(Ok(page)) => page,
                Ok(Err(error)) => return Err(error),
                Err(_) => return Err(format!("no answer within {CALL_TIMEOUT:?}")),
            };
            seen += page.revocations.len();
            self.apply(page.revocations);
            *cursor = page.next_cursor;
            if !page.more {
                // Only a complete read counts as loaded.
                self.loaded.store(true, Ordering::Release);
                break;
            }
        }
        Ok(seen)
    }

    /// Polls every `period` (at once again while pages are waiting) until `shutdown`.
    pub fn spawn_sync(self: &Arc<Self>, period: Duration, shutdown: kem_mesh::Shutdown) {
        let this = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut last_prune = tokio::time::Instant::now();
            loop {
                let Some(list) = this.upgrade() else { return };
                let outcome = list.sync().await;
                list.report(outcome);
                if last_prune.elapsed() >= Duration::from_secs(30) {
                    list.prune();
                    last_prune = tokio::time::Instant::now();
                }
                drop(list);
                tokio::select! {
                    _ = tokio::time::sleep(period) => {}
                    _ = shutdown.wait() => return,
                }
            }
        });
    }

    /// Logs the start and end of a run of failed polls, and a persisting one once a minute.
    fn report(&self, outcome: Result<usize, String>) {
        let now = tokio::time::Instant::now();
        let mut failing = self.failing.lock();
        match (outcome, failing.as_mut()) {
            (Ok(_), None) => {}
            (Ok(_), Some((since, _))) => {
                tracing::info!(failed_for = ?since.elapsed(), revoked = self.len(),
                    "access-token revocations are being received again");
                *failing = None;
            }
            (Err(error), None) => {
                tracing::warn!(%error, revoked = self.len(), loaded = self.is_ready(),
                    "cannot poll access-token revocations; enforcing the last list and retrying");
                *failing = Some((now, now));
            }
            (Err(error), Some((since, logged))) => {
                if logged.elapsed() >= FAILURE_LOG_EVERY {
                    tracing::warn!(%error, failing_for = ?since.elapsed(), revoked = self.len(),
                        loaded = self.is_ready(), "access-token revocations are still not being received");
                    *logged = now;
                }
            }
        }
    }
}

/// Revocations from the user service's internal `ListRevocations` RPC, over the mesh.
pub struct UserServiceRevocations(pub crate::upstream::Upstream);

impl RevocationSource for UserServiceRevocations {
    fn list<'a>(&'a self, cursor: &'a str) -> BoxFuture<'a, Result<RevocationPage, String>> {
        Box::pin(async move {
            use kem_proto::kem::user::v1::ListRevocationsRequest;
            use kem_proto::kem::user::v1::user_service_client::UserServiceClient;
            let mut client = UserServiceClient::new(self.0.clone());
            let mut request = tonic::Request::new(ListRevocationsRequest { cursor: cursor.to_owned() });
            request.set_timeout(CALL_TIMEOUT);
            let response = match client.list_revocations(request).await {
                Ok(response) => response.into_inner(),
                // A user service from before revocations existed (a rolling upgrade that reached
                // the edge first) revokes nothing: an empty list is the truth, and refusing every
                // token until it is upgraded would be an outage.
                Err(status) if status.code() == tonic::Code::Unimplemented => {
                    static WARNED: AtomicBool = AtomicBool::new(false);
                    if !WARNED.swap(true, Ordering::Relaxed) {
                        tracing::warn!("the user service does not list revocations yet (older version); none enforced");
                    }
                    return Ok(RevocationPage { revocations: Vec::new(), next_cursor: cursor.to_owned(), more: false });
                }
                Err(status) => {
                    return Err(format!("user service ListRevocations: {:?} {}", status.code(), status.message()));
                }
            };
            let now = SystemTime::now();
            let revocations = response
                .revocations
                .into_iter()
                .filter_map(|r| {
                    let expires = r
                        .expire_time
                        .as_ref()
                        .and_then(instant)
                        .unwrap_or_else(|| kem_kit::jwt::later(now, DEFAULT_KEEP));
                    if !r.session_id.is_empty() {
                        Some(Revocation::Session { session_id: r.session_id, expires })
                    } else if r.owner_id.is_empty() {
                        None
                    } else {
                        let issued_before = r.issued_before.as_ref().map_or(0, cutoff_seconds);
                        Some(Revocation::Owner { owner_id: r.owner_id, issued_before, expires })
                    }
                })
                .collect();
            Ok(RevocationPage { revocations, next_cursor: response.next_cursor, more: response.more })
        })
    }
}

/// A protobuf timestamp as an instant (`None` when it is before 1970 or does not fit the clock).
fn instant(ts: &prost_types::Timestamp) -> Option<SystemTime> {
    let seconds = u64::try_from(ts.seconds).ok()?;
    let nanos = u32::try_from(ts.nanos).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(seconds, nanos.min(999_999_999)))
}

/// A cut-off as whole Unix seconds, rounded up: a token issued (`iat`, whole seconds) in the
/// second the cut-off falls in may have been issued before it.
fn cutoff_seconds(ts: &prost_types::Timestamp) -> u64 {
    let seconds = u64::try_from(ts.seconds).unwrap_or(0);
    seconds.saturating_add(u64::from(ts.nanos > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn later(secs: u64) -> SystemTime {
        SystemTime::now() + Duration::from_secs(secs)
    }

    #[test]
    fn owner_cut_offs_revoke_older_tokens_only_and_sessions_revoke_all_of_theirs() {
        let list = RevocationList::disabled();
        assert!(!list.is_revoked("owner-1", Some("s-1"), 100));
        list.apply(vec![
            Revocation::Owner { owner_id: "owner-1".into(), issued_before: 100, expires: later(60) },
            Revocation::Session { session_id: "s-2".into(), expires: later(60) },
        ]);
        assert!(list.is_revoked("owner-1", None, 99));
        assert!(!list.is_revoked("owner-1", None, 100), "issued at the cut-off: after the logout");
        assert!(!list.is_revoked("owner-2", None, 1));
        assert!(list.is_revoked("owner-2", Some("s-2"), u64::MAX));
        // A lower cut-off arriving later (a re-sent row) never lowers the one in force.
        list.apply(vec![Revocation::Owner { owner_id: "owner-1".into(), issued_before: 50, expires: later(60) }]);
        assert!(list.is_revoked("owner-1", None, 99));
    }

    #[test]
    fn expired_revocations_are_dropped() {
        let list = RevocationList::disabled();
        list.apply(vec![
            Revocation::Session { session_id: "gone".into(), expires: SystemTime::now() - Duration::from_secs(1) },
            Revocation::Session { session_id: "soon".into(), expires: SystemTime::now() + Duration::from_millis(50) },
        ]);
        assert!(!list.is_revoked("o", Some("gone"), 0));
        assert!(list.is_revoked("o", Some("soon"), 0));
        std::thread::sleep(Duration::from_millis(60));
        list.prune();
        assert!(list.is_empty());
    }

    #[test]
    fn timestamps_convert_totally() {
        assert_eq!(cutoff_seconds(&prost_types::Timestamp { seconds: 10, nanos: 0 }), 10);
        assert_eq!(cutoff_seconds(&prost_types::Timestamp { seconds: 10, nanos: 1 }), 11);
        assert_eq!(cutoff_seconds(&prost_types::Timestamp { seconds: -5, nanos: 0 }), 0);
        assert_eq!(cutoff_seconds(&prost_types::Timestamp { seconds: i64::MAX, nanos: 5 }), i64::MAX as u64 + 1);
        assert!(instant(&prost_types::Timestamp { seconds: -1, nanos: 0 }).is_none());
        let _ = instant(&prost_types::Timestamp { seconds: i64::MAX, nanos: i32::MAX });
    }
}
