//! Storage: one [`Store`] per service, on PostgreSQL or on embedded SQLite.
//!
//! # The decision
//!
//! PostgreSQL runs in production and in the tests; `kem up` runs on **embedded SQLite** (one file
//! per service under the data dir, WAL journal, busy timeout) so it needs no database server. A
//! [`Store`] wraps a backend enum — [`Pool::Postgres`] or [`Pool::Sqlite`] — rather than
//! `sqlx::Any`: `Any` erases types down to a handful of scalars and hides backend-specific
//! features a service needs (`FOR UPDATE SKIP LOCKED`, PostgreSQL types), whereas the enum keeps
//! each native driver and lets code choose, query by query:
//!
//! - **portable SQL written once** with [`query`]: `$1, $2, …` placeholders (both drivers accept
//!   them), values that encode and decode on both backends ([`Value`], [`Decodable`]: integers,
//!   `bool`, `String`, `Vec<u8>`, `Option` of those), executed on a pool or a [`Tx`] through
//!   [`Conn`]. Times are stored as milliseconds since the Unix epoch (`BIGINT`) so they compare the
//!   same way on both backends ([`millis`]).
//! - **per-backend SQL** where the dialects differ: match on [`Store::primary`] / [`Tx`] and use
//!   the native `sqlx` pool or connection (see `queue::store` for `SKIP LOCKED` on PostgreSQL and
//!   `BEGIN IMMEDIATE` on SQLite).
//!
//! Every repository test runs the same suite on both backends.
//!
//! SQLite has a single writer: a [`Tx`] there is `BEGIN IMMEDIATE` and holds the write lock until
//! it ends, so transactions must stay short (no network calls inside); other writers wait up to
//! the busy timeout. Embedded mode is for one `kem up` process, not for scale.
//!
//! # Migrations
//!
//! A service ships two directories, `migrations/postgres` and `migrations/sqlite`, and builds
//! [`Migrations`] from them with `sqlx::migrate!`. [`Store::migrate`] first applies the kit's own
//! tables ([`kit_migrations`]: queue, dead letters, outbox, inbox; tracked in
//! `_kem_kit_migrations`) and then the service's (tracked in `_sqlx_migrations`), so kit and
//! service version numbers never collide and a kit upgrade needs no change in any service.
//!
//! ```ignore
//! static MIGRATIONS: LazyLock<Migrations> = LazyLock::new(|| {
//!     Migrations::new(sqlx::migrate!("migrations/postgres"), sqlx::migrate!("migrations/sqlite"))
//! });
//! let store = Store::connect(&StoreConfig::from_env("event", data_dir)?).await?;
//! store.migrate(&MIGRATIONS).await?;
//! ```
//!
//! # Connections
//!
//! [`StoreConfig`] carries the URL (a [`Secret`](crate::Secret)), pool size, acquire timeout,
//! statement timeout (PostgreSQL: `SET statement_timeout` on every new connection), a bounded
//! exponential-backoff retry of the first connection (a pod may start before its database), and an
//! optional read-replica URL: [`Store::reader`] serves reads that tolerate replica lag and is the
//! primary when no replica is configured. [`Store::health`] backs readiness probes.

mod config;
mod error;
mod migrate;
mod query;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Postgres, Sqlite};

pub use config::{ConnectRetry, StoreConfig};
pub use error::{RepositoryError, StoreError};
pub use migrate::{Migrations, kit_migrations};
pub use query::{Conn, Decodable, Query, Row, Value, query};
/// What [`query`] accepts: `&'static str`, or SQL built at run time wrapped in `AssertSqlSafe`
/// (only from trusted pieces; values always go through [`Query::bind`]).
pub use sqlx::{AssertSqlSafe, SqlSafeStr};

/// The database engine behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// PostgreSQL: production and tests.
    Postgres,
    /// Embedded SQLite: `kem up` with no database server.
    Sqlite,
}

