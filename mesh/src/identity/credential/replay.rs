//! The replay ledger: which single-use join tokens the identity CA has already redeemed.
//!
//! It lives in the CA's directory next to the issuer and the join-token key
//! ([`LEDGER_FILE`]), so a restarted CA refuses a token its previous run redeemed. Every
//! redemption takes an exclusive lock ([`LOCK_FILE`], `flock`), re-reads the ledger from disk,
//! checks and appends, and replaces the file atomically (write, fsync, rename, fsync the
//! directory) before it returns. So:
//! - two concurrent requests with one token, in one CA process or in two sharing the directory,
//!   are serialised and exactly one succeeds;
//! - a redemption the CA answered is on disk: a crash right after cannot make the token good again;
//! - if the ledger cannot be written, nothing is redeemed (fail closed).
//!
//! Entries are pruned once their token has expired (plus [`CLOCK_STEP_ALLOWANCE`]): an expired
//! token is refused before the ledger is consulted, so the file only ever holds tokens still alive.
//! Join tokens are for bootstrapping a handful of workloads, so the file stays small and rewriting
//! it whole on each redemption is cheap.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::identity::spiffe::SpiffeId;

/// The ledger, inside the CA directory.
pub const LEDGER_FILE: &str = "join-token-ledger.json";

/// The lock file serialising redemptions (across processes too), inside the CA directory.
pub const LOCK_FILE: &str = "join-token-ledger.lock";

/// How long an entry outlives its token. Expired tokens are refused before the ledger is read,
/// but if the CA's clock were stepped back after an entry was pruned, the token would look
/// unexpired again; keeping entries a little longer covers ordinary clock corrections.
pub const CLOCK_STEP_ALLOWANCE: Duration = Duration::from_secs(300);

/// The on-disk format version this code reads and writes.
const FORMAT_VERSION: u32 = 1;

/// Why a single-use join token could not be redeemed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The token was redeemed before: a replay, or a second workload started with the same token.
    #[error(
        "join token already used; mint a new one with `kem join-token` (it was redeemed for {identity} at {} \
         unix seconds; join tokens are single-use unless minted with `kem join-token --reusable`)",
        unix_seconds(.redeemed_at)
    )]
    AlreadyUsed {
        /// The identity it was redeemed for.
        identity: String,
        /// When.
        redeemed_at: SystemTime,
    },
    /// The ledger (or its lock) could not be read or written.
    #[error(
        "the join-token ledger {} cannot be {action}: {source}; the CA directory must be writable by the identity \
         CA for it to accept join tokens",
        path.display()
    )]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The ledger file exists but is not a ledger this code understands.
    #[error(
        "the join-token ledger {} is damaged: {source}; restore it from a backup (deleting it makes every \
         unexpired single-use token it lists usable again)",
        path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: serde_json::Error,
    },
    /// The ledger was written by a newer kem.
    #[error(
        "the join-token ledger {} has format version {found}, this kem understands version {FORMAT_VERSION}; run the \
         kem that wrote it",
        path.display()
    )]
    UnknownVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u32,
    },
    /// A single-use token reached a CA configured without a ledger (a bug: it cannot be spent safely).
    #[error("this identity CA keeps no join-token ledger, so it cannot accept single-use join tokens")]
    NotKept,
    /// The blocking task doing the file I/O did not complete.
    #[error("the join-token ledger update did not complete: {0}")]
    Worker(#[source] Arc<tokio::task::JoinError>),
}

impl LedgerError {
    /// The gRPC status code the CA answers with: a replay is the caller's credential problem
    /// (`UNAUTHENTICATED`, like every other credential refusal); a ledger the CA cannot write is
    /// the CA's problem (`UNAVAILABLE`, retried by workloads, or `INTERNAL` when an operator must act).
    pub fn code(&self) -> tonic::Code {
        match self {
            LedgerError::AlreadyUsed { .. } | LedgerError::NotKept => tonic::Code::Unauthenticated,
            LedgerError::Io { .. } | LedgerError::Worker(_) => tonic::Code::Unavailable,
            LedgerError::Corrupt { .. } | LedgerError::UnknownVersion { .. } => tonic::Code::Internal,
        }
    }
}

