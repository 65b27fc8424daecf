//! What can go wrong with a [`Store`](super::Store), each variant saying what to do about it.

use std::path::PathBuf;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The configuration cannot work (bad URL, impossible pool size, mismatched replica).
    #[error("invalid database configuration: {0}")]
    Config(String),
    /// Database settings in the environment are invalid (every bad variable is listed).
    #[error(transparent)]
    Settings(#[from] crate::config::ConfigError),
    /// The database could not be reached within the connect-retry budget.
    #[error(
        "cannot connect to {target} after {attempts} attempt(s): {source}; check that the database is running and \
         that the URL, network policy and credentials are right"
    )]
    Connect {
        /// Where (credentials redacted).
        target: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last error.
        source: sqlx::Error,
    },
    /// The server refused us for good (bad credentials, unknown role or database): no retry.
    #[error("the database refused the connection: {reason}; fix the credentials or create the database")]
    Rejected {
        /// The server's message.
        reason: String,
    },
    /// The SQLite data directory could not be created.
    #[error("cannot create the data directory {path}: {source}; check permissions or set --data-dir")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Migrations failed: the schema is not what this binary expects.
    #[error(
        "{which} migrations failed on {backend}: {source}; a migration was edited after being applied, the database \
         is newer than this binary, or a statement failed (see the message)"
    )]
    Migrate {
        /// `kit` or `service`.
        which: &'static str,
        /// Backend name.
        backend: &'static str,
        /// The migrator's error.
        source: sqlx::migrate::MigrateError,
    },
    /// A query or transaction failed. Pool timeouts and lost connections are transient.
    #[error("database error while trying to {action}: {source}")]
    Database {
        /// What we were doing.
        action: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A value could not be bound or a column could not be read as the requested type.
    #[error("cannot {action} column or argument {column}: {reason}; the query and the schema disagree")]
    Mapping {
        /// Encode or decode.
        action: &'static str,
        /// Column name or argument number.
        column: String,
        /// Why.
        reason: String,
    },
    /// The caller passed something the store cannot accept (empty id, unserializable value).
    #[error("invalid request to the store: {0}")]
    Invalid(String),
    /// The readiness check failed.
    #[error("{role} database {target} is not healthy: {reason}")]
    Unhealthy {
        /// Where.
        target: String,
        /// Primary or replica.
        role: &'static str,
        /// What happened.
        reason: String,
    },
}

impl StoreError {
    pub(crate) fn unsupported_url(redacted: &str) -> StoreError {
        StoreError::Config(format!(
            "unsupported database URL {redacted}: use postgres://user:password@host:5432/database or sqlite://path/to/file.db"
        ))
    }

    pub(crate) fn begin(source: sqlx::Error) -> StoreError {
        StoreError::Database { action: "begin a transaction", source }
    }

    /// Whether retrying the same operation later may succeed (connection trouble, pool
    /// exhaustion, serialization failure, lock timeout), as opposed to a bug or bad data.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Connect { .. } | StoreError::Unhealthy { .. } => true,
            StoreError::Database { source, .. } => match source {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(e) => {
                    // 40001 serialization failure, 40P01 deadlock, 55P03 lock not available,
                    // 57014 statement timeout; SQLite 5/6/261/517: SQLITE_BUSY / SQLITE_LOCKED variants.
                    e.code().is_some_and(|c| {
                        matches!(&*c, "40001" | "40P01" | "55P03" | "57014" | "5" | "6" | "261" | "517")
                    })
                }
                _ => false,
            },
            _ => false,
        }
    }
}

/// Why a service repository call failed: the store itself, or a stored value this version cannot
/// read. Services map it onto their own use-case errors ([`is_transient`](Self::is_transient) →
/// "unavailable, retry", anything else → internal).
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// The database failed (or the query and the schema disagree).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored value is not what this version reads (e.g. unparsable JSON).
    #[error("stored {what} is unreadable: {reason}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

impl RepositoryError {
    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, RepositoryError::Store(e) if e.is_transient())
    }
}