impl Backend {
    /// Lower-case name for logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A connection pool on one of the two backends. Cloning is cheap (shared pool).
#[derive(Debug, Clone)]
pub enum Pool {
    /// PostgreSQL pool.
    Postgres(PgPool),
    /// SQLite pool (one database file).
    Sqlite(SqlitePool),
}

impl Pool {
    /// Which backend this pool talks to.
    pub fn backend(&self) -> Backend {
        match self {
            Pool::Postgres(_) => Backend::Postgres,
            Pool::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Begins a transaction. On SQLite it is `BEGIN IMMEDIATE`: it takes the write lock up front,
    /// because a deferred transaction that reads and then writes fails with `SQLITE_BUSY` (without
    /// waiting for the busy timeout) when another connection wrote in between.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Pool::Postgres(pool) => Tx::Postgres(pool.begin().await.map_err(StoreError::begin)?),
            Pool::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await.map_err(StoreError::begin)?),
        })
    }

    async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Pool::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
            Pool::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
        }
    }

    async fn close(&self) {
        match self {
            Pool::Postgres(pool) => pool.close().await,
            Pool::Sqlite(pool) => pool.close().await,
        }
    }
}

/// A transaction on either backend; dropped without [`Tx::commit`] it rolls back.
#[derive(Debug)]
pub enum Tx {
    /// PostgreSQL transaction.
    Postgres(sqlx::Transaction<'static, Postgres>),
    /// SQLite transaction (`BEGIN IMMEDIATE`).
    Sqlite(sqlx::Transaction<'static, Sqlite>),
}

impl Tx {
    /// Which backend this transaction runs on.
    pub fn backend(&self) -> Backend {
        match self {
            Tx::Postgres(_) => Backend::Postgres,
            Tx::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Commits.
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Postgres(tx) => tx.commit().await,
            Tx::Sqlite(tx) => tx.commit().await,
        }
        .map_err(|source| StoreError::Database { action: "commit a transaction", source })
    }

    /// Rolls back (dropping the transaction does the same, without waiting).
    pub async fn rollback(self) -> Result<(), StoreError> {
        match self {
            Tx::Postgres(tx) => tx.rollback().await,
            Tx::Sqlite(tx) => tx.rollback().await,
        }
        .map_err(|source| StoreError::Database { action: "roll back a transaction", source })
    }
}

/// A service's database: a primary pool and a read pool (the primary unless a replica is set).
#[derive(Debug, Clone)]
pub struct Store {
    primary: Pool,
    reader: Pool,
    has_replica: bool,
    target: String,
}

impl Store {
    /// Connects to the configured database, retrying with exponential backoff as configured (a
    /// pod often starts before its database accepts connections), and the read replica if set.
    pub async fn connect(config: &StoreConfig) -> Result<Store, StoreError> {
        config.validate()?;
        let primary = connect_pool(config, config.url.expose(), &config.url.redacted()).await?;
        let reader = match &config.read_url {
            Some(url) if url != &config.url => match connect_pool(config, url.expose(), &url.redacted()).await {
                Ok(reader) => reader,
                Err(error) => {
                    primary.close().await;
                    return Err(error);
                }
            },
            _ => primary.clone(),
        };
        if primary.backend() != reader.backend() {
            return Err(StoreError::Config(format!(
                "the read replica is {} but the primary is {}; both must be the same engine",
                reader.backend(),
                primary.backend()
            )));
        }
        tracing::info!(database = %config.url, backend = %primary.backend(), replica = config.read_url.is_some(), "database connected");
        let has_replica = config.read_url.as_ref().is_some_and(|url| url != &config.url);
        Ok(Store { primary, reader, has_replica, target: config.url.redacted() })
    }

    /// A store over an existing pool (tests, or a pool built elsewhere); reads use the same pool.
    pub fn from_pool(pool: Pool) -> Store {
        let target = match &pool {
            Pool::Postgres(pg) => {
                let options = pg.connect_options();
                format!(
                    "postgres://{}:{}/{}",
                    options.get_host(),
                    options.get_port(),
                    options.get_database().unwrap_or("")
                )
            }
            Pool::Sqlite(lite) => format!("sqlite://{}", lite.connect_options().get_filename().display()),
        };
        Store { reader: pool.clone(), primary: pool, has_replica: false, target }
    }

    /// Uses `reader` for [`Store::reader`] (a replica pool built elsewhere).
    pub fn with_reader(mut self, reader: Pool) -> Store {
        self.reader = reader;
        self.has_replica = true;
        self
    }

    /// The backend engine.
    pub fn backend(&self) -> Backend {
        self.primary.backend()
    }

    /// The primary (read-write) pool.
    pub fn primary(&self) -> &Pool {
        &self.primary
    }

    /// The pool for reads that tolerate replica lag (the primary when no replica is configured).
    /// Read-your-own-writes paths must use [`Store::primary`].
    pub fn reader(&self) -> &Pool {
        &self.reader
    }

    /// Where this store points, without credentials (for logs).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Begins a transaction on the primary (see [`Pool::begin`]).
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        self.primary.begin().await
    }

    /// Applies the kit's tables, then the service's migrations (see the module documentation).
    pub async fn migrate(&self, service: &Migrations) -> Result<(), StoreError> {
        self.migrate_kit().await?;
        service.run(&self.primary, "service").await
    }

    /// Applies only the kit's own tables (queue, dead letters, outbox, inbox).
    pub async fn migrate_kit(&self) -> Result<(), StoreError> {
        kit_migrations().run(&self.primary, "kit").await
    }

    /// Readiness: the primary (and the replica, if distinct) answers `SELECT 1` within `timeout`.
    pub async fn health(&self, timeout: Duration) -> Result<(), StoreError> {
        let check = |pool: Pool, role: &'static str| {
            let target = self.target.clone();
            async move {
                match tokio::time::timeout(timeout, pool.ping()).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(StoreError::Unhealthy { target, role, reason: e.to_string() }),
                    Err(_) => Err(StoreError::Unhealthy {
                        target,
                        role,
                        reason: format!("no answer to SELECT 1 within {timeout:?}"),
                    }),
                }
            }
        };
        check(self.primary.clone(), "primary").await?;
        if self.has_replica {
            check(self.reader.clone(), "read replica").await?;
        }
        Ok(())
    }

    /// Closes both pools, waiting for checked-out connections to come back.
    pub async fn close(&self) {
        self.primary.close().await;
        if self.has_replica {
            self.reader.close().await;
        }
    }
}