fn unix_seconds(at: &SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn at_unix_seconds(secs: u64) -> SystemTime {
    UNIX_EPOCH.checked_add(Duration::from_secs(secs)).unwrap_or(UNIX_EPOCH)
}

#[derive(Serialize, Deserialize)]
struct LedgerFile {
    version: u32,
    redeemed: Vec<Entry>,
}

/// One redeemed token.
#[derive(Serialize, Deserialize, Clone)]
struct Entry {
    /// The token's id.
    jti: String,
    /// The identity it granted (for the operator reading the file, and the refusal message).
    sub: String,
    /// When the token expires (unix seconds).
    exp: u64,
    /// When it was redeemed (unix seconds).
    at: u64,
}

/// The CA's record of redeemed single-use join tokens. See the module documentation.
#[derive(Debug)]
pub struct ReplayLedger {
    path: PathBuf,
    lock_path: PathBuf,
    dir: PathBuf,
    /// Serialises redemptions inside this process; the file lock serialises processes. Both,
    /// because whether `flock` excludes two descriptors of one process is platform-specific.
    in_process: Mutex<()>,
}

impl ReplayLedger {
    /// Opens the ledger kept in `dir` (the CA directory), creating the directory and the lock
    /// file if needed. Fails if `dir` is not writable or an existing ledger is unreadable, so a
    /// CA learns at start, not at the first join token, that it cannot keep one.
    pub fn open(dir: &Path) -> Result<ReplayLedger, LedgerError> {
        std::fs::create_dir_all(dir).map_err(|source| LedgerError::Io {
            action: "created (its directory)",
            path: dir.to_owned(),
            source,
        })?;
        let ledger = ReplayLedger {
            path: dir.join(LEDGER_FILE),
            lock_path: dir.join(LOCK_FILE),
            dir: dir.to_owned(),
            in_process: Mutex::new(()),
        };
        let _lock = ledger.lock()?;
        ledger.read()?;
        Ok(ledger)
    }

    /// Where the ledger is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records that the single-use token `token_id`, granting `identity` and expiring at
    /// `expires_at`, is redeemed at `now`; fails with [`LedgerError::AlreadyUsed`] if it already
    /// was. Blocking (file lock and fsync): call it from a blocking thread.
    pub fn redeem(
        &self,
        token_id: &str,
        identity: &SpiffeId,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Result<(), LedgerError> {
        let _in_process = self.in_process.lock();
        let _lock = self.lock()?;
        let mut entries = self.read()?;
        // Prune first: a token expired long ago is refused by its verifier before reaching here.
        let now_secs = unix_seconds(&now);
        entries.retain(|e| at_unix_seconds(e.exp) + CLOCK_STEP_ALLOWANCE > now);
        if let Some(previous) = entries.iter().find(|e| e.jti == token_id) {
            return Err(LedgerError::AlreadyUsed {
                identity: previous.sub.clone(),
                redeemed_at: at_unix_seconds(previous.at),
            });
        }
        entries.push(Entry {
            jti: token_id.to_owned(),
            sub: identity.to_string(),
            exp: unix_seconds(&expires_at),
            at: now_secs,
        });
        self.write(entries)
    }

    /// Takes the exclusive cross-process lock; released when the returned file is dropped.
    fn lock(&self) -> Result<File, LedgerError> {
        let io = |action, source| LedgerError::Io { action, path: self.lock_path.clone(), source };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
            .map_err(|e| io("opened", e))?;
        file.lock().map_err(|e| io("locked", e))?;
        Ok(file)
    }

    fn read(&self) -> Result<Vec<Entry>, LedgerError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(LedgerError::Io { action: "read", path: self.path.clone(), source }),
        };
        let file: LedgerFile = serde_json::from_slice(&bytes)
            .map_err(|source| LedgerError::Corrupt { path: self.path.clone(), source })?;
        if file.version != FORMAT_VERSION {
            return Err(LedgerError::UnknownVersion { path: self.path.clone(), found: file.version });
        }
        Ok(file.redeemed)
    }

    /// Replaces the ledger atomically and durably: readers see the old or the new file, never a
    /// partial one, and the new one survives a crash once this returns.
    fn write(&self, redeemed: Vec<Entry>) -> Result<(), LedgerError> {
        let tmp = self.path.with_extension("json.tmp");
        let io = |action, path: &Path, source| LedgerError::Io { action, path: path.to_owned(), source };
        let json = serde_json::to_vec_pretty(&LedgerFile { version: FORMAT_VERSION, redeemed })
            .map_err(|source| LedgerError::Corrupt { path: self.path.clone(), source })?;
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&tmp)
            .map_err(|e| io("written (temporary file)", &tmp, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| io("restricted (temporary file)", &tmp, e))?;
        }
        file.write_all(&json).map_err(|e| io("written (temporary file)", &tmp, e))?;
        file.sync_all().map_err(|e| io("synced (temporary file)", &tmp, e))?;
        drop(file);
        std::fs::rename(&tmp, &self.path).map_err(|e| io("replaced", &self.path, e))?;
        // The rename is durable only once the directory entry is.
        #[cfg(unix)]
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| io("synced (directory)", &self.dir, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn participation() -> SpiffeId {
        SpiffeId::new("kem.test", "kem", "participation").expect("valid id")
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_token_is_redeemed_once_even_across_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = SystemTime::now();
        let ledger = ReplayLedger::open(dir.path()).expect("open");
        ledger.redeem("aa", &participation(), now + HOUR, now).expect("first use");
        let err = ledger.redeem("aa", &participation(), now + HOUR, now).expect_err("replay");
        assert!(matches!(&err, LedgerError::AlreadyUsed { identity, .. } if *identity == participation().to_string()));
        ledger.redeem("bb", &participation(), now + HOUR, now).expect("another token");
        drop(ledger);

        let reopened = ReplayLedger::open(dir.path()).expect("reopen");
        let err = reopened.redeem("aa", &participation(), now + HOUR, now).expect_err("replay after restart");
        assert!(matches!(err, LedgerError::AlreadyUsed { .. }), "{err:?}");
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn concurrent_redemptions_of_one_token_let_exactly_one_through() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Two ledgers on one directory stand for two CA processes; threads within each share one.
        let ledgers = [
            Arc::new(ReplayLedger::open(dir.path()).expect("open")),
            Arc::new(ReplayLedger::open(dir.path()).expect("open")),
        ];
        let now = SystemTime::now();
        let start = Arc::new(std::sync::Barrier::new(20));
        let threads: Vec<_> = (0..20)
            .map(|i| {
                let ledger = ledgers[i % 2].clone();
                let start = start.clone();
                std::thread::spawn(move || {
                    start.wait();
                    ledger.redeem("same-token", &participation(), now + HOUR, now)
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().expect("thread")).collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
        assert!(results.iter().all(|r| matches!(r, Ok(()) | Err(LedgerError::AlreadyUsed { .. }))), "{results:?}");
    }

    #[test]
    fn entries_are_pruned_after_their_token_expires() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = ReplayLedger::open(dir.path()).expect("open");
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        ledger.redeem("short", &participation(), t0 + Duration::from_secs(60), t0).expect("use");
        ledger.redeem("long", &participation(), t0 + HOUR, t0).expect("use");

        // Still inside the allowance: kept.
        let soon = t0 + Duration::from_secs(60) + CLOCK_STEP_ALLOWANCE - Duration::from_secs(1);
        ledger.redeem("x", &participation(), t0 + HOUR, soon).expect("use");
        assert!(std::fs::read_to_string(ledger.path()).expect("read").contains("\"short\""));

        let later = t0 + Duration::from_secs(60) + CLOCK_STEP_ALLOWANCE + Duration::from_secs(1);
        ledger.redeem("y", &participation(), t0 + HOUR, later).expect("use");
        let file = std::fs::read_to_string(ledger.path()).expect("read");
        assert!(!file.contains("\"short\""), "expired entry kept: {file}");
        assert!(file.contains("\"long\"") && file.contains("\"y\""), "{file}");
    }

    #[test]
    fn a_damaged_ledger_fails_closed_at_open_and_at_redemption() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = ReplayLedger::open(dir.path()).expect("open");
        std::fs::write(dir.path().join(LEDGER_FILE), "{not json").expect("damage");
        let now = SystemTime::now();
        let err = ledger.redeem("aa", &participation(), now + HOUR, now).expect_err("damaged");
        assert!(matches!(err, LedgerError::Corrupt { .. }), "{err:?}");
        assert_eq!(err.code(), tonic::Code::Internal);
        assert!(matches!(ReplayLedger::open(dir.path()), Err(LedgerError::Corrupt { .. })));

        std::fs::write(dir.path().join(LEDGER_FILE), r#"{"version": 9, "redeemed": []}"#).expect("future");
        assert!(matches!(ReplayLedger::open(dir.path()), Err(LedgerError::UnknownVersion { found: 9, .. })));
    }
}