async fn connect_pool(config: &StoreConfig, url: &str, redacted: &str) -> Result<Pool, StoreError> {
    let backend = config::backend_of(url).ok_or_else(|| StoreError::unsupported_url(redacted))?;
    let mut delay = config.connect_retry.initial_delay;
    let started = tokio::time::Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let result = match backend {
            Backend::Postgres => connect_postgres(config, url).await.map(Pool::Postgres),
            Backend::Sqlite => connect_sqlite(config, url).await.map(Pool::Sqlite),
        };
        match result {
            Ok(pool) => return Ok(pool),
            Err(ConnectFailure::Permanent(error)) => return Err(error),
            Err(ConnectFailure::Transient(source)) => {
                let elapsed = started.elapsed();
                if attempt >= config.connect_retry.max_attempts || elapsed + delay > config.connect_retry.max_elapsed {
                    return Err(StoreError::Connect { target: redacted.to_owned(), attempts: attempt, source });
                }
                tracing::warn!(database = redacted, attempt, retry_in = ?delay, error = %source, "database not reachable yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(config.connect_retry.max_delay);
            }
        }
    }
}

enum ConnectFailure {
    Transient(sqlx::Error),
    Permanent(StoreError),
}

async fn connect_postgres(config: &StoreConfig, url: &str) -> Result<PgPool, ConnectFailure> {
    let options: PgConnectOptions = url.parse().map_err(|e: sqlx::Error| {
        ConnectFailure::Permanent(StoreError::Config(format!("invalid PostgreSQL URL: {e}")))
    })?;
    let mut options = options;
    if let Some(name) = &config.application_name {
        options = options.application_name(name);
    }
    probe(sqlx::ConnectOptions::connect(&options), config.acquire_timeout).await?;
    let statement_timeout = config.statement_timeout;
    Ok(PgPoolOptions::new()
        .max_connections(config.max_connections)
        .min_connections(config.min_connections)
        .acquire_timeout(config.acquire_timeout)
        .idle_timeout(Some(Duration::from_secs(600)))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                // Set per connection rather than as a startup parameter: PgBouncer (and Azure's
                // built-in pooler) rejects unknown startup options but passes SET through.
                if let Some(timeout) = statement_timeout {
                    let sql = format!("SET statement_timeout = {}", timeout.as_millis());
                    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *conn).await?;
                }
                Ok(())
            })
        })
        .connect_lazy_with(options))
}

async fn connect_sqlite(config: &StoreConfig, url: &str) -> Result<SqlitePool, ConnectFailure> {
    let options: SqliteConnectOptions = url
        .parse()
        .map_err(|e: sqlx::Error| ConnectFailure::Permanent(StoreError::Config(format!("invalid SQLite URL: {e}"))))?;
    let file = options.get_filename().to_path_buf();
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|source| ConnectFailure::Permanent(StoreError::DataDir { path: dir.to_path_buf(), source }))?;
    }
    let options = options
        .create_if_missing(true)
        // WAL: readers never block the writer and the writer never blocks readers.
        .journal_mode(SqliteJournalMode::Wal)
        // NORMAL is durable across application crashes in WAL mode (only a power loss can drop
        // the last transactions), and avoids an fsync per commit.
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(config.sqlite_busy_timeout)
        .foreign_keys(true);
    probe(sqlx::ConnectOptions::connect(&options), config.acquire_timeout).await?;
    Ok(SqlitePoolOptions::new()
        .max_connections(config.max_connections)
        .min_connections(config.min_connections)
        .acquire_timeout(config.acquire_timeout)
        .connect_lazy_with(options))
}

/// One direct connection, so a failure reports its real cause ("connection refused", "password
/// authentication failed") instead of the pool's generic timeout, and so each retry is bounded.
async fn probe<C: sqlx::Connection>(
    connect: impl std::future::Future<Output = Result<C, sqlx::Error>>,
    timeout: Duration,
) -> Result<(), ConnectFailure> {
    match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(error)) => Err(classify(error)),
        Err(_) => Err(ConnectFailure::Transient(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no connection within {timeout:?}"),
        )))),
    }
}

/// Configuration mistakes fail at once; anything else may be a database still starting.
fn classify(error: sqlx::Error) -> ConnectFailure {
    match error {
        sqlx::Error::Configuration(e) => ConnectFailure::Permanent(StoreError::Config(e.to_string())),
        sqlx::Error::Database(e) if e.code().is_some_and(|c| c == "28P01" || c == "28000" || c == "3D000") => {
            // Wrong password / no such role / no such database: retrying will not help.
            ConnectFailure::Permanent(StoreError::Rejected { reason: e.message().to_owned() })
        }
        other => ConnectFailure::Transient(other),
    }
}

/// Milliseconds since the Unix epoch, the time representation of every kit table (portable:
/// `BIGINT` on PostgreSQL, `INTEGER` on SQLite). Saturates instead of failing.
pub fn millis(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// The inverse of [`millis`].
pub fn from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// A duration in milliseconds, saturating.
pub(crate) fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_trip() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(millis(t), 1_700_000_000_123);
        assert_eq!(from_millis(millis(t)), t);
        assert_eq!(millis(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
